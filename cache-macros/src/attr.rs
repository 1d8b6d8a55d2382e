//! Parsing of `#[cached(...)]` arguments into a typed struct.
//!
//! Syntax errors stop parsing; every other mistake (unknown or repeated
//! argument, a value of the wrong kind) is collected, so one build reports
//! all of them, each at its token.

use proc_macro2::{Span, TokenStream};
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, Ident, Lit, LitStr, Path, Token};

mod writer;

pub(crate) use writer::{BgArgs, WriteArgs};

/// Collected errors, reported together (serde's `Ctxt`).
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, e: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }
    pub(crate) fn at(&mut self, span: Span, msg: impl std::fmt::Display) {
        self.push(syn::Error::new(span, msg));
    }
    /// An error covering every token of `tokens` (not only the first).
    pub(crate) fn spanned(&mut self, tokens: &impl quote::ToTokens, msg: impl std::fmt::Display) {
        self.push(syn::Error::new_spanned(tokens, msg));
    }
    pub(crate) fn finish(self) -> Result<(), syn::Error> {
        match self.0 {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// `name = value` or `name(...)`.
struct RawArg {
    name: Ident,
    value: RawValue,
}

enum RawValue {
    Expr(Expr),
    List(Punctuated<Adapter, Token![,]>),
    Bare,
}

/// `param = expr` inside `adapt(...)`.
pub(crate) struct Adapter {
    pub(crate) param: Ident,
    pub(crate) expr: Expr,
}

impl Parse for Adapter {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let param: Ident = input.parse()?;
        input.parse::<Token![=]>()?;
        let expr: Expr = input.parse()?;
        Ok(Adapter { param, expr })
    }
}

impl Parse for RawArg {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        // `crate` is a keyword; accept it as an argument name.
        let name = Ident::parse_any(input)?;
        let value = if input.peek(Token![=]) {
            input.parse::<Token![=]>()?;
            RawValue::Expr(input.parse()?)
        } else if input.peek(syn::token::Paren) {
            let content;
            syn::parenthesized!(content in input);
            RawValue::List(content.parse_terminated(Adapter::parse, Token![,])?)
        } else {
            RawValue::Bare
        };
        Ok(RawArg { name, value })
    }
}

/// A duration argument, in milliseconds, with the span of its value.
#[derive(Clone, Copy)]
pub(crate) struct Dur {
    pub(crate) ms: u64,
    pub(crate) name_span: Span,
    /// A TTL preset (`ttl = "short"`): the runtime's `TtlPreset` variant,
    /// resolved at run time (`ms` is then its default).
    pub(crate) preset: Option<&'static str>,
}

/// `ttl = "short" | "default" | "long"`: the preset's variant and default.
fn ttl_preset(expr: &Expr) -> Option<(&'static str, u64)> {
    let Expr::Lit(ExprLit {
        lit: Lit::Str(s), ..
    }) = expr
    else {
        return None;
    };
    match s.value().as_str() {
        "short" => Some(("Short", 30_000)),
        "default" => Some(("Default", 300_000)),
        "long" => Some(("Long", 3_600_000)),
        _ => None,
    }
}

