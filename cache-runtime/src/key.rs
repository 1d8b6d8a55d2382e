//! Key URNs and the key material of L1.
//!
//! A key is a URN, built here and nowhere else:
//!
//! ```text
//! urn:<namespace>:<version>:<key type>:<id>?<name>=<value>&...#<use case>
//! ```
//!
//! Every value, and the key type, is percent-escaped: only `A-Z a-z 0-9 -
//! . _` stand for themselves, every other byte (of its UTF-8 form) becomes
//! `%XX`. `~` is escaped too: it begins internal keys (`~tag:`, `~lease:`),
//! which no user key can therefore produce. A template
//! may only separate two placeholders with a character that escaping never
//! lets through (the macros enforce it), so no two different calls of one use
//! case render the same URN; the use case after `#` keeps use cases apart.

use std::fmt::{self, Display, Write as _};
use std::hash::Hash;

use crate::entry::Tags;

/// One piece of a parsed key or tag template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Segment {
    /// Text written as it is (checked at compile time).
    Text(&'static str),
    /// The value at this index of the call's key values, escaped.
    Value(usize),
}

/// A cache key: the URN of one cached value.
///
/// Build it with [`Cache::key`](crate::Cache::key) for the direct API; the
/// macros build the same URNs from the function's arguments.
///
/// # Examples
///
/// ```
/// use cachewright::Key;
///
/// let key = Key::new("app", "v1", "user", &"a:b").arg("page", &2).use_case("profile");
/// assert_eq!(key.as_str(), "urn:app:v1:user:a%3Ab?page=2#profile");
/// assert_eq!(key.entity(), "user:a%3Ab");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    urn: String,
    entity_start: usize,
    entity_end: usize,
    has_args: bool,
}

impl Key {
    /// The key of entity `key_type`/`id` in `namespace` at `version`.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::{Cache, Key};
    ///
    /// let key = Key::new("shop", "v3", "user", &42);
    /// assert_eq!(key.as_str(), "urn:shop:v3:user:42");
    /// let cache = Cache::builder().namespace("shop").version("v3").build();
    /// assert_eq!(cache.key("user", &42), key, "what Cache::key builds");
    /// ```
    pub fn new(namespace: &str, version: &str, key_type: &str, id: &dyn Display) -> Self {
        let mut urn = prefix(namespace, version);
        let entity_start = urn.len();
        escape_into(&mut urn, &key_type);
        urn.push(':');
        escape_into(&mut urn, id);
        let entity_end = urn.len();
        Key {
            urn,
            entity_start,
            entity_end,
            has_args: false,
        }
    }

    /// Adds an argument that sets this key apart from others of the same entity.
    ///
    /// Arguments are kept in the order they are added.
    ///
    /// # Examples
    ///
    /// ```
    /// let key = cachewright::Key::new("app", "v1", "user", &7)
    ///     .arg("page", &2)
    ///     .arg("lang", &"en");
    /// assert_eq!(key.as_str(), "urn:app:v1:user:7?page=2&lang=en");
    /// assert_eq!(key.entity(), "user:7", "arguments do not change the entity");
    /// ```
    pub fn arg(mut self, name: &str, value: &dyn Display) -> Self {
        let (base, fragment) = self.split_fragment();
        let mut urn = String::with_capacity(self.urn.len() + 16);
        urn.push_str(base);
        urn.push(if self.has_args { '&' } else { '?' });
        escape_into(&mut urn, &name);
        urn.push('=');
        escape_into(&mut urn, value);
        if let Some(f) = fragment {
            urn.push('#');
            urn.push_str(f);
        }
        self.urn = urn;
        self.has_args = true;
        self
    }

    /// Names the use case this key belongs to (the URN's `#` part).
    ///
    /// # Examples
    ///
    /// ```
    /// let key = cachewright::Key::new("app", "v1", "user", &7).use_case("Profile");
    /// assert_eq!(key.as_str(), "urn:app:v1:user:7#Profile");
    /// assert_eq!(key.clone().use_case("Avatar").as_str(), "urn:app:v1:user:7#Avatar", "replaced");
    /// ```
    pub fn use_case(mut self, name: &str) -> Self {
        let (base, _) = self.split_fragment();
        let mut urn = String::with_capacity(base.len() + 1 + name.len());
        urn.push_str(base);
        urn.push('#');
        urn.push_str(name);
        self.urn = urn;
        self
    }

