//! The bytes a remote layer stores for one entry.
//!
//! ```text
//! cachet:1j c=00000001732170000000 f=00000001732170300000 s=00000001732170330000 n=0 h=5d41402abc4b2a76
//! {"tags":["user:7"],"value":{"id":7,"name":"ada"}}
//! ```
//!
//! A fixed-width ASCII header (format version and codec, creation time,
//! fresh-until, stale-until, negative flag, content hash), a newline, then the
//! body in the cache's codec (JSON by default, readable with `redis-cli`).
//! Bytes that do not parse, or that come from another format version or
//! codec, or hold another type, are a decode error: the caller treats them as
//! a miss and overwrites them. Never a panic, never a wrong value.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::entry::Entry;

/// How values are encoded in remote layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Codec {
    /// JSON: readable with `redis-cli` (the default).
    #[default]
    Json,
    /// MessagePack: compact and fast (feature `msgpack`).
    #[cfg(feature = "msgpack")]
    #[cfg_attr(docsrs, doc(cfg(feature = "msgpack")))]
    MessagePack,
}

impl Codec {
    fn tag(self) -> u8 {
        match self {
            Codec::Json => b'j',
            #[cfg(feature = "msgpack")]
            Codec::MessagePack => b'm',
        }
    }
}

/// Why bytes could not be read as an entry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Not a cachet envelope, or one of another format version or codec.
    #[error("not a cachet envelope of this format version and codec")]
    Format,
    /// The body does not hold a value of the expected type.
    #[error("the stored value does not decode as the expected type: {0}")]
    Body(String),
}

const PREFIX: &[u8] = b"cachet:1";
/// `cachet:1j c=<20> f=<20> s=<20> n=<1> h=<16>\n`
pub(crate) const HEADER_LEN: usize = 9 + 3 + 20 + 3 + 20 + 3 + 20 + 3 + 1 + 3 + 16 + 1;
pub(crate) const HASH_AT: std::ops::Range<usize> = (HEADER_LEN - 17)..(HEADER_LEN - 1);

#[derive(Serialize)]
struct BodyRef<'a, V> {
    tags: &'a [Box<str>],
    value: &'a V,
}

#[derive(Deserialize)]
struct Body<V> {
    tags: Vec<Box<str>>,
    value: V,
}

/// Encodes `entry` for a remote layer.
pub(crate) fn encode<V: Serialize>(entry: &Entry<V>, codec: Codec) -> Result<Vec<u8>, String> {
    let body = BodyRef {
        tags: &entry.tags,
        value: &entry.value,
    };
    let body = match codec {
        Codec::Json => serde_json::to_vec(&body).map_err(|e| e.to_string())?,
        #[cfg(feature = "msgpack")]
        Codec::MessagePack => rmp_serde::to_vec_named(&body).map_err(|e| e.to_string())?,
    };
    let hash = xxhash_rust::xxh3::xxh3_64_with_seed(&body, u64::from(entry.negative));
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(PREFIX);
    out.push(codec.tag());
    out.extend_from_slice(
        format!(
            " c={:020} f={:020} s={:020} n={} h={:016x}\n",
            entry.created_ms,
            entry.fresh_until_ms,
            entry.stale_until_ms,
            u8::from(entry.negative),
            hash
        )
        .as_bytes(),
    );
    debug_assert_eq!(out.len(), HEADER_LEN);
    out.extend_from_slice(&body);
    Ok(out)
}

fn field(header: &[u8], at: usize, len: usize, name: u8) -> Option<&[u8]> {
    let f = header.get(at..at + 3 + len)?;
    (f[0] == b' ' && f[1] == name && f[2] == b'=').then(|| &f[3..])
}

