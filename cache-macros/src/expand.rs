//! Expansion of `#[cached]`.
//!
//! The function keeps its signature; its body becomes:
//!
//! 1. a `static` use-case slot (the spec: name, templates, TTLs);
//! 2. the key borrowed from the arguments and looked up in L1 (the hot
//!    path: nothing built, nothing allocated);
//! 3. on a stale hit with `swr`, one background refresh (sync: a thread;
//!    async: a task), built from owned copies of the arguments;
//! 4. on a miss, the original body as the loader, run through single-flight.
//!
//! The four shapes of `check::FnKind` differ only in how the loader is
//! wrapped and awaited: sync or async, each with or without `&self` (methods
//! refresh by calling themselves on a clone of `self`, free functions by
//! re-running the body).

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{ItemFn, Type};

use crate::attr::{CachedArgs, Errors, LayerChoice};
use crate::check::{self, Func, KeyValue, Param, ShapeKind, Source};
use crate::plan::{self, KeyPlan, Seg};

mod writer;

pub(crate) use writer::{bg_writer, cache_write};

/// The function an attribute sits on and the attribute's arguments (with
/// the errors found in their values so far), or the item back with the
/// errors that stop expansion.
fn parse_item<A>(
    item: &TokenStream,
    args: TokenStream,
    attr: &str,
    parse_args: fn(TokenStream, &mut Errors) -> syn::Result<A>,
) -> Result<(ItemFn, A, Errors), TokenStream> {
    let f: ItemFn = syn::parse2(item.clone()).map_err(|e| {
        let e = syn::Error::new(
            e.span(),
            format!("#[{attr}] goes on a function with a body: {e}"),
        );
        with_error(item.clone(), e)
    })?;
    let mut errors = Errors::default();
    match parse_args(args, &mut errors) {
        Ok(a) => Ok((f, a, errors)),
        Err(e) => {
            errors.push(e);
            Err(with_errors(item.clone(), errors))
        }
    }
}

/// The whole macro: parse, validate, expand; on error, the function as it
/// was plus every error, so the rest of the crate still type-checks.
pub(crate) fn cached(args: TokenStream, item: TokenStream) -> TokenStream {
    let (item_fn, args, mut errors) = match parse_item(&item, args, "cached", CachedArgs::parse) {
        Ok(parsed) => parsed,
        Err(out) => return out,
    };
    let Some(func) = check::function(item_fn, &mut errors) else {
        return with_errors(item, errors);
    };
    check::arguments(&args, &func, &mut errors);
    let key = check::key(&args, &func, &mut errors);
    match (errors.finish(), key) {
        (Ok(()), Some(key)) => expand(&args, &func, &plan::key_plan(key, &args.adapt)),
        (Err(e), _) => with_error(item, e),
        (Ok(()), None) => item,
    }
}

fn with_errors(item: TokenStream, errors: Errors) -> TokenStream {
    match errors.finish() {
        Ok(()) => item,
        Err(e) => with_error(item, e),
    }
}

fn with_error(mut item: TokenStream, e: syn::Error) -> TokenStream {
    item.extend(e.into_compile_error());
    item
}

