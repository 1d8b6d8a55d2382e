//! Validation: what a function and its arguments must be for `#[cached]`,
//! one rule per function, every failure reported at its token.
//!
//! Shapes handled (named cases of the expander):
//! - sync `fn` and `async fn`, free or in an `impl` (inherent or trait);
//! - methods taking `&self`, whose key names a field of `self`
//!   (`<self.tenant>`) or leaves it out with `ignore = [self]`;
//! - returns `T`, `Option<T>`, `Result<T, E>`, `Result<Option<T>, E>`
//!   (aliases such as `io::Result<T>` count as `Result`).
//!
//! Rejected, with a message saying why: `const fn`, generic functions and
//! `impl Trait` arguments (one cached function has one typed cache),
//! `&mut self` and `self` by value, destructuring parameters, functions
//! returning nothing, a reference or `impl Trait`, and the boxed futures
//! that `#[async_trait]` produces.
//!
//! This pass only validates and returns typed data (`key` resolves the
//! templates); `plan` numbers the key values and `expand` writes tokens.

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{FnArg, GenericArgument, Ident, ItemFn, Pat, PathArguments, ReturnType, Type};

use crate::attr::{CachedArgs, Errors};

mod key;

pub(crate) use key::{invalidations, key, CheckedKey, KeyValue, Part, Source};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum ShapeKind {
    /// `T`: always cached.
    Value,
    /// `Option<T>`: `None` cached only with `negative_ttl`.
    Option,
    /// `Result<T, E>`: only `Ok` cached.
    Result,
    /// `Result<Option<T>, E>`: `Ok(None)` as a negative entry.
    ResultOption,
}

pub(crate) struct Shape {
    /// False for the stand-in used after a rejected return type.
    pub(crate) valid: bool,
    pub(crate) kind: ShapeKind,
    pub(crate) ret: Type,
    /// The type stored in the cache.
    pub(crate) value: Type,
}

pub(crate) struct Param {
    pub(crate) ident: Ident,
    pub(crate) mutable: bool,
    pub(crate) ty: Type,
    pub(crate) by_ref: bool,
}

/// The function shapes the expanders handle, each a named case: how the
/// loader is wrapped and awaited (sync or async), and whether a receiver
/// is part of the call (methods refresh by calling themselves on a clone of
/// `self`, free functions by re-running the body).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FnKind {
    /// `fn f(..)`.
    SyncFn,
    /// `async fn f(..)`.
    AsyncFn,
    /// `fn f(&self, ..)`.
    SyncMethod,
    /// `async fn f(&self, ..)` (in an impl or a trait impl).
    AsyncMethod,
}

impl FnKind {
    fn of(sig: &syn::Signature, receiver: bool) -> FnKind {
        match (sig.asyncness.is_some(), receiver) {
            (false, false) => FnKind::SyncFn,
            (true, false) => FnKind::AsyncFn,
            (false, true) => FnKind::SyncMethod,
            (true, true) => FnKind::AsyncMethod,
        }
    }

    /// Whether the loader is a future.
    pub(crate) fn is_async(self) -> bool {
        matches!(self, FnKind::AsyncFn | FnKind::AsyncMethod)
    }

    /// Whether the function takes `&self`.
    pub(crate) fn receiver(self) -> bool {
        matches!(self, FnKind::SyncMethod | FnKind::AsyncMethod)
    }
}

pub(crate) struct Func {
    pub(crate) item: ItemFn,
    pub(crate) kind: FnKind,
    pub(crate) params: Vec<Param>,
    pub(crate) shape: Shape,
}

// ---- the function -----------------------------------------------------------

pub(crate) fn function(item: ItemFn, errors: &mut Errors) -> Option<Func> {
    let sig = &item.sig;
    reject_const(sig, errors);
    reject_generics(sig, errors);
    reject_variadic(sig, errors);
    let (receiver, params) = parameters(sig, errors);
    // A bad return type is reported; the rest is still checked against a
    // stand-in, so one build shows every mistake.
    let shape = shape(sig, errors).unwrap_or(Shape {
        kind: ShapeKind::Value,
        ret: unit(),
        value: unit(),
        valid: false,
    });
    Some(Func {
        kind: FnKind::of(sig, receiver),
        params,
        shape,
        item,
    })
}

