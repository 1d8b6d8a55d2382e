//! The bytes a remote layer stores for one entry.
//!
//! ```text
//! cachewright:4j c=00001732170000000123 f=00000001732170300000 s=00000001732170330000 n=0 v=0000000000000000 t=1f3a9c0d55e2b7a4 h=5d41402abc4b2a76 k=9e107d9d372bb682
//! 6:user:7 5:org:2
//! {"id":7,"name":"ada"}
//! ```
//!
//! A fixed-width ASCII header (format version and codec, the stamp of the
//! start of its load in microseconds, fresh-until and stale-until in
//! milliseconds, negative flag, schema version, fingerprint of the value's
//! type at that schema, content hash, hash of the key the entry was written
//! under), a line of tags (each with its length before it,
//! so no tag text can be mistaken for a separator), then the value alone in
//! the cache's codec (JSON by default, readable with `redis-cli`).
//!
//! The schema version stands on its own beside the fingerprint, so that a
//! check that decodes no value (`exists`) still tells an entry of another
//! schema from one a read would take.
//!
//! Bytes that do not parse, or that come from another format version or
//! codec, or hold another type, or were written under another key, are a
//! decode error: the caller treats them as a miss and overwrites them.
//! Never a panic, never a wrong value, never another key's value (whatever a
//! backend answers).
//!
//! Reading an entry whose tags are those the reader expects (the usual
//! case: same function, same arguments) allocates nothing for them: the
//! reader's own tags are shared.

use std::io::Write as _;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::entry::{Entry, Tags};

/// How values are encoded in remote layers.
///
/// # Examples
///
/// ```
/// use cachewright::{Cache, Codec, LayerConfig};
/// use cachewright::backends::MemoryBackend;
/// use std::sync::Arc;
///
/// assert_eq!(Codec::default(), Codec::Json);
/// let shared = Arc::new(MemoryBackend::new());
/// let writer = Cache::builder().codec(Codec::Json).layer(LayerConfig::shared(shared.clone())).build();
/// let reader = Cache::builder().codec(Codec::Json).layer(LayerConfig::shared(shared)).build();
/// let key = writer.key("user", &1);
/// writer.set(&key, vec![1u32, 2], None);
/// assert_eq!(reader.get::<Vec<u32>>(&key), Some(vec![1, 2]), "read back by another cache");
/// ```
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
    /// Not a cachewright envelope, or one of another format version or codec.
    #[error("not a cachewright envelope of this format version and codec")]
    Format,
    /// Written under another key: whatever the backend answered, it is not
    /// this key's entry.
    #[error("the stored entry belongs to another key")]
    OtherKey,
    /// Written for another value type (another function's, or a type that
    /// was renamed or moved): never decoded as this one.
    #[error("the stored entry holds another value type")]
    OtherType,
    /// Larger than the cache's `max_value_bytes`: not decoded.
    #[error("the stored entry is larger than the cache's max_value_bytes")]
    TooLarge,
    /// The body does not hold a value of the expected type.
    #[error("the stored value does not decode as the expected type: {0}")]
    Body(String),
}

impl DecodeError {
    /// What went wrong, without the codec's message (which may quote the
    /// stored value): for logs above debug level.
    pub(crate) fn summary(&self) -> &'static str {
        match self {
            DecodeError::Format => "not an envelope of this format version and codec",
            DecodeError::OtherKey => "written under another key",
            DecodeError::OtherType => "written for another value type",
            DecodeError::TooLarge => "larger than max_value_bytes",
            DecodeError::Body(_) => "the value does not decode as the expected type",
        }
    }
}

const PREFIX: &[u8] = b"cachewright:4";
/// `cachewright:4j c=<20> f=<20> s=<20> n=<1> v=<16> t=<16> h=<16> k=<16>\n`
pub(crate) const HEADER_LEN: usize =
    PREFIX.len() + 1 + 3 + 20 + 3 + 20 + 3 + 20 + 3 + 1 + 3 + 16 + 3 + 16 + 3 + 16 + 3 + 16 + 1;
