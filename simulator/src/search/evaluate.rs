//! Evaluation of parsed criteria against resources held by a [`ResourceSource`].

use super::error::SearchError;
use super::path::values_at_any;
use super::query::{ChainCriterion, Criterion, HasCriterion, ParamCriterion, ParsedSearch, Test};
use super::registry::{ParamType, SearchParamDef, compartment_params};
use super::sort::sort_resources;
use super::value::{
    Decimal, date_matches, date_ranges_of, normalize, number_matches, reference_targets,
    string_matches, string_values, token_codes, token_matches, token_texts,
};
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;

/// Where the search engine reads resources from; implemented by the store.
pub trait ResourceSource {
    /// The resource `Type/id`, if present (current version, not deleted).
    fn get(&self, resource_type: &str, id: &str) -> Option<Arc<Value>>;
    /// Every current resource of a type, in a stable order.
    fn all_of_type(&self, resource_type: &str) -> Vec<Arc<Value>>;
    /// Fast path: resources of `resource_type` in the compartment of patient `patient_id` (those
    /// whose patient/subject/beneficiary… reference it, and the Patient itself), or None if the
    /// source has no index. It must include every resource for which [`patient_compartment_of`]
    /// lists the patient; extra resources are fine (every criterion is still applied).
    fn in_patient_compartment(
        &self,
        resource_type: &str,
        patient_id: &str,
    ) -> Option<Vec<Arc<Value>>>;
}

/// The `(type, id)` pairs a reference parameter of `resource` points to.
pub(crate) fn reference_pairs<'a>(
    resource: &'a Value,
    param: &'a SearchParamDef,
) -> Vec<(&'a str, &'a str)> {
    values_at_any(resource, param.paths)
        .into_iter()
        .filter_map(|v| reference_targets(v, param.targets))
        .collect()
}