    /// The URN.
    ///
    /// # Examples
    ///
    /// ```
    /// let key = cachewright::Key::new("app", "v1", "city", &"São Paulo");
    /// assert_eq!(key.as_str(), "urn:app:v1:city:S%C3%A3o%20Paulo");
    /// ```
    pub fn as_str(&self) -> &str {
        &self.urn
    }

    /// The entity (`<key type>:<id>`, escaped), which is also the key's
    /// implicit tag.
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = cachewright::Cache::builder().build();
    /// let key = cache.key("user", &7).arg("page", &2);
    /// assert_eq!(key.entity(), "user:7");
    /// cache.set(&key, 1u8, None);
    /// cache.invalidate_tags([key.entity()]);
    /// assert!(!cache.exists(&key), "the entity is the key's implicit tag");
    /// ```
    pub fn entity(&self) -> &str {
        &self.urn[self.entity_start..self.entity_end]
    }

    fn split_fragment(&self) -> (&str, Option<&str>) {
        match self.urn[self.entity_end..].find('#') {
            Some(i) => {
                let at = self.entity_end + i;
                (&self.urn[..at], Some(&self.urn[at + 1..]))
            }
            None => (&self.urn, None),
        }
    }

    pub(crate) fn from_parts(urn: String, entity_start: usize, entity_end: usize) -> Self {
        let has_args = urn[entity_end..].starts_with('?');
        Key {
            urn,
            entity_start,
            entity_end,
            has_args,
        }
    }
}

impl Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.urn)
    }
}

impl AsRef<str> for Key {
    fn as_ref(&self) -> &str {
        &self.urn
    }
}

/// Writes `value`'s `Display` form into `out`, percent-escaped.
pub fn escape_into(out: &mut String, value: &(impl Display + ?Sized)) {
    struct Escaper<'a>(&'a mut String);
    impl fmt::Write for Escaper<'_> {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            for &b in s.as_bytes() {
                if is_unreserved(b) {
                    self.0.push(b as char);
                } else {
                    const HEX: &[u8; 16] = b"0123456789ABCDEF";
                    self.0.push('%');
                    self.0.push(HEX[(b >> 4) as usize] as char);
                    self.0.push(HEX[(b & 15) as usize] as char);
                }
            }
            Ok(())
        }
    }
    // Writing into a String cannot fail; a Display impl that reports an error
    // still leaves whatever it wrote, which is deterministic for that value.
    let _ = write!(Escaper(out), "{value}");
}

/// Whether escaping lets `b` through unchanged (`~` never: it marks
/// internal keys).
pub(crate) const fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')
}

/// The entity tag of `key_type`/`id`: both escaped, exactly as in the key's
/// URN, so that invalidating an entity matches every key of it.
pub(crate) fn entity_tag(key_type: &str, id: &dyn Display) -> String {
    let mut t = String::with_capacity(key_type.len() + 16);
    escape_into(&mut t, &key_type);
    t.push(':');
    escape_into(&mut t, id);
    t
}

/// Renders a template of `segments` with `values` into `out`.
pub(crate) fn render(out: &mut String, segments: &[Segment], values: &[&dyn Display]) {
    for seg in segments {
        match *seg {
            Segment::Text(t) => out.push_str(t),
            Segment::Value(i) => match values.get(i) {
                Some(v) => escape_into(out, *v),
                // The macros index only values they pass; an index past the
                // end is a bug in generated code, rendered visibly.
                None => out.push_str("%00"),
            },
        }
    }
}

/// The borrowed key material of one call: a tuple of references to the
/// arguments (or fields of them) that identify the cached value.
///
/// L1 stores the owned form ([`KeyRef::Owned`]) and is searched with the
/// borrowed one, so a hit builds no key and allocates nothing. The hash of a
/// borrowed tuple equals the hash of its owned form (the `Borrow` contract),
/// so the two find the same slot, and equality is checked on the values
/// themselves: a hash collision never serves another key's value.
pub trait KeyRef: Hash {
    /// The owned key stored in L1.
    type Owned: Hash + Eq + Send + Sync + 'static;
    /// Whether `owned` is this key.
    fn matches(&self, owned: &Self::Owned) -> bool;
    /// The owned form of this key.
    fn to_owned_key(&self) -> Self::Owned;
}

