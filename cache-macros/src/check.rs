//! Validation: what a function and its arguments must be for `#[cached]`,
//! one rule per function, every failure reported at its token.
//!
//! Shapes handled (named cases of the expander):
//! - sync `fn` and `async fn`, free or in an `impl` (inherent or trait);
//! - methods taking `&self` (templates may use `<self.field>`);
//! - returns `T`, `Option<T>`, `Result<T, E>`, `Result<Option<T>, E>`
//!   (aliases such as `io::Result<T>` count as `Result`).
//!
//! Rejected, with a message saying why: `const fn`, generic functions and
//! `impl Trait` arguments (one cached function has one typed cache),
//! `&mut self` and `self` by value, destructuring parameters, functions
//! returning nothing, a reference or `impl Trait`, and the boxed futures
//! that `#[async_trait]` produces.

use std::collections::HashMap;

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, GenericArgument, Ident, ItemFn, Pat, PathArguments, ReturnType, Type};

use crate::attr::{CachedArgs, Errors};
use crate::template::{Piece, Placeholder, Template};

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

/// One segment of a rendered template, as the runtime's `Segment`.
pub(crate) enum Seg {
    Text(String),
    Value(usize),
}

/// One key value: how to borrow it from the call's arguments.
pub(crate) struct Value {
    /// An expression of type `&T` (the L1 key part).
    pub(crate) borrow: TokenStream,
}

