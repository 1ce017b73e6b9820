//! `_elements` and `_summary`: trimming returned resources and marking them SUBSETTED.
//!
//! Simplifications: elements are chosen at the top level only; the summary and mandatory element
//! lists below are hand-copied from the R4 base resource definitions (`isSummary` and `min > 0`)
//! for the supported types only; unknown types keep just `id`, `meta` and `implicitRules` for
//! `_summary=true`. Choice elements are named by their base (`value` keeps `valueQuantity`).

use super::query::SummaryMode;
use serde_json::{Map, Value, json};

/// The system of the SUBSETTED tag.
pub const SUBSETTED_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue";
/// The code of the SUBSETTED tag.
pub const SUBSETTED_CODE: &str = "SUBSETTED";

/// Elements that are always kept.
const ALWAYS: &[&str] = &["resourceType", "id", "meta"];

/// Element bases that are choice types (`value[x]`) in the supported resources.
const CHOICE_BASES: &[&str] = &[
    "value",
    "effective",
    "onset",
    "abatement",
    "deceased",
    "multipleBirth",
    "medication",
    "reported",
    "occurrence",
    "performed",
    "occurred",
];

/// `(type, summary elements, mandatory elements)` from the R4 definitions (choice bases only).
static TABLE: &[(&str, &[&str], &[&str])] = &[
    (
        "Patient",
        &[
            "identifier",
            "active",
            "name",
            "telecom",
            "gender",
            "birthDate",
            "deceased",
            "address",
            "managingOrganization",
            "link",
        ],
        &[],
    ),
    (
        "Observation",
        &[
            "identifier",
            "basedOn",
            "partOf",
            "status",
            "code",
            "subject",
            "focus",
            "encounter",
            "effective",
            "issued",
            "performer",
            "value",
            "hasMember",
            "derivedFrom",
            "component",
        ],
        &["status", "code"],
    ),
    (
        "Condition",
        &[
            "identifier",
            "clinicalStatus",
            "verificationStatus",
            "code",
            "bodySite",
            "subject",
            "encounter",
            "onset",
            "abatement",
            "recordedDate",
            "recorder",
            "asserter",
        ],
        &["subject"],
    ),
    (
        "Encounter",
        &[
            "identifier",
            "status",
            "class",
            "type",
            "serviceType",
            "subject",
            "episodeOfCare",
            "participant",
            "appointment",
            "reasonCode",
            "reasonReference",
            "diagnosis",
        ],
        &["status", "class"],
    ),
    (
        "MedicationRequest",
        &[
            "identifier",
            "status",
            "intent",
            "priority",
            "doNotPerform",
            "reported",
            "medication",
            "subject",
            "authoredOn",
            "requester",
        ],
        &["status", "intent", "medication", "subject"],
    ),
    (
        "AllergyIntolerance",
        &[
            "identifier",
            "clinicalStatus",
            "verificationStatus",
            "type",
            "category",
            "criticality",
            "code",
            "patient",
        ],
        &["patient"],
    ),
    (
        "Immunization",
        &[
            "identifier",
            "status",
            "vaccineCode",
            "patient",
            "occurrence",
            "primarySource",
            "performer",
        ],
        &["status", "vaccineCode", "patient", "occurrence"],
    ),
    (
        "Procedure",
        &[
            "identifier",
            "basedOn",
            "partOf",
            "status",
            "statusReason",
            "category",
            "code",
            "subject",
            "encounter",
            "performed",
            "recorder",
            "asserter",
            "performer",
            "location",
            "reasonCode",
            "reasonReference",
            "bodySite",
            "outcome",
        ],
        &["status", "subject"],
    ),
    (
        "DiagnosticReport",
        &[
            "identifier",
            "status",
            "category",
            "code",
            "subject",
            "encounter",
            "effective",
            "issued",
            "performer",
            "resultsInterpreter",
            "media",
        ],
        &["status", "code"],
    ),
    (
        "DocumentReference",
        &[
            "masterIdentifier",
            "identifier",
            "status",
            "docStatus",
            "type",
            "category",
            "subject",
            "date",
            "author",
            "relatesTo",
            "description",
            "securityLabel",
            "content",
            "context",
        ],
        &["status", "content"],
    ),
    (
        "CareTeam",
        &[
            "identifier",
            "status",
            "category",
            "name",
            "subject",
            "encounter",
            "period",
            "managingOrganization",
        ],
        &[],
    ),
    (
        "Coverage",
        &[
            "identifier",
            "status",
            "type",
            "policyHolder",
            "subscriber",
            "subscriberId",
            "beneficiary",
            "dependent",
            "period",
            "payor",
            "order",
            "network",
        ],
        &["status", "beneficiary", "payor"],
    ),
    (
        "Practitioner",
        &[
            "identifier",
            "active",
            "name",
            "telecom",
            "address",
            "gender",
            "birthDate",
        ],
        &[],
    ),
    (
        "PractitionerRole",
        &[
            "identifier",
            "active",
            "period",
            "practitioner",
            "organization",
            "code",
            "specialty",
            "location",
            "telecom",
        ],
        &[],
    ),
    (
        "Organization",
        &["identifier", "active", "type", "name", "partOf"],
        &[],
    ),
    (
        "Location",
        &[
            "identifier",
            "status",
            "operationalStatus",
            "name",
            "description",
            "mode",
            "type",
            "physicalType",
            "managingOrganization",
        ],
        &[],
    ),
    (
        "Group",
        &[
            "identifier",
            "active",
            "type",
            "actual",
            "code",
            "name",
            "quantity",
            "managingEntity",
        ],
        &["type", "actual"],
    ),
    (
        "AuditEvent",
        &[
            "type",
            "subtype",
            "action",
            "recorded",
            "outcome",
            "outcomeDesc",
            "purposeOfEvent",
        ],
        &["type", "recorded", "agent", "source"],
    ),
    (
        "Provenance",
        &["target", "recorded"],
        &["target", "recorded", "agent"],
    ),
];

