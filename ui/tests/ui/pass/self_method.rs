use std::sync::Arc;

#[derive(Clone)]
struct Repo {
    tenant: String,
    rows: Arc<Vec<u64>>,
}

impl Repo {
    #[cachewright::cached(key = "row:<self.tenant>:<i>", ttl = 60, swr = 5)]
    fn row(&self, i: usize) -> Option<u64> {
        self.rows.get(i).copied()
    }

    #[cachewright::cached(key = "arow:<self.tenant>:<i>", ttl = 60, swr = 5)]
    async fn row_async(&self, i: usize) -> Option<u64> {
        self.rows.get(i).copied()
    }
}

#[tokio::main]
async fn main() {
    let r = Repo {
        tenant: "t1".into(),
        rows: Arc::new(vec![10, 20]),
    };
    assert_eq!(r.row(1), Some(20));
    assert_eq!(r.row(1), Some(20));
    assert_eq!(r.row(5), None);
    assert_eq!(r.row_async(0).await, Some(10));
}
