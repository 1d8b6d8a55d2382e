//! Expansion of `#[cache_write]` (the writer's body, then invalidation and
//! recaching) and `#[bg_writer]` (a `static` around the loader).

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{ItemFn, Type};

use super::{borrow, braced_like, displays, opt, parse_item, runtime_paths, segments, with_error};
use crate::attr::{BgArgs, WriteArgs};
use crate::check;
use crate::plan::{self, WritePlan};

/// `#[cache_write]`: parse, validate, expand; on error, the function as it
/// was plus every error.
pub(crate) fn cache_write(args: TokenStream, item: TokenStream) -> TokenStream {
    let (item_fn, args, mut errors) = match parse_item(&item, args, "cache_write", WriteArgs::parse)
    {
        Ok(parsed) => parsed,
        Err(out) => return out,
    };
    let w = check::writer(item_fn, &mut errors);
    let tags = check::invalidations(&args, &w, &mut errors);
    match (errors.finish(), tags) {
        (Ok(()), Some(tags)) => expand_write(&args, &w, &plan::write_plan(tags)),
        (Err(e), _) => with_error(item, e),
        (Ok(()), None) => item,
    }
}

/// Replaces each listed identifier with its `keep` twin, inside macro
/// invocations too.
fn rename_idents(tokens: TokenStream, names: &[(String, syn::Ident)]) -> TokenStream {
    use proc_macro2::{Group, TokenTree};
    tokens
        .into_iter()
        .map(|tt| match tt {
            TokenTree::Ident(id) => match names.iter().find(|(n, _)| id == n) {
                Some((_, to)) => TokenTree::Ident(syn::Ident::new(&to.to_string(), id.span())),
                None => TokenTree::Ident(id),
            },
            TokenTree::Group(g) => {
                let mut ng = Group::new(g.delimiter(), rename_idents(g.stream(), names));
                ng.set_span(g.span());
                TokenTree::Group(ng)
            }
            other => other,
        })
        .collect()
}

fn mentions(tokens: TokenStream, name: &str) -> bool {
    use proc_macro2::TokenTree;
    tokens.into_iter().any(|tt| match tt {
        TokenTree::Ident(id) => id == name,
        TokenTree::Group(g) => mentions(g.stream(), name),
        _ => false,
    })
}

