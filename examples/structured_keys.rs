//! Structured keys, as GCache users write them: the key type and id come
//! from inside an argument, complex arguments are adapted to short key
//! forms, arguments that do not change the result are ignored, and one
//! invalidation by entity drops every cached result about that user,
//! whatever the use case and arguments. No services needed:
//! `cargo run --example structured_keys`.

use std::sync::atomic::{AtomicU32, Ordering};

use cachewright::cached;

#[derive(Clone, Debug)]
struct User {
    system_user_id: u64,
    #[allow(dead_code)]
    display_name: String,
}

#[derive(Clone, Copy, Debug)]
enum ProjectType {
    Research,
    Production,
}

#[derive(Clone, Debug)]
struct Pagination {
    starting_token: String,
    limit: u32,
}

/// A database session: it does not change the result, so it is not part of
/// the key.
struct Session;

static QUERIES: AtomicU32 = AtomicU32::new(0);

/// GCache's `get_latest_runs`: `id_arg=("user", lambda u: u.system_user_id)`,
/// `arg_adapters` for the enum and the pagination, `ignore_args=["db"]`.
#[cached(
    key = "user_id:<user>",
    ttl = 300,
    adapt(
        user = user.system_user_id,
        project_type = format!("{project_type:?}"),
        pagination = format!("{}-{}", pagination.starting_token, pagination.limit)
    ),
    ignore = [db],
    name = "GetUserLatestRuns"
)]
fn latest_runs(
    db: &Session,
    user: &User,
    project_type: ProjectType,
    pagination: &Pagination,
) -> Vec<String> {
    let _ = db;
    QUERIES.fetch_add(1, Ordering::SeqCst);
    println!(
        "      query: runs of user {} ({project_type:?}, page {})",
        user.system_user_id, pagination.starting_token
    );
    vec![format!("run-{}-{project_type:?}", user.system_user_id)]
}

/// Another use case about the same user (key type `user_id`, id the user's).
#[cached(key = "user_id:<id>", ttl = 300, name = "GetUserQuota")]
fn quota(id: u64) -> u32 {
    QUERIES.fetch_add(1, Ordering::SeqCst);
    println!("      query: quota of user {id}");
    100
}

fn main() {
    // RUST_LOG=cachewright=debug shows every hit, miss, load and invalidation.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let db = Session;
    let ada = User {
        system_user_id: 7,
        display_name: "Ada".into(),
    };
    let first = Pagination {
        starting_token: "t0".into(),
        limit: 50,
    };
    let q = || QUERIES.load(Ordering::SeqCst);

    latest_runs(&db, &ada, ProjectType::Research, &first);
    println!("1. research runs, page t0: loaded ({} queries so far)", q());
    latest_runs(&Session, &ada, ProjectType::Research, &first);
    println!(
        "2. same call with another db session: hit, the session is ignored ({} queries)",
        q()
    );
    latest_runs(&db, &ada, ProjectType::Production, &first);
    println!("3. production runs: another key, loaded ({} queries)", q());
    quota(7);
    println!(
        "4. user 7's quota, another use case: loaded ({} queries)",
        q()
    );

    // The keys, as the cache renders them (a URN per call).
    let cache = cachewright::default_cache();
    println!(
        "   keys look like {}",
        cache
            .key("user_id", &7)
            .arg("project_type", &"Research")
            .arg("pagination", &"t0-50")
            .use_case("GetUserLatestRuns")
    );

    // User 7 changed: one invalidation by entity covers every use case.
    cache.invalidate_entity("user_id", &7);
    println!("5. invalidate_entity(\"user_id\", 7)");
    latest_runs(&db, &ada, ProjectType::Research, &first);
    latest_runs(&db, &ada, ProjectType::Production, &first);
    quota(7);
    println!("6. all three reloaded ({} queries)", q());
    latest_runs(&db, &ada, ProjectType::Research, &first);
    quota(7);
    println!("7. and cached again ({} queries)", q());
}
