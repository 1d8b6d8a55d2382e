//! Validation of key and tag templates against the function they sit on:
//! every placeholder is resolved to where its value comes from (a
//! parameter, a field of one, a field of `self`, or an `adapt` key form),
//! and every mistake is reported at its template.
//!
//! The result is typed data; `plan` numbers the values and `expand` turns
//! each [`Source`] into a borrow.

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::Ident;

use super::{Func, Param, Writer};
use crate::attr::{Adapter, CachedArgs, Errors, WriteArgs};
use crate::template::{Piece, Placeholder, Template};

/// Where one key value comes from.
pub(crate) enum Source {
    /// `<self.a.b>`: a field path of the receiver.
    SelfField { fields: Vec<Ident> },
    /// `<p>` of a parameter whose key form `adapt` gives: the index of its
    /// adapter.
    Adapted(usize),
    /// `<p.a.b>`: a field path of a parameter.
    ParamField { ident: Ident, fields: Vec<Ident> },
    /// `<p>`: a parameter itself; `by_ref` when it is already a reference.
    Param { ident: Ident, by_ref: bool },
}

/// One placeholder, resolved.
pub(crate) struct KeyValue {
    /// The placeholder's text (`user.id`): one value per distinct text.
    pub(crate) text: String,
    pub(crate) source: Source,
    /// Where a type error about the value (not `Hash`, not `Display`) is
    /// reported: the template, the parameter's type, or the adapter.
    pub(crate) span: Span,
}

/// One piece of a resolved template.
pub(crate) enum Part {
    Text(String),
    Value(KeyValue),
}

/// A `#[cached]` function's key and tags, every placeholder resolved.
pub(crate) struct CheckedKey {
    pub(crate) key_type: String,
    /// The id after the key type.
    pub(crate) id: Vec<Part>,
    /// Parameters neither in the key template nor ignored, in order: they
    /// go into the key's `?<other args>`.
    pub(crate) args: Vec<KeyValue>,
    pub(crate) tags: Vec<Vec<Part>>,
}

/// What a placeholder may name.
struct Scope<'a> {
    func: &'a Ident,
    receiver: bool,
    params: &'a [Param],
    adapt: &'a [Adapter],
}

/// Checks `#[cached]`'s key (the function's name when none is given),
/// tags, `ignore` and `adapt` against the function. `None` when a template
/// is unusable; every mistake is in `errors`.
pub(crate) fn key(args: &CachedArgs, f: &Func, errors: &mut Errors) -> Option<CheckedKey> {
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
    receiver_is_keyed(args, f, &key, errors);

    let scope = Scope {
        func: &f.item.sig.ident,
        receiver: f.kind.receiver(),
        params: &f.params,
        adapt: &args.adapt,
    };
    let mut ok = true;
    let id = resolve_pieces(&id_pieces, &key, &scope, &mut ok, errors);
    let in_key: Vec<String> = key.holes().map(|h| h.root.clone()).collect();
    let mut rest = Vec::new();
    for p in &f.params {
        let name = p.ident.to_string();
        if in_key.contains(&name) || args.ignore.contains(&p.ident) {
            continue;
        }
        let hole = Placeholder {
            root: name,
            fields: Vec::new(),
        };
        match resolve(&hole, &key, &scope, errors) {
            Some(v) => rest.push(v),
            None => ok = false,
        }
    }
    let tags = tags
        .iter()
        .map(|t| resolve_pieces(&t.pieces, t, &scope, &mut ok, errors))
        .collect();
    ok.then_some(CheckedKey {
        key_type,
        id,
        args: rest,
        tags,
    })
}

fn resolve_pieces(
    pieces: &[Piece],
    template: &Template,
    scope: &Scope<'_>,
    ok: &mut bool,
    errors: &mut Errors,
) -> Vec<Part> {
    let mut parts = Vec::new();
    for piece in pieces {
        match piece {
            Piece::Text(t) => parts.push(Part::Text(t.clone())),
            Piece::Hole(h) => match resolve(h, template, scope, errors) {
                Some(v) => parts.push(Part::Value(v)),
                None => *ok = false,
            },
        }
    }
    parts
}

