//! `roster seed-demo`: a realistic demo organisation, so a newcomer sees
//! data at once, and with `--members N` a large one for benchmarks.
//!
//! Every seeded user shares one password hash (computed once): hashing a
//! million passwords would take hours and prove nothing.

use crate::app::AppState;
use crate::domain::{Role, email_key, now_micros};
use crate::store::departments;
use crate::store::users::{self, NewUser};

/// 100 common first and last names (as the Django peer's seed uses), so a
/// surname such as `garcia` matches about 1% of members.
const FIRST_NAMES: &str = "James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara \
    Richard Susan Joseph Jessica Thomas Sarah Charles Karen Christopher Lisa Daniel Nancy Matthew Betty Anthony \
    Margaret Mark Sandra Donald Ashley Steven Kimberly Paul Emily Andrew Donna Joshua Michelle Kenneth Carol Kevin \
    Amanda Brian Dorothy George Melissa Timothy Deborah Ronald Stephanie Edward Rebecca Jason Sharon Jeffrey Laura \
    Ryan Cynthia Jacob Kathleen Gary Amy Nicholas Angela Eric Shirley Jonathan Anna Stephen Brenda Larry Pamela \
    Justin Emma Scott Nicole Brandon Helen Benjamin Samantha Samuel Katherine Gregory Christine Alexander Debra \
    Frank Rachel Patrick Carolyn Raymond Janet Jack Catherine Dennis Maria Jerry Heather";
const LAST_NAMES: &str = "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez \
    Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez Clark \
    Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores Green Adams Nelson Baker \
    Hall Rivera Campbell Mitchell Carter Roberts Gomez Phillips Evans Turner Diaz Parker Cruz Edwards Collins Reyes \
    Stewart Morris Morales Murphy Cook Rogers Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard Ramos \
    Kim Cox Ward Richardson Watson Brooks Chavez Wood James Bennett Gray Mendoza Ruiz Hughes Price Alvarez Castillo \
    Sanders Patel Myers Long Ross Foster";

pub struct SeedOptions {
    pub company: String,
    pub domain: String,
    pub password: String,
    pub departments: usize,
    pub coaches: usize,
    pub members: usize,
}

/// What was created, for the command's report.
pub struct Seeded {
    pub organization_id: i64,
    pub admin_email: String,
    pub users: usize,
    pub departments: usize,
}

/// One generated person.
struct Person {
    email: String,
    key: String,
    first: &'static str,
    last: &'static str,
    role: &'static str,
    dept: Option<i64>,
}

/// A tiny deterministic generator (the same data on every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