/// `()`, the stand-in type after a rejected return type.
pub(crate) fn unit() -> Type {
    Type::Tuple(syn::TypeTuple {
        paren_token: Default::default(),
        elems: Default::default(),
    })
}

fn reject_const(sig: &syn::Signature, errors: &mut Errors) {
    if let Some(c) = &sig.constness {
        errors.at(
            c.span(),
            "#[cached] cannot be used on a `const fn`: a const fn is evaluated at compile time, where there is no cache",
        );
    }
}

fn reject_generics(sig: &syn::Signature, errors: &mut Errors) {
    for p in &sig.generics.params {
        match p {
            syn::GenericParam::Lifetime(_) => {}
                        other => errors.spanned(
                other,
                "#[cached] does not support generic functions: each cached function owns one typed cache; write a non-generic function per type, or cache a wrapper",
            ),
        }
    }
}

fn reject_variadic(sig: &syn::Signature, errors: &mut Errors) {
    if let Some(v) = &sig.variadic {
        errors.at(v.span(), "#[cached] does not support variadic functions");
    }
}

fn contains_impl_trait(ty: &Type) -> bool {
    struct Find(bool);
    impl<'ast> syn::visit::Visit<'ast> for Find {
        fn visit_type_impl_trait(&mut self, _: &'ast syn::TypeImplTrait) {
            self.0 = true;
        }
    }
    let mut f = Find(false);
    syn::visit::visit_type(&mut f, ty);
    f.0
}

fn parameters(sig: &syn::Signature, errors: &mut Errors) -> (bool, Vec<Param>) {
    let mut receiver = false;
    let mut params = Vec::new();
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(r) => {
                if r.reference.is_none() || r.colon_token.is_some() {
                    errors.spanned(
                        r,
                        "#[cached] methods take `&self`: a method that consumes `self` or takes a typed receiver cannot be cached",
                    );
                } else if r.mutability.is_some() {
                    errors.spanned(
                        r,
                        "#[cached] methods take `&self`: a method taking `&mut self` changes its receiver, so its results cannot be served from a cache",
                    );
                }
                receiver = true;
            }
            FnArg::Typed(t) => {
                if contains_impl_trait(&t.ty) {
                    errors.spanned(
                        &t.ty,
                        "#[cached] does not support `impl Trait` arguments (they make the function generic); take a concrete type",
                    );
                }
                match &*t.pat {
                    Pat::Ident(pi) if pi.by_ref.is_none() && pi.subpat.is_none() => {
                        params.push(Param {
                            ident: pi.ident.clone(),
                            mutable: pi.mutability.is_some(),
                            by_ref: matches!(&*t.ty, Type::Reference(_)),
                            ty: (*t.ty).clone(),
                        })
                    }
                    other => errors.at(
                        other.span(),
                        "#[cached] needs named parameters (`id: u64`); destructure inside the body",
                    ),
                }
            }
        }
    }
    (receiver, params)
}

fn last_segment(ty: &Type) -> Option<&syn::PathSegment> {
    match ty {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last(),
        _ => None,
    }
}

