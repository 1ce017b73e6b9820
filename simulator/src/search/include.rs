//! `_include` and `_revinclude`: the extra resources returned with the matches.

use super::evaluate::{ResourceSource, id_of, reference_pairs, type_of};
use super::query::ParsedSearch;
use super::registry::SearchParamDef;
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;

/// The `Type/id` targets of a reference parameter in `resource` (only allowed target types).
pub fn references_of(resource: &Value, param: &SearchParamDef) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (t, id) in reference_pairs(resource, param) {
        let key = format!("{t}/{id}");
        if !out.contains(&key) {
            out.push(key);
        }
    }
    out
}

/// The `Type/id` key of a resource.
fn key_of(resource: &Value) -> String {
    format!("{}/{}", type_of(resource), id_of(resource))
}

/// The resources named by the query's `_include` (references of the matches, resolved with
/// `get`) and `_revinclude` (resources of the named type whose parameter references a match),
/// in discovery order, without duplicates and without resources already in `matches`.
pub fn included(
    query: &ParsedSearch,
    matches: &[Arc<Value>],
    source: &dyn ResourceSource,
) -> Vec<Arc<Value>> {
    let mut seen: HashSet<String> = matches.iter().map(|m| key_of(m)).collect();
    let mut out = Vec::new();
    for spec in &query.include {
        for m in matches {
            for (t, id) in reference_pairs(m, spec.param) {
                if spec.target_type.as_deref().is_some_and(|want| want != t) {
                    continue;
                }
                if seen.contains(&format!("{t}/{id}")) {
                    continue;
                }
                if let Some(found) = source.get(t, id)
                    && seen.insert(key_of(&found))
                {
                    out.push(found);
                }
            }
        }
    }
    if !query.revinclude.is_empty() {
        let targets: HashSet<String> = matches.iter().map(|m| key_of(m)).collect();
        for spec in &query.revinclude {
            for candidate in source.all_of_type(spec.source_type) {
                if type_of(&candidate) != spec.source_type {
                    continue;
                }
                let refers = reference_pairs(&candidate, spec.param)
                    .into_iter()
                    .any(|(t, id)| targets.contains(&format!("{t}/{id}")));
                if refers && seen.insert(key_of(&candidate)) {
                    out.push(candidate);
                }
            }
        }
    }
    out
}
