//! Team members: the users of an organisation with role admin, coach or
//! member. Every function takes the organisation id and filters by it.

use std::collections::{HashMap, VecDeque};
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
    total
});

const COLUMNS: &str = "u.id, u.email, u.first_name, u.last_name, u.role, u.organization_id, \
     u.department_id, u.added_by, u.created_at, u.updated_at";
/// The domain's team roles as [`users::roles_sql`] writes them (a test
/// checks they agree), kept as a constant for the hot list query. Written
/// into the SQL, never bound: the team-only indexes (migration 0009) carry
/// this very condition, and SQLite uses a partial index only for a query
/// that repeats it literally.
const TEAM_ROLES: &str = "('admin', 'coach', 'member')";

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
        match (self, pg) {
            (MemberOrder::FirstName | MemberOrder::LastName | MemberOrder::Email, true) => {
                format!("{} COLLATE \"C\"", self.column())
            }
            _ => self.column().to_string(),
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
    users::push_count_in_roles(&mut sql, org, TEAM_ROLES, tx.is_postgres());
    query::fetch_int(tx, &sql).await
}

/// One page of the organisation's team. The page's ids are chosen first,
/// from an index (or, with search terms, from the search's ordered
/// matches), and only those rows are read: skipped rows are never fetched,
/// and neither planner can fall into walking a sort index while testing
/// every row against the search.
pub async fn list(
    tx: &mut Tx,
    cache: &SearchCache,
    org: i64,
    terms: &[String],
    order: &[(MemberOrder, bool)],
    limit: i64,
    offset: i64,
) -> StoreResult<Vec<MemberRow>> {
    let pg = tx.is_postgres();
    let order_by = order_clause(order, pg);
    let mut sql = Sql::default();
    if terms.is_empty() {
        sql.push(&format!("SELECT {COLUMNS}, ("));
        users::push_count_in_roles(&mut sql, org, TEAM_ROLES, pg);
        sql.push(") AS total FROM users u WHERE u.id IN (");
        matching(&mut sql, org, terms, pg, "");
        sql.push(&order_by);
        sql.push(" LIMIT ")
            .bind(Arg::Int(limit))
            .push(" OFFSET ")
            .bind(Arg::Int(offset))
            .push(")");
    } else {
        let ids = search(tx, cache, org, terms, order).await?;
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(ids.len());
        let end = start
            .saturating_add(usize::try_from(limit).unwrap_or(0))
            .min(ids.len());
        if start == end {
            return Ok(Vec::new());
        }
        // The organisation and roles are checked again: a row that changed
        // since the matches were collected is left out, never shown.
        sql.push(&format!("SELECT {COLUMNS}, "))
            .bind(Arg::Int(ids.len() as i64))
            .push(" AS total FROM users u WHERE u.organization_id = ")
            .bind(Arg::Int(org))
            .push(&format!(" AND u.role IN {TEAM_ROLES} AND u.id IN "))
            .bind_list(ids[start..end].iter().map(|&id| Arg::Int(id)));
    }
    sql.push(&order_by);
    query::fetch_all(tx, &sql).await
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
    let key = SearchKey {
        org,
        terms: terms.to_vec(),
        order: order.to_vec(),
    };
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
    let mut sql =
        Sql::new("SELECT COALESCE((SELECT version FROM team_versions WHERE organization_id = ");
    sql.bind(Arg::Int(org)).push("), 0)");
    query::fetch_int(tx, &sql).await
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SearchKey {
    org: i64,
    terms: Vec<String>,
    order: Vec<(MemberOrder, bool)>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn team_roles_in_the_sql_are_the_domains() {
        assert_eq!(
            users::roles_sql(&crate::domain::organisation::TEAM_ROLES),
            TEAM_ROLES
        );
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
