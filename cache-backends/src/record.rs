//! The record the file and object-store tiers keep per key: a magic line,
//! the expiry (Unix milliseconds), the key, then the value.
//!
//! ```text
//! cachewright-file 1
//! 1732170300000
//! urn:shop:v1:user:7#profile
//! <value bytes>
//! ```
//!
//! Stores name records by a hash of the key; the key inside is compared on
//! read, so a hash collision (or a foreign object) reads as a miss, never as
//! another key's value.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The record of `key` holding `value` for `ttl` from now.
pub(crate) fn encode(magic: &[u8], key: &str, value: &[u8], ttl: Duration) -> Vec<u8> {
    let expires = now_ms().saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
    let mut out = Vec::with_capacity(magic.len() + 24 + key.len() + value.len());
    out.extend_from_slice(magic);
    out.extend_from_slice(expires.to_string().as_bytes());
    out.push(b'\n');
    out.extend_from_slice(key.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(value);
    out
}

/// Splits a record into (expiry, key, value); `None` if it is not one.
pub(crate) fn parse<'a>(magic: &[u8], bytes: &'a [u8]) -> Option<(u64, &'a [u8], &'a [u8])> {
    let rest = bytes.strip_prefix(magic)?;
    let nl = rest.iter().position(|&b| b == b'\n')?;
    let expires: u64 = std::str::from_utf8(&rest[..nl]).ok()?.parse().ok()?;
    let rest = &rest[nl + 1..];
    let nl = rest.iter().position(|&b| b == b'\n')?;
    Some((expires, &rest[..nl], &rest[nl + 1..]))
}

/// The value of `key` in `bytes`, if the record is `key`'s and alive:
/// `Ok(Some)`; `Ok(None)` for another key's or a foreign record; `Err(())`
/// for `key`'s expired record (to be removed).
pub(crate) fn live<'a>(magic: &[u8], bytes: &'a [u8], key: &str) -> Result<Option<&'a [u8]>, ()> {
    match parse(magic, bytes) {
        Some((exp, k, v)) if k == key.as_bytes() => {
            if exp > now_ms() {
                Ok(Some(v))
            } else {
                Err(())
            }
        }
        _ => Ok(None),
    }
}

/// The name of `key`'s record: a 128-bit hash, in hex.
pub(crate) fn name(key: &str) -> String {
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(key.as_bytes()))
}
