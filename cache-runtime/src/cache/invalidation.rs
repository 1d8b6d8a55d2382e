//! Invalidation: `delete`, tags, entities, `clear`, `flush_all`; watermarks
//! raised here, in the first remote layer and, through the bus, everywhere.

use super::*;

impl Cache {
    pub(super) fn delete_local(&self, key: &Key) -> bool {
        let now = self.inner.clock.now_ms();
        self.inner
            .store
            .remove(self.direct_hash(key), |k| k == key.as_str())
            .is_some_and(|h| !h.is_expired(now) && h.valid(&self.inner.marks))
    }

    pub(super) async fn delete_remote(&self, key: &Key) -> bool {
        let mut any = false;
        for layer in &self.inner.layers {
            any |= layer.delete(key.as_str()).await.unwrap_or(false);
        }
        any
    }

    /// Removes the value under `key` (a URN, as [`key`](Self::key) or
    /// `#[cached]` build it) from every layer and every process: the remote
    /// copies are deleted, and every in-process copy stored before this call
    /// (the direct API's, and that of a `#[cached]` call under that URN, here
    /// and, through the bus, in the other processes) is never served again.
    /// Entries are stamped with the start of their load, so a load that read
    /// the source before the delete and stores after it is not served
    /// either. Returns whether a layer held a live value.
    ///
    /// The mark a delete leaves is of the kind a write leaves: the bounded
    /// mark map forgets these first, at the price of dropping older
    /// in-process entries, never by invalidating entries in general.
    ///
    /// # Blocking
    ///
    /// Waits for the remote layers at most their timeouts and one second.
    /// A value stored after the delete returns counts as newer than it, in
    /// the same clock tick too (see [`Clock::stamp`](crate::Clock::stamp)).
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::Cache;
    /// use std::time::Duration;
    ///
    /// let cache = Cache::builder().build();
    /// let key = cache.key("session", &"abc");
    /// cache.set(&key, 7u32, Some(Duration::from_secs(60)));
    /// assert!(cache.delete(&key));
    /// assert!(!cache.delete(&key), "already gone");
    /// assert_eq!(cache.get::<u32>(&key), None);
    /// ```
    pub fn delete(&self, key: &Key) -> bool {
        let at = self.inner.clock.stamp();
        // Whether a live value was here, judged before the watermark rules
        // it out.
        let local = self.delete_local(key) | self.use_case_entry(key).is_some();
        self.supersede_local(key.as_str(), at);
        let remote = if self.inner.layers.is_empty() && self.inner.bus.is_none() {
            false
        } else {
            let c = self.clone();
            let key2 = key.clone();
            let budget = self.invalidation_budget();
            cachewright_backends::io::block_on(
                async move { c.delete_everywhere(&key2, at).await },
                budget,
            )
            .unwrap_or(false)
        };
        local || remote
    }

    /// The async twin of [`delete`](Self::delete).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let cache = cachewright::Cache::builder().build();
    /// let key = cache.key("session", &"abc");
    /// cache.set_async(&key, 7u32, None).await;
    /// assert!(cache.delete_async(&key).await);
    /// assert_eq!(cache.get_async::<u32>(&key).await, None);
    /// # }
    /// ```
    pub async fn delete_async(&self, key: &Key) -> bool {
        let at = self.inner.clock.stamp();
        let local = self.delete_local(key) | self.use_case_entry(key).is_some();
        self.supersede_local(key.as_str(), at);
        let remote = self.delete_everywhere(key, at).await;
        local || remote
    }

    /// In-process copies of `urn` stored before `at` are not served again.
    fn supersede_local(&self, urn: &str, at: Stamp) {
        let now = self.inner.clock.stamp();
        self.inner.marks.raise_written(tag_hash(urn), at, now);
        self.forget_writes(Some(urn));
        tracing::debug!(cache = %self.inner.name, at, "deleted");
    }

    /// Removes `key` from the remote layers and tells the other processes,
    /// which drop their in-process copies stored before `at`.
    pub(super) async fn delete_everywhere(&self, key: &Key, at: u64) -> bool {
        let removed = self.delete_remote(key).await;
        self.publish(BusKind::Written, vec![key.as_str().to_owned()], at)
            .await;
        removed
    }

