//! Unit tests of the access rules.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{Value, json};

use super::*;
use crate::smart::scopes::{Scope, parse_scopes};
use crate::store::Store;

fn grant(scopes: &str, patient: Option<&str>, user_patients: Option<&[&str]>) -> Grant {
    let clinical = parse_scopes(scopes)
        .expect("valid scopes")
        .into_iter()
        .filter_map(|s| match s {
            Scope::Clinical(c) => Some(c),
            _ => None,
        })
        .collect();
    Grant {
        token_id: "t".into(),
        client_id: "app".into(),
        patient: patient.map(str::to_string),
        scopes: clinical,
        scope_text: scopes.into(),
        user_patients: user_patients
            .map(|ps| Arc::new(ps.iter().map(|p| p.to_string()).collect::<BTreeSet<_>>())),
        ..Grant::default()
    }
}

fn store() -> Store {
    let mut s = Store::new();
    for p in ["a", "b"] {
        s.put(json!({"resourceType": "Patient", "id": p}), "t");
        for (i, category) in ["laboratory", "vital-signs"].iter().enumerate() {
            s.put(
                json!({"resourceType": "Observation", "id": format!("{p}{i}"),
                   "status": "final",
                   "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": category}]}],
                   "code": {"text": "x"},
                   "subject": {"reference": format!("Patient/{p}")}}),
                "t",
            );
        }
    }
    s.put(json!({"resourceType": "Practitioner", "id": "doc"}), "t");
    s.put(json!({"resourceType": "Observation", "id": "orphan", "status": "final", "code": {"text": "x"}}), "t");
    s
}

fn visible_ids(store: &Store, g: &Grant, resource_type: &str) -> Vec<String> {
    Visible::new(store, g)
        .all_of_type(resource_type)
        .iter()
        .map(|r: &Arc<Value>| r["id"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn patient_scopes_reach_only_the_launch_patient() {
    let s = store();
    let g = grant("patient/Observation.rs patient/Patient.r", Some("a"), None);
    assert_eq!(visible_ids(&s, &g, "Observation"), ["a0", "a1"]);
    assert_eq!(visible_ids(&s, &g, "Patient"), ["a"]);
    assert!(
        visible_ids(&s, &g, "Practitioner").is_empty(),
        "no scope on it"
    );
    let view = Visible::new(&s, &g);
    assert!(view.get("Observation", "b0").is_none());
    assert!(
        view.get("Observation", "orphan").is_none(),
        "about no patient, but a patient type"
    );
}

#[test]
fn a_patient_scope_without_patient_context_reaches_nothing() {
    let s = store();
    let g = grant("patient/*.rs", None, None);
    assert!(visible_ids(&s, &g, "Observation").is_empty());
    assert!(!g.may(Action::Search, "Observation"));
    assert_eq!(
        g.require(Action::Search, "Observation")
            .map_err(|e| e.status),
        Err(403)
    );
}

#[test]
fn non_patient_resources_are_reached_by_any_scope_on_their_type() {
    let s = store();
    let g = grant("patient/Practitioner.rs", Some("a"), None);
    assert_eq!(visible_ids(&s, &g, "Practitioner"), ["doc"]);
}

#[test]
fn user_scopes_reach_the_users_panel() {
    let s = store();
    let g = grant("user/Observation.rs", None, Some(&["b"]));
    assert_eq!(visible_ids(&s, &g, "Observation"), ["b0", "b1"]);
}

#[test]
fn system_scopes_reach_everyone_unless_bound_to_a_group() {
    let s = store();
    let mut g = grant("system/Observation.rs", None, None);
    assert_eq!(visible_ids(&s, &g, "Observation").len(), 5);
    g.group_patients = Some(Arc::new(BTreeSet::from(["a".to_string()])));
    assert_eq!(visible_ids(&s, &g, "Observation"), ["a0", "a1"]);
}

#[test]
fn query_restrictions_filter_resources() {
    let s = store();
    let g = grant(
        "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
        Some("a"),
        None,
    );
    assert_eq!(visible_ids(&s, &g, "Observation"), ["a0"]);
}

#[test]
fn audit_events_need_a_scope_that_names_them() {
    let g = grant("system/*.rs", None, None);
    assert!(!g.may(Action::Search, AUDIT_TYPE));
    let g = grant("system/AuditEvent.rs", None, None);
    assert!(g.may(Action::Search, AUDIT_TYPE));
}

#[test]
fn permissions_are_per_action() {
    let s = store();
    let g = grant("patient/Observation.r", Some("a"), None);
    assert!(g.require(Action::Read, "Observation").is_ok());
    assert_eq!(
        g.require(Action::Search, "Observation")
            .map_err(|e| e.status),
        Err(403)
    );
    let message = g
        .require(Action::Create, "Observation")
        .err()
        .map(|e| e.diagnostics)
        .unwrap_or_default();
    assert!(message.contains("patient/Observation.c"), "{message}");
    let principal = Principal::Bearer(Arc::new(g));
    let patients = s
        .patients_of("Observation", "b0")
        .unwrap_or_default()
        .to_vec();
    assert_eq!(
        principal
            .require_on(Action::Read, "Observation", "b0", &patients, None, &s)
            .map_err(|e| (e.status, e.diagnostics)),
        Err((404, "Observation/b0 is not known".to_string())),
        "another patient's record reads as one that does not exist"
    );
    assert!(
        Principal::Admin
            .require_on(Action::Read, "Observation", "b0", &patients, None, &s)
            .is_ok()
    );
}

#[test]
fn writes_need_every_patient_a_resource_is_about() {
    let s = store();
    let g = grant("patient/Observation.cruds", Some("a"), None);
    let both = ["a".to_string(), "b".to_string()];
    assert!(
        g.allows(Action::Create, "Observation", &both, None, &s)
            .is_some(),
        "any-of, for reads"
    );
    assert!(
        !g.allows_all(Action::Create, "Observation", &both, None, &s),
        "all-of, for writes"
    );
    assert!(g.allows_all(Action::Create, "Observation", &both[..1], None, &s));
    let principal = Principal::Bearer(Arc::new(g));
    assert_eq!(
        principal
            .require_all_on(Action::Update, "Observation", "x", &both, None, &s)
            .map_err(|e| e.status),
        Err(403)
    );
}