pub async fn seed_demo(state: &AppState, opts: &SeedOptions) -> anyhow::Result<Seeded> {
    let hash = state.hasher.hash(&opts.password).await?;
    let firsts: Vec<&'static str> = FIRST_NAMES.split_whitespace().collect();
    let lasts: Vec<&'static str> = LAST_NAMES.split_whitespace().collect();
    let now = now_micros();
    let admin_email = format!("admin@{}", opts.domain);

    let mut tx = state.db.begin_write().await?;
    if users::email_key_taken(&mut tx, &email_key(&admin_email)).await? {
        anyhow::bail!("{admin_email} already exists: this database has been seeded");
    }
    let org = crate::domain::accounts::create_organization(&mut tx, &opts.company, now).await?;
    let admin = NewUser {
        email: &admin_email,
        email_key: &email_key(&admin_email),
        password: &hash,
        first_name: "Ada",
        last_name: "Admin",
        role: Role::Admin.as_str(),
        organization_id: Some(org),
        added_by: None,
        department_id: None,
        is_active: true,
        now,
    };
    users::insert_many(&mut tx, std::slice::from_ref(&admin)).await?;
    let admin_id = users::find_by_email_key(&mut tx, &email_key(&admin_email))
        .await?
        .map(|u| u.id)
        .unwrap_or_default();
    let mut dept_ids = Vec::new();
    for d in 1..=opts.departments {
        let name = format!("Department {d}");
        let row =
            departments::insert(&mut tx, org, &name, &name.to_lowercase(), admin_id, now).await?;
        dept_ids.push(row.id);
    }
    tx.commit().await?;

    let mut rng = Lcg(4);
    let total = opts.coaches + opts.members;
    // 500 rows a statement, 20 statements a transaction.
    const BATCH: usize = 500;
    let mut done = 0;
    let mut tx = state.db.begin_write().await?;
    while done < total {
        let n = BATCH.min(total - done);
        let people: Vec<Person> = (done..done + n)
            .map(|i| {
                let first = firsts[rng.next(firsts.len())];
                let last = lasts[rng.next(lasts.len())];
                let role = if i < opts.coaches {
                    Role::Coach
                } else {
                    Role::Member
                };
                let email = format!(
                    "{}.{}{}@{}",
                    first.to_lowercase(),
                    last.to_lowercase(),
                    i + 1,
                    opts.domain
                );
                let dept = (!dept_ids.is_empty()).then(|| dept_ids[i % dept_ids.len()]);
                Person {
                    key: email_key(&email),
                    email,
                    first,
                    last,
                    role: role.as_str(),
                    dept,
                }
            })
            .collect();
        let rows: Vec<NewUser> = people
            .iter()
            .map(|p| NewUser {
                email: &p.email,
                email_key: &p.key,
                password: &hash,
                first_name: p.first,
                last_name: p.last,
                role: p.role,
                organization_id: Some(org),
                added_by: Some(admin_id),
                department_id: p.dept,
                is_active: true,
                now: now + (done as i64),
            })
            .collect();
        users::insert_many(&mut tx, &rows).await?;
        done += n;
        if done % (BATCH * 20) == 0 {
            tx.commit().await?;
            tx = state.db.begin_write().await?;
        }
        if done % 100_000 < BATCH && total >= 100_000 {
            tracing::info!(done, total, "seeding users");
        }
    }
    tx.commit().await?;
    // Coaches get their vetting record.
    if opts.coaches > 0 {
        let mut tx = state.db.begin_write().await?;
        let sql = crate::store::query::Sql {
            text:
                "INSERT INTO coach_profiles (user_id, alias, vetting_status, approved, created_at, \
                   updated_at, vetting_updated_at) \
                   SELECT id, 'coach-' || CAST(id AS TEXT), 'PD', FALSE, created_at, created_at, \
                   created_at FROM users \
                   WHERE organization_id = $1 AND role = 'coach'"
                    .into(),
            args: vec![crate::store::query::Arg::Int(org)],
        };
        crate::store::query::execute(&mut tx, &sql).await?;
        tx.commit().await?;
    }
    // Members get their worker profile.
    if opts.members > 0 {
        let mut tx = state.db.begin_write().await?;
        let sql = crate::store::query::Sql {
            text: "INSERT INTO worker_profiles (user_id, organization_id, first_name, last_name, \
                   created_at, updated_at) \
                   SELECT id, organization_id, first_name, last_name, created_at, created_at \
                   FROM users WHERE organization_id = $1 AND role = 'member'"
                .into(),
            args: vec![crate::store::query::Arg::Int(org)],
        };
        crate::store::query::execute(&mut tx, &sql).await?;
        tx.commit().await?;
    }
    if let crate::store::Db::Sqlite(pool, ..) = &state.db {
        // Statistics for the planner, as VACUUM ANALYZE gives PostgreSQL.
        sqlx::query("ANALYZE").execute(pool).await?;
        // Move the bulk load out of the write-ahead log into the database
        // file, so the server does not start on a WAL of tens of MiB.
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(pool)
            .await?;
    }
    if let crate::store::Db::Postgres(pg) = &state.db {
        // Fresh statistics, so the planner knows the new table sizes.
        // VACUUM also sets the visibility map, which index-only scans need.
        let mut conn = pg.acquire().await?;
        sqlx::query("VACUUM ANALYZE users")
            .execute(&mut *conn)
            .await?;
        sqlx::query("VACUUM ANALYZE user_counts")
            .execute(&mut *conn)
            .await?;
    }
    Ok(Seeded {
        organization_id: org,
        admin_email,
        users: total + 1,
        departments: dept_ids.len(),
    })
}