    /// Everything this process loaded before `at` is never served or
    /// stored again, and what its in-process layers hold goes.
    pub(super) fn clear_local_at(&self, at: Stamp) {
        self.inner.marks.clear(at);
        self.forget_writes(None);
        self.clear_local();
        tracing::debug!(cache = %self.inner.name, at, "cleared");
    }

    /// Deletes `prefix` from every remote layer, then tells the other
    /// processes of the clear at `at`.
    async fn clear_remote(&self, prefix: &str, at: Stamp) {
        self.delete_prefix_everywhere(prefix).await;
        self.publish(BusKind::Clear, Vec::new(), at).await;
    }

    /// The remote part of a sync clear of `prefix` at `at` (this process
    /// already cleared), bounded by fifty times the layers' timeouts and one
    /// second.
    fn clear_remote_blocking(&self, prefix: String, at: Stamp) {
        if self.inner.layers.is_empty() && self.inner.bus.is_none() {
            return;
        }
        // The prefix deletions, and the invalidation's confirmation.
        let budget = self
            .remote_budget()
            .saturating_mul(50)
            .saturating_add(self.invalidation_budget());
        let c = self.clone();
        let _ = cachewright_backends::io::block_on(
            async move { c.clear_remote(&prefix, at).await },
            budget,
        );
    }

    pub(super) async fn delete_prefix_everywhere(&self, prefix: &str) {
        for layer in &self.inner.layers {
            let _ = layer.delete_prefix(prefix).await;
        }
    }

    /// Drops every cachewright entry this cache can reach, of every namespace:
    /// in process, in every remote layer (all `urn:` keys) and, through the
    /// bus, in other processes. For tests and emergencies. As a
    /// [`clear`](Self::clear), it acts as an invalidation of everything:
    /// loads in flight in this cache when it comes are not stored.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use cachewright::{Cache, LayerConfig};
    /// use cachewright::backends::MemoryBackend;
    /// use std::sync::Arc;
    ///
    /// let shared = Arc::new(MemoryBackend::new());
    /// let a = Cache::builder().namespace("a").layer(LayerConfig::shared(shared.clone())).build();
    /// let b = Cache::builder().namespace("b").layer(LayerConfig::shared(shared.clone())).build();
    /// a.set_async(&a.key("k", &1), 1u8, None).await;
    /// b.set_async(&b.key("k", &1), 1u8, None).await;
    /// a.flush_all_async().await;
    /// assert!(shared.is_empty(), "every namespace is gone");
    /// # }
    /// ```
    pub async fn flush_all_async(&self) {
        let at = self.inner.clock.stamp();
        self.clear_local_at(at);
        self.clear_remote("urn:", at).await;
    }

    /// The sync twin of [`flush_all_async`](Self::flush_all_async).
    ///
    /// # Blocking
    ///
    /// Waits for the remote layers' prefix deletions (bounded by fifty times
    /// their timeouts and one second).
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::{Cache, LayerConfig};
    /// use cachewright::backends::MemoryBackend;
    /// use std::sync::Arc;
    ///
    /// let shared = Arc::new(MemoryBackend::new());
    /// let cache = Cache::builder().layer(LayerConfig::shared(shared.clone())).build();
    /// let key = cache.key("k", &1);
    /// cache.set(&key, 1u8, None);
    /// cache.flush_all();
    /// assert!(!cache.exists(&key));
    /// assert!(shared.is_empty());
    /// ```
    pub fn flush_all(&self) {
        let at = self.inner.clock.stamp();
        self.clear_local_at(at);
        self.clear_remote_blocking("urn:".to_owned(), at);
    }

    // ---- invalidation -------------------------------------------------------------

    /// Raises the watermarks of `tags` to `at` here, in the first remote
    /// layer and, through the bus, in every other process.
    pub(super) async fn invalidate_at(&self, tags: Vec<String>, at: Stamp) {
        // Raised again: the sync path raised them already, before spawning
        // this (counted there, not here).
        self.raise_local(&tags, at);
        self.deliver_raises(tags.clone(), at).await;
        self.publish(BusKind::Tags, tags, at).await;
    }

    pub(super) fn raise_local(&self, items: &[String], at: u64) {
        for t in items {
            self.inner.marks.raise(tag_hash(t), at);
        }
        tracing::debug!(cache = %self.inner.name, items = ?items, at, "invalidated");
    }