/// Whether JSON member `key` is the element `name` (or one of its choice-typed forms).
fn is_element(key: &str, name: &str) -> bool {
    if key == name {
        return true;
    }
    CHOICE_BASES.contains(&name)
        && key
            .strip_prefix(name)
            .and_then(|rest| rest.chars().next())
            .is_some_and(|c| c.is_ascii_uppercase())
}

/// The summary and mandatory element lists of a type.
fn lists_for(resource_type: &str) -> (&'static [&'static str], &'static [&'static str]) {
    TABLE
        .iter()
        .find(|(t, _, _)| *t == resource_type)
        .map(|(_, s, m)| (*s, *m))
        .unwrap_or((&[], &[]))
}

/// Adds the SUBSETTED tag to `meta.tag` (creating `meta` if needed), once.
fn mark_subsetted(map: &mut Map<String, Value>) {
    let meta = map
        .entry("meta")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(meta) = meta.as_object_mut() else {
        return;
    };
    let tags = meta
        .entry("tag")
        .or_insert_with(|| Value::Array(Vec::new()));
    let Some(tags) = tags.as_array_mut() else {
        return;
    };
    let present = tags.iter().any(|t| {
        t.get("system").and_then(Value::as_str) == Some(SUBSETTED_SYSTEM)
            && t.get("code").and_then(Value::as_str) == Some(SUBSETTED_CODE)
    });
    if !present {
        tags.push(
            json!({"system": SUBSETTED_SYSTEM, "code": SUBSETTED_CODE, "display": "subsetted"}),
        );
    }
}