/// The arguments of one `#[cached]`.
#[derive(Default)]
pub(crate) struct CachedArgs {
    pub(crate) key: Option<LitStr>,
    pub(crate) ttl: Option<Dur>,
    pub(crate) swr: Option<Dur>,
    pub(crate) negative_ttl: Option<Dur>,
    pub(crate) jitter: Option<(f64, Span)>,
    pub(crate) name: Option<LitStr>,
    pub(crate) cache: Option<Expr>,
    pub(crate) capacity: Option<usize>,
    /// The use case's L1 bound in bytes of entry weight.
    pub(crate) max_bytes: Option<u64>,
    /// A `fn(&V) -> usize` weighing values against byte bounds.
    pub(crate) weigher: Option<Expr>,
    /// The schema version of the value type (part of its fingerprint in
    /// remote layers).
    pub(crate) schema: Option<u32>,
    pub(crate) tags: Vec<LitStr>,
    pub(crate) ignore: Vec<Ident>,
    pub(crate) adapt: Vec<Adapter>,
    pub(crate) krate: Option<Path>,
    /// Which layers the use case keeps values in. `None`: all the cache has.
    pub(crate) layers: Option<(LayerChoice, Span)>,
    pub(crate) local_ttl: Option<Dur>,
    pub(crate) remote_ttl: Option<Dur>,
    /// The share of fresh hits shadow-read, per mille (`shadow = <percent>`).
    pub(crate) shadow: Option<u32>,
    /// Early refresh: (per mille of the TTL, XFetch β in thousandths), one
    /// of them 0, and where it was given.
    pub(crate) early_refresh: Option<(u32, u32, Span)>,
    /// How long past expiry a value may be served when the loader fails.
    pub(crate) fail_safe: Option<Dur>,
    /// How long a fail-safe value is served before the loader is retried.
    pub(crate) fail_safe_throttle: Option<Dur>,
    /// How long a caller waits before it is served the fail-safe value.
    pub(crate) soft_timeout: Option<Dur>,
    /// How long a caller waits at all.
    pub(crate) hard_timeout: Option<Dur>,
    /// One load per key across processes (`lock = true`), and where.
    pub(crate) lock: Option<Span>,
    /// How long a process waits for another's locked load.
    pub(crate) lock_wait: Option<Dur>,
}

const MAX_BYTES_HELP: &str = "`max_bytes` is a size in bytes, at least 1: a whole number or text with a unit, such as `max_bytes = \"64MiB\"` (B, KB, MB, GB are powers of 1000; KiB, MiB, GiB of 1024)";

