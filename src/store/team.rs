//! Team members: the users of an organisation with role admin, coach or
//! member. Every function takes the organisation id and filters by it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use super::query::{self, Arg, Sql, like_pattern};
use super::{StoreResult, Tx, on_tx, users};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MemberRow {
    pub id: i64,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub role: String,
    pub organization_id: Option<i64>,
    pub department_id: Option<i64>,
    pub added_by: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// How many members match (pages of [`list`] only).
    #[sqlx(default)]
    pub total: Option<i64>,
    /// The team's version the row was read at (whole-team pages only).
    #[sqlx(default)]
    pub team_version: Option<i64>,
}
crate::reader_row!(MemberRow {
    id,
    email,
    first_name,
    last_name,
    role,
    organization_id,
    department_id,
    added_by,
    created_at,
    updated_at,
    total,
    team_version
});

const COLUMNS: &str = "u.id, u.email, u.first_name, u.last_name, u.role, u.organization_id, \
     u.department_id, u.added_by, u.created_at, u.updated_at";
/// The domain's team roles as [`users::roles_sql`] writes them (a test
/// checks they agree), kept as a constant for the hot list query. Written
/// into the SQL, never bound: the team-only indexes (migration 0009) carry
/// this very condition, and SQLite uses a partial index only for a query
/// that repeats it literally.
const TEAM_ROLES: &str = "('admin', 'coach', 'member')";
/// The same roles one by one, for the count (see [`users::push_count_in_roles`]).
const TEAM_ROLE_NAMES: [&str; 3] = ["admin", "coach", "member"];
/// The same test as comparisons, for a row read by its id: SQLite builds a
/// temporary index for an `IN` list of three, and no index is wanted there.
const IS_TEAM_ROLE: &str = "(u.role = 'admin' OR u.role = 'coach' OR u.role = 'member')";

/// The fields a team list can be ordered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemberOrder {
    Id,
    FirstName,
    LastName,
    Email,
    CreatedAt,
    UpdatedAt,
}

impl MemberOrder {
    /// The column, as ordered (byte-wise text on PostgreSQL, as on SQLite).
    fn column(self) -> &'static str {
        match self {
            MemberOrder::Id => "id",
            MemberOrder::FirstName => "first_name",
            MemberOrder::LastName => "last_name",
            MemberOrder::Email => "email",
            MemberOrder::CreatedAt => "created_at",
            MemberOrder::UpdatedAt => "updated_at",
        }
    }

    fn sort_key(self, pg: bool) -> String {
        format!("{}{}", self.column(), self.collation(pg))
    }

    /// What the field is sorted with: text byte-wise on PostgreSQL too.
    fn collation(self, pg: bool) -> &'static str {
        match (self, pg) {
            (MemberOrder::FirstName | MemberOrder::LastName | MemberOrder::Email, true) => {
                " COLLATE \"C\""
            }
            _ => "",
        }
    }
}

pub async fn find(tx: &mut Tx, org: i64, id: i64) -> StoreResult<Option<MemberRow>> {
    let sql = Sql::with_args(
        format!(
            "SELECT {COLUMNS} FROM users u WHERE u.organization_id = $1 AND u.id = $2 AND u.role IN {TEAM_ROLES}"
        ),
        vec![Arg::Int(org), Arg::Int(id)],
    );
    query::fetch_optional(tx, &sql).await
}

pub async fn update(
    tx: &mut Tx,
    id: i64,
    first_name: &str,
    last_name: &str,
    department_id: Option<i64>,
    role: &str,
    now: i64,
) -> StoreResult<()> {
    const SQL: &str = "UPDATE users SET first_name = $2, last_name = $3, department_id = $4, role = $5, \
         updated_at = $6 WHERE id = $1";
    on_tx!(tx, |c| sqlx::query(SQL)
        .bind(id)
        .bind(first_name)
        .bind(last_name)
        .bind(department_id)
        .bind(role)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected());
    Ok(())
}

/// The team list's ` ORDER BY` (see [`query::order_by`]).
fn order_clause(order: &[(MemberOrder, bool)], pg: bool) -> String {
    query::order_by(order.iter().map(|(o, desc)| (o.sort_key(pg), *desc)), "id")
}

