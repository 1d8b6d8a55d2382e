//! TTL presets: `#[cached(ttl = "short")]`, resolved when the use case is
//! built, from [`Setup::ttl_preset`](crate::Setup::ttl_preset), else from
//! `CACHEWRIGHT_TTL_SHORT` / `_DEFAULT` / `_LONG`, else the defaults.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use super::env::parse_duration;

/// A named TTL that operators set per environment: `#[cached(ttl =
/// "short")]`, `"default"` or `"long"`.
///
/// # Examples
///
/// ```
/// use cachewright::TtlPreset;
/// use std::time::Duration;
///
/// assert_eq!(TtlPreset::Short.fallback(), Duration::from_secs(30));
/// assert_eq!(TtlPreset::Long.variable(), "CACHEWRIGHT_TTL_LONG");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TtlPreset {
    /// `"short"`: 30 seconds unless set.
    Short,
    /// `"default"`: 5 minutes unless set.
    Default,
    /// `"long"`: 1 hour unless set.
    Long,
}

/// Presets set by `configure()` (milliseconds; 0: not set).
static CONFIGURED: [AtomicU64; 3] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];

/// Presets from the environment, read once (`None`: unset or malformed).
static FROM_ENV: OnceLock<[Option<Duration>; 3]> = OnceLock::new();

impl TtlPreset {
    const ALL: [TtlPreset; 3] = [TtlPreset::Short, TtlPreset::Default, TtlPreset::Long];

    fn index(self) -> usize {
        self as usize
    }

    /// The TTL used when neither `configure()` nor the environment sets it.
    pub const fn fallback(self) -> Duration {
        match self {
            TtlPreset::Short => Duration::from_secs(30),
            TtlPreset::Default => Duration::from_secs(300),
            TtlPreset::Long => Duration::from_secs(3600),
        }
    }

    /// The environment variable that sets it.
    pub const fn variable(self) -> &'static str {
        match self {
            TtlPreset::Short => "CACHEWRIGHT_TTL_SHORT",
            TtlPreset::Default => "CACHEWRIGHT_TTL_DEFAULT",
            TtlPreset::Long => "CACHEWRIGHT_TTL_LONG",
        }
    }

    /// What the preset means in this process: as configured, else as the
    /// environment says (read once; a malformed or zero value is logged at
    /// error level and the fallback used), else the fallback.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::TtlPreset;
    /// use std::time::Duration;
    ///
    /// // Nothing configured: from CACHEWRIGHT_TTL_DEFAULT, else the fallback.
    /// if std::env::var_os("CACHEWRIGHT_TTL_DEFAULT").is_none() {
    ///     assert_eq!(TtlPreset::Default.resolve(), Duration::from_secs(300));
    /// }
    /// ```
    pub fn resolve(self) -> Duration {
        match CONFIGURED[self.index()].load(Ordering::Relaxed) {
            0 => {
                from_env(&|name| std::env::var(name).ok())[self.index()].unwrap_or(self.fallback())
            }
            ms => Duration::from_millis(ms),
        }
    }

    pub(super) fn configure(self, ttl: Duration) {
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        CONFIGURED[self.index()].store(ms, Ordering::Relaxed);
    }
}

fn from_env(var: &dyn Fn(&str) -> Option<String>) -> &'static [Option<Duration>; 3] {
    FROM_ENV.get_or_init(|| read_env(var))
}

fn read_env(var: &dyn Fn(&str) -> Option<String>) -> [Option<Duration>; 3] {
    TtlPreset::ALL.map(|p| {
        let text = var(p.variable()).filter(|t| !t.trim().is_empty())?;
        match parse_duration(&text) {
            // Whole milliseconds, as deadlines count them.
            Ok(d) if d.as_millis() > 0 => Some(d),
            problem => {
                let why = problem.err().unwrap_or_else(|| "zero".into());
                tracing::error!(
                    variable = p.variable(),
                    value = text.as_str(),
                    fallback = ?p.fallback(),
                    "malformed TTL preset ({why}): using the fallback"
                );
                None
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_sets_presets_and_bad_values_fall_back() {
        let env = |name: &str| match name {
            "CACHEWRIGHT_TTL_SHORT" => Some("10s".to_string()),
            "CACHEWRIGHT_TTL_DEFAULT" => Some("soon".to_string()),
            "CACHEWRIGHT_TTL_LONG" => Some("0.0004".to_string()),
            _ => None,
        };
        assert_eq!(
            read_env(&env),
            [Some(Duration::from_secs(10)), None, None],
            "malformed values and those under a millisecond are not used"
        );
        assert_eq!(read_env(&|_| None), [None, None, None]);
        assert_eq!(
            read_env(&|_| Some(" ".to_string())),
            [None, None, None],
            "empty is unset"
        );
    }
}