/// A size such as `"64MiB"`, `"1.5 GB"` or `"4096"`, in bytes.
fn parse_bytes(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let num: f64 = num.parse().ok()?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" | "k" => 1e3,
        "mb" | "m" => 1e6,
        "gb" | "g" => 1e9,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let bytes = (num * mult).round();
    (bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

pub(crate) const CACHED_ARGS: &[&str] = &[
    "key",
    "ttl",
    "swr",
    "negative_ttl",
    "jitter",
    "smooth_expiry",
    "name",
    "cache",
    "capacity",
    "max_bytes",
    "weigher",
    "schema",
    "tags",
    "ignore",
    "adapt",
    "layers",
    "local_ttl",
    "remote_ttl",
    "shadow",
    "early_refresh",
    "fail_safe",
    "fail_safe_throttle",
    "soft_timeout",
    "hard_timeout",
    "lock",
    "lock_wait",
    "crate",
];

fn list(valid: &[&str]) -> String {
    valid
        .iter()
        .map(|v| format!("`{v}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses `name = value, ...` and reports, each at its name, arguments not in
/// `valid` (listing the valid ones) and arguments given twice. `aliases`
/// pairs a name with the one it stands for (`smooth_expiry` sets `jitter`).
fn named_args(
    tokens: TokenStream,
    attr: &str,
    valid: &[&str],
    aliases: &[(&str, &str)],
    errors: &mut Errors,
) -> syn::Result<Vec<RawArg>> {
    let raw =
        syn::parse::Parser::parse2(Punctuated::<RawArg, Token![,]>::parse_terminated, tokens)?;
    let mut seen: Vec<(String, String)> = Vec::new();
    let mut out = Vec::new();
    for arg in raw {
        let name = arg.name.to_string();
        if !valid.contains(&name.as_str()) {
            errors.at(
                arg.name.span(),
                format!(
                    "unknown argument `{name}` to #[{attr}]; valid arguments are {}",
                    list(valid)
                ),
            );
            continue;
        }
        let canonical = aliases
            .iter()
            .find(|(a, _)| *a == name)
            .map_or(name.clone(), |(_, to)| (*to).to_string());
        if let Some((_, first)) = seen.iter().find(|(c, _)| *c == canonical) {
            let msg = if *first == name {
                format!("`{name}` is given more than once")
            } else {
                format!("`{first}` and `{name}` set the same thing: give only one")
            };
            errors.at(arg.name.span(), msg);
            continue;
        }
        seen.push((canonical, name));
        out.push(arg);
    }
    Ok(out)
}

impl CachedArgs {
    /// Parses the attribute's tokens. Syntax errors are returned at once;
    /// mistakes in values are pushed to `errors` and the argument skipped.
    pub(crate) fn parse(tokens: TokenStream, errors: &mut Errors) -> syn::Result<Self> {
        let mut args = CachedArgs::default();
        for arg in named_args(
            tokens,
            "cached",
            CACHED_ARGS,
            &[("smooth_expiry", "jitter")],
            errors,
        )? {
            args.take(arg, errors);
        }
        Ok(args)
    }

    fn take(&mut self, arg: RawArg, errors: &mut Errors) {
        let name = arg.name.to_string();
        let span = arg.name.span();
        if name == "adapt" {
            match arg.value {
                RawValue::List(l) => self.adapt = l.into_iter().collect(),
                _ => errors.at(
                    span,
                    "`adapt` takes a list of key forms: `adapt(user = user.id, page = page.number)`",
                ),
            }
            return;
        }
        let expr = match arg.value {
            RawValue::Expr(e) => e,
            RawValue::List(_) | RawValue::Bare => {
                errors.at(span, format!("`{name}` takes a value: `{name} = ...`"));
                return;
            }
        };
        match name.as_str() {
            "key" => self.key = string(&expr, "key", "\"user:<id>\"", errors),
            "name" => {
                self.name = string(&expr, "name", "\"GetUserProfile\"", errors).and_then(|s| {
                    if s.value().trim().is_empty() {
                        errors.at(s.span(), "`name` must not be empty");
                        None
                    } else {
                        Some(s)
                    }
                })
            }
            "ttl" if ttl_preset(&expr).is_some() => {
                self.ttl = ttl_preset(&expr).map(|(variant, ms)| Dur {
                    ms,
                    name_span: span,
                    preset: Some(variant),
                });
            }
            "ttl" | "swr" | "negative_ttl" | "local_ttl" | "remote_ttl" | "fail_safe"
            | "fail_safe_throttle" | "soft_timeout" | "hard_timeout" | "lock_wait" => {
                // `#[cached]`'s `ttl` also takes a preset: say so if it fails.
                let more = if name == "ttl" { PRESET_HINT } else { "" };
                if let Some(ms) = duration_or(&expr, &name, more, errors) {
                    let d = Some(Dur {
                        ms,
                        name_span: span,
                        preset: None,
                    });
                    match name.as_str() {
                        "ttl" => self.ttl = d,
                        "swr" => self.swr = d,
                        "local_ttl" => self.local_ttl = d,
                        "remote_ttl" => self.remote_ttl = d,
                        "fail_safe" => self.fail_safe = d,
                        "fail_safe_throttle" => self.fail_safe_throttle = d,
                        "soft_timeout" => self.soft_timeout = d,
                        "hard_timeout" => self.hard_timeout = d,
                        "lock_wait" => self.lock_wait = d,
                        _ => self.negative_ttl = d,
                    }
                }
            }
            "layers" => self.layers = layers(&expr, errors).map(|l| (l, span)),
            "jitter" => self.jitter = fraction(&expr, errors).map(|j| (j, span)),
            "shadow" => self.shadow = percent(&expr, errors),
            "early_refresh" => self.early_refresh = early_refresh(&expr, errors).map(|(a, b)| (a, b, span)),
            "lock" => match &expr {
                Expr::Lit(ExprLit {
                    lit: Lit::Bool(b), ..
                }) => {
                    if b.value {
                        self.lock = Some(span);
                    }
                }
                _ => errors.at(
                    expr.span(),
                    "`lock` is `true` or `false` (true: one load per key across processes, by a lease in Redis)",
                ),
            },
            "smooth_expiry" => match &expr {
                Expr::Lit(ExprLit {
                    lit: Lit::Bool(b), ..
                }) => {
                    if b.value {
                        self.jitter = Some((0.1, span));
                    }
                }
                _ => errors.at(
                    expr.span(),
                    "`smooth_expiry` is `true` or `false` (true spreads each TTL by ±10 %)",
                ),
            },
            "cache" => self.cache = Some(expr),
            "capacity" => match &expr {
                Expr::Lit(ExprLit {
                    lit: Lit::Int(i), ..
                }) => match i.base10_parse::<usize>() {
                    Ok(0) | Err(_) => errors.at(
                        i.span(),
                        "`capacity` is a whole number of entries, at least 1",
                    ),
                    Ok(n) => self.capacity = Some(n),
                },
                _ => errors.at(
                    expr.span(),
                    "`capacity` is a whole number of entries, such as `capacity = 1000`",
                ),
            },
            "max_bytes" => match &expr {
                Expr::Lit(ExprLit {
                    lit: Lit::Int(i), ..
                }) => match i.base10_parse::<u64>() {
                    Ok(0) | Err(_) => errors.at(i.span(), MAX_BYTES_HELP),
                    Ok(n) => self.max_bytes = Some(n),
                },
                Expr::Lit(ExprLit {
                    lit: Lit::Str(t), ..
                }) => match parse_bytes(&t.value()) {
                    Some(n) if n > 0 => self.max_bytes = Some(n),
                    _ => errors.at(t.span(), MAX_BYTES_HELP),
                },
                _ => errors.at(expr.span(), MAX_BYTES_HELP),
            },
            "weigher" => match &expr {
                Expr::Path(_) | Expr::Closure(_) => self.weigher = Some(expr),
                _ => errors.at(
                    expr.span(),
                    "`weigher` names a function `fn(&V) -> usize` giving a value's size in bytes, such as `weigher = page_bytes`",
                ),
            },
            "schema" => match &expr {
                Expr::Lit(ExprLit {
                    lit: Lit::Int(i), ..
                }) => match i.base10_parse::<u32>() {
                    Ok(n) => self.schema = Some(n),
                    Err(_) => errors.at(
                        i.span(),
                        "`schema` is a whole number (a version you bump when the value type changes)",
                    ),
                },
                _ => errors.at(
                    expr.span(),
                    "`schema` is a whole number, such as `schema = 2`",
                ),
            },
            "tags" => match &expr {
                Expr::Array(a) => {
                    for el in &a.elems {
                        match el {
                            Expr::Lit(ExprLit {
                                lit: Lit::Str(s), ..
                            }) => self.tags.push(s.clone()),
                            other => errors.at(
                                other.span(),
                                "each tag is a string literal template, such as `\"org:<org_id>\"`",
                            ),
                        }
                    }
                }
                _ => errors.at(
                    expr.span(),
                    "`tags` is an array of string literal templates: `tags = [\"org:<org_id>\"]`",
                ),
            },
            "ignore" => match &expr {
                Expr::Array(a) => {
                    for el in &a.elems {
                        match el {
                            Expr::Path(p) if p.path.get_ident().is_some() => self.ignore.push(
                                p.path
                                    .get_ident()
                                    .cloned()
                                    .unwrap_or_else(|| Ident::new("_", p.span())),
                            ),
                            other => errors.at(
                                other.span(),
                                "`ignore` lists parameter names: `ignore = [db, trace_id]`",
                            ),
                        }
                    }
                }
                _ => errors.at(
                    expr.span(),
                    "`ignore` lists parameter names: `ignore = [db, trace_id]`",
                ),
            },
            "crate" => self.krate = crate_path(&expr, errors),
            _ => {}
        }
    }
}

/// Which layers a use case keeps its values in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LayerChoice {
    /// In process only.
    Local,
    /// The cache's remote layers only.
    Remote,
    /// Both.
    All,
}

impl LayerChoice {
    fn and(self, other: LayerChoice) -> LayerChoice {
        if self == other {
            self
        } else {
            LayerChoice::All
        }
    }

    /// Whether the remote layers are named.
    pub(crate) fn remote(self) -> bool {
        self != LayerChoice::Local
    }

    /// The runtime's name for this choice.
    pub(crate) fn variant(self) -> &'static str {
        match self {
            LayerChoice::Local => "Local",
            LayerChoice::Remote => "Remote",
            LayerChoice::All => "All",
        }
    }
}

/// `local`, `remote`, `all`, or a list such as `[local, remote]`.
fn layers(expr: &Expr, errors: &mut Errors) -> Option<LayerChoice> {
    const HINT: &str = "`layers` is `local` (in process only), `remote` (the cache's remote layers only) or `all` (the default), or a list: `[local, remote]`";
    let one = |e: &Expr, errors: &mut Errors| -> Option<LayerChoice> {
        match e {
            Expr::Path(p) => match p.path.get_ident().map(|i| i.to_string()).as_deref() {
                Some("local") => Some(LayerChoice::Local),
                Some("remote") => Some(LayerChoice::Remote),
                Some("all") => Some(LayerChoice::All),
                _ => {
                    errors.at(e.span(), HINT);
                    None
                }
            },
            _ => {
                errors.at(e.span(), HINT);
                None
            }
        }
    };
    match expr {
        Expr::Array(a) if !a.elems.is_empty() => {
            let mut choice: Option<LayerChoice> = None;
            for el in &a.elems {
                let c = one(el, errors)?;
                choice = Some(choice.map_or(c, |have| have.and(c)));
            }
            choice
        }
        Expr::Array(a) => {
            errors.at(a.span(), HINT);
            None
        }
        other => one(other, errors),
    }
}

/// `crate = "path"`: where `cachewright` is, for crates that rename it.
fn crate_path(expr: &Expr, errors: &mut Errors) -> Option<Path> {
    let s = string(expr, "crate", "\"cachewright\"", errors)?;
    match s.parse::<Path>() {
        Ok(p) => Some(p),
        Err(_) => {
            errors.at(
                s.span(),
                "`crate` is a path, such as `crate = \"my_cachewright\"`",
            );
            None
        }
    }
}

fn string(expr: &Expr, name: &str, example: &str, errors: &mut Errors) -> Option<LitStr> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Some(s.clone()),
        other => {
            errors.at(
                other.span(),
                format!("`{name}` is a string literal, such as `{name} = {example}`"),
            );
            None
        }
    }
}

/// Whole seconds (`300`), fractional seconds (`0.5`) or a duration string
/// (`"5m"`, `"250ms"`, `"1h30m"`), in milliseconds; zero and negatives are
/// errors.
fn duration(expr: &Expr, name: &str, errors: &mut Errors) -> Option<u64> {
    duration_or(expr, name, "", errors)
}

/// What a `#[cached]` `ttl` accepts besides durations.
const PRESET_HINT: &str =
    ", or a preset resolved at run time: `\"short\"`, `\"default\"`, `\"long\"`";

/// [`duration`], with `more` added to the message of a malformed value.
fn duration_or(expr: &Expr, name: &str, more: &str, errors: &mut Errors) -> Option<u64> {
    let hint = format!(
        "`{name}` is a duration: seconds (`{name} = 300`) or a string with units ms, s, m, h, d (`{name} = \"5m\"`, `\"250ms\"`, `\"1h30m\"`){more}"
    );
    let ms = match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Int(i), ..
        }) => match i.base10_parse::<u64>() {
            Ok(s) => s.checked_mul(1000),
            Err(_) => None,
        },
        Expr::Lit(ExprLit {
            lit: Lit::Float(f), ..
        }) => match f.base10_parse::<f64>() {
            Ok(s) if s.is_finite() && s >= 0.0 => Some((s * 1000.0).round() as u64),
            _ => None,
        },
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => parse_duration(&s.value()),
        Expr::Unary(u) if matches!(u.op, syn::UnOp::Neg(_)) => {
            errors.spanned(expr, format!("`{name}` must be positive"));
            return None;
        }
        _ => None,
    };
    match ms {
        Some(0) => {
            errors.at(
                expr.span(),
                format!("`{name}` must be greater than zero (to turn caching off at run time, use the use case's ramp)"),
            );
            None
        }
        Some(ms) => Some(ms),
        None => {
            errors.at(expr.span(), hint);
            None
        }
    }
}