impl KeyRef for () {
    type Owned = ();
    #[inline]
    fn matches(&self, _: &()) -> bool {
        true
    }
    #[inline]
    fn to_owned_key(&self) {}
}

macro_rules! key_ref_tuple {
    ($($name:ident $idx:tt),+) => {
        impl<'a, $($name),+> KeyRef for ($(&'a $name,)+)
        where
            $($name: ?Sized + ToOwned + Hash + Eq, <$name as ToOwned>::Owned: Hash + Eq + Send + Sync + 'static,)+
        {
            type Owned = ($(<$name as ToOwned>::Owned,)+);
            #[inline]
            fn matches(&self, owned: &Self::Owned) -> bool {
                $( *self.$idx == *::std::borrow::Borrow::<$name>::borrow(&owned.$idx) )&&+
            }
            #[inline]
            fn to_owned_key(&self) -> Self::Owned {
                ($(ToOwned::to_owned(self.$idx),)+)
            }
        }
    };
}

key_ref_tuple!(A 0);
key_ref_tuple!(A 0, B 1);
key_ref_tuple!(A 0, B 1, C 2);
key_ref_tuple!(A 0, B 1, C 2, D 3);
key_ref_tuple!(A 0, B 1, C 2, D 3, E 4);
key_ref_tuple!(A 0, B 1, C 2, D 3, E 4, F 5);
key_ref_tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);
key_ref_tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);
key_ref_tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8);
key_ref_tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9);
key_ref_tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10);
key_ref_tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11);

/// The key and tag templates of a cached function, as the macro parsed
/// them; rendered with a call's values into its URN and tags, here and
/// nowhere else.
#[doc(hidden)]
#[derive(Debug)]
pub struct KeyTemplate {
    /// The key type (the template's text before the first placeholder).
    pub key_type: &'static str,
    /// The id template.
    pub id: &'static [Segment],
    /// The arguments outside the template: name and value index.
    pub args: &'static [(&'static str, usize)],
    /// Tag templates.
    pub tags: &'static [&'static [Segment]],
}

impl KeyTemplate {
    /// The URN of a call with `values` in `namespace`/`version`, for use
    /// case `use_case`, and its tags: first its entity (key type and first
    /// value, `user:7` for "user:<id>:posts:<page>"), then the tag templates.
    pub(crate) fn render(
        &self,
        namespace: &str,
        version: &str,
        use_case: &str,
        values: &[&dyn Display],
    ) -> (Key, Tags) {
        let mut urn = prefix(namespace, version);
        let entity_start = urn.len();
        // Escaped as `Key::new` escapes it (the macros allow only characters
        // escaping keeps, so this is the text itself).
        escape_into(&mut urn, self.key_type);
        if !self.id.is_empty() {
            urn.push(':');
            render(&mut urn, self.id, values);
        }
        let entity_end = urn.len();
        for (i, (name, idx)) in self.args.iter().enumerate() {
            urn.push(if i == 0 { '?' } else { '&' });
            urn.push_str(name);
            urn.push('=');
            match values.get(*idx) {
                Some(v) => escape_into(&mut urn, *v),
                None => urn.push_str("%00"),
            }
        }
        urn.push('#');
        urn.push_str(use_case);
        let mut tags = Vec::with_capacity(1 + self.tags.len());
        let mut entity = String::with_capacity(self.key_type.len() + 16);
        escape_into(&mut entity, self.key_type);
        if let Some(first) = self.id.iter().find_map(|s| match s {
            Segment::Value(i) => Some(*i),
            Segment::Text(_) => None,
        }) {
            entity.push(':');
            if let Some(v) = values.get(first) {
                escape_into(&mut entity, *v);
            }
        }
        tags.push(entity.into_boxed_str());
        for t in render_tags(self.tags, values) {
            if !tags.iter().any(|have| **have == *t) {
                tags.push(t.into_boxed_str());
            }
        }
        (
            Key::from_parts(urn, entity_start, entity_end),
            Tags::from(tags),
        )
    }
}

