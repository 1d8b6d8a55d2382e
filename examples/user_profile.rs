//! A user-profile service's daily flow (the svc-infra and GCache READMEs'
//! example): read a profile (miss, then hit), a missing user cached as an
//! absence, an update that invalidates and re-warms, a delete. Every step
//! prints what the cache did and who ran the query. No services needed:
//! `cargo run --example user_profile`.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use cachewright::{cache_write, cached};

#[derive(Clone, Debug, PartialEq)]
struct Profile {
    id: u64,
    name: String,
    email: String,
}

/// The "database".
static USERS: LazyLock<Mutex<HashMap<u64, Profile>>> = LazyLock::new(|| {
    let p = |id: u64, name: &str| Profile {
        id,
        name: name.into(),
        email: format!("{}@example.com", name.to_lowercase()),
    };
    Mutex::new(HashMap::from([(1, p(1, "Ada")), (2, p(2, "Grace"))]))
});

/// A profile, or `None` for a missing user: cached for 5 minutes, a missing
/// user for 30 s (so a stream of requests for a missing id does not reach
/// the database).
#[cached(
    key = "user:<id>:profile",
    ttl = 300,
    negative_ttl = 30,
    name = "GetProfile"
)]
fn get_profile(id: u64) -> Result<Option<Profile>, String> {
    println!("      query: SELECT * FROM users WHERE id = {id}");
    Ok(USERS.lock().unwrap().get(&id).cloned())
}

/// Renames a user; on `Ok`, every cached entry about user `id` stops being
/// served, and the profile is loaded again at once.
#[cache_write(invalidate = ["user:<id>"], recache = [get_profile(id)])]
fn rename(id: u64, name: String) -> Result<(), String> {
    println!("      query: UPDATE users SET name = '{name}' WHERE id = {id}");
    let mut users = USERS.lock().unwrap();
    let user = users.get_mut(&id).ok_or("no such user")?;
    user.name = name;
    Ok(())
}

/// Deletes a user; its cached profile is dropped.
#[cache_write(invalidate = ["user:<id>"])]
fn delete(id: u64) -> Result<(), String> {
    println!("      query: DELETE FROM users WHERE id = {id}");
    USERS.lock().unwrap().remove(&id);
    Ok(())
}

fn show(step: &str, id: u64) {
    let before = cachewright::stats_for("GetProfile").unwrap_or_default();
    let got = get_profile(id).expect("the database answers");
    let after = cachewright::stats_for("GetProfile").unwrap_or_default();
    let how = if after.hits > before.hits {
        if after.negative_hits > before.negative_hits {
            "hit (a cached absence)"
        } else {
            "hit"
        }
    } else {
        "miss: loaded"
    };
    match got {
        Some(p) => println!("{step:<38} user {id}: {} <{}>  [{how}]", p.name, p.email),
        None => println!("{step:<38} user {id}: not found  [{how}]"),
    }
}

fn main() {
    // RUST_LOG=cachewright=debug shows every hit, miss, load and invalidation.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    show("1. first read", 1);
    show("2. second read", 1);
    show("3. a user that does not exist", 99);
    show("4. again: no query this time", 99);
    println!("5. rename user 1 to Ada Lovelace");
    rename(1, "Ada Lovelace".into()).expect("renamed");
    show("6. read after the rename (re-warmed)", 1);
    println!("7. delete user 2");
    show("   (read before the delete)", 2);
    delete(2).expect("deleted");
    show("8. read after the delete", 2);
    show("9. and again", 2);
    let s = cachewright::stats_for("GetProfile").expect("used");
    println!(
        "\nGetProfile: {} hits ({} of absences), {} misses, {} loads, hit rate {:.0} %",
        s.hits,
        s.negative_hits,
        s.misses,
        s.loads,
        s.hit_rate() * 100.0
    );
}
