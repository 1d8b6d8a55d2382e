//! Cached methods: how the receiver is keyed (a field of `self` in the key,
//! or `ignore = [self]`) and how a method's use case is named
//! (`module::Type::method`).

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

// ---- a method's use case is named after its type ----------------------------------

mod naming {
    use std::sync::{Arc, LazyLock};

    use cachewright::backends::{Backend, MemoryBackend};
    use cachewright::{cached, Cache, LayerConfig};

    pub static REMOTE: LazyLock<Arc<MemoryBackend>> = LazyLock::new(Default::default);
    /// Both types' methods store into one cache with one remote layer: with
    /// one name, they would share URNs there.
    pub static CACHE: LazyLock<Cache> = LazyLock::new(|| {
        Cache::builder()
            .name("naming")
            .layer(LayerConfig::shared(REMOTE.clone() as Arc<dyn Backend>))
            .build()
    });

    #[derive(Clone)]
    pub struct Users;

    impl Users {
        #[cached(key = "item:<id>", ttl = 60, ignore = [self], cache = CACHE)]
        pub async fn get(&self, id: u32) -> String {
            format!("user {id}")
        }
    }

    #[derive(Clone)]
    pub struct Orders<D> {
        pub db: D,
    }

    impl<D: Clone + Send + Sync + 'static> Orders<D> {
        #[cached(key = "item:<id>", ttl = 60, ignore = [self], cache = CACHE)]
        pub async fn get(&self, id: u32) -> String {
            let _same_for_every_db = &self.db;
            format!("order {id}")
        }
    }
}

#[tokio::test]
async fn methods_of_one_name_in_two_impls_are_two_use_cases() {
    use cachewright::backends::Backend;
    use naming::{Orders, Users, CACHE, REMOTE};

    assert_eq!(naming::Users.get(1).await, "user 1");
    // Same key template and argument: only the use case tells them apart in
    // the shared remote layer.
    assert_eq!(Orders { db: 0u8 }.get(1).await, "order 1");
    assert_eq!(Users.get(1).await, "user 1");
    assert_eq!(Orders { db: 0u8 }.get(1).await, "order 1");

    let users = "methods::naming::Users::get";
    let orders = "methods::naming::Orders::get";
    assert_eq!(CACHE.stats_for(users).map(|s| s.misses), Some(1));
    assert_eq!(CACHE.stats_for(orders).map(|s| s.misses), Some(1));
    for name in [users, orders] {
        let urn = CACHE.key("item", &1).use_case(name);
        assert!(
            REMOTE.get(urn.as_str()).await.unwrap().is_some(),
            "{} is in the remote layer",
            urn.as_str()
        );
    }
}