/// Parses `"90"`, `"250ms"`, `"5m"`, `"1h30m"`, `"1.5s"` into milliseconds.
pub(crate) fn parse_duration(s: &str) -> Option<u64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(secs) = s.parse::<u64>() {
        return secs.checked_mul(1000);
    }
    let mut total: f64 = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_end == 0 {
            return None;
        }
        let n: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_end] {
            "ms" => 1.0,
            "s" => 1_000.0,
            "m" => 60_000.0,
            "h" => 3_600_000.0,
            "d" => 86_400_000.0,
            _ => return None,
        };
        total += n * factor;
        rest = rest[unit_end..].trim_start();
    }
    (total.is_finite() && total < u64::MAX as f64).then(|| total.round() as u64)
}

/// `early_refresh = 0.8` (a share of the TTL, strictly between 0 and 1) or
/// `early_refresh = "xfetch"`: (per mille, XFetch β in thousandths).
/// A number literal (integer or float), as `f64`.
fn number(expr: &Expr) -> Option<f64> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Float(f), ..
        }) => f.base10_parse::<f64>().ok(),
        Expr::Lit(ExprLit {
            lit: Lit::Int(i), ..
        }) => i.base10_parse::<f64>().ok(),
        _ => None,
    }
}

fn early_refresh(expr: &Expr, errors: &mut Errors) -> Option<(u32, u32)> {
    const HELP: &str = "`early_refresh` is a share of the TTL strictly between 0 and 1 (`early_refresh = 0.8` refreshes on the first hit once 80 % of the TTL has passed) or `\"xfetch\"` (probabilistic early expiration, weighted by the load time)";
    let v = match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) if s.value() == "xfetch" => return Some((0, 1000)),
        Expr::Lit(ExprLit {
            lit: Lit::Float(_), ..
        }) => number(expr),
        _ => None,
    };
    match v {
        Some(r) if r > 0.0 && r < 1.0 => {
            let pm = (r * 1000.0).round() as u32;
            Some((pm.clamp(1, 999), 0))
        }
        _ => {
            errors.at(expr.span(), HELP);
            None
        }
    }
}

