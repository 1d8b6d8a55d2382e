//! The key plan: a validated key numbered the way the runtime reads it.
//!
//! Each distinct placeholder becomes one value, numbered in order of first
//! use: the id's, then the other arguments', then the tags'. The first
//! `n_key` values identify a call (the L1 key); the rest only render tags.
//! Nothing here fails: `check` has reported every mistake already.

use std::collections::HashMap;

use quote::format_ident;
use syn::Ident;

use crate::attr::Adapter;
use crate::check::{CheckedKey, KeyValue, Part};

/// One segment of a rendered template, as the runtime's `Segment`.
pub(crate) enum Seg {
    Text(String),
    /// The index of a value.
    Value(usize),
}

pub(crate) struct KeyPlan {
    pub(crate) key_type: String,
    pub(crate) id: Vec<Seg>,
    /// `?name=value` arguments: each name and its value's index.
    pub(crate) args: Vec<(String, usize)>,
    pub(crate) tags: Vec<Vec<Seg>>,
    pub(crate) values: Vec<KeyValue>,
    /// The first `n_key` values identify the call (the L1 key); the rest are
    /// needed only to render tags.
    pub(crate) n_key: usize,
    /// `let` bindings computing adapted key forms, in `adapt`'s order (a
    /// [`Source::Adapted`](crate::check::Source::Adapted) indexes them).
    pub(crate) adapters: Vec<(Ident, syn::Expr)>,
}

/// The tags a writer invalidates: templates and the values they use.
pub(crate) struct WritePlan {
    pub(crate) tags: Vec<Vec<Seg>>,
    pub(crate) values: Vec<KeyValue>,
}

/// Values numbered by placeholder text: a placeholder used twice is one
/// value (its first use's span is kept).
#[derive(Default)]
struct Values {
    values: Vec<KeyValue>,
    index: HashMap<String, usize>,
}

impl Values {
    fn number(&mut self, v: KeyValue) -> usize {
        if let Some(&i) = self.index.get(&v.text) {
            return i;
        }
        let i = self.values.len();
        self.index.insert(v.text.clone(), i);
        self.values.push(v);
        i
    }

    fn segments(&mut self, parts: Vec<Part>) -> Vec<Seg> {
        parts
            .into_iter()
            .map(|p| match p {
                Part::Text(t) => Seg::Text(t),
                Part::Value(v) => Seg::Value(self.number(v)),
            })
            .collect()
    }
}

pub(crate) fn key_plan(key: CheckedKey, adapt: &[Adapter]) -> KeyPlan {
    let mut values = Values::default();
    let id = values.segments(key.id);
    let args = key
        .args
        .into_iter()
        .map(|v| (v.text.clone(), values.number(v)))
        .collect();
    let n_key = values.values.len();
    let tags = key.tags.into_iter().map(|t| values.segments(t)).collect();
    KeyPlan {
        key_type: key.key_type,
        id,
        args,
        tags,
        values: values.values,
        n_key,
        adapters: adapt
            .iter()
            .map(|a| {
                (
                    format_ident!("__cachewright_adapt_{}", a.param),
                    a.expr.clone(),
                )
            })
            .collect(),
    }
}

pub(crate) fn write_plan(tags: Vec<Vec<Part>>) -> WritePlan {
    let mut values = Values::default();
    let tags = tags.into_iter().map(|t| values.segments(t)).collect();
    WritePlan {
        tags,
        values: values.values,
    }
}
