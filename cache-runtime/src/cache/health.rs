//! A cache's health: each remote layer's state and since when, and the
//! bus's, in one serializable report for a `/health` endpoint.

use super::*;
use crate::layer::LayerHealth;

/// Where a cache stands as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthState {
    /// Every layer answers, the bus (if any) is subscribed, and no
    /// background writer's last load failed.
    Up,
    /// Some layer fails or is skipped, or the bus is not subscribed: calls
    /// still succeed (from process memory and their functions), slower or
    /// with in-process entries untrusted.
    Degraded,
}

/// A cache's health (see [`Cache::health`]).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Health {
    /// The cache's name.
    pub cache: String,
    /// Up, or degraded if any part below is.
    pub state: HealthState,
    /// Each remote layer, in order.
    pub layers: Vec<LayerHealth>,
    /// The bus that carries invalidations between processes.
    pub bus: crate::BusStats,
    /// Each background writer storing into this cache: its last success
    /// and failure.
    pub bg_writers: Vec<crate::WriterHealth>,
}

impl Cache {
    /// Each remote layer's state (up, degraded, breaker open) and since
    /// when, and the bus's state: what a `/health` endpoint reports. A
    /// cache never fails a call because a layer is down, so it is never
    /// "down": at worst degraded.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::{Cache, HealthState};
    ///
    /// let cache = Cache::builder().build();
    /// let health = cache.health();
    /// assert_eq!(health.state, HealthState::Up, "no layer, no bus: nothing to fail");
    /// assert!(serde_json::to_string(&health).unwrap().contains("\"state\":\"up\""));
    /// ```
    pub fn health(&self) -> Health {
        let layers: Vec<LayerHealth> = self.inner.layers.iter().map(|l| l.health()).collect();
        let bus = self.bus_stats();
        let bg_writers = crate::bg::writers_of(self);
        let up = layers.iter().all(|l| l.state == crate::LayerState::Up)
            && (!bus.configured || bus.connected)
            && !bg_writers.iter().any(|w| w.failing());
        Health {
            cache: self.name().to_string(),
            state: if up {
                HealthState::Up
            } else {
                HealthState::Degraded
            },
            layers,
            bus,
            bg_writers,
        }
    }
}
