//! How long a loaded value lives: its TTL (spread by jitter), its
//! stale-while-revalidate window, the TTL of a cached absence, and what the
//! loader said about it (`set_ttl`, `do_not_cache`).

use std::time::Duration;

use crate::context::Directive;

/// The lifetimes a use case gives the values it loads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Policy {
    /// Fresh lifetime; `None` keeps entries until evicted.
    pub(crate) ttl: Option<Duration>,
    /// Stale-while-revalidate window after the TTL.
    pub(crate) swr: Duration,
    /// Lifetime of a cached absence; `None` does not cache absences.
    pub(crate) negative_ttl: Option<Duration>,
    /// Spread of each entry's TTL, as a fraction (0.1 = ±10 %).
    pub(crate) jitter: f64,
}

/// How long one value lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lifetime {
    /// Fresh for this long; forever when `None`.
    pub(crate) ttl: Option<Duration>,
    /// Then servable stale for this long.
    pub(crate) swr: Duration,
    /// Whether it records an absence.
    pub(crate) negative: bool,
}

impl Policy {
    /// The lifetime of a value (`negative` when it is an absence), given
    /// what its loader said; `None` when it is not to be cached.
    pub(crate) fn lifetime(&self, negative: bool, said: Directive) -> Option<Lifetime> {
        let ttl = match said {
            Directive::Skip => return None,
            Directive::Ttl(d) if d.is_zero() => return None,
            Directive::Ttl(d) => Some(d),
            Directive::Default if negative => Some(self.negative_ttl?),
            Directive::Default => self.ttl.map(|t| self.jittered(t)),
        };
        let swr = if negative { Duration::ZERO } else { self.swr };
        Some(Lifetime { ttl, swr, negative })
    }

    fn jittered(&self, ttl: Duration) -> Duration {
        if self.jitter <= 0.0 {
            return ttl;
        }
        let spread = (fastrand::f64() * 2.0 - 1.0) * self.jitter;
        let ms = (ttl.as_millis() as f64 * (1.0 + spread)).max(1.0);
        Duration::try_from_secs_f64(ms / 1000.0).unwrap_or(Duration::MAX)
    }
}

/// How [`Cache::get_or_load`](crate::Cache::get_or_load) keeps what its
/// loader returns: the same policy `#[cached]` takes (TTL, stale-while-
/// revalidate, TTL of absences, jitter, tags). `None` and `Some(ttl)`
/// convert into options with that TTL alone.
///
/// # Examples
///
/// ```
/// use cachewright::{Cache, LoadOptions};
/// use std::time::Duration;
///
/// let cache = Cache::builder().build();
/// let key = cache.key("user", &7);
/// let options = LoadOptions::ttl(Duration::from_secs(300))
///     .swr(Duration::from_secs(30))
///     .jitter(0.1)
///     .negative(Duration::from_secs(5), Option::is_none)
///     .tags([cachewright::tag("org", &1)]);
/// let v: Result<Option<String>, ()> = cache.get_or_load(&key, options, || Ok(None));
/// assert_eq!(v, Ok(None));
/// assert!(cache.get_entry::<Option<String>>(&key).unwrap().negative, "an absence, kept 5 s");
/// ```
#[derive(Debug)]
pub struct LoadOptions<T> {
    pub(crate) policy: Policy,
    pub(crate) is_negative: Option<fn(&T) -> bool>,
    pub(crate) tags: Vec<String>,
}

impl<T> Clone for LoadOptions<T> {
    fn clone(&self) -> Self {
        LoadOptions {
            policy: self.policy,
            is_negative: self.is_negative,
            tags: self.tags.clone(),
        }
    }
}

impl<T> Default for LoadOptions<T> {
    /// Kept until evicted, no stale window, absences not told apart.
    fn default() -> Self {
        LoadOptions {
            policy: Policy {
                ttl: None,
                swr: Duration::ZERO,
                negative_ttl: None,
                jitter: 0.0,
            },
            is_negative: None,
            tags: Vec::new(),
        }
    }
}

impl<T> LoadOptions<T> {
    /// Values stay fresh for `ttl`.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::{Cache, Clock, LoadOptions, ManualClock};
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new(0);
    /// let cache = Cache::builder().clock(Clock::manual(&clock)).build();
    /// let key = cache.key("rate", &"eur");
    /// let options = || LoadOptions::ttl(Duration::from_secs(60));
    /// assert_eq!(cache.get_or_load(&key, options(), || Ok::<u32, ()>(1)), Ok(1));
    /// clock.advance(Duration::from_secs(61));
    /// assert_eq!(cache.get_or_load(&key, options(), || Ok::<u32, ()>(2)), Ok(2), "reloaded");
    /// ```
    pub fn ttl(ttl: Duration) -> Self {
        let mut o = Self::default();
        o.policy.ttl = Some(ttl);
        o
    }