/// The ids (and `extra` columns) of every matching member: organisation,
/// team roles, and each search term matching first name, last name or email.
fn matching(sql: &mut Sql, org: i64, terms: &[String], pg: bool, extra: &str) {
    sql.push(&format!(
        "SELECT u.id{extra} FROM users u WHERE u.role IN {TEAM_ROLES}"
    ));
    if !pg && terms.iter().any(|t| t.chars().count() >= 3) {
        // Driven by the FTS matches: `+` keeps SQLite from probing the
        // organisation index once per match instead of reading the row.
        sql.push(" AND +u.organization_id = ").bind(Arg::Int(org));
    } else {
        sql.push(" AND u.organization_id = ").bind(Arg::Int(org));
    }
    for term in terms {
        if pg {
            // Served by the users_search trigram index (3+ characters).
            sql.push(" AND (u.first_name || chr(31) || u.last_name || chr(31) || u.email) ILIKE ")
                .bind(Arg::Text(like_pattern(term)))
                .push(" ESCAPE '\\'");
        } else if term.chars().count() >= 3 {
            // FTS5 trigram phrase: a case-insensitive substring of one column.
            let phrase = format!("\"{}\"", term.replace('"', "\"\""));
            sql.push(" AND u.id IN (SELECT rowid FROM users_fts WHERE users_fts MATCH ")
                .bind(Arg::Text(phrase))
                .push(")");
        } else {
            // Trigrams cannot serve 1-2 characters: scan the organisation.
            let pattern = Arg::Text(like_pattern(term));
            sql.push(" AND (u.first_name LIKE ")
                .bind(pattern.clone())
                .push(" ESCAPE '\\' OR u.last_name LIKE ");
            sql.bind(pattern.clone())
                .push(" ESCAPE '\\' OR u.email LIKE ")
                .bind(pattern)
                .push(" ESCAPE '\\')");
        }
    }
}

/// How many members match. Without search terms the answer comes from the
/// trigger-maintained `user_counts`, not from counting rows; with them, from
/// the search's ordered matches (cached, see [`SearchCache`]).
pub async fn count(
    tx: &mut Tx,
    cache: &SearchCache,
    org: i64,
    terms: &[String],
    order: &[(MemberOrder, bool)],
) -> StoreResult<i64> {
    if !terms.is_empty() {
        let ids = search(tx, cache, org, terms, order).await?;
        return Ok(ids.len() as i64);
    }
    let mut sql = Sql::default();
    users::push_count_in_roles(&mut sql, org, &TEAM_ROLE_NAMES, tx.is_postgres());
    query::fetch_int(tx, &sql).await
}

/// One page of the organisation's team. The page's ids are chosen first,
/// from an index (or, with search terms, from the search's ordered
/// matches), and only those rows are read: skipped rows are never fetched,
/// and neither planner can fall into walking a sort index while testing
/// every row against the search.
pub async fn list(
    tx: &mut Tx,
    kept: &TeamLists,
    org: i64,
    terms: &[String],
    order: &[(MemberOrder, bool)],
    limit: i64,
    offset: i64,
) -> StoreResult<Vec<MemberRow>> {
    if terms.is_empty() {
        return whole_team_page(tx, &kept.pages, org, order, limit, offset).await;
    }
    // A search cached at some version is tried at that version first: the
    // page's statement checks that the team is still at it, so no separate
    // read of the version comes first (on PostgreSQL one round trip of
    // three). No rows means the team has moved on (every change to it
    // moves the version), and the page is read as below.
    if let Some((version, ids)) = kept.searches.latest(&SearchKey::new(org, terms, order))
        && let Some(sql) = search_page_sql(tx, org, &ids, limit, offset, Some(version))
    {
        let mut rows: Vec<MemberRow> = query::fetch_all(tx, &sql).await?;
        if !rows.is_empty() {
            sort_page(&mut rows, order);
            return Ok(rows);
        }
    }
    let ids = search(tx, &kept.searches, org, terms, order).await?;
    let Some(sql) = search_page_sql(tx, org, &ids, limit, offset, None) else {
        return Ok(Vec::new());
    };
    let mut rows: Vec<MemberRow> = query::fetch_all(tx, &sql).await?;
    sort_page(&mut rows, order);
    Ok(rows)
}

/// The statement of a page of a search's ordered matches `ids` (`None`
/// past the last match); with `version`, only while the team is at it.
fn search_page_sql(
    tx: &Tx,
    org: i64,
    ids: &[i64],
    limit: i64,
    offset: i64,
    version: Option<i64>,
) -> Option<Sql> {
    let start = usize::try_from(offset).unwrap_or(usize::MAX).min(ids.len());
    let end = start
        .saturating_add(usize::try_from(limit).unwrap_or(0))
        .min(ids.len());
    if start == end {
        return None;
    }
    // The rows are joined to a list of the page's ids, as a whole-team
    // page's are to its chosen ids ([`whole_team_sql`]): with `u.id IN
    // (...)` SQLite built a temporary index of the ids, and sorted the rows
    // again for any ordering but the id's. The caller sorts them.
    let pg = tx.is_postgres();
    let mut sql = Sql::default();
    sql.push(&format!("SELECT {COLUMNS}, "))
        .bind(Arg::Int(ids.len() as i64))
        .push(" AS total FROM (VALUES ");
    for (i, &id) in ids[start..end].iter().enumerate() {
        sql.push(if i == 0 { "(" } else { ", (" })
            .bind(Arg::Int(id))
            .push(")");
    }
    // The organisation and roles are checked again: a row that changed
    // since the matches were collected is left out, never shown.
    sql.push(if pg { ") p JOIN" } else { ") p CROSS JOIN" })
        .push(" users u ON u.id = p.column1 WHERE u.organization_id = ")
        .bind(Arg::Int(org))
        .push(&format!(" AND {IS_TEAM_ROLE}"));
    if let Some(version) = version {
        sql.push(" AND (");
        push_team_version(&mut sql, org);
        sql.push(") = ").bind(Arg::Int(version));
    }
    Some(sql)
}