/// Where the content hash (of the tags line and the value) is.
pub(crate) const HASH_AT: std::ops::Range<usize> = (HEADER_LEN - 36)..(HEADER_LEN - 20);
/// Where the key's hash is.
const KEY_AT: std::ops::Range<usize> = (HEADER_LEN - 17)..(HEADER_LEN - 1);

/// The hash of a key as the header records it.
fn key_hash(urn: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(urn.as_bytes())
}

/// How a use case's entries are written: the codec, and the schema version
/// its user set (`CacheBuilder::schema`, `#[cached(schema = N)]`), which
/// joins the value type in the fingerprint: bumping it turns every entry
/// written before into a miss.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Format {
    pub(crate) codec: Codec,
    pub(crate) schema: u64,
}

impl Format {
    pub(crate) const fn new(codec: Codec, schema: u64) -> Self {
        Format { codec, schema }
    }
}

/// The fingerprint of a value type at a schema version: a hash of the type's
/// full path and generic arguments as the compiler names them, and of the
/// version. Bytes written for another type, another schema version (or by a
/// build whose compiler names the type otherwise) are a miss, never a value
/// that happens to deserialize as this one.
fn type_fingerprint<V: ?Sized>(schema: u64) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(std::any::type_name::<V>().as_bytes(), schema)
}

/// The size of `value` encoded as JSON, counted without keeping the bytes:
/// the default weight of a value under a byte bound. A value that does not
/// encode weighs nothing beyond its entry.
pub(crate) fn encoded_size<V: Serialize>(value: &V) -> u64 {
    struct Count(u64);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    match serde_json::to_writer(&mut c, value) {
        Ok(()) => c.0,
        Err(_) => 0,
    }
}

/// Encodes `entry`, stored under `urn`, for a remote layer.
pub(crate) fn encode<V: Serialize>(
    urn: &str,
    entry: &Entry<V>,
    format: Format,
) -> Result<Vec<u8>, String> {
    let codec = format.codec;
    let mut rest = Vec::with_capacity(64);
    for (i, t) in entry.tags.iter().enumerate() {
        if i > 0 {
            rest.push(b' ');
        }
        // Writing into a Vec cannot fail.
        let _ = write!(rest, "{}:", t.len());
        rest.extend_from_slice(t.as_bytes());
    }
    rest.push(b'\n');
    match codec {
        Codec::Json => serde_json::to_writer(&mut rest, &entry.value).map_err(|e| e.to_string())?,
        #[cfg(feature = "msgpack")]
        Codec::MessagePack => {
            rmp_serde::encode::write_named(&mut rest, &entry.value).map_err(|e| e.to_string())?
        }
    };
    let fingerprint = type_fingerprint::<V>(format.schema);
    let hash = xxhash_rust::xxh3::xxh3_64_with_seed(&rest, fingerprint ^ u64::from(entry.negative));
    let mut out = Vec::with_capacity(HEADER_LEN + rest.len());
    out.extend_from_slice(PREFIX);
    out.push(codec.tag());
    out.extend_from_slice(
        format!(
            " c={:020} f={:020} s={:020} n={} v={:016x} t={:016x} h={:016x} k={:016x}\n",
            entry.stamp,
            entry.fresh_until_ms,
            entry.stale_until_ms,
            u8::from(entry.negative),
            format.schema,
            fingerprint,
            hash,
            key_hash(urn),
        )
        .as_bytes(),
    );
    debug_assert_eq!(out.len(), HEADER_LEN);
    out.extend_from_slice(&rest);
    Ok(out)
}

fn field(header: &[u8], at: usize, len: usize, name: u8) -> Option<&[u8]> {
    let f = header.get(at..at + 3 + len)?;
    (f[0] == b' ' && f[1] == name && f[2] == b'=').then(|| &f[3..])
}