    /// After their TTL, values are served stale for `window` more while one
    /// caller reloads them (the others, and that caller's later calls, get
    /// the stale value until the new one is stored).
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::{Cache, Clock, LoadOptions, ManualClock};
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new(0);
    /// let cache = Cache::builder().clock(Clock::manual(&clock)).build();
    /// let key = cache.key("rate", &"eur");
    /// let options = || LoadOptions::ttl(Duration::from_secs(60)).swr(Duration::from_secs(30));
    /// cache.get_or_load(&key, options(), || Ok::<u32, ()>(1)).unwrap();
    /// clock.advance(Duration::from_secs(70));
    /// let entry = cache.get_entry::<u32>(&key).unwrap();
    /// assert!(!entry.is_fresh(clock.now_ms()) && !entry.is_expired(clock.now_ms()), "stale");
    /// ```
    pub fn swr(mut self, window: Duration) -> Self {
        self.policy.swr = window;
        self
    }

    /// Values for which `is_negative` holds (an absence, such as `None`)
    /// are kept for `ttl` instead (without a stale window); without this,
    /// they are kept as any value.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::{Cache, Clock, LoadOptions, ManualClock};
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new(1_000);
    /// let cache = Cache::builder().clock(Clock::manual(&clock)).build();
    /// let key = cache.key("user", &404);
    /// let options = LoadOptions::ttl(Duration::from_secs(300))
    ///     .negative(Duration::from_secs(5), Option::is_none);
    /// let v = cache.get_or_load(&key, options, || Ok::<Option<String>, ()>(None));
    /// assert_eq!(v, Ok(None));
    /// let e = cache.get_entry::<Option<String>>(&key).unwrap();
    /// assert!(e.negative);
    /// assert_eq!(e.fresh_until_ms - clock.now_ms(), 5_000, "kept 5 s, not 300");
    /// ```
    pub fn negative(mut self, ttl: Duration, is_negative: fn(&T) -> bool) -> Self {
        self.policy.negative_ttl = Some(ttl);
        self.is_negative = Some(is_negative);
        self
    }

    /// Spreads each TTL by up to ± `fraction` (0.1 = ±10 %), so entries
    /// loaded together do not expire together. Clamped to `0.0..=1.0`.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::{Cache, Clock, LoadOptions, ManualClock};
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new(1_000);
    /// let cache = Cache::builder().clock(Clock::manual(&clock)).build();
    /// let key = cache.key("page", &1);
    /// let options = LoadOptions::ttl(Duration::from_secs(100)).jitter(0.1);
    /// cache.get_or_load(&key, options, || Ok::<u8, ()>(1)).unwrap();
    /// let e = cache.get_entry::<u8>(&key).unwrap();
    /// let ttl = e.fresh_until_ms - clock.now_ms();
    /// assert!((90_000..=110_000).contains(&ttl), "100 s ± 10 %");
    /// ```
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.policy.jitter = if fraction.is_finite() {
            fraction.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self
    }

    /// Tags stored with the value (beside the key's entity), as `tags = [...]`
    /// gives `#[cached]` entries.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::{tag, Cache, LoadOptions};
    ///
    /// let cache = Cache::builder().build();
    /// let key = cache.key("member", &1);
    /// let options = LoadOptions::default().tags([tag("org", &5)]);
    /// cache.get_or_load(&key, options, || Ok::<u8, ()>(1)).unwrap();
    /// assert_eq!(&*cache.get_entry::<u8>(&key).unwrap().tags[1], "org:5");
    /// cache.invalidate_tags([tag("org", &5)]);
    /// assert!(!cache.exists(&key));
    /// ```
    pub fn tags<I, S>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.tags.extend(tags.into_iter().map(Into::into));
        self
    }
}

impl<T> From<Option<Duration>> for LoadOptions<T> {
    fn from(ttl: Option<Duration>) -> Self {
        let mut o = Self::default();
        o.policy.ttl = ttl;
        o
    }
}

impl<T> From<Duration> for LoadOptions<T> {
    fn from(ttl: Duration) -> Self {
        Self::ttl(ttl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn policy(jitter: f64) -> Policy {
        Policy {
            ttl: Some(SECOND * 100),
            swr: SECOND * 10,
            negative_ttl: Some(SECOND * 5),
            jitter,
        }
    }

    #[test]
    fn directives_and_absences() {
        let p = policy(0.0);
        let fresh = p.lifetime(false, Directive::Default).unwrap();
        assert_eq!((fresh.ttl, fresh.swr), (Some(SECOND * 100), SECOND * 10));
        let absent = p.lifetime(true, Directive::Default).unwrap();
        assert_eq!(
            (absent.ttl, absent.swr, absent.negative),
            (Some(SECOND * 5), Duration::ZERO, true)
        );
        assert_eq!(
            p.lifetime(false, Directive::Ttl(SECOND)).unwrap().ttl,
            Some(SECOND)
        );
        assert!(p.lifetime(false, Directive::Ttl(Duration::ZERO)).is_none());
        assert!(p.lifetime(false, Directive::Skip).is_none());
        let no_negative = Policy {
            negative_ttl: None,
            ..p
        };
        assert!(no_negative.lifetime(true, Directive::Default).is_none());
    }

    #[test]
    fn jitter_stays_in_its_band() {
        let p = policy(0.1);
        for _ in 0..1000 {
            let ttl = p.lifetime(false, Directive::Default).unwrap().ttl.unwrap();
            assert!(ttl >= SECOND * 90 && ttl <= SECOND * 110, "{ttl:?}");
        }
    }
}