/// Renders tag templates with a call's values (as keys render them).
pub(crate) fn render_tags(templates: &[&[Segment]], values: &[&dyn Display]) -> Vec<String> {
    templates
        .iter()
        .map(|t| {
            let mut s = String::new();
            render(&mut s, t, values);
            s
        })
        .collect()
}

/// A tag as templates render it: `tag("org", &5)` is the tag of
/// `tags = ["org:<org_id>"]` for `org_id = 5`, and the entity tag of
/// `key = "org:<id>"` for `id = 5`. Values are escaped exactly as in keys.
///
/// # Examples
///
/// ```
/// assert_eq!(cachewright::tag("user", &"a:b"), "user:a%3Ab");
/// ```
pub fn tag(prefix: &str, value: &dyn Display) -> String {
    let mut t = String::with_capacity(prefix.len() + 16);
    t.push_str(prefix);
    t.push(':');
    escape_into(&mut t, value);
    t
}

/// The longest key a remote layer receives as it is; longer ones (long ids
/// or arguments) are stored under a hash of their text.
pub(crate) const MAX_STORED_KEY: usize = 250;

/// The key a remote layer stores `key` under: the key itself, or for a key
/// longer than [`MAX_STORED_KEY`], its namespace, version and key type
/// followed by `~h` and the 128-bit hash of the whole key. `~` never appears
/// in a user's escaped text, so a hashed key never equals a plain one; two
/// long keys share a stored key only if their 128-bit hashes collide, and
/// even then the envelope (which records a hash of the full key) refuses
/// the other's entry.
pub(crate) fn stored(key: &str) -> std::borrow::Cow<'_, str> {
    if key.len() <= MAX_STORED_KEY {
        return std::borrow::Cow::Borrowed(key);
    }
    let head = head_len(key).unwrap_or(0).min(96);
    let hash = xxhash_rust::xxh3::xxh3_128(key.as_bytes());
    std::borrow::Cow::Owned(format!("{}~h{hash:032x}", &key[..head]))
}

/// The length of `urn:<namespace>:<version>:<key type>:` at the start of
/// `urn` (or up to the key type when nothing follows it).
fn head_len(urn: &str) -> Option<usize> {
    if !urn.starts_with("urn:") {
        return None;
    }
    let after = urn.match_indices(':').nth(2)?.0 + 1;
    let rest = &urn[after..];
    let kind_end = rest.find([':', '?', '#']).unwrap_or(rest.len());
    Some(after + kind_end + usize::from(rest[kind_end..].starts_with(':')))
}

/// A key as logs above debug level show it: namespace, version, key type
/// and use case, never the id or the arguments (which may hold user data,
/// such as session tokens). `urn:shop:v1:session:abc?x=1#get` shows as
/// `urn:shop:v1:session:…#get`.
pub(crate) struct Shown<'a>(pub(crate) &'a str);

impl Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let urn = self.0;
        // `urn:`, namespace and version: three colons (escaped values hold
        // none).
        let Some(after) = urn
            .match_indices(':')
            .nth(2)
            .map(|(i, _)| i + 1)
            .filter(|_| urn.starts_with("urn:"))
        else {
            return f.write_str("…");
        };
        let rest = &urn[after..];
        let kind_end = rest.find([':', '?', '#']).unwrap_or(rest.len());
        f.write_str(&urn[..after + kind_end])?;
        if kind_end < rest.len() && !rest[kind_end..].starts_with('#') {
            f.write_str(":…")?;
        }
        if let Some(hash) = rest.rfind('#') {
            f.write_str(&rest[hash..])?;
        }
        Ok(())
    }
}

/// The URN prefix of every key of `namespace` at `version`:
/// `urn:<namespace>:<version>:`.
pub(crate) fn prefix(namespace: &str, version: &str) -> String {
    let mut p = String::with_capacity(64);
    p.push_str("urn:");
    escape_into(&mut p, &namespace);
    p.push(':');
    escape_into(&mut p, &version);
    p.push(':');
    p
}