/// A page of the whole team, without search terms. An offset is a walk
/// along the sort index past every row before the page; a page that has a
/// mark at or before it, of the same team version, starts at the mark
/// instead and walks only the rest (see [`PageMarks`]). The statement
/// itself checks the version, so a mark is used only in a snapshot where
/// it still holds; when it does not, the page is read by offset.
async fn whole_team_page(
    tx: &mut Tx,
    marks: &PageMarks,
    org: i64,
    order: &[(MemberOrder, bool)],
    limit: i64,
    offset: i64,
) -> StoreResult<Vec<MemberRow>> {
    let pg = tx.is_postgres();
    let keyset = Keyset::of(order).filter(|_| offset >= PageMarks::FROM_OFFSET);
    if let Some(keyset) = keyset
        && let Some(mark) = marks.at_or_before(org, order, offset)
    {
        let sql = whole_team_sql(org, order, limit, offset, Start::Mark(keyset, &mark), pg);
        let mut rows: Vec<MemberRow> = query::fetch_all(tx, &sql).await?;
        sort_page(&mut rows, order);
        if !rows.is_empty() {
            marks.note(org, order, keyset, mark.version, offset, &rows);
            return Ok(rows);
        }
    }
    let sql = whole_team_sql(
        org,
        order,
        limit,
        offset,
        Start::Offset {
            versioned: keyset.is_some(),
        },
        pg,
    );
    let mut rows: Vec<MemberRow> = query::fetch_all(tx, &sql).await?;
    sort_page(&mut rows, order);
    if let Some(keyset) = keyset
        && let Some(version) = rows.first().and_then(|row| row.team_version)
    {
        marks.note(org, order, keyset, version, offset, &rows);
    }
    Ok(rows)
}

/// Where [`whole_team_sql`] starts its walk.
enum Start<'a> {
    /// At the first row; with the team's version on each row when the
    /// page will leave marks.
    Offset {
        versioned: bool,
    },
    Mark(Keyset, &'a Mark),
}

/// The statement of [`whole_team_page`]: each row carries the team's size
/// (`total`, from `user_counts`) and, to file marks under, its version
/// (`team_version`), read in the same snapshot as the rows.
fn whole_team_sql(
    org: i64,
    order: &[(MemberOrder, bool)],
    limit: i64,
    offset: i64,
    start: Start<'_>,
    pg: bool,
) -> Sql {
    let order_by = order_clause(order, pg);
    let mut sql = Sql::default();
    sql.push(&format!("SELECT {COLUMNS}, ("));
    users::push_count_in_roles(&mut sql, org, &TEAM_ROLE_NAMES, pg);
    sql.push(") AS total");
    if matches!(start, Start::Mark(..) | Start::Offset { versioned: true }) {
        sql.push(", (");
        push_team_version(&mut sql, org);
        sql.push(") AS team_version");
    }
    // The rows are joined to the page's ids, the ids first: `u.id IN
    // (...)` made SQLite fill a 10 KB Bloom filter for ten ids and sort
    // the page again (a third of the statement). The caller puts the rows
    // in order ([`sort_page`]); `CROSS JOIN` is SQLite's way of keeping the
    // ids the outer loop (PostgreSQL has no `ON` for it, nor needs it).
    sql.push(" FROM (");
    match start {
        Start::Mark(keyset, mark) => {
            push_ids_from_mark(&mut sql, org, keyset, mark, limit, offset, pg)
        }
        Start::Offset { .. } => {
            matching(&mut sql, org, &[], pg, "");
            sql.push(&order_by);
            sql.limit_offset(limit, offset, pg);
        }
    }
    sql.push(if pg { ") p JOIN" } else { ") p CROSS JOIN" })
        .push(" users u ON u.id = p.id");
    sql
}

/// Puts a page's rows in the list's order, as its `ORDER BY` would: each
/// field (text byte-wise on both backends, as [`MemberOrder::collation`]
/// orders it), then the id the way the last field runs
/// ([`query::order_by`]). Every field is `NOT NULL`.
fn sort_page(rows: &mut [MemberRow], order: &[(MemberOrder, bool)]) {
    use std::cmp::Ordering;
    fn by(field: MemberOrder, a: &MemberRow, b: &MemberRow) -> Ordering {
        match field {
            MemberOrder::Id => a.id.cmp(&b.id),
            MemberOrder::FirstName => a.first_name.as_bytes().cmp(b.first_name.as_bytes()),
            MemberOrder::LastName => a.last_name.as_bytes().cmp(b.last_name.as_bytes()),
            MemberOrder::Email => a.email.as_bytes().cmp(b.email.as_bytes()),
            MemberOrder::CreatedAt => a.created_at.cmp(&b.created_at),
            MemberOrder::UpdatedAt => a.updated_at.cmp(&b.updated_at),
        }
    }
    let id_desc = order.last().is_some_and(|(_, desc)| *desc);
    rows.sort_by(|a, b| {
        order
            .iter()
            .map(|&(field, desc)| (by(field, a, b), desc))
            .chain(std::iter::once((a.id.cmp(&b.id), id_desc)))
            .map(|(ordering, desc)| if desc { ordering.reverse() } else { ordering })
            .find(|ordering| ordering.is_ne())
            .unwrap_or(Ordering::Equal)
    });
}

