//! Staying up when the source or Redis does not, in one test binary: fail-safe
//! and its throttle, loaders that mark their result failed, soft and hard
//! timeouts (on the injected clock and paused tokio time), fail-safe against
//! a real redis-server, and the replay of writes owed while Redis was down.

#[path = "../support/mod.rs"]
mod support;

mod fail_safe;
mod fail_safe_redis;
mod recovery;
