//! `_sort`: ordering of search results by parameters, with missing values last and ties broken
//! by id so that paging is stable whatever order the store returns resources in.

use super::evaluate::{id_of, reference_pairs};
use super::path::values_at_any;
use super::query::SortKey;
use super::registry::{ParamType, SearchParamDef};
use super::value::{Decimal, date_ranges_of, normalize, string_values, token_codes};
use serde_json::Value;
use std::cmp::Ordering;
use std::sync::Arc;

/// A comparable value of one sort key.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SortValue {
    /// An instant in nanoseconds (a partial date at its lower bound).
    Instant(i128),
    /// A case- and accent-folded text.
    Text(String),
    /// An exact number.
    Number(Decimal),
}

impl SortValue {
    /// Orders two values of the same parameter.
    fn compare(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Self::Instant(a), Self::Instant(b)) => a.cmp(b),
            (Self::Text(a), Self::Text(b)) => a.cmp(b),
            (Self::Number(a), Self::Number(b)) => a.compare(*b),
            // A parameter always yields one variant; keep a total order regardless.
            (Self::Instant(_), _) => Ordering::Less,
            (_, Self::Instant(_)) => Ordering::Greater,
            (Self::Text(_), _) => Ordering::Less,
            (_, Self::Text(_)) => Ordering::Greater,
        }
    }
}

/// Every sortable value of `param` in `resource`.
fn sort_values(resource: &Value, param: &SearchParamDef) -> Vec<SortValue> {
    let values = values_at_any(resource, param.paths);
    match param.kind {
        ParamType::Date => values
            .into_iter()
            .filter_map(date_ranges_of)
            .map(|r| SortValue::Instant(if r.start == i128::MIN { r.end } else { r.start }))
            .collect(),
        ParamType::String => {
            let mut strings = Vec::new();
            values
                .into_iter()
                .for_each(|v| string_values(v, &mut strings));
            strings
                .into_iter()
                .map(|s| SortValue::Text(normalize(s)))
                .collect()
        }
        ParamType::Token => {
            let mut codes = Vec::new();
            values.into_iter().for_each(|v| token_codes(v, &mut codes));
            codes
                .into_iter()
                .map(|c| SortValue::Text(c.code.to_lowercase()))
                .collect()
        }
        ParamType::Number => values
            .into_iter()
            .filter_map(Decimal::from_json)
            .map(SortValue::Number)
            .collect(),
        ParamType::Quantity => values
            .into_iter()
            .filter_map(|q| q.get("value").and_then(Decimal::from_json))
            .map(SortValue::Number)
            .collect(),
        ParamType::Reference => reference_pairs(resource, param)
            .into_iter()
            .map(|(t, id)| SortValue::Text(format!("{t}/{id}")))
            .collect(),
        ParamType::Uri => values
            .into_iter()
            .filter_map(Value::as_str)
            .map(|s| SortValue::Text(s.to_owned()))
            .collect(),
    }
}

/// The key of one resource for one sort parameter: the smallest value when ascending, the
/// largest when descending, `None` when the resource has no value.
fn key_for(resource: &Value, key: &SortKey) -> Option<SortValue> {
    let values = sort_values(resource, key.param);
    let pick = if key.descending {
        Ordering::Greater
    } else {
        Ordering::Less
    };
    values
        .into_iter()
        .reduce(|best, v| if v.compare(&best) == pick { v } else { best })
}