/// The ids of the page at `offset`, walking from `mark` (the mark's own
/// row is the first walked), and none unless the team is at the mark's
/// version. Ordered by a field, the rows from the mark on are two ranges
/// of the field's index: the mark's value with the mark's id or past it,
/// then the values past the mark's. (One row-value comparison,
/// `(last_name, id) <= (?, ?)`, would be simpler, but SQLite seeks it on
/// `last_name` alone and walks a run of equal names to the mark.)
fn push_ids_from_mark(
    sql: &mut Sql,
    org: i64,
    keyset: Keyset,
    mark: &Mark,
    limit: i64,
    offset: i64,
    pg: bool,
) {
    let skip = offset - mark.position;
    let (dir, past) = if keyset.desc {
        (" DESC", "<")
    } else {
        ("", ">")
    };
    let id = Arg::Int(mark.key.id);
    match (keyset.field, &mark.key.value) {
        (Some(field), Some(value)) => {
            let key = field.sort_key(pg);
            let walk = skip.saturating_add(limit);
            sql.push("SELECT id FROM (SELECT * FROM (");
            matching(sql, org, &[], pg, &format!(", 0 AS arm, {key} AS k"));
            sql.push(&format!(" AND {key} = "))
                .bind(value.clone())
                .push(&format!(" AND u.id {past}= "))
                .bind(id)
                .push(&format!(" ORDER BY u.id{dir}"))
                .limit(walk, pg)
                .push(") a UNION ALL SELECT * FROM (");
            matching(sql, org, &[], pg, &format!(", 1 AS arm, {key} AS k"));
            sql.push(&format!(" AND {key} {past} "))
                .bind(value.clone())
                .push(&format!(" ORDER BY {key}{dir}, u.id{dir}"))
                .limit(walk, pg)
                .push(") b) m WHERE (");
            push_team_version(sql, org);
            sql.push(") = ").bind(Arg::Int(mark.version)).push(&format!(
                " ORDER BY arm, k{}{dir}, id{dir}",
                field.collation(pg)
            ));
        }
        _ => {
            matching(sql, org, &[], pg, "");
            sql.push(&format!(" AND u.id {past}= "))
                .bind(id)
                .push(" AND (");
            push_team_version(sql, org);
            sql.push(") = ")
                .bind(Arg::Int(mark.version))
                .push(&format!(" ORDER BY u.id{dir}"));
        }
    }
    sql.limit_offset(limit, skip, pg);
}

/// The ids of every member matching `terms`, in the list's order: from the
/// cache while the organisation's team version is the one they were
/// collected at, else from the database (and then cached).
async fn search(
    tx: &mut Tx,
    cache: &SearchCache,
    org: i64,
    terms: &[String],
    order: &[(MemberOrder, bool)],
) -> StoreResult<Arc<[i64]>> {
    // The version is read before the matches, so cached matches are never
    // older than the version they are filed under.
    let version = team_version(tx, org).await?;
    let key = SearchKey::new(org, terms, order);
    if let Some(ids) = cache.get(&key, version) {
        return Ok(ids);
    }
    // One request collects a search's matches; others asking for the same
    // search meanwhile wait for its answer instead of all collecting them
    // at once (32 at once on a cold cache made p99 0.4 s at 1,000,000).
    let _flight = cache.fly(&key).await;
    if let Some(ids) = cache.get(&key, version) {
        return Ok(ids);
    }
    let pg = tx.is_postgres();
    let order_by = order_clause(order, pg);
    let mut extra = String::new();
    for (o, _) in order {
        if *o != MemberOrder::Id && !extra.contains(o.column()) {
            extra.push_str(&format!(", u.{}", o.column()));
        }
    }
    let mut sql = Sql::new("WITH m AS MATERIALIZED (");
    matching(&mut sql, org, terms, pg, &extra);
    sql.push(&format!(") SELECT id FROM m{order_by}"));
    let rows: Vec<(i64,)> = query::fetch_all(tx, &sql).await?;
    let ids: Arc<[i64]> = rows.into_iter().map(|(id,)| id).collect();
    cache.put(key.clone(), version, ids.clone());
    Ok(ids)
}

/// The organisation's team version (`team_versions`: a new one, never
/// used before, on every change, set by triggers; 0 before the first).
async fn team_version(tx: &mut Tx, org: i64) -> StoreResult<i64> {
    let mut sql = Sql::default();
    push_team_version(&mut sql, org);
    query::fetch_int(tx, &sql).await
}

/// Appends the query of [`team_version`].
fn push_team_version(sql: &mut Sql, org: i64) {
    sql.push("SELECT COALESCE((SELECT version FROM team_versions WHERE organization_id = ")
        .bind(Arg::Int(org))
        .push("), 0)");
}