/// A fixed-width run of ASCII digits (on the read path of every remote hit:
/// no UTF-8 check or generic parse needed for what [`encode`] writes).
fn number(b: &[u8]) -> Option<u64> {
    b.iter().try_fold(0u64, |n, &d| {
        if d.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        } else {
            None
        }
    })
}

/// Sixteen lowercase hex digits.
fn hex(b: &[u8]) -> Option<u64> {
    if b.len() != 16 {
        return None;
    }
    b.iter().try_fold(0u64, |n, &d| {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            _ => return None,
        };
        Some((n << 4) | u64::from(v))
    })
}

/// The tags of a tags line: each `<len>:<text>`, separated by one space.
/// Yields `None` once for a malformed line.
fn tags_of(mut line: &[u8]) -> impl Iterator<Item = Option<&str>> {
    let mut broken = false;
    std::iter::from_fn(move || {
        if broken || line.is_empty() {
            return None;
        }
        let tag = (|| {
            let colon = line.iter().position(|&b| b == b':')?;
            let len: usize = number(&line[..colon])
                .filter(|_| colon > 0)?
                .try_into()
                .ok()?;
            let end = (colon + 1).checked_add(len)?;
            let text = line.get(colon + 1..end)?;
            let after = line.get(end..)?;
            line = match after.split_first() {
                None => after,
                Some((b' ', rest)) if !rest.is_empty() => rest,
                _ => return None,
            };
            std::str::from_utf8(text).ok()
        })();
        broken = tag.is_none();
        Some(tag)
    })
}

/// Decodes bytes written by [`encode`] with the same codec, under `urn`.
/// `expected` are the tags the reader would give the entry: when the
/// stored ones are the same, the entry shares them.
pub(crate) fn decode<V: DeserializeOwned>(
    bytes: &[u8],
    format: Format,
    urn: &str,
    expected: &Tags,
) -> Result<Entry<V>, DecodeError> {
    let (meta, fingerprint, body) = parse(bytes, format, urn, expected)?;
    if fingerprint != type_fingerprint::<V>(format.schema) {
        return Err(DecodeError::OtherType);
    }
    let value: V = match format.codec {
        Codec::Json => {
            serde_json::from_slice(body).map_err(|e| DecodeError::Body(e.to_string()))?
        }
        #[cfg(feature = "msgpack")]
        Codec::MessagePack => {
            rmp_serde::from_slice(body).map_err(|e| DecodeError::Body(e.to_string()))?
        }
    };
    Ok(meta.map(|()| value))
}

/// What an entry's header and tags say, whatever its value's type, if it
/// was written in `format` (codec and schema version): for checking that a
/// stored entry is live without decoding it (`exists`).
pub(crate) fn decode_meta(
    bytes: &[u8],
    format: Format,
    urn: &str,
    expected: &Tags,
) -> Result<Entry<()>, DecodeError> {
    parse(bytes, format, urn, expected).map(|(meta, _, _)| meta)
}

/// What an entry's header and tags say, whatever its value's type and
/// schema version, if it was written with `codec`: for inspection.
pub(crate) fn decode_meta_any(
    bytes: &[u8],
    codec: Codec,
    urn: &str,
) -> Result<Entry<()>, DecodeError> {
    parse_with(bytes, codec, None, urn, &Tags::default()).map(|(meta, _, _)| meta)
}

/// The header and tags of an entry written in `format` (of another schema
/// version: [`DecodeError::OtherType`]), its type fingerprint and its body.
fn parse<'b>(
    bytes: &'b [u8],
    format: Format,
    urn: &str,
    expected: &Tags,
) -> Result<(Entry<()>, u64, &'b [u8]), DecodeError> {
    parse_with(bytes, format.codec, Some(format.schema), urn, expected)
}