/// Where the watermark of `tag` lives in a remote layer, under the
/// namespace's `prefix`. A key type cannot begin with `~`, so it never
/// meets an entry.
pub(crate) fn watermark_key(prefix: &str, tag: &str) -> String {
    format!("{prefix}~tag:{tag}")
}

/// Where the lease of a background writer's `key` lives.
pub(crate) fn lease_key(prefix: &str, key: &str) -> String {
    format!("{prefix}~lease:{key}")
}

/// Where the load lease of a `lock = true` use case's key (its URN) lives:
/// apart from writers' leases, whose names are free text.
pub(crate) fn lock_key(prefix: &str, urn: &str) -> String {
    format!("{prefix}~lock:{urn}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::hash::BuildHasher;

    /// Strings rich in the characters that break naive keys.
    fn nasty() -> impl Strategy<Value = String> {
        proptest::string::string_regex("[a:?#%/<> &=.~é\\u{0}-]{0,8}").unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        /// Different calls of one use case never share a URN.
        #[test]
        fn different_values_render_different_urns(
            a in (nasty(), nasty(), nasty()),
            b in (nasty(), nasty(), nasty()),
        ) {
            const ID: &[Segment] = &[Segment::Value(0), Segment::Text(":posts:"), Segment::Value(1)];
            let render_all = |v: &(String, String, String)| {
                let mut s = String::new();
                render(&mut s, ID, &[&v.0, &v.1]);
                Key::new("ns", "v1", "user", &s).arg("page", &v.2).use_case("uc").as_str().to_owned()
            };
            prop_assert_eq!(render_all(&a) == render_all(&b), a == b);
        }

        /// Escaping is injective and leaves no reserved character behind.
        #[test]
        fn escaping_is_injective(a in nasty(), b in nasty()) {
            let (mut ea, mut eb) = (String::new(), String::new());
            escape_into(&mut ea, &a);
            escape_into(&mut eb, &b);
            prop_assert_eq!(ea == eb, a == b);
            prop_assert!(ea.bytes().all(|c| is_unreserved(c) || c == b'%'));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(100_000))]

        /// Distinct use cases, key types, ids and argument sets never share
        /// a key, as rendered by templates and as stored in remote layers
        /// (long keys hashed). 100 000 cases.
        #[test]
        #[allow(clippy::type_complexity)]
        fn distinct_calls_never_share_a_key(
            a in ("[a-c:#]{1,3}", "[a-c_.-]{1,2}", nasty(), nasty(), proptest::option::of(nasty()), 0usize..3),
            b in ("[a-c:#]{1,3}", "[a-c_.-]{1,2}", nasty(), nasty(), proptest::option::of(nasty()), 0usize..3),
        ) {
            let urn = |c: &(String, String, String, String, Option<String>, usize)| {
                let (uc, kt, id, second, arg, pad) = c;
                // Some ids long enough for their key to be stored hashed.
                let id = format!("{id}{}", "z".repeat(pad * 130));
                let id_t: &[Segment] = &[Segment::Value(0), Segment::Text(":"), Segment::Value(1)];
                let args: &[(&str, usize)] = if arg.is_some() { &[("p", 2)] } else { &[] };
                let leaked_kt: &'static str = Box::leak(kt.clone().into_boxed_str());
                let leaked_id: &'static [Segment] = Box::leak(id_t.to_vec().into_boxed_slice());
                let leaked_args: &'static [(&'static str, usize)] = Box::leak(args.to_vec().into_boxed_slice());
                let t = KeyTemplate { key_type: leaked_kt, id: leaked_id, args: leaked_args, tags: &[] };
                let empty = String::new();
                let (key, _) = t.render("ns", "v1", uc, &[&id, second, arg.as_ref().unwrap_or(&empty)]);
                key.as_str().to_owned()
            };
            let (ua, ub) = (urn(&a), urn(&b));
            prop_assert_eq!(ua == ub, a == b, "{} vs {}", ua, ub);
            prop_assert_eq!(stored(&ua) == stored(&ub), a == b);
        }
    }

    #[test]
    fn escapes_every_reserved_byte() {
        let mut s = String::new();
        escape_into(&mut s, "a:b?c#d%e/f g<é>");
        assert_eq!(s, "a%3Ab%3Fc%23d%25e%2Ff%20g%3C%C3%A9%3E");
    }

    #[test]
    fn borrowed_and_owned_keys_hash_alike() {
        let state = foldhash::fast::FixedState::with_seed(7);
        let name = String::from("ada");
        let borrowed = (&7u64, name.as_str());
        let owned = borrowed.to_owned_key();
        assert_eq!(owned, (7u64, "ada".to_string()));
        assert_eq!(state.hash_one(borrowed), state.hash_one(&owned));
        assert!(borrowed.matches(&owned));
        assert!(!(&8u64, "ada").matches(&owned));
    }

    #[test]
    fn key_parts_and_args() {
        let k = Key::new("ns", "v2", "org", &"x y");
        assert_eq!(k.as_str(), "urn:ns:v2:org:x%20y");
        let k = k.use_case("uc").arg("a", &1).arg("b", &"?");
        assert_eq!(k.as_str(), "urn:ns:v2:org:x%20y?a=1&b=%3F#uc");
        assert_eq!(k.entity(), "org:x%20y");
    }

    #[test]
    fn long_keys_are_stored_under_a_hash_keeping_their_prefix() {
        let short = "urn:ns:v1:user:7#uc";
        assert_eq!(stored(short), short);
        let long = Key::new("ns", "v1", "doc", &"x".repeat(400)).use_case("uc");
        let other = Key::new("ns", "v1", "doc", &format!("{}y", "x".repeat(399))).use_case("uc");
        let (a, b) = (stored(long.as_str()), stored(other.as_str()));
        assert!(a.len() <= 100, "{a}");
        assert!(a.starts_with("urn:ns:v1:doc:~h"), "{a}");
        assert_ne!(a, b);
        assert_eq!(a, stored(long.as_str()), "stable");
        let p = prefix("ns", "v1");
        assert!(a.starts_with(&p), "a namespace's clear still reaches it");
        let tag = watermark_key(&p, &"t".repeat(300));
        assert!(stored(&tag).starts_with("urn:ns:v1:~tag:~h"));
    }

    #[test]
    fn logged_keys_hide_ids_and_arguments() {
        let shown = |u: &str| Shown(u).to_string();
        assert_eq!(
            shown("urn:shop:v1:session:tok_SECRET?x=SECRET#get"),
            "urn:shop:v1:session:…#get"
        );
        assert_eq!(shown("urn:shop:v1:daily#cfg"), "urn:shop:v1:daily#cfg");
        assert_eq!(shown("urn:shop:v1:~tag:user:SECRET"), "urn:shop:v1:~tag:…");
        assert_eq!(shown("not a urn SECRET"), "…");
        assert_eq!(shown("urn:x"), "…");
    }

    /// No user key aliases an internal one: `~` is always escaped (before,
    /// `Key::new(.., "~tag", &"x")` was the watermark key of tag `x`).
    #[test]
    fn user_keys_never_produce_internal_keys() {
        let p = prefix("ns", "v1");
        for (kt, id) in [("~tag", "x"), ("~lease", "bg:k"), ("a", "~tag:x")] {
            let k = Key::new("ns", "v1", kt, &id);
            assert!(!k.as_str()[p.len()..].contains('~'), "{k}");
            assert_ne!(k.as_str(), watermark_key(&p, id));
            assert_ne!(k.as_str(), lease_key(&p, id));
        }
    }

    /// Entity tags escape the key type exactly as keys do, from templates
    /// and from the direct API alike.
    #[test]
    fn entity_tags_match_the_entity_of_keys() {
        let k = Key::new("ns", "v1", "user profile", &1);
        assert_eq!(entity_tag("user profile", &1), k.entity());
        const ID: &[Segment] = &[Segment::Value(0)];
        let t = KeyTemplate {
            key_type: "user",
            id: ID,
            args: &[],
            tags: &[],
        };
        let (key, tags) = t.render("ns", "v1", "uc", &[&"a b"]);
        assert_eq!(&*tags[0], entity_tag("user", &"a b"));
        assert_eq!(key.entity(), Key::new("ns", "v1", "user", &"a b").entity());
    }
}
