//! Metrics through the `metrics` facade, for any exporter
//! (`metrics-exporter-prometheus` and others).
//!
//! The hot hit pays nothing for them: hits are counted as before (on lines
//! each thread owns), and [`Cache::publish_metrics`] hands the totals to
//! the facade as absolute counters and gauges when called (before an
//! exporter renders, or on a timer). Load durations are recorded into a
//! histogram as each load ends, off the hit path.

use metrics::{counter, gauge, histogram};

use crate::{Cache, Stats};

/// The names of every metric, for the README's table and for tests.
pub const METRICS: &[(&str, &str, &str)] = &[
    (
        "cachewright_requests_total",
        "counter",
        "cached calls by `result`: hit (fresh, not an absence), stale, negative (a cached absence), miss, bypass; labels cache, use_case, key_type",
    ),
    ("cachewright_loads_total", "counter", "loader runs; labels cache, use_case, key_type"),
    ("cachewright_load_errors_total", "counter", "loader runs that failed; labels cache, use_case, key_type"),
    ("cachewright_load_duration_seconds", "histogram", "each loader run's time, recorded as it ends; labels cache, use_case"),
    ("cachewright_shadow_reads_total", "counter", "shadow reads by `result`: match, mismatch, error (the function failed); labels cache, use_case, key_type"),
    ("cachewright_resilience_total", "counter", "what a use case's fail-safe, timeouts and lock did, by `event`: fail_safe (an expired value served because the loader failed or timed out), soft_timeout, hard_timeout, lock_wait (waited for another process's load), lock_wait_expired (gave up waiting and loaded); labels cache, use_case, key_type"),
    ("cachewright_evictions_total", "counter", "entries pushed out of the in-process layer; labels cache, use_case"),
    ("cachewright_entries", "gauge", "entries in the in-process layer; labels cache, use_case"),
    ("cachewright_bytes", "gauge", "weight of those entries in bytes; labels cache, use_case"),
    ("cachewright_invalidations_total", "counter", "tags and entities invalidated through the cache (`invalidate_tags`, `invalidate_entity`, `#[cache_write]`); label cache"),
    ("cachewright_bus_messages_total", "counter", "invalidations received over the bus (`direction=\"in\"`); labels cache, direction"),
    ("cachewright_layer_operations_total", "counter", "remote layer operations by `op` (get, set, any) and `result` (hit, miss, ok, renewed, error, timeout, skipped, decode_error; each outcome once); labels cache, layer, tier (1 = first below the in-process layer), op, result"),
    ("cachewright_layer_duration_seconds", "histogram", "each remote layer operation's time, recorded as it ends (a timeout at its limit); labels layer, op (get, get_many, set, set_if_absent, delete, delete_if, renew_if, raise, delete_prefix)"),
    ("cachewright_bg_runs_total", "counter", "background writer loads by `result`: ok, error; labels cache, key"),
    ("cachewright_breaker_open", "gauge", "1 while the layer's breaker is open; labels cache, layer, tier"),
];