/// Keeps only the members for which `keep` is true, plus the always-kept ones, and tags the
/// result SUBSETTED. Non-object values are returned unchanged.
fn retain(resource: &Value, keep: impl Fn(&str) -> bool) -> Value {
    let Some(map) = resource.as_object() else {
        return resource.clone();
    };
    let mut out: Map<String, Value> = map
        .iter()
        .filter(|(k, _)| ALWAYS.contains(&k.as_str()) || keep(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    mark_subsetted(&mut out);
    Value::Object(out)
}

/// `_elements`: keeps `resourceType`, `id`, `meta`, the type's mandatory elements and the listed
/// top-level elements, and adds the SUBSETTED tag.
pub fn apply_elements(resource: &Value, elements: &[String]) -> Value {
    let ty = resource
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let (_, mandatory) = lists_for(ty);
    retain(resource, |k| {
        elements.iter().any(|e| is_element(k, e)) || mandatory.iter().any(|m| is_element(k, m))
    })
}

/// `_summary`: `true` keeps the summary elements, `text` keeps `text` and mandatory elements,
/// `data` removes `text`; each adds the SUBSETTED tag. `false` and `count` return the resource
/// unchanged (with `count` the server sends no entries at all).
pub fn apply_summary(resource: &Value, mode: SummaryMode) -> Value {
    let ty = resource
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let (summary, mandatory) = lists_for(ty);
    match mode {
        SummaryMode::False | SummaryMode::Count => resource.clone(),
        SummaryMode::True => retain(resource, |k| {
            k == "implicitRules" || summary.iter().any(|s| is_element(k, s))
        }),
        SummaryMode::Text => retain(resource, |k| {
            k == "text" || k == "implicitRules" || mandatory.iter().any(|m| is_element(k, m))
        }),
        SummaryMode::Data => retain(resource, |k| k != "text"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::registry::supported_types;

    /// A small Observation with narrative text and an existing tag.
    fn observation() -> Value {
        json!({
            "resourceType": "Observation",
            "id": "o1",
            "meta": {"lastUpdated": "2020-01-01T00:00:00Z", "tag": [{"system": "x", "code": "y"}]},
            "text": {"status": "generated", "div": "<div>hi</div>"},
            "status": "final",
            "category": [{"text": "vital"}],
            "code": {"text": "BP"},
            "subject": {"reference": "Patient/1"},
            "effectiveDateTime": "2020-01-01",
            "valueQuantity": {"value": 1},
            "interpretation": [{"text": "high"}],
            "note": [{"text": "n"}]
        })
    }

    /// The sorted member names of an object.
    fn keys(v: &Value) -> Vec<String> {
        let mut k: Vec<String> = v
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        k.sort();
        k
    }

    /// The tags of a resource as `system|code`.
    fn tags(v: &Value) -> Vec<String> {
        v.pointer("/meta/tag")
            .and_then(Value::as_array)
            .map(|t| {
                t.iter()
                    .map(|t| {
                        format!(
                            "{}|{}",
                            t["system"].as_str().unwrap_or(""),
                            t["code"].as_str().unwrap_or("")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn elements_keep_requested_and_mandatory_and_tag() {
        let out = apply_elements(&observation(), &["value".to_owned(), "subject".to_owned()]);
        assert_eq!(
            keys(&out),
            [
                "code",
                "id",
                "meta",
                "resourceType",
                "status",
                "subject",
                "valueQuantity"
            ]
        );
        assert_eq!(
            tags(&out),
            ["x|y", &format!("{SUBSETTED_SYSTEM}|{SUBSETTED_CODE}")]
        );
        // Applying twice does not duplicate the tag.
        let twice = apply_elements(&out, &["value".to_owned()]);
        assert_eq!(tags(&twice).len(), 2);
    }

    #[test]
    fn choice_bases_do_not_swallow_other_elements() {
        let p = json!({"resourceType": "Patient", "id": "p", "status": "x", "statusReason": "y", "deceasedBoolean": false});
        let out = apply_elements(&p, &["status".to_owned(), "deceased".to_owned()]);
        assert_eq!(
            keys(&out),
            ["deceasedBoolean", "id", "meta", "resourceType", "status"]
        );
    }

    #[test]
    fn summary_modes() {
        let o = observation();
        let t = apply_summary(&o, SummaryMode::True);
        assert_eq!(
            keys(&t),
            [
                "code",
                "effectiveDateTime",
                "id",
                "meta",
                "resourceType",
                "status",
                "subject",
                "valueQuantity"
            ]
        );
        let text = apply_summary(&o, SummaryMode::Text);
        assert_eq!(
            keys(&text),
            ["code", "id", "meta", "resourceType", "status", "text"]
        );
        let data = apply_summary(&o, SummaryMode::Data);
        assert!(data.get("text").is_none());
        assert!(data.get("note").is_some());
        assert_eq!(tags(&data).len(), 2);
        assert_eq!(apply_summary(&o, SummaryMode::False), o);
        assert_eq!(apply_summary(&o, SummaryMode::Count), o);
    }

    #[test]
    fn creates_meta_when_absent() {
        let out = apply_summary(
            &json!({"resourceType": "Patient", "id": "p", "name": []}),
            SummaryMode::True,
        );
        assert_eq!(tags(&out), [format!("{SUBSETTED_SYSTEM}|{SUBSETTED_CODE}")]);
        assert_eq!(apply_elements(&json!("x"), &[]), json!("x"));
    }

    #[test]
    fn every_supported_type_has_a_table_entry() {
        for t in supported_types() {
            assert!(
                TABLE.iter().any(|(n, s, _)| *n == t && !s.is_empty()),
                "{t}"
            );
        }
    }
}