/// What the team lists keep in memory between requests, each part exact
/// for one version of a team.
#[derive(Debug, Default)]
pub struct TeamLists {
    /// Recent searches' ordered matches.
    pub searches: SearchCache,
    /// Where recently served deep pages begin.
    pub pages: PageMarks,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SearchKey {
    org: i64,
    terms: Vec<String>,
    order: Vec<(MemberOrder, bool)>,
}

impl SearchKey {
    fn new(org: i64, terms: &[String], order: &[(MemberOrder, bool)]) -> SearchKey {
        SearchKey {
            org,
            terms: terms.to_vec(),
            order: order.to_vec(),
        }
    }
}

/// Recent team searches' ordered matches, each valid for one version of its
/// organisation's team. DRF's pages carry an exact count, so every page of
/// a search needs all its matches: collecting them costs milliseconds at a
/// million members (ten thousand matches of a common surname), answering
/// from here microseconds. Any change to the team moves the version in the
/// same transaction (triggers), so a cached answer is never used after a
/// change committed before the request read the version, on any instance.
/// Bounded in ids held; the oldest entries go first.
#[derive(Debug, Default)]
pub struct SearchCache {
    inner: Mutex<CacheInner>,
    /// One lock per search being collected (see [`SearchCache::fly`]).
    flights: Mutex<HashMap<SearchKey, Arc<tokio::sync::Mutex<()>>>>,
}

/// The right to collect one search's matches, held until dropped.
struct Flight<'a> {
    cache: &'a SearchCache,
    key: &'a SearchKey,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        let mut flights = lock(&self.cache.flights);
        self.guard.take();
        // Nobody else holds or waits for this lock (clones are only made
        // under `flights`): forget it.
        if flights
            .get(self.key)
            .is_some_and(|gate| Arc::strong_count(gate) == 1)
        {
            flights.remove(self.key);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug, Default)]
struct CacheInner {
    entries: HashMap<SearchKey, (i64, Arc<[i64]>)>,
    /// Keys in the order they were first cached.
    age: VecDeque<SearchKey>,
    ids_held: usize,
}

impl SearchCache {
    /// At most this many ids in all (8 bytes each: 2 MiB).
    const MAX_IDS: usize = 256 * 1024;
    /// A search with more matches than this is not cached.
    const MAX_IDS_PER_SEARCH: usize = Self::MAX_IDS / 4;
    const MAX_ENTRIES: usize = 512;

    /// Waits until no other request is collecting this search.
    async fn fly<'a>(&'a self, key: &'a SearchKey) -> Flight<'a> {
        let gate = {
            let mut flights = lock(&self.flights);
            // Locks left by requests cancelled while waiting go here.
            if flights.len() > Self::MAX_ENTRIES {
                flights.retain(|_, gate| Arc::strong_count(gate) > 1);
            }
            flights.entry(key.clone()).or_default().clone()
        };
        Flight {
            cache: self,
            key,
            guard: Some(gate.lock_owned().await),
        }
    }

    /// The matches cached for `key` and the version they were collected at.
    fn latest(&self, key: &SearchKey) -> Option<(i64, Arc<[i64]>)> {
        lock(&self.inner).entries.get(key).cloned()
    }

    fn get(&self, key: &SearchKey, version: i64) -> Option<Arc<[i64]>> {
        let inner = lock(&self.inner);
        match inner.entries.get(key) {
            Some((v, ids)) if *v == version => Some(ids.clone()),
            _ => None,
        }
    }

    fn put(&self, key: SearchKey, version: i64, ids: Arc<[i64]>) {
        if ids.len() > Self::MAX_IDS_PER_SEARCH {
            return;
        }
        let mut inner = lock(&self.inner);
        let inner = &mut *inner;
        match inner.entries.get_mut(&key) {
            // A slower request that read an older version keeps out of the
            // way of one that has already cached a newer one.
            Some((v, _)) if *v > version => return,
            Some(entry) => {
                inner.ids_held = inner.ids_held - entry.1.len() + ids.len();
                *entry = (version, ids);
            }
            None => {
                inner.ids_held += ids.len();
                inner.age.push_back(key.clone());
                inner.entries.insert(key, (version, ids));
            }
        }
        while inner.ids_held > Self::MAX_IDS || inner.entries.len() > Self::MAX_ENTRIES {
            let Some(oldest) = inner.age.pop_front() else {
                break;
            };
            if let Some((_, ids)) = inner.entries.remove(&oldest) {
                inner.ids_held -= ids.len();
            }
        }
    }
}

/// An ordering a mark can start from: by one field and then the id, both
/// the same way, or by the id alone (a field after the id never decides
/// anything). Other orderings are always read by offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Keyset {
    /// `None`: by the id alone.
    field: Option<MemberOrder>,
    desc: bool,
}