/// `shadow = <percent>`: 0 to 100, per mille once parsed.
fn percent(expr: &Expr, errors: &mut Errors) -> Option<u32> {
    match number(expr) {
        Some(p) if (0.0..=100.0).contains(&p) => Some((p * 10.0).round() as u32),
        _ => {
            errors.at(
                expr.span(),
                "`shadow` is the percentage of fresh hits that also run the function to compare, from 0 to 100: `shadow = 1` (0 compiles shadow reads in, off until `set_shadow` or the config provider turns them on)",
            );
            None
        }
    }
}

fn fraction(expr: &Expr, errors: &mut Errors) -> Option<f64> {
    match number(expr) {
        Some(j) if j > 0.0 && j < 1.0 => Some(j),
        _ => {
            errors.at(
                expr.span(),
                "`jitter` is a fraction between 0 and 1, exclusive: `jitter = 0.1` spreads each TTL by up to ±10 %",
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("300"), Some(300_000));
        assert_eq!(parse_duration("250ms"), Some(250));
        assert_eq!(parse_duration("5m"), Some(300_000));
        assert_eq!(parse_duration("1h30m"), Some(5_400_000));
        assert_eq!(parse_duration("1.5s"), Some(1_500));
        assert_eq!(parse_duration("2d"), Some(172_800_000));
        for bad in ["", "m", "5x", "five", "5 m s"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }
}
