//! Cached methods: how the receiver is keyed (a field of `self` in the key,
//! or `ignore = [self]`).

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, LazyLock};

use cachewright::{cached, Cache};

static CACHE: LazyLock<Cache> = LazyLock::new(|| Cache::builder().name("methods").build());

// ---- the receiver in the key ---------------------------------------------------

#[derive(Clone)]
struct Prices {
    tenant: String,
    calls: Arc<AtomicUsize>,
}

impl Prices {
    #[cached(key = "price:<self.tenant>:<sku>", ttl = 60, cache = CACHE)]
    fn price(&self, sku: u32) -> String {
        self.calls.fetch_add(1, SeqCst);
        format!("{}:{sku}", self.tenant)
    }

    #[cached(key = "aprice:<self.tenant>:<sku>", ttl = 60, cache = CACHE)]
    async fn price_async(&self, sku: u32) -> String {
        self.calls.fetch_add(1, SeqCst);
        format!("{}:{sku}", self.tenant)
    }

    #[cached(key = "currency:<sku>", ttl = 60, ignore = [self], cache = CACHE)]
    fn currency(&self, sku: u32) -> String {
        self.calls.fetch_add(1, SeqCst);
        format!("{}:EUR:{sku}", self.tenant)
    }
}

fn tenants() -> (Prices, Prices, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let a = Prices {
        tenant: "a".into(),
        calls: calls.clone(),
    };
    let b = Prices {
        tenant: "b".into(),
        calls: calls.clone(),
    };
    (a, b, calls)
}

#[tokio::test]
async fn two_receivers_keyed_by_a_field_get_their_own_values() {
    let (a, b, calls) = tenants();
    assert_eq!(a.price(7), "a:7");
    assert_eq!(b.price(7), "b:7", "same argument, another tenant");
    assert_eq!(a.price(7), "a:7");
    assert_eq!(b.price(7), "b:7");
    assert_eq!(a.price_async(7).await, "a:7");
    assert_eq!(
        b.price_async(7).await,
        "b:7",
        "same argument, another tenant"
    );
    assert_eq!(b.price_async(7).await, "b:7");
    assert_eq!(calls.load(SeqCst), 4, "one load per tenant and function");
}

#[test]
fn an_ignored_receiver_shares_entries() {
    let (a, b, calls) = tenants();
    assert_eq!(a.currency(7), "a:EUR:7");
    assert_eq!(
        b.currency(7),
        "a:EUR:7",
        "`ignore = [self]`: the first receiver's value serves all"
    );
    assert_eq!(calls.load(SeqCst), 1);
}