fn generic_types(seg: &syn::PathSegment) -> Vec<&Type> {
    match &seg.arguments {
        PathArguments::AngleBracketed(a) => a
            .args
            .iter()
            .filter_map(|g| match g {
                GenericArgument::Type(t) => Some(t),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// `Pin<..Future..>`: a name containing `Future` anywhere inside a `Pin`.
fn is_boxed_future(ty: &Type) -> bool {
    struct Find(bool);
    impl<'ast> syn::visit::Visit<'ast> for Find {
        fn visit_ident(&mut self, i: &'ast Ident) {
            self.0 |= i.to_string().contains("Future");
        }
    }
    let Some(seg) = last_segment(ty) else {
        return false;
    };
    let mut f = Find(false);
    syn::visit::visit_type(&mut f, ty);
    seg.ident == "Pin" && f.0
}

fn shape(sig: &syn::Signature, errors: &mut Errors) -> Option<Shape> {
    let ret = match &sig.output {
        ReturnType::Default => {
            errors.at(
                sig.ident.span(),
                format!(
                    "#[cached] needs a value to cache, but `{}` returns nothing",
                    sig.ident
                ),
            );
            return None;
        }
        ReturnType::Type(_, ty) => (**ty).clone(),
    };
    let reject = |errors: &mut Errors, msg: &str| {
        errors.spanned(&ret, msg);
        None
    };
    match &ret {
        Type::Tuple(t) if t.elems.is_empty() => {
            return reject(errors, "#[cached] needs a value to cache, but this function returns `()`")
        }
        Type::Reference(_) => {
            return reject(
                errors,
                "#[cached] cannot cache a reference: return an owned value (wrap large values in `Arc`)",
            )
        }
        Type::ImplTrait(_) => {
            return reject(
                errors,
                "#[cached] cannot cache an `impl Trait` return value: return a concrete type",
            )
        }
        _ => {}
    }
    if contains_impl_trait(&ret) {
        return reject(
            errors,
            "#[cached] cannot cache a type containing `impl Trait`: return a concrete type",
        );
    }
    if sig.asyncness.is_none() && is_boxed_future(&ret) {
        return reject(
            errors,
            "#[cached] sees a boxed future, as `#[async_trait]` produces: put #[cached] on a native `async fn` (async functions in traits need no macro since Rust 1.75)",
        );
    }
    let seg = last_segment(&ret);
    let (kind, value) = match seg {
        Some(s) if s.ident == "Option" && generic_types(s).len() == 1 => {
            (ShapeKind::Option, ret.clone())
        }
        Some(s) if s.ident == "Result" && matches!(generic_types(s).len(), 1 | 2) => {
            let ok = generic_types(s)[0].clone();
            match last_segment(&ok) {
                Some(o) if o.ident == "Option" && generic_types(o).len() == 1 => {
                    (ShapeKind::ResultOption, ok)
                }
                _ => (ShapeKind::Result, ok),
            }
        }
        _ => (ShapeKind::Value, ret.clone()),
    };
    if let Type::Reference(r) = &value {
        errors.spanned(
            r,
            "#[cached] cannot cache a reference: return an owned value (wrap large values in `Arc`)",
        );
        return None;
    }
    Some(Shape {
        kind,
        ret,
        value,
        valid: true,
    })
}

// ---- arguments against the function -------------------------------------------

pub(crate) fn arguments(args: &CachedArgs, f: &Func, errors: &mut Errors) {
    needs_ttl(args, errors);
    negative_needs_option(args, f, errors);
    resilience(args, f, errors);
}

/// `fail_safe`, the timeouts and `lock` against each other and the
/// function.
fn resilience(args: &CachedArgs, f: &Func, errors: &mut Errors) {
    if args.fail_safe.is_none() {
        if let Some(t) = args.fail_safe_throttle {
            errors.at(
                t.name_span,
                "`fail_safe_throttle` needs `fail_safe`: it is how long a fail-safe value is served before the loader is tried again (add `fail_safe = \"1h\"`)",
            );
        }
        if let Some(t) = args.soft_timeout {
            errors.at(
                t.name_span,
                "`soft_timeout` needs `fail_safe`: past it, the caller is served the fail-safe value while the load goes on (add `fail_safe = \"1h\"`)",
            );
        }
    }
    if args.lock.is_none() {
        if let Some(w) = args.lock_wait {
            errors.at(
                w.name_span,
                "`lock_wait` needs `lock = true`: it bounds how long a process waits for another's load",
            );
        }
    }
    if let (Some(span), Some((crate::attr::LayerChoice::Local, _))) = (args.lock, args.layers) {
        errors.at(
            span,
            "`lock` takes its lease in a remote layer, and this function is cached in process only (`layers = local`)",
        );
    }
    for t in [args.soft_timeout, args.hard_timeout].into_iter().flatten() {
        if !f.kind.is_async() {
            errors.at(
                t.name_span,
                "timeouts need an `async fn`: a sync function's loader runs on the caller's thread and cannot be left to finish in the background",
            );
        }
    }
    if let (Some(soft), Some(hard)) = (args.soft_timeout, args.hard_timeout) {
        if soft.ms >= hard.ms {
            errors.at(
                soft.name_span,
                "`soft_timeout` must be shorter than `hard_timeout`",
            );
        }
    }
    if let Some(hard) = args.hard_timeout {
        if f.shape.valid && !matches!(f.shape.kind, ShapeKind::Result | ShapeKind::ResultOption) {
            errors.at(
                hard.name_span,
                "`hard_timeout` needs a function returning `Result<_, E>` with `E: From<cachewright::Timeout>`: without a fail-safe value, the call returns that error",
            );
        }
    }
}

fn needs_ttl(args: &CachedArgs, errors: &mut Errors) {
    if args.ttl.is_some() {
        return;
    }
    if let Some(swr) = args.swr {
        errors.at(
            swr.name_span,
            "`swr` needs a `ttl`: the stale window starts when the TTL ends (add `ttl = ...`)",
        );
    }
    if let Some((_, _, span)) = args.early_refresh {
        errors.at(
            span,
            "`early_refresh` needs a `ttl`: it refreshes before the TTL ends (add `ttl = ...`)",
        );
    }
    if let Some((_, span)) = args.jitter {
        errors.at(span, "`jitter` needs a `ttl` to spread (add `ttl = ...`)");
    }
}

fn negative_needs_option(args: &CachedArgs, f: &Func, errors: &mut Errors) {
    if let Some(n) = args.negative_ttl {
        if f.shape.valid && !matches!(f.shape.kind, ShapeKind::Option | ShapeKind::ResultOption) {
            errors.at(
                n.name_span,
                "`negative_ttl` caches a `None`, but this function does not return an `Option` (or `Result<Option<_>, _>`)",
            );
        }
    }
}

/// The span to blame for a missing trait on the value type.
pub(crate) fn value_span(f: &Func) -> Span {
    f.shape.value.span()
}

// ---- #[cache_write] -----------------------------------------------------------------

/// A writer function: what `#[cache_write]` needs of its signature.
pub(crate) struct Writer {
    pub(crate) item: ItemFn,
    pub(crate) kind: FnKind,
    pub(crate) params: Vec<Param>,
    /// Whether it returns a `Result` (only `Ok` invalidates).
    pub(crate) fallible: bool,
}

pub(crate) fn writer(item: ItemFn, errors: &mut Errors) -> Writer {
    let sig = &item.sig;
    reject_const(sig, errors);
    let (receiver, params) = parameters(sig, errors);
    let fallible = match &sig.output {
        ReturnType::Type(_, ty) => last_segment(ty).is_some_and(|s| s.ident == "Result"),
        ReturnType::Default => false,
    };
    Writer {
        kind: FnKind::of(sig, receiver),
        params,
        fallible,
        item,
    }
}

// ---- #[bg_writer] -----------------------------------------------------------------

/// The rules of a background writer's loader: it owns one key (`key`), has
/// a schedule (`interval`), takes no arguments, is not generic, and returns
/// the value to keep. Returns its return type (`()` when it has none, after
/// reporting it).
pub(crate) fn bg_writer(f: &ItemFn, args: &crate::attr::BgArgs, errors: &mut Errors) -> Type {
    if args.key.is_none() {
        errors.at(
            f.sig.ident.span(),
            "#[bg_writer] needs the key it owns: `key = \"daily_config\"`",
        );
    }
    // A malformed `interval` was reported at its token already.
    if args.interval_ms.is_none() && !args.interval_given {
        errors.at(
            f.sig.ident.span(),
            "#[bg_writer] needs an `interval` (seconds or a duration string; `interval = 0` loads on demand only)",
        );
    }
    if !f.sig.inputs.is_empty() {
        errors.spanned(
            &f.sig.inputs,
            "a background writer's loader takes no arguments: it owns one key",
        );
    }
    if !f.sig.generics.params.is_empty() {
        errors.spanned(
            &f.sig.generics,
            "a background writer's loader cannot be generic",
        );
    }
    match &f.sig.output {
        syn::ReturnType::Type(_, t) => (**t).clone(),
        syn::ReturnType::Default => {
            errors.at(
                f.sig.ident.span(),
                "a background writer's loader returns the value to keep (`T` or `Result<T, E>`)",
            );
            unit()
        }
    }
}

/// `T` of a `Result<T, E>` return type, and whether it is one; otherwise
/// the type itself.
pub(crate) fn ok_type(ret: &Type) -> (Type, bool) {
    match ret {
        Type::Path(tp)
            if tp.qself.is_none()
                && tp.path.segments.last().is_some_and(|s| s.ident == "Result") =>
        {
            match &tp.path.segments.last().map(|s| &s.arguments) {
                Some(syn::PathArguments::AngleBracketed(a)) => match a.args.first() {
                    Some(syn::GenericArgument::Type(t)) => (t.clone(), true),
                    _ => (ret.clone(), false),
                },
                _ => (ret.clone(), false),
            }
        }
        _ => (ret.clone(), false),
    }
}