fn number(b: &[u8]) -> Option<u64> {
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// Decodes bytes written by [`encode`] with the same codec.
pub(crate) fn decode<V: DeserializeOwned>(
    bytes: &[u8],
    codec: Codec,
) -> Result<Entry<V>, DecodeError> {
    let header = bytes.get(..HEADER_LEN).ok_or(DecodeError::Format)?;
    if !header.starts_with(PREFIX)
        || header[PREFIX.len()] != codec.tag()
        || header[HEADER_LEN - 1] != b'\n'
    {
        return Err(DecodeError::Format);
    }
    let mut at = PREFIX.len() + 1;
    let mut next = |len: usize, name: u8| {
        let f = field(header, at, len, name);
        at += 3 + len;
        f
    };
    let created = next(20, b'c').and_then(number).ok_or(DecodeError::Format)?;
    let fresh = next(20, b'f').and_then(number).ok_or(DecodeError::Format)?;
    let stale = next(20, b's').and_then(number).ok_or(DecodeError::Format)?;
    let negative = match next(1, b'n') {
        Some(b"0") => false,
        Some(b"1") => true,
        _ => return Err(DecodeError::Format),
    };
    let body = &bytes[HEADER_LEN..];
    let parsed: Body<V> = match codec {
        Codec::Json => {
            serde_json::from_slice(body).map_err(|e| DecodeError::Body(e.to_string()))?
        }
        #[cfg(feature = "msgpack")]
        Codec::MessagePack => {
            rmp_serde::from_slice(body).map_err(|e| DecodeError::Body(e.to_string()))?
        }
    };
    Ok(Entry {
        value: parsed.value,
        created_ms: created,
        fresh_until_ms: fresh,
        stale_until_ms: stale.max(fresh),
        negative,
        tags: parsed.tags.into_boxed_slice(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn entry() -> Entry<Vec<String>> {
        let mut e = Entry::new(
            vec!["a".to_string()],
            1_000,
            Some(Duration::from_secs(5)),
            Duration::from_secs(2),
        );
        e.tags = vec!["user:1".into(), "org:2".into()].into_boxed_slice();
        e
    }

    #[test]
    fn round_trips_and_reads_as_text() {
        let bytes = encode(&entry(), Codec::Json).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.starts_with("cachet:1j c=00000000000000001000 f=00000000000000006000"),
            "{text}"
        );
        assert!(
            text.ends_with(r#"{"tags":["user:1","org:2"],"value":["a"]}"#),
            "{text}"
        );
        let back: Entry<Vec<String>> = decode(&bytes, Codec::Json).unwrap();
        assert_eq!(back, entry());
    }

    #[test]
    fn garbage_other_types_and_other_formats_are_errors_not_panics() {
        let bytes = encode(&entry(), Codec::Json).unwrap();
        assert!(matches!(
            decode::<u32>(&bytes, Codec::Json),
            Err(DecodeError::Body(_))
        ));
        for junk in [
            &b""[..],
            b"garbage",
            b"cachet:9j c=",
            &bytes[..HEADER_LEN],
            &bytes[..HEADER_LEN - 3],
        ] {
            assert!(decode::<Vec<String>>(junk, Codec::Json).is_err());
        }
        let mut other_version = bytes.clone();
        other_version[7] = b'2';
        assert!(matches!(
            decode::<Vec<String>>(&other_version, Codec::Json),
            Err(DecodeError::Format)
        ));
    }

    #[test]
    fn equal_values_hash_alike_whatever_their_times() {
        let a = encode(&entry(), Codec::Json).unwrap();
        let mut later = entry();
        later.created_ms = 9_000;
        later.fresh_until_ms = 99_000;
        let b = encode(&later, Codec::Json).unwrap();
        assert_eq!(a[HASH_AT], b[HASH_AT]);
        assert_ne!(a[..HEADER_LEN], b[..HEADER_LEN]);
        let mut other = entry();
        other.value.push("b".into());
        assert_ne!(a[HASH_AT], encode(&other, Codec::Json).unwrap()[HASH_AT]);
    }

    #[cfg(feature = "msgpack")]
    #[test]
    fn msgpack_round_trips_and_is_not_read_as_json() {
        let bytes = encode(&entry(), Codec::MessagePack).unwrap();
        let back: Entry<Vec<String>> = decode(&bytes, Codec::MessagePack).unwrap();
        assert_eq!(back, entry());
        assert!(decode::<Vec<String>>(&bytes, Codec::Json).is_err());
    }
}
