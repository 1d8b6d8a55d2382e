#[derive(Clone, Debug, PartialEq)]
struct User {
    id: u64,
}

#[cachewright::cached(key = "user:<id>", ttl = 60, negative_ttl = "30s")]
fn find_user(id: u64) -> Result<Option<User>, String> {
    match id {
        0 => Err("bad id".into()),
        1 => Ok(Some(User { id })),
        _ => Ok(None),
    }
}

#[cachewright::cached(key = "name:<name>", ttl = 60, negative_ttl = 5)]
async fn find_by_name(name: &str) -> std::io::Result<Option<u64>> {
    Ok((name == "a").then_some(1))
}

#[tokio::main]
async fn main() {
    assert_eq!(find_user(1), Ok(Some(User { id: 1 })));
    assert_eq!(find_user(2), Ok(None));
    assert_eq!(find_user(2), Ok(None));
    assert!(find_user(0).is_err());
    assert_eq!(find_by_name("a").await.unwrap(), Some(1));
}