/// The resource's `id`, or an empty string.
pub(crate) fn id_of(resource: &Value) -> &str {
    resource
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The resource's `resourceType`, or an empty string.
pub(crate) fn type_of(resource: &Value) -> &str {
    resource
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The ids of the patients whose compartment `resource` belongs to: the Patient itself, and
/// every Patient referenced through a parameter listed by
/// [`super::registry::compartment_params`]. A store can call this on every write to maintain
/// the index behind [`ResourceSource::in_patient_compartment`].
pub fn patient_compartment_of(resource: &Value) -> Vec<String> {
    let ty = type_of(resource);
    let mut out: Vec<String> = Vec::new();
    if ty == "Patient" && !id_of(resource).is_empty() {
        out.push(id_of(resource).to_owned());
    }
    for param in compartment_params(ty) {
        for (t, id) in reference_pairs(resource, param) {
            if t == "Patient" && !out.iter().any(|o| o == id) {
                out.push(id.to_owned());
            }
        }
    }
    out
}

/// True when the parameter has at least one usable value in `resource` (for `:missing`).
fn has_value(c: &ParamCriterion, resource: &Value) -> bool {
    match c.param.kind {
        ParamType::Reference => !reference_pairs(resource, c.param).is_empty(),
        _ => !values_at_any(resource, c.param.paths).is_empty(),
    }
}

/// Whether `resource` satisfies one parameter criterion.
pub(crate) fn param_matches(c: &ParamCriterion, resource: &Value) -> bool {
    let values = || values_at_any(resource, c.param.paths);
    match &c.test {
        Test::Missing(missing) => has_value(c, resource) != *missing,
        Test::Token {
            values: alts,
            negate,
        } => {
            let mut codes = Vec::new();
            values()
                .into_iter()
                .for_each(|v| token_codes(v, &mut codes));
            let any = alts
                .iter()
                .any(|a| codes.iter().any(|code| token_matches(a, code)));
            any != *negate
        }
        Test::TokenText(alts) => {
            let mut texts = Vec::new();
            values()
                .into_iter()
                .for_each(|v| token_texts(v, &mut texts));
            let texts: Vec<String> = texts.into_iter().map(normalize).collect();
            alts.iter()
                .any(|a| texts.iter().any(|t| t.starts_with(&a.normalized)))
        }
        Test::String { mode, values: alts } => {
            let mut strings = Vec::new();
            values()
                .into_iter()
                .for_each(|v| string_values(v, &mut strings));
            alts.iter().any(|a| {
                strings
                    .iter()
                    .any(|s| string_matches(*mode, &a.raw, &a.normalized, s))
            })
        }
        Test::Date(alts) => {
            let ranges: Vec<_> = values().into_iter().filter_map(date_ranges_of).collect();
            alts.iter()
                .any(|(p, r)| ranges.iter().any(|t| date_matches(*p, *r, *t)))
        }
        Test::Number(alts) => {
            let numbers: Vec<_> = values()
                .into_iter()
                .filter_map(Decimal::from_json)
                .collect();
            alts.iter()
                .any(|(p, n)| numbers.iter().any(|t| number_matches(*p, *n, *t)))
        }
        Test::Quantity(alts) => values().into_iter().any(|q| {
            let Some(number) = q.get("value").and_then(Decimal::from_json) else {
                return false;
            };
            let field = |k: &str| q.get(k).and_then(Value::as_str);
            alts.iter().any(|a| {
                let unit_ok = match (&a.system, &a.code) {
                    (Some(s), Some(c)) => field("system") == Some(s) && field("code") == Some(c),
                    (Some(s), None) => field("system") == Some(s),
                    (None, Some(c)) => {
                        field("code") == Some(c.as_str()) || field("unit") == Some(c.as_str())
                    }
                    (None, None) => true,
                };
                unit_ok && number_matches(a.prefix, a.number, number)
            })
        }),
        Test::Reference(alts) => {
            let targets = reference_pairs(resource, c.param);
            alts.iter().any(|a| {
                targets.iter().any(|(t, id)| {
                    *id == a.id && a.resource_type.as_deref().is_none_or(|at| at == *t)
                })
            })
        }
        Test::Uri(alts) => {
            let uris: Vec<&str> = values().into_iter().filter_map(Value::as_str).collect();
            alts.iter().any(|a| uris.contains(&a.as_str()))
        }
    }
}

/// Whether `resource` satisfies a chained criterion, resolving references through `source`.
fn chain_matches(c: &ChainCriterion, resource: &Value, source: &dyn ResourceSource) -> bool {
    reference_pairs(resource, c.param)
        .into_iter()
        .any(|(t, id)| {
            c.targets
                .iter()
                .filter(|(ct, _)| *ct == t)
                .any(|(_, inner)| {
                    source.get(t, id).is_some_and(|target| {
                        type_of(&target) == t && param_matches(inner, &target)
                    })
                })
        })
}

/// The ids of `target_type` resources referenced (through `h.reference`) by a resource of
/// `h.source_type` that satisfies `h.inner`.
fn has_ids(h: &HasCriterion, target_type: &str, source: &dyn ResourceSource) -> HashSet<String> {
    let mut ids = HashSet::new();
    for r in source.all_of_type(h.source_type) {
        if type_of(&r) == h.source_type && param_matches(&h.inner, &r) {
            for (t, id) in reference_pairs(&r, h.reference) {
                if t == target_type {
                    ids.insert(id.to_owned());
                }
            }
        }
    }
    ids
}

/// Evaluates one criterion; `has` holds the precomputed `_has` id set for this criterion.
fn criterion_matches(
    c: &Criterion,
    resource: &Value,
    source: &dyn ResourceSource,
    has: Option<&HashSet<String>>,
) -> bool {
    match c {
        Criterion::Param(p) => param_matches(p, resource),
        Criterion::Chain(ch) => chain_matches(ch, resource, source),
        Criterion::Has(h) => match has {
            Some(ids) => ids.contains(id_of(resource)),
            None => has_ids(h, type_of(resource), source).contains(id_of(resource)),
        },
    }
}

/// Whether one resource satisfies every criterion (AND). Chains and `_has` read from `source`.
pub fn matches(criteria: &[Criterion], resource: &Value, source: &dyn ResourceSource) -> bool {
    criteria
        .iter()
        .all(|c| criterion_matches(c, resource, source, None))
}

/// The candidate resources for a query: the `_id` fast path, the patient compartment fast path,
/// or every resource of the type.
fn candidates(query: &ParsedSearch, source: &dyn ResourceSource) -> Vec<Arc<Value>> {
    let ty = query.resource_type;
    for c in &query.criteria {
        let Criterion::Param(p) = c else { continue };
        match &p.test {
            Test::Token {
                values,
                negate: false,
            } if p.param.name == "_id" && values.iter().all(|v| v.system.is_none()) => {
                let mut seen = HashSet::new();
                return values
                    .iter()
                    .filter_map(|v| v.code.as_deref())
                    .filter(|id| seen.insert(*id))
                    .filter_map(|id| source.get(ty, id))
                    .collect();
            }
            Test::Reference(values) if p.param.patient_compartment => {
                let [single] = values.as_slice() else {
                    continue;
                };
                let is_patient = match single.resource_type.as_deref() {
                    Some(t) => t == "Patient",
                    None => p.param.targets == ["Patient"],
                };
                if is_patient && let Some(found) = source.in_patient_compartment(ty, &single.id) {
                    return found;
                }
            }
            _ => {}
        }
    }
    source.all_of_type(ty)
}

/// Runs a search: every matching resource, sorted by `_sort` (then by id), without paging.
pub fn search(
    query: &ParsedSearch,
    source: &dyn ResourceSource,
) -> Result<Vec<Arc<Value>>, SearchError> {
    let has_sets: Vec<Option<HashSet<String>>> = query
        .criteria
        .iter()
        .map(|c| match c {
            Criterion::Has(h) => Some(has_ids(h, query.resource_type, source)),
            _ => None,
        })
        .collect();
    let mut seen = HashSet::new();
    let mut found: Vec<Arc<Value>> = candidates(query, source)
        .into_iter()
        .filter(|r| type_of(r) == query.resource_type)
        .filter(|r| seen.insert(id_of(r).to_owned()))
        .filter(|r| {
            query
                .criteria
                .iter()
                .zip(&has_sets)
                .all(|(c, has)| criterion_matches(c, r, source, has.as_ref()))
        })
        .collect();
    sort_resources(&mut found, &query.sort);
    Ok(found)
}