fn opt<T: ToTokens>(v: Option<T>) -> TokenStream {
    match v {
        Some(v) => quote!(::core::option::Option::Some(#v)),
        None => quote!(::core::option::Option::None),
    }
}

fn segments(p: &TokenStream, segs: &[Seg]) -> TokenStream {
    let items = segs.iter().map(|s| match s {
        Seg::Text(t) => quote!(#p::Segment::Text(#t)),
        Seg::Value(i) => quote!(#p::Segment::Value(#i)),
    });
    quote!(&[#(#items),*])
}

/// An expression of type `&T` for one key value, spanned where a type
/// error about the value belongs.
fn borrow(v: &KeyValue, adapters: &[(syn::Ident, syn::Expr)]) -> TokenStream {
    let span = v.span;
    match &v.source {
        Source::SelfField { fields } => quote_spanned!(span=> &self #(.#fields)*),
        Source::Adapted(a) => {
            let local = &adapters[*a].0;
            quote_spanned!(span=> &#local)
        }
        Source::ParamField { ident, fields } => quote_spanned!(span=> &#ident #(.#fields)*),
        Source::Param {
            ident,
            by_ref: true,
        } => quote_spanned!(span=> #ident),
        Source::Param {
            ident,
            by_ref: false,
        } => quote_spanned!(span=> &#ident),
    }
}

/// Each borrowed value as `&dyn Display`, to render the key and tags.
fn displays(borrows: &[TokenStream]) -> Vec<TokenStream> {
    borrows
        .iter()
        .map(|b| {
            let span = b.span();
            quote_spanned!(span=> &#b as &dyn ::core::fmt::Display)
        })
        .collect()
}

/// `&T` with its lifetime dropped, so it can be re-borrowed from an owned
/// copy inside a `'static` job.
fn unlifetimed(ty: &Type) -> Type {
    match ty {
        Type::Reference(r) => {
            let mut r = r.clone();
            r.lifetime = None;
            Type::Reference(r)
        }
        other => other.clone(),
    }
}

fn expand(args: &CachedArgs, f: &Func, plan: &KeyPlan) -> TokenStream {
    let (_, p) = runtime_paths(args.krate.as_ref());
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = &f.item;
    let ident = &sig.ident;
    let ret = &f.shape.ret;
    let value_ty = &f.shape.value;

    // ---- the spec ----
    let name = match &args.name {
        Some(l) => quote!(#l),
        None => quote!(::core::concat!(
            ::core::module_path!(),
            "::",
            ::core::stringify!(#ident)
        )),
    };
    // A method's default name also names its type, which only its body can
    // see (the `static` spec cannot name `Self`): the runtime reads it once.
    let self_type = if args.name.is_none() && f.kind.receiver() {
        quote!(::core::option::Option::Some(
            ::core::any::type_name::<Self> as fn() -> &'static str
        ))
    } else {
        quote!(::core::option::Option::None)
    };
    let key_type = &plan.key_type;
    let id = segments(&p, &plan.id);
    let arg_specs = plan.args.iter().map(|(n, i)| quote!((#n, #i)));
    let tags = plan.tags.iter().map(|t| segments(&p, t));
    let ttl_ms = opt(args.ttl.map(|d| d.ms));
    let ttl_preset = match args.ttl.and_then(|d| d.preset) {
        Some(v) => {
            let v = format_ident!("{}", v);
            quote!(::core::option::Option::Some(#p::TtlPreset::#v))
        }
        None => quote!(::core::option::Option::None),
    };
    let swr_ms = args.swr.map_or(0, |d| d.ms);
    let negative_ttl_ms = opt(args.negative_ttl.map(|d| d.ms));
    let jitter = proc_macro2::Literal::f64_suffixed(args.jitter.map_or(0.0, |j| j.0));
    let capacity = opt(args.capacity);
    let max_bytes = opt(args.max_bytes);
    let weigher = match &args.weigher {
        Some(w) => quote_spanned! {w.span()=> ::core::option::Option::Some({
            fn __cachewright_weigh(v: &dyn ::core::any::Any) -> u64 {
                match v.downcast_ref::<#value_ty>() {
                    ::core::option::Option::Some(v) => (#w)(v) as u64,
                    ::core::option::Option::None => 0,
                }
            }
            __cachewright_weigh as fn(&dyn ::core::any::Any) -> u64
        })},
        None => quote!(::core::option::Option::None),
    };
    let schema = args.schema.unwrap_or(0);
    let layers = format_ident!(
        "{}",
        args.layers.map_or(LayerChoice::All, |l| l.0).variant()
    );
    let local_ttl_ms = opt(args.local_ttl.map(|d| d.ms));
    let remote_ttl_ms = opt(args.remote_ttl.map(|d| d.ms));
    // Asking for remote layers by name makes a value type without serde a
    // compile error; by default such a type stays in process (with a warning
    // at run time when the cache has remote layers).
    let serde_assert = match args.layers {
        Some((choice, span)) if choice.remote() => {
            quote_spanned!(span=> #p::assert_serde::<#value_ty>();)
        }
        _ => TokenStream::new(),
    };

    let cache = match &args.cache {
        Some(c) => quote_spanned!(c.span()=> || #p::AsCache::as_cache(&(#c))),
        None => quote!(|| ::core::clone::Clone::clone(#p::default_cache())),
    };
    let negative = match f.shape.kind {
        ShapeKind::Option | ShapeKind::ResultOption => quote!(::core::option::Option::Some(
            ::core::option::Option::is_none as fn(&#value_ty) -> bool
        )),
        _ => quote!(::core::option::Option::None),
    };

    // ---- shape adapters ----
    let (wrap, into, unwrap) = shape_code(&p, f.shape.kind, ret);

    // ---- key values ----
    let adapters = plan
        .adapters
        .iter()
        .map(|(local, expr)| quote_spanned!(expr.span()=> let #local = #expr;));
    let borrows: Vec<TokenStream> = plan
        .values
        .iter()
        .map(|v| borrow(v, &plan.adapters))
        .collect();
    let key_parts = &borrows[..plan.n_key];
    let q = quote!((#(#key_parts,)*));
    let displays = displays(&borrows);
    let key_asserts = key_parts
        .iter()
        .map(|b| quote_spanned!(b.span()=> #p::assert_key_part(#b);));
    let vspan = check::value_span(f);
    let value_assert = quote_spanned!(vspan=> #p::assert_value::<#value_ty>(););

    // ---- stale-while-revalidate and shadow reads ----
    let refresh = if args.swr.is_some() || args.early_refresh.is_some() {
        let job = job_code(&p, f, &into);
        let method = if f.kind.is_async() {
            quote!(refresh_async)
        } else {
            quote!(refresh_sync)
        };
        quote!(__cachewright_uc.#method(&__cachewright_q, &[#(#displays),*], #job);)
    } else {
        TokenStream::new()
    };
    let (shadow, shadow_probes) = if args.shadow.is_some() {
        let job = job_code(&p, f, &into);
        let method = if f.kind.is_async() {
            quote!(shadow_async)
        } else {
            quote!(shadow_sync)
        };
        (
            quote! {
                __cachewright_uc.#method(
                    &__cachewright_v,
                    (&&#p::EqProbe::<#value_ty>::new()).eq_fn(),
                    #job,
                );
            },
            quote! {
                #[allow(unused_imports)]
                use #p::{ViaEq as _, ViaEncodedEq as _, ViaNoEq as _};
            },
        )
    } else {
        (TokenStream::new(), TokenStream::new())
    };
    let (early_pm, xfetch_beta) = args.early_refresh.map_or((0u32, 0u32), |(a, b, _)| (a, b));
    let shadow_per_mille = match args.shadow {
        Some(pm) => quote!(::core::option::Option::Some(#pm)),
        None => quote!(::core::option::Option::None),
    };

    let resilience = resilience_code(&p, args);

    // ---- the load ----
    let timed = args.soft_timeout.is_some() || args.hard_timeout.is_some();
    let load = if f.kind.is_async() && timed {
        // The load runs as a task, on owned copies of the arguments, so
        // that a caller who stops waiting leaves it running.
        let run = run_code(&p, f, &into, false);
        let on_timeout = if let Some(hard) = args.hard_timeout {
            // At `hard_timeout`: an error type without `From<Timeout>` is
            // reported there.
            let span = hard.name_span;
            quote_spanned!(span=> ::core::option::Option::Some(|__cachewright_t: #p::Timeout| ::core::convert::From::from(__cachewright_t)))
        } else {
            quote!(::core::option::Option::None)
        };
        quote! {
            let __cachewright_run = match (&__cachewright_uc, &__cachewright_miss) {
                (::core::option::Option::Some(_), ::core::option::Option::Some(_)) => ::core::option::Option::Some((#run)()),
                _ => ::core::option::Option::None,
            };
            let __cachewright_load = async move {
                let __cachewright_r: #ret = #block;
                __cachewright_r
            };
            match (__cachewright_uc, __cachewright_miss, __cachewright_run) {
                (::core::option::Option::Some(__cachewright_uc), ::core::option::Option::Some(__cachewright_miss), ::core::option::Option::Some(__cachewright_run)) => {
                    let __cachewright_share = (&#p::probe_async(&__cachewright_run)).share_error();
                    #unwrap(::std::boxed::Box::pin(__cachewright_uc.load_async_timed(__cachewright_miss, __cachewright_share, __cachewright_run, #on_timeout)).await)
                }
                _ => __cachewright_load.await,
            }
        }
    } else if f.kind.is_async() {
        quote! {
            let __cachewright_load = async move {
                let __cachewright_r: #ret = #block;
                __cachewright_r
            };
            match (__cachewright_uc, __cachewright_miss) {
                (::core::option::Option::Some(__cachewright_uc), ::core::option::Option::Some(__cachewright_miss)) => {
                    let __cachewright_into = async move { #into(__cachewright_load.await) };
                    let __cachewright_share = (&#p::probe_async(&__cachewright_into)).share_error();
                    // Boxed: the miss path's state (single-flight, layers,
                    // store) would otherwise make every call's future, hits
                    // included, kilobytes larger to create and move.
                    #unwrap(::std::boxed::Box::pin(__cachewright_uc.load_async(__cachewright_miss, __cachewright_share, __cachewright_into)).await)
                }
                _ => __cachewright_load.await,
            }
        }
    } else {
        quote! {
            let __cachewright_load = move || -> #ret #block;
            match (__cachewright_uc, __cachewright_miss) {
                (::core::option::Option::Some(__cachewright_uc), ::core::option::Option::Some(__cachewright_miss)) => {
                    let __cachewright_into = move || #into(__cachewright_load());
                    let __cachewright_share = (&#p::probe_sync(&__cachewright_into)).share_error();
                    #unwrap(__cachewright_uc.load_sync(__cachewright_miss, __cachewright_share, __cachewright_into))
                }
                _ => __cachewright_load(),
            }
        }
    };

    let inner = quote! {
            #[allow(unused_imports)]
            use #p::{ViaClone as _, ViaNothing as _, ViaOpaque as _, ViaSerde as _};
            static __CACHEWRIGHT_USE_CASE: #p::UseCaseSlot = #p::UseCaseSlot::new(#p::UseCaseSpec {
                name: #name,
                key: #p::KeyTemplate {
                    key_type: #key_type,
                    id: #id,
                    args: &[#(#arg_specs),*],
                    tags: &[#(#tags),*],
                },
                ttl_ms: #ttl_ms,
                ttl_preset: #ttl_preset,
                swr_ms: #swr_ms,
                negative_ttl_ms: #negative_ttl_ms,
                jitter: #jitter,
                capacity: #capacity,
                schema: #schema,
                layers: #p::LayerChoice::#layers,
                local_ttl_ms: #local_ttl_ms,
                remote_ttl_ms: #remote_ttl_ms,
                max_bytes: #max_bytes,
                weigher: #weigher,
                shadow_per_mille: #shadow_per_mille,
                early_refresh_per_mille: #early_pm,
                xfetch_beta_milli: #xfetch_beta,
                resilience: #resilience,
            });
            let (__cachewright_uc, __cachewright_miss) = {
                #(#adapters)*
                #(#key_asserts)*
                #value_assert
                #serde_assert
                let __cachewright_q = #q;
                let __cachewright_uc = __CACHEWRIGHT_USE_CASE.get::<_, #value_ty>(
                    &__cachewright_q,
                    #self_type,
                    #cache,
                    #negative,
                    (&#p::CodecProbe::<#value_ty>::new()).value_codec(),
                );
                let __cachewright_miss = match __cachewright_uc {
                    ::core::option::Option::Some(__cachewright_uc) => match __cachewright_uc.lookup(&__cachewright_q) {
                        #p::Lookup::Hit(__cachewright_v) => return #wrap,
                        #p::Lookup::Stale(__cachewright_v) => {
                            #refresh
                            return #wrap;
                        }
                        #p::Lookup::Shadow(__cachewright_v) => {
                            #shadow_probes
                            #shadow
                            return #wrap;
                        }
                        #p::Lookup::Miss(__cachewright_mode) => ::core::option::Option::Some(
                            __cachewright_uc.miss(&__cachewright_q, &[#(#displays),*], __cachewright_mode),
                        ),
                    },
                    ::core::option::Option::None => ::core::option::Option::None,
                };
                (__cachewright_uc, __cachewright_miss)
            };
                        #load
    };
    let body = braced_like(block, inner);
    quote! {
        #(#attrs)*
        #vis #sig #body
    }
}

/// The spec's `resilience`: the fields the attribute sets, the rest the
/// runtime's defaults.
fn resilience_code(p: &TokenStream, args: &CachedArgs) -> TokenStream {
    let mut fields = Vec::new();
    let mut ms = |name: &str, d: Option<crate::attr::Dur>| {
        if let Some(d) = d {
            let field = format_ident!("{}_ms", name);
            let v = d.ms;
            fields.push(quote!(#field: #v,));
        }
    };
    ms("fail_safe", args.fail_safe);
    ms("fail_safe_throttle", args.fail_safe_throttle);
    ms("soft_timeout", args.soft_timeout);
    ms("hard_timeout", args.hard_timeout);
    ms("lock_wait", args.lock_wait);
    if args.lock.is_some() {
        fields.push(quote!(lock: true,));
    }
    if fields.is_empty() {
        return quote!(#p::Resilience::NONE);
    }
    quote!(#p::Resilience { #(#fields)* ..#p::Resilience::NONE })
}

/// `inner` in braces that carry the original body's span: the function then
/// reads as the user's own code, so lints such as `dead_code` still fire.
fn braced_like(block: &syn::Block, inner: TokenStream) -> TokenStream {
    let mut g = proc_macro2::Group::new(proc_macro2::Delimiter::Brace, inner);
    g.set_span(block.brace_token.span.join());
    quote!(#g)
}

/// How a cached value becomes the return value (`wrap`), how the body's
/// return value becomes `Result<V, E>` (`into`), and back (`unwrap`).
fn shape_code(
    p: &TokenStream,
    kind: ShapeKind,
    ret: &Type,
) -> (TokenStream, TokenStream, TokenStream) {
    let rspan = ret.span();
    match kind {
        ShapeKind::Value | ShapeKind::Option => (
            quote!(__cachewright_v),
            quote_spanned!(rspan=> ::core::result::Result::Ok::<#ret, ::core::convert::Infallible>),
            quote!(#p::unwrap_infallible),
        ),
        ShapeKind::Result | ShapeKind::ResultOption => (
            quote!(::core::result::Result::Ok(__cachewright_v)),
            quote_spanned!(rspan=> ::core::convert::identity::<#ret>),
            quote!(::core::convert::identity),
        ),
    }
}

/// Owned copies of every parameter, taken before a refresh is spawned.
fn owned_copies(params: &[Param]) -> (Vec<TokenStream>, Vec<TokenStream>) {
    let mut take = Vec::new();
    let mut rebind = Vec::new();
    for (i, prm) in params.iter().enumerate() {
        let id = &prm.ident;
        let owned = format_ident!("__cachewright_owned_{}", i);
        let span = prm.ty.span();
        let source = if prm.by_ref {
            quote!(#id)
        } else {
            quote!(&#id)
        };
        take.push(quote_spanned!(span=> let #owned = ::std::borrow::ToOwned::to_owned(#source);));
        let ty = unlifetimed(&prm.ty);
        let m = prm.mutable.then(|| quote!(mut));
        rebind.push(if prm.by_ref {
            quote_spanned!(span=> #[allow(unused_variables)] let #id: #ty = ::core::borrow::Borrow::borrow(&#owned);)
        } else {
            quote_spanned!(span=> #[allow(unused_variables, unused_mut)] let #m #id: #ty = #owned;)
        });
    }
    (take, rebind)
}

/// Replaces the keyword `self` (not `self::` paths) with `__cachewright_self`,
/// inside macro invocations too, keeping each token's span.
fn rename_self(tokens: TokenStream) -> TokenStream {
    use proc_macro2::{Group, TokenTree};
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    let mut out = TokenStream::new();
    for (i, tt) in trees.iter().enumerate() {
        let next_is_path = matches!(
            (trees.get(i + 1), trees.get(i + 2)),
            (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b))) if a.as_char() == ':' && b.as_char() == ':'
        );
        match tt {
            TokenTree::Ident(id) if id == "self" && !next_is_path => {
                out.extend([TokenTree::Ident(syn::Ident::new(
                    "__cachewright_self",
                    id.span(),
                ))]);
            }
            TokenTree::Group(g) => {
                let mut ng = Group::new(g.delimiter(), rename_self(g.stream()));
                ng.set_span(g.span());
                out.extend([TokenTree::Group(ng)]);
            }
            other => out.extend([other.clone()]),
        }
    }
    out
}

/// The closure that builds a background run of the body (a refresh or a
/// shadow read) from owned copies of the arguments.
fn job_code(p: &TokenStream, f: &Func, into: &TokenStream) -> TokenStream {
    run_code(p, f, into, true)
}

/// [`job_code`]'s closure; the run's result keeps its error unless
/// `discard` (a background run's caller is gone).
fn run_code(p: &TokenStream, f: &Func, into: &TokenStream, discard: bool) -> TokenStream {
    let finish = if discard {
        quote!(#p::discard_error(#into(__cachewright_r)))
    } else {
        quote!(#into(__cachewright_r))
    };
    let ret = &f.shape.ret;
    let body = &f.item.block;
    let (take, rebind) = owned_copies(&f.params);
    // A method's body runs again on a copy of `self`: the body's `self`
    // becomes a reference to that copy. (Calling the method itself would
    // make an async method's future contain itself.)
    let (self_copy, self_rebind, body) = if f.kind.receiver() {
        (
            quote!(let __cachewright_owned_self = #p::clone_receiver(self);),
            quote!(let __cachewright_self: &Self = &__cachewright_owned_self;),
            rename_self(body.to_token_stream()),
        )
    } else {
        (
            TokenStream::new(),
            TokenStream::new(),
            body.to_token_stream(),
        )
    };
    let job = if f.kind.is_async() {
        quote! {
            ::std::boxed::Box::pin(async move {
                #self_rebind
                #(#rebind)*
                let __cachewright_r: #ret = async move #body.await;
                #finish
            })
        }
    } else {
        quote! {
            ::std::boxed::Box::new(move || {
                #self_rebind
                #(#rebind)*
                let __cachewright_r: #ret = (move || -> #ret #body)();
                #finish
            })
        }
    };
    quote! {
        || {
            #self_copy
            #(#take)*
            #job
        }
    }
}

/// The paths generated code names the runtime by: `crate = "..."`'s, whose
/// tokens (and `__private` after them) carry the string's span, so that a
/// wrong path is reported at the string; or `::cachewright`.
fn runtime_paths(krate: Option<&syn::Path>) -> (TokenStream, TokenStream) {
    match krate {
        Some(path) => {
            let span = path.span();
            (quote!(#path), quote_spanned!(span=> #path::__private))
        }
        None => (quote!(::cachewright), quote!(::cachewright::__private)),
    }
}