fn check_ignore_and_adapt(args: &CachedArgs, f: &Func, key: &Template, errors: &mut Errors) {
    let names: Vec<String> = f.params.iter().map(|p| p.ident.to_string()).collect();
    let in_key: Vec<String> = key.holes().map(|h| h.root.clone()).collect();
    for i in &args.ignore {
        let n = i.to_string();
        if n == "self" {
            if !f.kind.receiver() {
                errors.at(
                    i.span(),
                    "`ignore = [self]` is for methods, but this function takes no `&self`",
                );
            } else if in_key.contains(&n) {
                errors.at(
                    i.span(),
                    "the key template names a field of `self`, so `self` cannot be ignored",
                );
            }
        } else if !names.contains(&n) {
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

/// A method's receiver is part of its key (a field of `self` in the key
/// template) or explicitly left out (`ignore = [self]`): otherwise
/// `tenant_a.get(7)` and `tenant_b.get(7)` would share one entry. Tags do
/// not count, since they do not tell calls apart.
fn receiver_is_keyed(args: &CachedArgs, f: &Func, key: &Template, errors: &mut Errors) {
    // A `&mut self` or `self` receiver is reported on its own already.
    let Some(r) = f.item.sig.receiver() else {
        return;
    };
    if r.reference.is_none() || r.mutability.is_some() || r.colon_token.is_some() {
        return;
    }
    let keyed = key.holes().any(|h| h.root == "self");
    let ignored = args.ignore.iter().any(|i| i == "self");
    if !keyed && !ignored {
        errors.spanned(
            r,
            "a cached method's key must say how `self` is keyed, or every receiver shares one entry per argument: name a field of `self` in the key template (`key = \"...:<self.id>\"`) or exclude it with `ignore = [self]`",
        );
    }
}

/// Where the value of `<h>` comes from, or why it cannot be named.
fn resolve(
    h: &Placeholder,
    template: &Template,
    scope: &Scope<'_>,
    errors: &mut Errors,
) -> Option<KeyValue> {
    let text = h.text();
    let span = template.span();
    let field_idents = || h.fields.iter().map(|f| Ident::new(f, span)).collect();
    let (source, span) = if h.root == "self" {
        if !scope.receiver {
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
        (
            Source::SelfField {
                fields: field_idents(),
            },
            span,
        )
    } else if let Some(a) = scope.adapt.iter().rposition(|a| a.param == h.root) {
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
        (Source::Adapted(a), scope.adapt[a].expr.span())
    } else if let Some(p) = scope.params.iter().find(|p| p.ident == h.root) {
        if !h.fields.is_empty() {
            (
                Source::ParamField {
                    ident: Ident::new(&h.root, span),
                    fields: field_idents(),
                },
                span,
            )
        } else {
            let ty_span = p.ty.span();
            (
                Source::Param {
                    ident: Ident::new(&h.root, ty_span),
                    by_ref: p.by_ref,
                },
                ty_span,
            )
        }
    } else {
        let names: Vec<String> = scope
            .params
            .iter()
            .map(|p| format!("`{}`", p.ident))
            .chain(scope.receiver.then(|| "`self.<field>`".to_string()))
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
                scope.func, h.root
            ),
        );
        return None;
    };
    Some(KeyValue { text, source, span })
}

// ---- #[cache_write] -------------------------------------------------------------

/// Checks a writer's `invalidate` templates against its parameters (as a
/// cached function's tags, with no key); returns them resolved, or `None`
/// when one is unusable or there is nothing to do.
pub(crate) fn invalidations(
    args: &WriteArgs,
    w: &Writer,
    errors: &mut Errors,
) -> Option<Vec<Vec<Part>>> {
    if args.invalidate.is_empty() && args.recache.is_empty() {
        errors.at(
            args.invalidate_span.unwrap_or_else(|| w.item.sig.ident.span()),
            "#[cache_write] needs something to do: `invalidate = [\"user:<id>\"]` and/or `recache = [get_user(id)]`",
        );
        return None;
    }
    let scope = Scope {
        func: &w.item.sig.ident,
        receiver: w.kind.receiver(),
        params: &w.params,
        adapt: &[],
    };
    let mut ok = true;
    let mut tags = Vec::new();
    for lit in &args.invalidate {
        match Template::parse(lit, "tag") {
            Ok(t) => tags.push(resolve_pieces(&t.pieces, &t, &scope, &mut ok, errors)),
            Err(e) => {
                errors.push(e);
                ok = false;
            }
        }
    }
    ok.then_some(tags)
}