/// Sorts search results in place by `keys`, then by id; missing values sort last in both
/// directions. With no keys the order is by id.
pub fn sort_resources(resources: &mut Vec<Arc<Value>>, keys: &[SortKey]) {
    let mut keyed: Vec<(Vec<Option<SortValue>>, Arc<Value>)> = resources
        .drain(..)
        .map(|r| (keys.iter().map(|k| key_for(&r, k)).collect(), r))
        .collect();
    keyed.sort_by(|(ka, ra), (kb, rb)| {
        for ((a, b), key) in ka.iter().zip(kb).zip(keys) {
            let ord = match (a, b) {
                (Some(a), Some(b)) => {
                    let o = a.compare(b);
                    if key.descending { o.reverse() } else { o }
                }
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        id_of(ra).cmp(id_of(rb))
    });
    resources.extend(keyed.into_iter().map(|(_, r)| r));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::query::SearchQuery;
    use serde_json::json;

    /// Sorts `resources` by the `_sort` value `sort` and returns the ids.
    fn sorted(ty: &str, sort: &str, resources: Vec<Value>) -> Vec<String> {
        let q = SearchQuery::parse(ty, &[("_sort".to_owned(), sort.to_owned())], true).unwrap();
        let mut rs: Vec<Arc<Value>> = resources.into_iter().map(Arc::new).collect();
        sort_resources(&mut rs, &q.sort);
        rs.iter().map(|r| id_of(r).to_owned()).collect()
    }

    /// An Observation with an id and optional effective value.
    fn obs(id: &str, effective: Option<Value>) -> Value {
        let mut o = json!({"resourceType": "Observation", "id": id});
        if let (Some(e), Some(map)) = (effective, o.as_object_mut()) {
            map.insert("effectiveDateTime".to_owned(), e);
        }
        o
    }

    #[test]
    fn dates_partial_at_lower_bound_missing_last_ties_by_id() {
        let rs = || {
            vec![
                obs("e", None),
                obs("d", Some(json!("2020-03-01T00:00:00Z"))),
                obs("c", Some(json!("2020"))),
                obs("b", Some(json!("2020-01-01T00:00:00Z"))),
                obs("a", Some(json!("2019-12-31T23:00:00-05:00"))),
            ]
        };
        // "2020" and "2020-01-01T00:00:00Z" share the lower bound, so id breaks the tie.
        assert_eq!(
            sorted("Observation", "date", rs()),
            ["b", "c", "a", "d", "e"]
        );
        assert_eq!(
            sorted("Observation", "-date", rs()),
            ["d", "a", "b", "c", "e"]
        );
    }

    #[test]
    fn strings_case_insensitive_then_second_key() {
        let p = |id: &str, family: &str, birth: &str| json!({"resourceType": "Patient", "id": id, "name": [{"family": family}], "birthDate": birth});
        let rs = vec![
            p("1", "smith", "1990"),
            p("2", "Adams", "1980"),
            p("3", "Smith", "1970"),
            p("4", "Émile", "1960"),
        ];
        assert_eq!(
            sorted("Patient", "family,-birthdate", rs.clone()),
            ["2", "4", "1", "3"]
        );
        assert_eq!(
            sorted("Patient", "-family,birthdate", rs),
            ["3", "1", "4", "2"]
        );
    }

    #[test]
    fn multi_valued_uses_min_ascending_and_max_descending() {
        let p = |id: &str, given: &[&str]| json!({"resourceType": "Patient", "id": id, "name": [{"given": given}]});
        let rs = vec![p("1", &["Bob", "Zed"]), p("2", &["Cal"])];
        assert_eq!(sorted("Patient", "given", rs.clone()), ["1", "2"]);
        assert_eq!(sorted("Patient", "-given", rs), ["1", "2"]);
        let rs = vec![p("1", &["Bob", "Cat"]), p("2", &["Cal"])];
        assert_eq!(sorted("Patient", "-given", rs), ["1", "2"]);
    }

    #[test]
    fn numbers_tokens_and_references() {
        let q = |id: &str, v: f64, status: &str, subject: &str| {
            json!({"resourceType": "Observation", "id": id, "status": status,
                   "subject": {"reference": subject}, "valueQuantity": {"value": v}})
        };
        let rs = vec![
            q("1", 10.5, "final", "Patient/b"),
            q("2", 9.0, "Amended", "Patient/a"),
            q("3", 100.0, "final", "Patient/c"),
        ];
        assert_eq!(
            sorted("Observation", "value-quantity", rs.clone()),
            ["2", "1", "3"]
        );
        assert_eq!(
            sorted("Observation", "-value-quantity", rs.clone()),
            ["3", "1", "2"]
        );
        assert_eq!(
            sorted("Observation", "status,-_id", rs.clone()),
            ["2", "3", "1"]
        );
        assert_eq!(sorted("Observation", "subject", rs), ["2", "1", "3"]);
    }

    #[test]
    fn no_keys_sorts_by_id() {
        let rs = vec![obs("b", None), obs("a", None), obs("c", None)];
        let mut arcs: Vec<Arc<Value>> = rs.into_iter().map(Arc::new).collect();
        sort_resources(&mut arcs, &[]);
        let ids: Vec<_> = arcs.iter().map(|r| id_of(r)).collect();
        assert_eq!(ids, ["a", "b", "c"]);
    }
}