impl Keyset {
    fn of(order: &[(MemberOrder, bool)]) -> Option<Keyset> {
        match order {
            [] => Some(Keyset {
                field: None,
                desc: false,
            }),
            [(MemberOrder::Id, desc), ..] => Some(Keyset {
                field: None,
                desc: *desc,
            }),
            [(field, desc)] | [(field, desc), (MemberOrder::Id, _)]
                if order.iter().all(|(_, d)| d == desc) =>
            {
                Some(Keyset {
                    field: Some(*field),
                    desc: *desc,
                })
            }
            _ => None,
        }
    }

    /// `row`'s place in the ordering.
    fn key(&self, row: &MemberRow) -> RowKey {
        let value = self.field.map(|field| match field {
            MemberOrder::Id => Arg::Int(row.id),
            MemberOrder::FirstName => Arg::Text(row.first_name.clone()),
            MemberOrder::LastName => Arg::Text(row.last_name.clone()),
            MemberOrder::Email => Arg::Text(row.email.clone()),
            MemberOrder::CreatedAt => Arg::Int(row.created_at),
            MemberOrder::UpdatedAt => Arg::Int(row.updated_at),
        });
        RowKey { value, id: row.id }
    }
}

/// A row's sort field value (none when ordered by id alone) and id.
#[derive(Debug, Clone)]
struct RowKey {
    value: Option<Arg>,
    id: i64,
}

/// The row at `position` of a whole-team list, at one team version.
#[derive(Debug, Clone)]
struct Mark {
    version: i64,
    position: i64,
    key: RowKey,
}

/// Marks on the whole-team lists: for an organisation and ordering, the
/// sort keys of rows at known positions, each valid for one version of the
/// team. Without them a page at offset N walks N index entries, so reading
/// a team of a million page by page walks it quadratically, and the page a
/// client keeps coming back to costs the whole walk every time. Each page
/// served leaves marks at its first and last rows; the next page (or the
/// same page again) walks from there. Any change to the team moves its
/// version (triggers, any instance), and a mark is used only by a statement
/// that finds the team still at the mark's version.
#[derive(Debug, Default)]
pub struct PageMarks {
    lists: Mutex<HashMap<ListId, ListMarks>>,
}

/// A list with marks: the organisation and the ordering.
type ListId = (i64, Vec<(MemberOrder, bool)>);

#[derive(Debug)]
struct ListMarks {
    version: i64,
    /// Sort keys by position, each with when it was last left or used.
    keys: BTreeMap<i64, (RowKey, u64)>,
    /// Counts marks left and used, to stamp them with.
    clock: u64,
}

impl PageMarks {
    /// Pages before this offset neither use nor leave marks: walking to
    /// them costs less than starting from a mark (two ranges merged and
    /// sorted), which measured slower up to page 50 of ten.
    const FROM_OFFSET: i64 = 1000;
    /// Lists (organisation and ordering) with marks; past it, all are
    /// forgotten and marks start again from the pages next served.
    const MAX_LISTS: usize = 256;
    /// Marks per list; past it, those left or used longest ago go (a
    /// client reading a list page by page needs only the last).
    const MAX_MARKS_PER_LIST: usize = 64;

    /// The mark nearest before (or at) `offset`, if any.
    fn at_or_before(&self, org: i64, order: &[(MemberOrder, bool)], offset: i64) -> Option<Mark> {
        let mut lists = lock(&self.lists);
        let list = lists.get_mut(&(org, order.to_vec()))?;
        list.clock += 1;
        let (position, (key, used)) = list.keys.range_mut(..=offset).next_back()?;
        *used = list.clock;
        Some(Mark {
            version: list.version,
            position: *position,
            key: key.clone(),
        })
    }