fn expand_write(args: &WriteArgs, w: &check::Writer, plan: &WritePlan) -> TokenStream {
    let (krate, p) = runtime_paths(args.krate.as_ref());
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = &w.item;
    let ret: Type = match &sig.output {
        syn::ReturnType::Default => syn::parse_quote!(()),
        syn::ReturnType::Type(_, t) => (**t).clone(),
    };
    let tags = plan.tags.iter().map(|t| segments(&p, t));
    let borrows: Vec<TokenStream> = plan.values.iter().map(|v| borrow(v, &[])).collect();
    let displays = displays(&borrows);
    let cache = match &args.cache {
        Some(c) => quote_spanned!(c.span()=> #p::AsCache::as_cache(&(#c))),
        None => quote!(::core::clone::Clone::clone(#p::default_cache())),
    };
    let buffer_ms = args.buffer_ms;
    let buffer = quote!(::core::time::Duration::from_millis(#buffer_ms));
    // Parameters the recache calls use are kept (cloned) before the body
    // runs, since the body may consume them.
    let mut keeps = Vec::new();
    let mut renames = Vec::new();
    for prm in &w.params {
        let name = prm.ident.to_string();
        if args
            .recache
            .iter()
            .any(|e| mentions(e.to_token_stream(), &name))
        {
            let keep = format_ident!("__cachewright_keep_{}", prm.ident);
            let id = &prm.ident;
            keeps.push(quote!(let #keep = ::core::clone::Clone::clone(&#id);));
            renames.push((name, keep));
        }
    }
    let recache: Vec<TokenStream> = args
        .recache
        .iter()
        .map(|e| rename_idents(e.to_token_stream(), &renames))
        .collect();
    let succeeded = if w.fallible {
        quote!(::core::result::Result::is_ok(&__cachewright_r))
    } else {
        quote!(true)
    };
    // Recached values must count as newer than the invalidation.
    let recaches = !recache.is_empty();
    let body = if w.kind.is_async() {
        let before = args.before.then(|| {
            quote!(__cachewright_cache.invalidate_tags_buffered_async(::core::clone::Clone::clone(&__cachewright_tags), #buffer).await;)
        });
        quote! {
            #before
            let __cachewright_r: #ret = async move #block.await;
                        if #succeeded {
                #p::invalidate_for_write_async(&__cachewright_cache, __cachewright_tags, #buffer, #recaches).await;
                #( (&#p::Recache::new(#krate::refresh(|| #recache))).recache().await; )*
            }
            __cachewright_r
        }
    } else {
        let before = args.before.then(|| {
            quote!(__cachewright_cache.invalidate_tags_buffered(::core::clone::Clone::clone(&__cachewright_tags), #buffer);)
        });
        quote! {
            #before
            let __cachewright_r: #ret = (move || -> #ret #block)();
                        if #succeeded {
                #p::invalidate_for_write(&__cachewright_cache, __cachewright_tags, #buffer, #recaches);
                #( (&#p::Recache::new(#krate::refresh(|| #recache))).recache_now(); )*
            }
            __cachewright_r
        }
    };
    let inner = quote! {
        #[allow(unused_imports)]
        use #p::{RecacheDone as _, RecacheFuture as _, RecacheSpawn as _, RecacheValue as _};
        let __cachewright_tags: ::std::vec::Vec<::std::string::String> =
            #p::render_tags(&[#(#tags),*], &[#(#displays),*]);
        #(#keeps)*
        let __cachewright_cache: #p::Cache = #cache;
        #body
    };
    let body = braced_like(block, inner);
    quote! {
        #(#attrs)*
        #vis #sig #body
    }
}

/// `#[bg_writer]`: the function becomes the loader of a `static` of the same
/// name, a `cachewright::BgWriter<T>`.
pub(crate) fn bg_writer(args: TokenStream, item: TokenStream) -> TokenStream {
    let (f, args, mut errors) = match parse_item(&item, args, "bg_writer", BgArgs::parse) {
        Ok(parsed) => parsed,
        Err(out) => return out,
    };
    let ret = check::bg_writer(&f, &args, &mut errors);
    if let Err(e) = errors.finish() {
        return with_error(item, e);
    }
    let (krate, p) = runtime_paths(args.krate.as_ref());
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = &f;
    let ident = &sig.ident;
    let loader = format_ident!("__cachewright_bg_{}", ident);
    let (value, fallible) = check::ok_type(&ret);
    let on_error = args
        .on_error
        .as_ref()
        .map(|h| quote_spanned!(h.span()=> (#h)(&__cachewright_e);));
    let settle = if fallible {
        quote! {
            match __cachewright_r {
                ::core::result::Result::Ok(v) => ::core::result::Result::Ok(v),
                ::core::result::Result::Err(__cachewright_e) => {
                    #on_error
                    ::core::result::Result::Err(#p::BgFailure::new(&__cachewright_e))
                }
            }
        }
    } else {
        quote!(::core::result::Result::Ok(__cachewright_r))
    };
    let load = if sig.asyncness.is_some() {
        quote! {
            #p::BgLoader::Async(|| ::std::boxed::Box::pin(async {
                let __cachewright_r = #loader().await;
                #settle
            }))
        }
    } else {
        quote! {
            #p::BgLoader::Sync(|| {
                let __cachewright_r = #loader();
                #settle
            })
        }
    };
    let key = args.key.as_ref().map(|k| quote!(#k)).unwrap_or_default();
    let interval_ms = args.interval_ms.unwrap_or(0);
    let ttl_ms = opt(args.ttl_ms);
    let run_immediately = args.run_immediately.unwrap_or(true);
    let name = match &args.name {
        Some(l) => quote!(#l),
        None => quote!(::core::concat!(
            ::core::module_path!(),
            "::",
            ::core::stringify!(#ident)
        )),
    };
    let cache = match &args.cache {
        Some(c) => quote_spanned!(c.span()=> || #p::AsCache::as_cache(&(#c))),
        None => quote!(|| ::core::clone::Clone::clone(#p::default_cache())),
    };
    let asyncness = &sig.asyncness;
    let output = &sig.output;
    let loader_fn = braced_like(block, quote!(#block));
    quote! {
        #[doc(hidden)]
        #asyncness fn #loader() #output #loader_fn

        #(#attrs)*
        #[allow(non_upper_case_globals)]
        #vis static #ident: #krate::BgWriter<#value> = #krate::BgWriter::new(
            #p::BgSpec {
                key: #key,
                interval_ms: #interval_ms,
                ttl_ms: #ttl_ms,
                run_immediately: #run_immediately,
                name: #name,
            },
            #load,
            #cache,
        );
    }
}
