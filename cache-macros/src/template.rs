//! Key and tag templates: `"user:<id>:posts:<page>"`, checked at compile time.

use proc_macro2::Span;
use syn::LitStr;

/// A `<...>` placeholder: a parameter, possibly followed by fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Placeholder {
    /// `id`, `user`, or `self`.
    pub(crate) root: String,
    /// `["id"]` for `<user.id>`.
    pub(crate) fields: Vec<String>,
}

impl Placeholder {
    pub(crate) fn text(&self) -> String {
        let mut s = self.root.clone();
        for f in &self.fields {
            s.push('.');
            s.push_str(f);
        }
        s
    }
}

#[derive(Clone, Debug)]
pub(crate) enum Piece {
    Text(String),
    Hole(Placeholder),
}

#[derive(Clone, Debug)]
pub(crate) struct Template {
    pub(crate) lit: LitStr,
    pub(crate) pieces: Vec<Piece>,
}

/// Characters a value's escaping always encodes; a literal between two
/// placeholders must contain one, or two calls could render alike.
fn is_reserved(c: char) -> bool {
    !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~'))
}

/// Characters that may not appear as template text: they delimit the URN's
/// parts (`?`, `#`, `&`, `=`), start an escape (`%`), or are not printable.
fn forbidden(c: char) -> bool {
    matches!(c, '?' | '#' | '&' | '=' | '%' | '<' | '>')
        || c.is_whitespace()
        || c.is_control()
        || !c.is_ascii()
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

impl Template {
    pub(crate) fn span(&self) -> Span {
        self.lit.span()
    }

    pub(crate) fn holes(&self) -> impl Iterator<Item = &Placeholder> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Hole(h) => Some(h),
            Piece::Text(_) => None,
        })
    }

    /// Parses `lit`; every problem is reported, at the literal.
    pub(crate) fn parse(lit: &LitStr, what: &str) -> Result<Template, syn::Error> {
        let src = lit.value();
        let mut errors: Vec<String> = Vec::new();
        let mut pieces = Vec::new();
        let mut rest = src.as_str();
        while !rest.is_empty() {
            match rest.find(['<', '>']) {
                Some(i) if rest.as_bytes()[i] == b'>' => {
                    errors.push(format!("unmatched `>` in {what} template `{src}`"));
                    rest = &rest[i + 1..];
                }
                Some(i) => {
                    if i > 0 {
                        pieces.push(Piece::Text(rest[..i].to_string()));
                    }
                    let after = &rest[i + 1..];
                    let Some(end) = after.find('>') else {
                        errors.push(format!("unclosed `<` in {what} template `{src}`: placeholders look like `<param>` or `<param.field>`"));
                        break;
                    };
                    let inner = after[..end].trim();
                    let parts: Vec<&str> = inner.split('.').collect();
                    if inner.is_empty() {
                        errors.push(format!("empty placeholder `<>` in {what} template `{src}`: name a parameter, as in `<id>`"));
                    } else if !parts.iter().all(|p| is_ident(p)) {
                        errors.push(format!("`<{inner}>` in {what} template `{src}` is not a placeholder: use `<param>` or `<param.field>`"));
                    } else {
                        pieces.push(Piece::Hole(Placeholder {
                            root: parts[0].to_string(),
                            fields: parts[1..].iter().map(|s| s.to_string()).collect(),
                        }));
                    }
                    rest = &after[end + 1..];
                }
                None => {
                    pieces.push(Piece::Text(rest.to_string()));
                    rest = "";
                }
            }
        }
        for p in &pieces {
            if let Piece::Text(t) = p {
                if let Some(c) = t.chars().find(|c| forbidden(*c)) {
                    errors.push(format!(
                        "{what} template `{src}` contains `{}`: template text may use letters, digits and `-._~:/@!$'()*+,;`",
                        c.escape_default()
                    ));
                }
            }
        }
        for w in pieces.windows(2) {
            if let [Piece::Hole(a), Piece::Hole(b)] = w {
                errors.push(format!(
                    "placeholders `<{}>` and `<{}>` touch in {what} template `{src}`: separate them with a character such as `:` or `/`, so that no two calls render the same key",
                    a.text(),
                    b.text()
                ));
            }
        }
        for w in pieces.windows(3) {
            if let [Piece::Hole(_), Piece::Text(t), Piece::Hole(b)] = w {
                if !t.chars().any(is_reserved) {
                    errors.push(format!(
                        "the text `{t}` before `<{}>` in {what} template `{src}` must contain a separator such as `:` or `/`: values may contain `{t}` themselves, so two calls could render the same key",
                        b.text()
                    ));
                }
            }
        }
        let mut err: Option<syn::Error> = None;
        for m in errors {
            let e = syn::Error::new(lit.span(), m);
            match &mut err {
                Some(all) => all.combine(e),
                None => err = Some(e),
            }
        }
        match err {
            Some(e) => Err(e),
            None => Ok(Template {
                lit: lit.clone(),
                pieces,
            }),
        }
    }

    /// Splits a key template into its key type and the id pieces after it.
    pub(crate) fn key_type(&self) -> Result<(String, Vec<Piece>), syn::Error> {
        let first = match self.pieces.first() {
            Some(Piece::Text(t)) => t.as_str(),
            _ => "",
        };
        let end = first
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.'))
            .unwrap_or(first.len());
        let key_type = &first[..end];
        if key_type.is_empty() {
            return Err(syn::Error::new(
                self.span(),
                "a key starts with its key type, the kind of entity it names: write `\"user:<id>\"`, not `\"<id>\"`",
            ));
        }
        let mut rest = first[end..].to_string();
        // The URN puts one `:` between key type and id; a template's own
        // first `:` is that separator.
        if rest.starts_with(':') {
            rest.remove(0);
        }
        let mut pieces = Vec::new();
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest));
        }
        pieces.extend(self.pieces.iter().skip(1).cloned());
        Ok((key_type.to_string(), pieces))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str) -> LitStr {
        LitStr::new(s, Span::call_site())
    }

    #[test]
    fn parses_holes_and_text() {
        let t = Template::parse(&lit("user:<id>:posts:<page.n>"), "key").unwrap();
        let holes: Vec<String> = t.holes().map(|h| h.text()).collect();
        assert_eq!(holes, ["id", "page.n"]);
        let (kt, rest) = t.key_type().unwrap();
        assert_eq!(kt, "user");
        assert!(matches!(&rest[0], Piece::Hole(h) if h.root == "id"));
    }

    #[test]
    fn rejects_ambiguous_and_malformed_templates() {
        for bad in [
            "u:<a><b>",
            "u:<a>x<b>",
            "u:<a",
            "u:<>",
            "u:<1x>",
            "u?:<a>",
            "u: <a>",
            "<id>",
        ] {
            let r = Template::parse(&lit(bad), "key").and_then(|t| t.key_type().map(|_| ()));
            assert!(r.is_err(), "{bad} should be rejected");
        }
        assert!(Template::parse(&lit("u:<a>-x:<b>"), "key").is_ok());
        assert!(Template::parse(&lit("daily_config"), "key").is_ok());
    }

    mod fuzz {
        //! Parsing never panics on any text, and what it accepts keeps its
        //! placeholders apart. `PROPTEST_CASES` sets the count (default
        //! 50 000; longer: `PROPTEST_CASES=2000000 cargo test --release -p
        //! cachewright-macros template::tests::fuzz`).
        use super::*;
        use proptest::prelude::*;

        fn cases() -> u32 {
            std::env::var("PROPTEST_CASES")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(50_000)
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(cases()))]

            #[test]
            fn any_text_parses_or_errors(src in "[a-z<>.:_ ?#%~{}0-9-]{0,24}|\\PC{0,16}") {
                if let Ok(t) = Template::parse(&lit(&src), "key") {
                    // Accepted: a key type comes out or a clear error, no panic.
                    let _ = t.key_type();
                    // No two placeholders touch: something lies between them.
                    let holes = t.pieces.windows(2).filter(|w| matches!(w, [Piece::Hole(_), Piece::Hole(_)])).count();
                    prop_assert_eq!(holes, 0, "{}", src);
                }
            }
        }
    }
}
