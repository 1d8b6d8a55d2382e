//! Parsing of `#[cache_write(...)]` and `#[bg_writer(...)]` arguments, with
//! the value parsers of `#[cached]`.

use proc_macro2::{Span, TokenStream};
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, Lit, LitStr, Path};

use super::{crate_path, duration, named_args, string, Errors, RawValue};

/// The arguments of one `#[cache_write]`.
#[derive(Default)]
pub(crate) struct WriteArgs {
    pub(crate) invalidate: Vec<LitStr>,
    pub(crate) invalidate_span: Option<Span>,
    pub(crate) before: bool,
    pub(crate) buffer_ms: u64,
    pub(crate) recache: Vec<Expr>,
    pub(crate) cache: Option<Expr>,
    pub(crate) krate: Option<Path>,
}

pub(crate) const WRITE_ARGS: &[&str] = &[
    "invalidate",
    "before",
    "buffer",
    "buffer_ms",
    "recache",
    "cache",
    "crate",
];

impl WriteArgs {
    pub(crate) fn parse(tokens: TokenStream, errors: &mut Errors) -> syn::Result<Self> {
        let mut args = WriteArgs::default();
        for arg in named_args(
            tokens,
            "cache_write",
            WRITE_ARGS,
            &[("buffer_ms", "buffer")],
            errors,
        )? {
            let name = arg.name.to_string();
            let span = arg.name.span();
            let RawValue::Expr(expr) = arg.value else {
                errors.at(span, format!("`{name}` takes a value: `{name} = ...`"));
                continue;
            };
            match name.as_str() {
                "invalidate" => {
                    args.invalidate_span = Some(span);
                    match &expr {
                        Expr::Array(a) => {
                            for el in &a.elems {
                                match el {
                                    Expr::Lit(ExprLit { lit: Lit::Str(s), .. }) => args.invalidate.push(s.clone()),
                                    other => errors.at(other.span(), "each tag to invalidate is a string literal template, such as `\"user:<id>\"`"),
                                }
                            }
                        }
                        _ => errors.at(expr.span(), "`invalidate` is an array of string literal templates: `invalidate = [\"user:<id>\"]`"),
                    }
                }
                "before" => match &expr {
                    Expr::Lit(ExprLit { lit: Lit::Bool(b), .. }) => args.before = b.value,
                    _ => errors.at(expr.span(), "`before` is `true` or `false` (true invalidates before running the function as well)"),
                },
                "buffer" => {
                    if let Some(ms) = duration(&expr, "buffer", errors) {
                        args.buffer_ms = ms;
                    }
                }
                "buffer_ms" => match &expr {
                    Expr::Lit(ExprLit { lit: Lit::Int(i), .. }) => match i.base10_parse::<u64>() {
                        Ok(ms) => args.buffer_ms = ms,
                        Err(_) => errors.at(i.span(), "`buffer_ms` is a whole number of milliseconds"),
                    },
                    _ => errors.at(expr.span(), "`buffer_ms` is a whole number of milliseconds, such as `buffer_ms = 500`"),
                },
                "recache" => match expr {
                    Expr::Array(a) => {
                        for el in a.elems {
                            match el {
                                Expr::Call(_) | Expr::MethodCall(_) => args.recache.push(el),
                                other => errors.at(other.span(), "each recache entry is a call of a cached function, such as `get_user(id)`"),
                            }
                        }
                    }
                    other => errors.at(other.span(), "`recache` lists calls of cached functions: `recache = [get_user(id)]`"),
                },
                "cache" => args.cache = Some(expr),
                "crate" => args.krate = crate_path(&expr, errors),
                _ => {}
            }
        }
        Ok(args)
    }
}

/// The arguments of one `#[bg_writer]`.
#[derive(Default)]
pub(crate) struct BgArgs {
    pub(crate) key: Option<LitStr>,
    pub(crate) interval_ms: Option<u64>,
    /// Whether `interval` was written at all (well-formed or not).
    pub(crate) interval_given: bool,
    pub(crate) ttl_ms: Option<u64>,
    pub(crate) run_immediately: Option<bool>,
    pub(crate) on_error: Option<Expr>,
    pub(crate) cache: Option<Expr>,
    pub(crate) name: Option<LitStr>,
    pub(crate) krate: Option<Path>,
}

pub(crate) const BG_ARGS: &[&str] = &[
    "key",
    "interval",
    "ttl",
    "run_immediately",
    "on_error",
    "cache",
    "name",
    "crate",
];

impl BgArgs {
    pub(crate) fn parse(tokens: TokenStream, errors: &mut Errors) -> syn::Result<Self> {
        let mut args = BgArgs::default();
        for arg in named_args(tokens, "bg_writer", BG_ARGS, &[], errors)? {
            let name = arg.name.to_string();
            let span = arg.name.span();
            let RawValue::Expr(expr) = arg.value else {
                errors.at(span, format!("`{name}` takes a value: `{name} = ...`"));
                continue;
            };
            match name.as_str() {
                "key" => {
                    args.key = string(&expr, "key", "\"daily_config\"", errors).and_then(|s| {
                        if s.value().is_empty() || s.value().contains(char::is_whitespace) {
                            errors.at(s.span(), "`key` names the value, such as `\"daily_config\"` (not empty, no spaces)");
                            None
                        } else {
                            Some(s)
                        }
                    })
                }
                // `interval = 0` means no schedule: on demand only.
                "interval" => {
                    args.interval_given = true;
                    args.interval_ms = match &expr {
                        Expr::Lit(ExprLit { lit: Lit::Int(i), .. }) if i.base10_digits() == "0" => Some(0),
                        _ => duration(&expr, "interval", errors),
                    };
                }
                "ttl" => args.ttl_ms = duration(&expr, "ttl", errors),
                "run_immediately" => match &expr {
                    Expr::Lit(ExprLit { lit: Lit::Bool(b), .. }) => args.run_immediately = Some(b.value),
                    _ => errors.at(expr.span(), "`run_immediately` is `true` or `false`"),
                },
                "on_error" => args.on_error = Some(expr),
                "cache" => args.cache = Some(expr),
                "name" => args.name = string(&expr, "name", "\"DailyConfig\"", errors),
                "crate" => args.krate = crate_path(&expr, errors),
                _ => {}
            }
        }
        Ok(args)
    }
}