/// [`parse`], the schema version checked only when `want` is given.
fn parse_with<'b>(
    bytes: &'b [u8],
    codec: Codec,
    want: Option<u64>,
    urn: &str,
    expected: &Tags,
) -> Result<(Entry<()>, u64, &'b [u8]), DecodeError> {
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
    let schema = next(16, b'v').and_then(hex).ok_or(DecodeError::Format)?;
    let fingerprint = next(16, b't').and_then(hex).ok_or(DecodeError::Format)?;
    next(16, b'h').and_then(hex).ok_or(DecodeError::Format)?;
    let key = next(16, b'k').and_then(hex).ok_or(DecodeError::Format)?;
    debug_assert_eq!(header[KEY_AT].len(), 16);
    if key != key_hash(urn) {
        return Err(DecodeError::OtherKey);
    }
    if want.is_some_and(|w| w != schema) {
        return Err(DecodeError::OtherType);
    }
    let rest = &bytes[HEADER_LEN..];
    let nl = rest
        .iter()
        .position(|&b| b == b'\n')
        .ok_or(DecodeError::Format)?;
    let (line, body) = (&rest[..nl], &rest[nl + 1..]);
    let same = {
        let mut stored = tags_of(line);
        expected.iter().all(|t| stored.next() == Some(Some(&**t))) && stored.next().is_none()
    };
    let tags = if same {
        expected.clone()
    } else {
        // Judged by every tag it was stored with and every tag the reader
        // expects: a template added since does not exempt old entries.
        let mut all: Vec<Box<str>> = tags_of(line)
            .map(|t| t.map(Box::<str>::from))
            .collect::<Option<Vec<_>>>()
            .ok_or(DecodeError::Format)?;
        for t in expected.iter() {
            if !all.contains(t) {
                all.push(t.clone());
            }
        }
        all.into()
    };
    let meta = Entry {
        value: (),
        stamp: created,
        fresh_until_ms: fresh,
        stale_until_ms: stale.max(fresh),
        negative,
        tags,
    };
    Ok((meta, fingerprint, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    const URN: &str = "urn:t:v1:user:1#f";
    const J: Format = Format::new(Codec::Json, 0);

    fn tags() -> Tags {
        vec!["user:1".into(), "org:2".into()].into()
    }

    fn entry() -> Entry<Vec<String>> {
        let mut e = Entry::new(
            vec!["a".to_string()],
            1_000,
            Some(Duration::from_secs(5)),
            Duration::from_secs(2),
        );
        e.tags = tags();
        e
    }

    #[test]
    fn round_trips_and_reads_as_text() {
        let bytes = encode(URN, &entry(), J).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.starts_with("cachewright:4j c=00000000000001000000 f=00000000000000006000"),
            "{text}"
        );
        assert!(text.ends_with("\n6:user:1 5:org:2\n[\"a\"]"), "{text}");
        let expected = tags();
        let back: Entry<Vec<String>> = decode(&bytes, J, URN, &expected).unwrap();
        assert_eq!(back, entry());
        assert!(
            Arc::ptr_eq(&back.tags, &expected),
            "the expected tags are shared, not rebuilt"
        );
    }

    #[test]
    fn other_stored_tags_are_read_with_the_expected_ones() {
        let mut e = entry();
        e.tags = vec!["a b".into(), "c:1 2:x".into(), "".into()].into();
        let bytes = encode(URN, &e, J).unwrap();
        let back: Entry<Vec<String>> = decode(&bytes, J, URN, &tags()).unwrap();
        let union: Tags = vec![
            "a b".into(),
            "c:1 2:x".into(),
            "".into(),
            "user:1".into(),
            "org:2".into(),
        ]
        .into();
        assert_eq!(
            back.tags, union,
            "spaces and colons inside tags survive; the reader's tags are added"
        );
        e.tags = Tags::default();
        let bytes = encode(URN, &e, J).unwrap();
        let back: Entry<Vec<String>> = decode(&bytes, J, URN, &tags()).unwrap();
        assert_eq!(
            back.tags,
            tags(),
            "an entry stored without the tags a reader expects is judged by them"
        );
        let prefix: Tags = vec!["user:1".into()].into();
        let back: Entry<Vec<String>> =
            decode(&encode(URN, &entry(), J).unwrap(), J, URN, &prefix).unwrap();
        assert_eq!(
            back.tags,
            tags(),
            "more stored tags than expected: all kept"
        );
    }

    #[test]
    fn an_entry_of_another_key_is_refused() {
        let bytes = encode(URN, &entry(), J).unwrap();
        assert!(matches!(
            decode::<Vec<String>>(&bytes, J, "urn:t:v1:user:2#f", &tags()),
            Err(DecodeError::OtherKey)
        ));
    }

    #[test]
    fn garbage_other_types_and_other_formats_are_errors_not_panics() {
        let bytes = encode(URN, &entry(), J).unwrap();
        let t = tags();
        assert!(matches!(
            decode::<u32>(&bytes, J, URN, &t),
            Err(DecodeError::OtherType)
        ));
        // The same JSON, but written for another type: a miss, not a value
        // that happens to deserialize.
        #[derive(serde::Deserialize, Debug)]
        struct Names(#[allow(dead_code)] Vec<String>);
        assert!(matches!(
            decode::<Names>(&bytes, J, URN, &t),
            Err(DecodeError::OtherType)
        ));
        // The same type at another schema version: a miss too.
        assert!(matches!(
            decode::<Vec<String>>(&bytes, Format::new(Codec::Json, 2), URN, &t),
            Err(DecodeError::OtherType)
        ));
        let mut bad_tags = bytes.clone();
        bad_tags[HEADER_LEN] = b'9';
        let mut bad_hex = bytes.clone();
        bad_hex[HASH_AT.start] = b'G';
        for junk in [
            &b""[..],
            b"garbage",
            b"cachewright:9j c=",
            &bytes[..HEADER_LEN],
            &bytes[..HEADER_LEN - 3],
            &bytes[..HEADER_LEN + 4],
            &bad_tags,
            &bad_hex,
        ] {
            assert!(decode::<Vec<String>>(junk, J, URN, &t).is_err());
        }
        let mut other_version = bytes.clone();
        other_version[7] = b'1';
        assert!(matches!(
            decode::<Vec<String>>(&other_version, J, URN, &t),
            Err(DecodeError::Format)
        ));
    }

    #[test]
    fn malformed_tag_lines_are_errors() {
        for line in [
            &b"x:ab"[..],
            b"3:ab",
            b"2:ab ",
            b"2:ab  1:c",
            b":ab",
            b"2:abc",
        ] {
            assert!(
                tags_of(line).any(|t| t.is_none()),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
        assert!(
            tags_of(b"18446744073709551615:x").any(|t| t.is_none()),
            "a length that overflows is malformed, not a panic"
        );
        let ok: Vec<_> = tags_of(b"2:ab 1: ").collect();
        assert_eq!(ok, vec![Some("ab"), Some(" ")]);
    }

    #[test]
    fn the_schema_version_is_checked_without_the_value() {
        let bytes = encode(URN, &entry(), Format::new(Codec::Json, 7)).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains(" v=0000000000000007 "), "{text}");
        let t = tags();
        assert!(decode_meta(&bytes, Format::new(Codec::Json, 7), URN, &t).is_ok());
        assert!(matches!(
            decode_meta(&bytes, J, URN, &t),
            Err(DecodeError::OtherType)
        ));
    }

    #[test]
    fn header_numbers_are_digits_only() {
        assert_eq!(number(b"00000000000000001000"), Some(1_000));
        assert_eq!(number(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(number(b"18446744073709551616"), None, "overflow");
        for junk in [
            &b"0000000000000000+100"[..],
            b"0000000000000000 100",
            b"000000000000000010.0",
        ] {
            assert_eq!(number(junk), None);
        }
        assert_eq!(hex(b"00000000000000ff"), Some(255));
        assert_eq!(hex(b"00000000000000FF"), None, "written lowercase");
    }

    #[test]
    fn the_hash_ranges_hold_exactly_the_hex_digits() {
        let a = encode(URN, &entry(), J).unwrap();
        assert_eq!(&a[HASH_AT.start - 3..HASH_AT.start], b" h=");
        assert_eq!(&a[HASH_AT.end..HASH_AT.end + 3], b" k=");
        assert!(hex(&a[HASH_AT]).is_some());
        assert_eq!(&a[KEY_AT.start - 3..KEY_AT.start], b" k=");
        assert_eq!(hex(&a[KEY_AT]), Some(key_hash(URN)));
    }

    #[test]
    fn equal_values_hash_alike_whatever_their_times() {
        let a = encode(URN, &entry(), J).unwrap();
        let mut later = entry();
        later.stamp = 9_000;
        later.fresh_until_ms = 99_000;
        let b = encode(URN, &later, J).unwrap();
        assert_eq!(a[HASH_AT], b[HASH_AT]);
        assert_ne!(a[..HEADER_LEN], b[..HEADER_LEN]);
        let mut other = entry();
        other.value.push("b".into());
        assert_ne!(a[HASH_AT], encode(URN, &other, J).unwrap()[HASH_AT]);
        let mut retagged = entry();
        retagged.tags = vec!["user:1".into()].into();
        assert_ne!(
            a[HASH_AT],
            encode(URN, &retagged, J).unwrap()[HASH_AT],
            "tags are part of the content"
        );
    }

    #[cfg(feature = "msgpack")]
    #[test]
    fn msgpack_round_trips_and_is_not_read_as_json() {
        let bytes = encode(URN, &entry(), Format::new(Codec::MessagePack, 0)).unwrap();
        let back: Entry<Vec<String>> =
            decode(&bytes, Format::new(Codec::MessagePack, 0), URN, &tags()).unwrap();
        assert_eq!(back, entry());
        assert!(decode::<Vec<String>>(&bytes, J, URN, &tags()).is_err());
    }

    mod fuzz {
        //! Decoding never panics and never hands back another key's or
        //! type's value, whatever the bytes: random bytes, and valid
        //! envelopes with bytes flipped, cut or appended. The case count
        //! follows `PROPTEST_CASES` (default 20 000 per property; the issue's
        //! longer run: `PROPTEST_CASES=1000000 cargo test --release -p
        //! cachewright-runtime --lib envelope::tests::fuzz`).
        use super::*;
        use proptest::prelude::*;

        fn cases() -> u32 {
            std::env::var("PROPTEST_CASES")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(20_000)
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(cases()))]

            #[test]
            fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
                let _ = decode::<Vec<String>>(&bytes, J, URN, &tags());
                let _ = decode::<u64>(&bytes, J, URN, &tags());
            }

            #[test]
            fn mutated_envelopes_never_panic_or_change_key(
                flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
                cut in any::<usize>(),
                tail in proptest::collection::vec(any::<u8>(), 0..20),
            ) {
                let mut bytes = encode(URN, &entry(), J).unwrap();
                prefix_tail_flip(&mut bytes, &flips, cut, &tail);
                if let Ok(e) = decode::<Vec<String>>(&bytes, J, URN, &tags()) {
                    // Whatever survived decodes as this key's, this type's.
                    prop_assert!(e.stale_until_ms >= e.fresh_until_ms);
                }
                prop_assert!(decode::<Vec<String>>(&bytes, J, "urn:t:v1:user:2#f", &tags()).is_err()
                    || bytes[KEY_AT] != encode(URN, &entry(), J).unwrap()[KEY_AT]);
            }

            #[test]
            fn tag_lines_never_panic(line in proptest::collection::vec(any::<u8>(), 0..120)) {
                let n = tags_of(&line).take(200).count();
                prop_assert!(n <= line.len() + 1);
            }
        }

        fn prefix_tail_flip(bytes: &mut Vec<u8>, flips: &[(usize, u8)], cut: usize, tail: &[u8]) {
            for &(at, b) in flips {
                let i = at % bytes.len();
                bytes[i] = b;
            }
            if cut % 3 == 0 {
                bytes.truncate(cut % (bytes.len() + 1));
            }
            bytes.extend_from_slice(tail);
        }
    }
}
