use std::sync::atomic::{AtomicU32, Ordering};

static CALLS: AtomicU32 = AtomicU32::new(0);

#[derive(Clone, Debug, PartialEq)]
struct User {
    id: u64,
    name: String,
}

#[cachet::cached(key = "user:<id>", ttl = 300, swr = 30, tags = ["org:<org_id>"])]
fn get_user(id: u64, org_id: u64) -> Result<User, String> {
    CALLS.fetch_add(1, Ordering::SeqCst);
    if id == 0 {
        return Err("no".into());
    }
    Ok(User {
        id,
        name: format!("u{id}@{org_id}"),
    })
}

#[cachet::cached(key = "name:<name>", ttl = "5m", negative_ttl = 10)]
async fn by_name(name: &str) -> Option<u64> {
    CALLS.fetch_add(1, Ordering::SeqCst);
    (name != "none").then_some(7)
}

#[derive(Clone)]
struct Svc {
    tenant: String,
}

impl Svc {
    #[cachet::cached(key = "t:<self.tenant>:<x>", ttl = 60, swr = 5)]
    async fn thing(&self, x: u32) -> Result<u32, std::io::Error> {
        Ok(x + self.tenant.len() as u32)
    }
}

#[test]
fn smoke() {
    assert_eq!(get_user(1, 2).unwrap().name, "u1@2");
    assert_eq!(get_user(1, 2).unwrap().name, "u1@2");
    assert_eq!(CALLS.load(Ordering::SeqCst), 1);
    assert!(get_user(0, 2).is_err());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        assert_eq!(by_name("a").await, Some(7));
        assert_eq!(by_name("a").await, Some(7));
        assert_eq!(by_name("none").await, None);
        assert_eq!(by_name("none").await, None);
        let s = Svc {
            tenant: "ab".into(),
        };
        assert_eq!(s.thing(1).await.unwrap(), 3);
    });
    assert_eq!(CALLS.load(Ordering::SeqCst), 4);
    println!("{:#?}", cachet::stats());
}