    /// The stamp of an invalidation made now, `buffer` into the future:
    /// later than every load begun before it in this process.
    pub(crate) fn invalidation_time(&self, buffer: Duration) -> Stamp {
        self.inner
            .clock
            .stamp()
            .saturating_add(saturating_us(buffer))
    }

    /// Runs the remote part of a sync invalidation (this process already
    /// knows; the wait is bounded by the layer and bus timeouts).
    pub(super) fn spread<F: Future<Output = ()> + Send + 'static>(
        &self,
        f: impl FnOnce(Cache) -> F,
    ) {
        if self.inner.layers.is_empty() && self.inner.bus.is_none() {
            return;
        }
        let budget = self.invalidation_budget();
        let _ = cachewright_backends::io::block_on(f(self.clone()), budget);
    }

    /// Invalidates every entry carrying any of `tags`, in every layer and,
    /// through the bus, in every process: one write per tag, whatever the
    /// number of entries. Tags are rendered as in templates: build them
    /// with [`tag`](crate::tag) (`tag("org", &5)` for `"org:<org_id>"`).
    ///
    /// # Blocking
    ///
    /// This process stops serving the tagged entries at once; the watermark
    /// write to the first remote layer and the bus message are waited for at
    /// most the layers' timeouts and one second.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// static LOADS: AtomicU32 = AtomicU32::new(0);
    ///
    /// #[cachewright::cached(key = "member:<id>", tags = ["org:<org>"])]
    /// fn member(id: u32, org: u32) -> u32 { LOADS.fetch_add(1, Ordering::SeqCst) }
    ///
    /// member(1, 5);
    /// member(1, 5);
    /// cachewright::default_cache().invalidate_tags([cachewright::tag("org", &5)]);
    /// member(1, 5);
    /// assert_eq!(LOADS.load(Ordering::SeqCst), 2);
    /// ```
    pub fn invalidate_tags<I, S>(&self, tags: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.invalidate_tags_buffered(tags, Duration::ZERO)
    }

    /// [`invalidate_tags`](Self::invalidate_tags) with the watermark set
    /// `buffer` into the future: entries stored during the next `buffer` are
    /// discarded too, so a read that raced the write that caused this
    /// invalidation, and stored an old value just after it, is not served.
    ///
    /// # Blocking
    ///
    /// As [`invalidate_tags`](Self::invalidate_tags).
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::{tag, Cache};
    /// use std::time::Duration;
    ///
    /// let cache = Cache::builder().build();
    /// let key = cache.key("order", &1);
    /// cache.invalidate_tags_buffered([tag("order", &1)], Duration::from_millis(500));
    /// // A racing read stores what it read before the write: not served.
    /// cache.set(&key, "old".to_string(), None);
    /// assert_eq!(cache.get::<String>(&key), None);
    /// ```
    pub fn invalidate_tags_buffered<I, S>(&self, tags: I, buffer: Duration)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.invalidate_tags_at(tags, self.invalidation_time(buffer));
    }

    /// The async twin of [`invalidate_tags`](Self::invalidate_tags).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use cachewright::{tag, Cache, LoadOptions};
    ///
    /// let cache = Cache::builder().build();
    /// let key = cache.key("member", &1);
    /// let options = LoadOptions::default().tags([tag("org", &5)]);
    /// let v = cache.get_or_load_async(&key, options, async { Ok::<u32, ()>(1) }).await;
    /// assert_eq!(v, Ok(1));
    /// cache.invalidate_tags_async([tag("org", &5)]).await;
    /// assert!(cache.get_entry::<u32>(&key).is_none());
    /// # }
    /// ```
    pub async fn invalidate_tags_async<I, S>(&self, tags: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.invalidate_tags_buffered_async(tags, Duration::ZERO)
            .await;
    }

    /// The async twin of [`invalidate_tags_buffered`](Self::invalidate_tags_buffered).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::time::Duration;
    ///
    /// let cache = cachewright::Cache::builder().build();
    /// let key = cache.key("order", &1);
    /// cache
    ///     .invalidate_tags_buffered_async([cachewright::tag("order", &1)], Duration::from_millis(500))
    ///     .await;
    /// cache.set_async(&key, 1u8, None).await;
    /// assert_eq!(cache.get_async::<u8>(&key).await, None, "stored inside the buffer");
    /// # }
    /// ```
    pub async fn invalidate_tags_buffered_async<I, S>(&self, tags: I, buffer: Duration)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.invalidate_tags_at_async(tags, self.invalidation_time(buffer))
            .await;
    }

    /// Invalidates `tags` with the watermark `at` (from
    /// [`invalidation_time`](Self::invalidation_time)): `#[cache_write]`
    /// waits past the very time it invalidated at before it recaches.
    pub(crate) fn invalidate_tags_at<I, S>(&self, tags: I, at: u64)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let tags = distinct(tags);
        self.inner.counters.invalidation(tags.len() as u64);
        self.raise_local(&tags, at);
        self.spread(move |c| async move { c.invalidate_at(tags, at).await });
    }

    /// The async twin of [`invalidate_tags_at`](Self::invalidate_tags_at).
    pub(crate) async fn invalidate_tags_at_async<I, S>(&self, tags: I, at: u64)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let tags = distinct(tags);
        self.inner.counters.invalidation(tags.len() as u64);
        self.invalidate_at(tags, at).await;
    }

    /// Invalidates every entry about one entity, across all use cases:
    /// `invalidate_entity("user", &123)` drops everything keyed
    /// `"user:<...>"` with 123 as first value.
    ///
    /// # Blocking
    ///
    /// As [`invalidate_tags`](Self::invalidate_tags).
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = cachewright::Cache::builder().build();
    /// let profile = cache.key("user", &123).use_case("Profile");
    /// let prefs = cache.key("user", &123).arg("section", &"prefs");
    /// cache.set(&profile, "ada".to_string(), None);
    /// cache.set(&prefs, 1u8, None);
    /// cache.invalidate_entity("user", &123);
    /// assert!(!cache.exists(&profile));
    /// assert!(!cache.exists(&prefs));
    /// ```
    pub fn invalidate_entity(&self, key_type: &str, id: &dyn fmt::Display) {
        self.invalidate_tags([crate::key::entity_tag(key_type, id)]);
    }

    /// The async twin of [`invalidate_entity`](Self::invalidate_entity).
    ///
    /// The tag is rendered before the future is returned, so the future
    /// holds neither `key_type` nor `id` and is `Send` (it can run in
    /// `tokio::spawn`) whatever `id`'s type.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let cache = cachewright::Cache::builder().build();
    /// let key = cache.key("user", &123);
    /// cache.set_async(&key, 1u8, None).await;
    /// let c = cache.clone();
    /// tokio::spawn(async move { c.invalidate_entity_async("user", &123).await })
    ///     .await
    ///     .unwrap();
    /// assert!(!cache.exists_async(&key).await);
    /// # }
    /// ```
    pub fn invalidate_entity_async(
        &self,
        key_type: &str,
        id: &dyn fmt::Display,
    ) -> impl Future<Output = ()> + Send + '_ {
        self.invalidate_tags_async([crate::key::entity_tag(key_type, id)])
    }

    /// Drops every entry of this cache's namespace and version: in process
    /// (every use case and the direct API), in every remote layer, and in
    /// the in-process layers of the other processes on the bus.
    ///
    /// A clear acts as an invalidation of everything: a load that began
    /// before it (in flight when it came) is neither stored nor served when
    /// it finishes, and callers that arrive after it do not take its value.
    ///
    /// # Blocking
    ///
    /// Waits for the remote layers' prefix deletions (bounded by fifty times
    /// their timeouts and one second).
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = cachewright::Cache::builder().build();
    /// let key = cache.key("k", &1);
    /// cache.set(&key, 1u8, None);
    /// cache.clear();
    /// assert!(!cache.exists(&key));
    /// ```
    pub fn clear(&self) {
        let at = self.inner.clock.stamp();
        self.clear_local_at(at);
        self.clear_remote_blocking(self.key_prefix(), at);
    }

    /// The async twin of [`clear`](Self::clear).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let cache = cachewright::Cache::builder().build();
    /// let key = cache.key("k", &1);
    /// cache.set_async(&key, 1u8, None).await;
    /// cache.clear_async().await;
    /// assert!(!cache.exists_async(&key).await);
    /// # }
    /// ```
    pub async fn clear_async(&self) {
        let at = self.inner.clock.stamp();
        self.clear_local_at(at);
        self.clear_remote(&self.key_prefix(), at).await;
    }
}

/// `tags` without repeats (in their first order): each raises its
/// watermark once, however many templates rendered it.
fn distinct<I, S>(tags: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut out: Vec<String> = Vec::new();
    for t in tags {
        let t = t.into();
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}