impl Cache {
    /// Hands this cache's counters to the `metrics` facade: absolute
    /// counters and gauges (see the README's table of metrics). Call it
    /// before an exporter renders (a `/metrics` handler) or on a timer; it
    /// costs a snapshot of the counters, nothing on the calls themselves.
    /// Without a recorder installed, it does nothing. Give each cache its
    /// own name (the `cache` label). After [`reset_stats`](Cache::reset_stats)
    /// the published counters stay where they were until the new counts
    /// pass them (exporters keep the highest absolute value): do not reset
    /// a cache whose metrics are scraped. Calls in [`refresh`](crate::refresh)
    /// mode are counted as loads, not as requests.
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = cachewright::Cache::builder().name("shop").build();
    /// cache.publish_metrics(); // with no recorder installed: nothing
    /// ```
    pub fn publish_metrics(&self) {
        let snap = self.snapshot();
        let name = snap.cache.clone();
        for s in &snap.use_cases {
            publish_use_case(&name, s);
        }
        counter!("cachewright_invalidations_total", "cache" => name.clone())
            .absolute(snap.invalidations);
        for w in crate::bg::writers_of(self) {
            let ok = w.loads.saturating_sub(w.errors);
            for (result, n) in [("ok", ok), ("error", w.errors)] {
                counter!(
                    "cachewright_bg_runs_total",
                    "cache" => name.clone(),
                    "key" => w.key.clone(),
                    "result" => result
                )
                .absolute(n);
            }
        }
        counter!("cachewright_bus_messages_total", "cache" => name.clone(), "direction" => "in")
            .absolute(snap.bus_messages);
        for (tier, l) in snap.layers.iter().enumerate() {
            // Each outcome once: timeouts are not also errors here.
            let ops = [
                ("get", "hit", l.hits),
                ("get", "miss", l.misses),
                ("set", "ok", l.writes),
                ("set", "renewed", l.renewals),
                ("any", "error", l.errors.saturating_sub(l.timeouts)),
                ("any", "timeout", l.timeouts),
                ("any", "skipped", l.skipped),
                ("get", "decode_error", l.decode_errors),
            ];
            // Two layers of one backend (two Redis tiers) differ by tier.
            let tier = (tier + 1).to_string();
            for (op, result, n) in ops {
                counter!(
                    "cachewright_layer_operations_total",
                    "cache" => name.clone(),
                    "layer" => l.backend.clone(),
                    "tier" => tier.clone(),
                    "op" => op,
                    "result" => result
                )
                .absolute(n);
            }
            gauge!(
                "cachewright_breaker_open",
                "cache" => name.clone(),
                "layer" => l.backend.clone(),
                "tier" => tier
            )
            .set(if l.open { 1.0 } else { 0.0 });
        }
    }
}

fn publish_use_case(cache: &str, s: &Stats) {
    let plain = s.hits.saturating_sub(s.stale_hits + s.negative_hits);
    let results = [
        ("hit", plain),
        ("stale", s.stale_hits),
        ("negative", s.negative_hits),
        ("miss", s.misses),
        ("bypass", s.bypasses),
    ];
    for (result, n) in results {
        counter!(
            "cachewright_requests_total",
            "cache" => cache.to_owned(),
            "use_case" => s.use_case.clone(),
            "key_type" => s.key_type.clone(),
            "result" => result
        )
        .absolute(n);
    }
    let labels = [
        ("cache", cache.to_owned()),
        ("use_case", s.use_case.clone()),
        ("key_type", s.key_type.clone()),
    ];
    counter!("cachewright_loads_total", &labels).absolute(s.loads);
    for (result, n) in [
        ("match", s.shadow_matches),
        ("mismatch", s.shadow_mismatches),
        ("error", s.shadow_errors),
    ] {
        counter!(
            "cachewright_shadow_reads_total",
            "cache" => cache.to_owned(),
            "use_case" => s.use_case.clone(),
            "key_type" => s.key_type.clone(),
            "result" => result
        )
        .absolute(n);
    }
    counter!("cachewright_load_errors_total", &labels).absolute(s.load_errors);
    for (event, n) in [
        ("fail_safe", s.fail_safe_served),
        ("soft_timeout", s.soft_timeouts),
        ("hard_timeout", s.hard_timeouts),
        ("lock_wait", s.lock_waits),
        ("lock_wait_expired", s.lock_waits_expired),
    ] {
        counter!(
            "cachewright_resilience_total",
            "cache" => cache.to_owned(),
            "use_case" => s.use_case.clone(),
            "key_type" => s.key_type.clone(),
            "event" => event
        )
        .absolute(n);
    }
    let labels = [
        ("cache", cache.to_owned()),
        ("use_case", s.use_case.clone()),
    ];
    counter!("cachewright_evictions_total", &labels).absolute(s.evictions);
    gauge!("cachewright_entries", &labels).set(s.size as f64);
    gauge!("cachewright_bytes", &labels).set(s.bytes as f64);
}

/// Records one load's duration (called as each load ends).
pub(crate) fn load_took(cache: &str, use_case: &'static str, took: std::time::Duration) {
    histogram!(
        "cachewright_load_duration_seconds",
        "cache" => cache.to_owned(),
        "use_case" => use_case
    )
    .record(took.as_secs_f64());
}