    /// Marks the first and last of `rows`, read at `version` from `offset`.
    fn note(
        &self,
        org: i64,
        order: &[(MemberOrder, bool)],
        keyset: Keyset,
        version: i64,
        offset: i64,
        rows: &[MemberRow],
    ) {
        let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
            return;
        };
        let mut lists = lock(&self.lists);
        let id = (org, order.to_vec());
        if !lists.contains_key(&id) && lists.len() >= Self::MAX_LISTS {
            lists.clear();
        }
        let list = lists.entry(id).or_insert_with(|| ListMarks {
            version,
            keys: BTreeMap::new(),
            clock: 0,
        });
        // A slower request that read an older version keeps out of the
        // way of one that has already marked a newer one.
        if list.version > version {
            return;
        }
        if list.version < version {
            list.version = version;
            list.keys.clear();
        }
        list.clock += 1;
        // A mark at the start saves nothing.
        if offset > 0 {
            list.keys.insert(offset, (keyset.key(first), list.clock));
        }
        let end = offset + rows.len() as i64 - 1;
        if end > 0 {
            list.keys.insert(end, (keyset.key(last), list.clock));
        }
        // The marks left or used longest ago go first (never the ones just
        // left: a page before every mark must keep its own).
        while list.keys.len() > Self::MAX_MARKS_PER_LIST {
            let Some(oldest) = list
                .keys
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(position, _)| *position)
            else {
                break;
            };
            list.keys.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`sort_page`] puts rows where SQLite's `ORDER BY` of the same
    /// ordering ([`order_clause`]) does: ties, case, accents and the id's
    /// direction included.
    #[test]
    fn a_page_is_sorted_as_its_order_by_sorts_it() {
        let names = [
            "Young", "young", "Émile", "Zoë", "adam", "Young", "Ada", "ada",
        ];
        let rows: Vec<MemberRow> = (0..40_i64)
            .map(|i| {
                let id = (i * 17) % 41 + 1; // ids not in insertion order
                let n = |k: i64| names[((i * k) % names.len() as i64) as usize].to_string();
                MemberRow {
                    id,
                    email: format!("{}{}@example.com", n(5), i % 3),
                    first_name: n(3),
                    last_name: n(7),
                    role: "member".into(),
                    organization_id: Some(1),
                    department_id: None,
                    added_by: None,
                    created_at: i % 4,
                    updated_at: 100 - i % 6,
                    total: None,
                    team_version: None,
                }
            })
            .collect();
        let db = rusqlite::Connection::open_in_memory().unwrap();
        db.execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, email TEXT, first_name TEXT, \
             last_name TEXT, created_at INTEGER, updated_at INTEGER)",
        )
        .unwrap();
        for r in &rows {
            db.execute(
                "INSERT INTO t VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                rusqlite::params![
                    r.id,
                    r.email,
                    r.first_name,
                    r.last_name,
                    r.created_at,
                    r.updated_at
                ],
            )
            .unwrap();
        }
        use MemberOrder::*;
        let fields = [Id, FirstName, LastName, Email, CreatedAt, UpdatedAt];
        let mut orders: Vec<Vec<(MemberOrder, bool)>> = vec![vec![]];
        for a in fields {
            for desc in [false, true] {
                orders.push(vec![(a, desc)]);
                for b in fields {
                    orders.push(vec![(a, desc), (b, !desc)]);
                    orders.push(vec![(a, !desc), (b, !desc)]);
                }
            }
        }
        for order in orders {
            let sql = format!("SELECT id FROM t{}", order_clause(&order, false));
            let expected: Vec<i64> = db
                .prepare(&sql)
                .unwrap()
                .query_map([], |row| row.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let mut sorted = rows.clone();
            sort_page(&mut sorted, &order);
            let got: Vec<i64> = sorted.iter().map(|r| r.id).collect();
            assert_eq!(got, expected, "{sql}");
        }
    }

    #[test]
    fn team_roles_in_the_sql_are_the_domains() {
        assert_eq!(TEAM_ROLE_NAMES, crate::domain::organisation::TEAM_ROLES);
        assert_eq!(users::roles_sql(&TEAM_ROLE_NAMES), TEAM_ROLES);
        let each: Vec<String> = TEAM_ROLE_NAMES
            .iter()
            .map(|role| format!("u.role = '{role}'"))
            .collect();
        assert_eq!(IS_TEAM_ROLE, format!("({})", each.join(" OR ")));
    }

    fn key(term: &str) -> SearchKey {
        SearchKey {
            org: 1,
            terms: vec![term.to_string()],
            order: vec![(MemberOrder::LastName, true)],
        }
    }

    fn ids(n: usize) -> Arc<[i64]> {
        (0..n as i64).collect()
    }

    #[test]
    fn an_entry_answers_only_for_its_version() {
        let cache = SearchCache::default();
        cache.put(key("ann"), 3, ids(2));
        assert_eq!(cache.get(&key("ann"), 3).as_deref(), Some(&[0, 1][..]));
        assert!(cache.get(&key("ann"), 4).is_none());
        assert!(cache.get(&key("bob"), 3).is_none());
        // A newer version replaces the entry; an older one does not.
        cache.put(key("ann"), 4, ids(3));
        cache.put(key("ann"), 2, ids(1));
        assert!(cache.get(&key("ann"), 3).is_none());
        assert_eq!(cache.get(&key("ann"), 4).map(|i| i.len()), Some(3));
    }

    #[tokio::test]
    async fn one_request_at_a_time_collects_a_search() {
        let cache = SearchCache::default();
        let (ann, bob) = (key("ann"), key("bob"));
        let first = cache.fly(&ann).await;
        // Another search is not held up.
        drop(cache.fly(&bob).await);
        let second = cache.fly(&ann);
        tokio::pin!(second);
        let waited =
            tokio::time::timeout(std::time::Duration::from_millis(50), second.as_mut()).await;
        assert!(waited.is_err(), "the same search must wait");
        drop(first);
        drop(second.await);
        assert!(lock(&cache.flights).is_empty());
    }

    fn member(id: i64, last_name: &str) -> MemberRow {
        MemberRow {
            id,
            email: format!("{id}@x.org"),
            first_name: String::new(),
            last_name: last_name.to_string(),
            role: "member".into(),
            organization_id: Some(1),
            department_id: None,
            added_by: None,
            created_at: 0,
            updated_at: 0,
            total: None,
            team_version: None,
        }
    }

    /// A key as text, to compare (`Arg` has no equality).
    fn shown(key: &RowKey) -> String {
        format!("{:?} {}", key.value, key.id)
    }

    #[test]
    fn marks_serve_orderings_by_one_field_and_the_id_or_by_the_id() {
        use MemberOrder::*;
        let of = |order: &[(MemberOrder, bool)]| Keyset::of(order).map(|k| (k.field, k.desc));
        assert_eq!(of(&[]), Some((None, false)));
        assert_eq!(of(&[(Id, true)]), Some((None, true)));
        // Nothing after the id decides anything.
        assert_eq!(of(&[(Id, true), (Email, false)]), Some((None, true)));
        assert_eq!(of(&[(LastName, true)]), Some((Some(LastName), true)));
        assert_eq!(
            of(&[(CreatedAt, false), (Id, false)]),
            Some((Some(CreatedAt), false))
        );
        assert_eq!(of(&[(LastName, false), (Id, true)]), None);
        assert_eq!(of(&[(LastName, false), (FirstName, false)]), None);
        let by_name = Keyset::of(&[(LastName, true)]).unwrap();
        assert_eq!(
            shown(&by_name.key(&member(7, "Moss"))),
            r#"Some(Text("Moss")) 7"#
        );
        let by_id = Keyset::of(&[]).unwrap();
        assert_eq!(shown(&by_id.key(&member(7, "Moss"))), "None 7");
    }

    #[test]
    fn marks_answer_for_the_nearest_position_at_or_before_and_the_newest_version() {
        let marks = PageMarks::default();
        let order = [(MemberOrder::LastName, true)];
        let keyset = Keyset::of(&order).unwrap();
        let page = |first: i64| [member(first, "A"), member(first + 1, "B")];
        // A first page marks its last row only.
        marks.note(1, &order, keyset, 5, 0, &page(10));
        marks.note(1, &order, keyset, 5, 40, &page(40));
        assert!(marks.at_or_before(1, &order, 0).is_none());
        let at = |offset| {
            marks
                .at_or_before(1, &order, offset)
                .map(|m| (m.version, m.position, shown(&m.key)))
        };
        let key = |last: &str, id| format!("Some(Text({last:?})) {id}");
        assert_eq!(at(1), Some((5, 1, key("B", 11))));
        assert_eq!(at(39), Some((5, 1, key("B", 11))));
        assert_eq!(at(40), Some((5, 40, key("A", 40))));
        assert_eq!(at(1000), Some((5, 41, key("B", 41))));
        // Another organisation or ordering has marks of its own.
        assert!(marks.at_or_before(2, &order, 40).is_none());
        assert!(
            marks
                .at_or_before(1, &[(MemberOrder::LastName, false)], 40)
                .is_none()
        );
        // An older version adds nothing; a newer one replaces every mark.
        marks.note(1, &order, keyset, 4, 20, &page(20));
        assert_eq!(at(20), Some((5, 1, key("B", 11))));
        marks.note(1, &order, keyset, 6, 20, &page(20));
        assert_eq!(at(1000), Some((6, 21, key("B", 21))));
        assert!(marks.at_or_before(1, &order, 19).is_none());
        // Bounded: the marks left or used longest ago go, as a list is read
        // to its end; the one in use all along stays.
        for offset in (100..1000).step_by(2) {
            marks.note(1, &order, keyset, 6, offset, &page(offset));
            assert_eq!(at(21), Some((6, 21, key("B", 21))));
        }
        let positions = || -> Vec<i64> {
            let lists = lock(&marks.lists);
            lists[&(1, order.to_vec())].keys.keys().copied().collect()
        };
        let kept = positions();
        assert_eq!(kept.len(), PageMarks::MAX_MARKS_PER_LIST);
        assert_eq!(kept[0], 21);
        assert_eq!(kept[1..], (937..1000).collect::<Vec<_>>()[..]);
        // A page before every mark but one keeps its own marks.
        marks.note(1, &order, keyset, 6, 50, &page(50));
        assert_eq!(at(50), Some((6, 50, key("A", 50))));
        assert_eq!(at(51), Some((6, 51, key("B", 51))));
        assert_eq!(positions().len(), PageMarks::MAX_MARKS_PER_LIST);
    }

    #[test]
    fn the_oldest_entries_go_when_the_ids_exceed_the_bound() {
        let cache = SearchCache::default();
        let big = SearchCache::MAX_IDS_PER_SEARCH;
        for (i, term) in ["a1", "a2", "a3", "a4", "a5"].iter().enumerate() {
            cache.put(key(term), i as i64, ids(big));
        }
        assert!(cache.get(&key("a1"), 0).is_none());
        for (i, term) in ["a2", "a3", "a4", "a5"].iter().enumerate() {
            assert!(cache.get(&key(term), i as i64 + 1).is_some(), "{term}");
        }
        assert_eq!(lock(&cache.inner).ids_held, SearchCache::MAX_IDS);
        // Too many matches to hold: answered, never cached.
        cache.put(key("huge"), 0, ids(big + 1));
        assert!(cache.get(&key("huge"), 0).is_none());
    }
}