pub(crate) struct KeyPlan {
    pub(crate) key_type: String,
    pub(crate) id: Vec<Seg>,
    pub(crate) args: Vec<(String, usize)>,
    pub(crate) tags: Vec<Vec<Seg>>,
    pub(crate) values: Vec<Value>,
    /// The first `n_key` values identify the call (the L1 key); the rest are
    /// needed only to render tags.
    pub(crate) n_key: usize,
    /// `let` bindings computing adapted key forms.
    pub(crate) adapters: Vec<(Ident, syn::Expr)>,
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
        ret: syn::parse_quote!(()),
        value: syn::parse_quote!(()),
        valid: false,
    });
    Some(Func {
        kind: FnKind::of(sig, receiver),
        params,
        shape,
        item,
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

fn is_boxed_future(ty: &Type) -> bool {
    let Some(seg) = last_segment(ty) else {
        return false;
    };
    seg.ident == "Pin" && quote!(#ty).to_string().contains("Future")
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

// ---- the key plan -------------------------------------------------------------

pub(crate) fn key_plan(args: &CachedArgs, f: &Func, errors: &mut Errors) -> Option<KeyPlan> {
    let fn_name = f.item.sig.ident.to_string();
    let key_lit = args
        .key
        .clone()
        .unwrap_or_else(|| syn::LitStr::new(&fn_name, f.item.sig.ident.span()));
    let key = match Template::parse(&key_lit, "key") {
        Ok(t) => t,
        Err(e) => {
            errors.push(e);
            return None;
        }
    };
    let (key_type, id_pieces) = match key.key_type() {
        Ok(k) => k,
        Err(e) => {
            errors.push(e);
            return None;
        }
    };
    let tags: Vec<Template> = args
        .tags
        .iter()
        .filter_map(|t| Template::parse(t, "tag").map_err(|e| errors.push(e)).ok())
        .collect();

    check_ignore_and_adapt(args, f, &key, errors);

    let mut plan = KeyPlan {
        key_type,
        id: Vec::new(),
        args: Vec::new(),
        tags: Vec::new(),
        values: Vec::new(),
        n_key: 0,
        adapters: Vec::new(),
    };
    let adapted: HashMap<String, usize> = args
        .adapt
        .iter()
        .enumerate()
        .map(|(i, a)| (a.param.to_string(), i))
        .collect();
    for a in &args.adapt {
        plan.adapters.push((
            format_ident!("__cachewright_adapt_{}", a.param),
            a.expr.clone(),
        ));
    }
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut ok = true;

    for piece in &id_pieces {
        let seg = match piece {
            Piece::Text(t) => Seg::Text(t.clone()),
            Piece::Hole(h) => {
                match value_index(h, &key, f, &adapted, &mut index, &mut plan, errors) {
                    Some(i) => Seg::Value(i),
                    None => {
                        ok = false;
                        continue;
                    }
                }
            }
        };
        plan.id.push(seg);
    }
    let in_key: Vec<String> = key.holes().map(|h| h.root.clone()).collect();
    for p in &f.params {
        let name = p.ident.to_string();
        if in_key.contains(&name) || args.ignore.contains(&p.ident) {
            continue;
        }
        let hole = Placeholder {
            root: name.clone(),
            fields: Vec::new(),
        };
        if let Some(i) = value_index(&hole, &key, f, &adapted, &mut index, &mut plan, errors) {
            plan.args.push((name, i));
        }
    }
    plan.n_key = plan.values.len();
    for t in &tags {
        let mut segs = Vec::new();
        for piece in &t.pieces {
            segs.push(match piece {
                Piece::Text(s) => Seg::Text(s.clone()),
                Piece::Hole(h) => {
                    match value_index(h, t, f, &adapted, &mut index, &mut plan, errors) {
                        Some(i) => Seg::Value(i),
                        None => {
                            ok = false;
                            continue;
                        }
                    }
                }
            });
        }
        plan.tags.push(segs);
    }
    ok.then_some(plan)
}

fn check_ignore_and_adapt(args: &CachedArgs, f: &Func, key: &Template, errors: &mut Errors) {
    let names: Vec<String> = f.params.iter().map(|p| p.ident.to_string()).collect();
    let in_key: Vec<String> = key.holes().map(|h| h.root.clone()).collect();
    for i in &args.ignore {
        let n = i.to_string();
        if !names.contains(&n) {
            errors.at(
                i.span(),
                format!("`ignore` names `{n}`, which is not a parameter of this function"),
            );
        } else if in_key.contains(&n) {
            errors.at(
                i.span(),
                format!("`{n}` is in the key template, so it cannot be ignored"),
            );
        }
    }
    for a in &args.adapt {
        let n = a.param.to_string();
        if !names.contains(&n) {
            errors.at(
                a.param.span(),
                format!("`adapt` names `{n}`, which is not a parameter of this function"),
            );
        } else if args.ignore.contains(&a.param) {
            errors.at(
                a.param.span(),
                format!("`{n}` is both ignored and adapted; pick one"),
            );
        }
    }
}

fn value_index(
    h: &Placeholder,
    template: &Template,
    f: &Func,
    adapted: &HashMap<String, usize>,
    index: &mut HashMap<String, usize>,
    plan: &mut KeyPlan,
    errors: &mut Errors,
) -> Option<usize> {
    let text = h.text();
    if let Some(&i) = index.get(&text) {
        return Some(i);
    }
    let span = template.span();
    let borrow = if h.root == "self" {
        if !f.kind.receiver() {
            errors.at(
                span,
                format!("`<{text}>` uses `self`, but this function takes no `&self`"),
            );
            return None;
        }
        if h.fields.is_empty() {
            errors.at(
                span,
                "`<self>` is not a key value: name a field, as in `<self.tenant>`",
            );
            return None;
        }
        let fields = h.fields.iter().map(|f| Ident::new(f, span));
        quote_spanned!(span=> &self #(.#fields)*)
    } else if let Some(&a) = adapted.get(&h.root) {
        if !h.fields.is_empty() {
            errors.at(
                span,
                format!(
                    "`<{text}>` reaches into `{}`, whose key form is given by `adapt`; use `<{}>`",
                    h.root, h.root
                ),
            );
            return None;
        }
        let local = &plan.adapters[a].0;
        let expr_span = plan.adapters[a].1.span();
        quote_spanned!(expr_span=> &#local)
    } else if let Some(p) = f.params.iter().find(|p| p.ident == h.root) {
        let ident = Ident::new(&h.root, span);
        if !h.fields.is_empty() {
            let fields = h.fields.iter().map(|f| Ident::new(f, span));
            quote_spanned!(span=> &#ident #(.#fields)*)
        } else if p.by_ref {
            let ty_span = p.ty.span();
            let ident = Ident::new(&h.root, ty_span);
            quote_spanned!(ty_span=> #ident)
        } else {
            let ty_span = p.ty.span();
            let ident = Ident::new(&h.root, ty_span);
            quote_spanned!(ty_span=> &#ident)
        }
    } else {
        let names: Vec<String> = f
            .params
            .iter()
            .map(|p| format!("`{}`", p.ident))
            .chain(f.kind.receiver().then(|| "`self.<field>`".to_string()))
            .collect();
        let listing = if names.is_empty() {
            "it has no parameters".to_string()
        } else {
            format!("its parameters are {}", names.join(", "))
        };
        errors.at(
            span,
            format!(
                "unknown placeholder `<{text}>`: `{}` has no parameter `{}`; {listing}",
                f.item.sig.ident, h.root
            ),
        );
        return None;
    };
    let i = plan.values.len();
    plan.values.push(Value { borrow });
    index.insert(text, i);
    Some(i)
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

/// The tags a writer invalidates: templates and the values they use.
pub(crate) struct WritePlan {
    pub(crate) tags: Vec<Vec<Seg>>,
    pub(crate) values: Vec<Value>,
}

pub(crate) fn write_plan(
    args: &crate::attr::WriteArgs,
    w: &Writer,
    errors: &mut Errors,
) -> Option<WritePlan> {
    if args.invalidate.is_empty() && args.recache.is_empty() {
        errors.at(
            args.invalidate_span.unwrap_or_else(|| w.item.sig.ident.span()),
            "#[cache_write] needs something to do: `invalidate = [\"user:<id>\"]` and/or `recache = [get_user(id)]`",
        );
        return None;
    }
    // A writer is checked like a cached function with no key.
    let as_func = Func {
        item: w.item.clone(),
        kind: w.kind,
        params: w
            .params
            .iter()
            .map(|p| Param {
                ident: p.ident.clone(),
                mutable: p.mutable,
                ty: p.ty.clone(),
                by_ref: p.by_ref,
            })
            .collect(),
        shape: Shape {
            kind: ShapeKind::Value,
            ret: syn::parse_quote!(()),
            value: syn::parse_quote!(()),
            valid: true,
        },
    };
    let mut plan = KeyPlan {
        key_type: String::new(),
        id: Vec::new(),
        args: Vec::new(),
        tags: Vec::new(),
        values: Vec::new(),
        n_key: 0,
        adapters: Vec::new(),
    };
    let adapted = HashMap::new();
    let mut index = HashMap::new();
    let mut ok = true;
    for lit in &args.invalidate {
        let t = match Template::parse(lit, "tag") {
            Ok(t) => t,
            Err(e) => {
                errors.push(e);
                ok = false;
                continue;
            }
        };
        let mut segs = Vec::new();
        for piece in &t.pieces {
            let seg = match piece {
                Piece::Text(s) => Seg::Text(s.clone()),
                Piece::Hole(h) => {
                    match value_index(h, &t, &as_func, &adapted, &mut index, &mut plan, errors) {
                        Some(i) => Seg::Value(i),
                        None => {
                            ok = false;
                            continue;
                        }
                    }
                }
            };
            segs.push(seg);
        }
        plan.tags.push(segs);
    }
    ok.then_some(WritePlan {
        tags: plan.tags,
        values: plan.values,
    })
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
            syn::parse_quote!(())
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
