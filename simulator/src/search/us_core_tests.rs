//! US Core 6.1.0 coverage: every search parameter and SHALL combination that the US Core server
//! CapabilityStatement lists for the supported types, copied here as data.

use super::query::SearchQuery;
use super::registry::{ParamType, lookup};

/// `(type, name, parameter type, expectation)` from `CapabilityStatement-us-core-server.json`.
const CAPABILITY_PARAMS: &[(&str, &str, &str, &str)] = &[
    ("AllergyIntolerance", "clinical-status", "token", "MAY"),
    ("AllergyIntolerance", "patient", "reference", "SHALL"),
    ("CareTeam", "patient", "reference", "MAY"),
    ("CareTeam", "status", "token", "MAY"),
    ("CareTeam", "role", "token", "SHOULD"),
    ("Condition", "category", "token", "MAY"),
    ("Condition", "clinical-status", "token", "MAY"),
    ("Condition", "patient", "reference", "SHALL"),
    ("Condition", "onset-date", "date", "MAY"),
    ("Condition", "asserted-date", "date", "MAY"),
    ("Condition", "recorded-date", "date", "MAY"),
    ("Condition", "abatement-date", "date", "MAY"),
    ("Condition", "code", "token", "MAY"),
    ("Condition", "encounter", "reference", "MAY"),
    ("Coverage", "patient", "reference", "SHALL"),
    ("DiagnosticReport", "status", "token", "MAY"),
    ("DiagnosticReport", "patient", "reference", "SHALL"),
    ("DiagnosticReport", "category", "token", "MAY"),
    ("DiagnosticReport", "code", "token", "MAY"),
    ("DiagnosticReport", "date", "date", "MAY"),
    ("DocumentReference", "_id", "token", "SHALL"),
    ("DocumentReference", "status", "token", "MAY"),
    ("DocumentReference", "patient", "reference", "SHALL"),
    ("DocumentReference", "category", "token", "MAY"),
    ("DocumentReference", "type", "token", "MAY"),
    ("DocumentReference", "date", "date", "MAY"),
    ("DocumentReference", "period", "date", "MAY"),
    ("Encounter", "_id", "token", "SHALL"),
    ("Encounter", "class", "token", "MAY"),
    ("Encounter", "date", "date", "MAY"),
    ("Encounter", "identifier", "token", "SHOULD"),
    ("Encounter", "patient", "reference", "SHALL"),
    ("Encounter", "location", "reference", "MAY"),
    ("Encounter", "status", "token", "MAY"),
    ("Encounter", "type", "token", "MAY"),
    ("Encounter", "discharge-disposition", "token", "MAY"),
    ("Immunization", "patient", "reference", "SHALL"),
    ("Immunization", "status", "token", "MAY"),
    ("Immunization", "date", "date", "MAY"),
    ("Location", "name", "string", "SHALL"),
    ("Location", "address", "string", "SHALL"),
    ("Location", "address-city", "string", "SHOULD"),
    ("Location", "address-state", "string", "SHOULD"),
    ("Location", "address-postalcode", "string", "SHOULD"),
    ("MedicationRequest", "status", "token", "MAY"),
    ("MedicationRequest", "intent", "token", "MAY"),
    ("MedicationRequest", "patient", "reference", "MAY"),
    ("MedicationRequest", "encounter", "reference", "MAY"),
    ("MedicationRequest", "authoredon", "date", "MAY"),
    ("Observation", "status", "token", "MAY"),
    ("Observation", "category", "token", "MAY"),
    ("Observation", "code", "token", "MAY"),
    ("Observation", "date", "date", "MAY"),
    ("Observation", "patient", "reference", "MAY"),
    ("Organization", "name", "string", "SHALL"),
    ("Organization", "address", "string", "SHALL"),
    ("Patient", "_id", "token", "SHALL"),
    ("Patient", "birthdate", "date", "MAY"),
    ("Patient", "death-date", "date", "MAY"),
    ("Patient", "family", "string", "MAY"),
    ("Patient", "gender", "token", "MAY"),
    ("Patient", "given", "string", "MAY"),
    ("Patient", "identifier", "token", "SHALL"),
    ("Patient", "name", "string", "SHALL"),
    ("Practitioner", "_id", "token", "SHOULD"),
    ("Practitioner", "name", "string", "SHALL"),
    ("Practitioner", "identifier", "token", "SHALL"),
    ("PractitionerRole", "specialty", "token", "SHALL"),
    ("PractitionerRole", "practitioner", "reference", "SHALL"),
    ("Procedure", "status", "token", "MAY"),
    ("Procedure", "patient", "reference", "SHALL"),
    ("Procedure", "date", "date", "MAY"),
    ("Procedure", "code", "token", "MAY"),
];

/// SHALL search-parameter combinations from the same CapabilityStatement.
const SHALL_COMBINATIONS: &[(&str, &[&str])] = &[
    ("CareTeam", &["patient", "status"]),
    ("Condition", &["patient", "category"]),
    ("DiagnosticReport", &["patient", "category", "date"]),
    ("DiagnosticReport", &["patient", "category"]),
    ("DiagnosticReport", &["patient", "code"]),
    ("DocumentReference", &["patient", "type"]),
    ("DocumentReference", &["patient", "category", "date"]),
    ("DocumentReference", &["patient", "category"]),
    ("Encounter", &["date", "patient"]),
    ("MedicationRequest", &["patient", "intent", "status"]),
    ("MedicationRequest", &["patient", "intent"]),
    ("Observation", &["patient", "category", "date"]),
    ("Observation", &["patient", "category"]),
    ("Observation", &["patient", "code"]),
    ("Patient", &["birthdate", "name"]),
    ("Patient", &["gender", "name"]),
];

/// `_include` / `_revinclude` values the CapabilityStatement lists for the supported types.
const INCLUDES: &[(&str, &str, &str)] = &[
    (
        "CareTeam",
        "_include",
        "CareTeam:participant:PractitionerRole",
    ),
    ("CareTeam", "_include", "CareTeam:participant:Practitioner"),
    ("CareTeam", "_include", "CareTeam:participant:Patient"),
    ("CareTeam", "_include", "CareTeam:participant:RelatedPerson"),
    (
        "MedicationRequest",
        "_include",
        "MedicationRequest:medication",
    ),
    ("PractitionerRole", "_include", "PractitionerRole:endpoint"),
    (
        "PractitionerRole",
        "_include",
        "PractitionerRole:practitioner",
    ),
    ("Observation", "_revinclude", "Provenance:target"),
    ("Patient", "_revinclude", "Provenance:target"),
    ("Condition", "_revinclude", "Provenance:target"),
    ("Encounter", "_revinclude", "Provenance:target"),
];

/// A value of the right shape for a parameter type.
fn sample_value(kind: &str) -> &'static str {
    match kind {
        "token" => "http://example.org|x",
        "string" => "abc",
        "date" => "ge2020-01-01",
        "reference" => "x1",
        other => panic!("no sample for {other}"),
    }
}

#[test]
fn registry_covers_every_capability_statement_parameter() {
    for (ty, name, kind, _expectation) in CAPABILITY_PARAMS {
        let def = lookup(ty, name).unwrap_or_else(|| panic!("{ty}.{name} is missing"));
        assert_eq!(def.kind.as_str(), *kind, "{ty}.{name}");
        if def.kind == ParamType::Reference && *name == "patient" {
            assert_eq!(def.targets, ["Patient"], "{ty}.patient");
            assert!(def.patient_compartment, "{ty}.patient");
        }
        let pairs = vec![((*name).to_owned(), sample_value(kind).to_owned())];
        let parsed = SearchQuery::parse(ty, &pairs, true);
        assert!(parsed.is_ok(), "{ty}?{name}: {parsed:?}");
    }
}

#[test]
fn shall_parameters_are_all_present() {
    let shall: Vec<_> = CAPABILITY_PARAMS
        .iter()
        .filter(|(_, _, _, e)| *e == "SHALL")
        .collect();
    assert_eq!(shall.len(), 21);
    assert!(shall.iter().all(|(t, n, _, _)| lookup(t, n).is_some()));
}

#[test]
fn shall_combinations_parse_together() {
    for (ty, names) in SHALL_COMBINATIONS {
        let pairs: Vec<(String, String)> = names
            .iter()
            .map(|n| {
                let kind = lookup(ty, n).map(|d| d.kind.as_str()).unwrap_or("missing");
                ((*n).to_owned(), sample_value(kind).to_owned())
            })
            .collect();
        let parsed =
            SearchQuery::parse(ty, &pairs, true).unwrap_or_else(|e| panic!("{ty}?{names:?}: {e}"));
        assert_eq!(parsed.criteria.len(), names.len());
    }
}

#[test]
fn capability_includes_parse() {
    for (ty, key, value) in INCLUDES {
        let pairs = vec![((*key).to_owned(), (*value).to_owned())];
        let parsed = SearchQuery::parse(ty, &pairs, true);
        assert!(parsed.is_ok(), "{ty}?{key}={value}: {parsed:?}");
    }
}

#[test]
fn brief_parameter_list_is_covered() {
    let brief: &[(&str, &[&str])] = &[
        (
            "Patient",
            &[
                "_id",
                "identifier",
                "name",
                "family",
                "given",
                "gender",
                "birthdate",
                "address",
                "address-city",
                "address-state",
                "address-postalcode",
                "telecom",
                "phone",
                "email",
                "general-practitioner",
                "organization",
            ],
        ),
        (
            "Observation",
            &[
                "patient",
                "subject",
                "category",
                "code",
                "date",
                "status",
                "encounter",
                "value-quantity",
                "combo-code",
            ],
        ),
        (
            "Condition",
            &[
                "patient",
                "subject",
                "category",
                "clinical-status",
                "code",
                "onset-date",
                "recorded-date",
                "abatement-date",
                "encounter",
            ],
        ),
        (
            "Encounter",
            &[
                "patient",
                "subject",
                "date",
                "class",
                "type",
                "status",
                "identifier",
                "location",
                "practitioner",
                "participant",
                "reason-code",
                "service-provider",
            ],
        ),
        (
            "MedicationRequest",
            &[
                "patient",
                "subject",
                "status",
                "intent",
                "authoredon",
                "encounter",
                "requester",
                "code",
            ],
        ),
        (
            "AllergyIntolerance",
            &["patient", "clinical-status", "code", "date"],
        ),
        (
            "Immunization",
            &["patient", "date", "status", "vaccine-code"],
        ),
        (
            "Procedure",
            &["patient", "subject", "date", "code", "status", "encounter"],
        ),
        (
            "DiagnosticReport",
            &[
                "patient",
                "subject",
                "category",
                "code",
                "date",
                "status",
                "encounter",
                "result",
            ],
        ),
        (
            "DocumentReference",
            &[
                "patient",
                "subject",
                "_id",
                "category",
                "type",
                "date",
                "period",
                "status",
                "encounter",
            ],
        ),
        (
            "CareTeam",
            &["patient", "subject", "status", "participant", "category"],
        ),
        ("Coverage", &["patient", "beneficiary", "payor", "status"]),
        (
            "Practitioner",
            &["_id", "identifier", "name", "family", "given"],
        ),
        (
            "PractitionerRole",
            &["practitioner", "specialty", "organization", "location"],
        ),
        ("Organization", &["_id", "identifier", "name", "address"]),
        (
            "Location",
            &[
                "name",
                "address",
                "address-city",
                "address-state",
                "address-postalcode",
                "organization",
            ],
        ),
        ("Group", &["_id", "member", "name"]),
        (
            "AuditEvent",
            &[
                "date", "agent", "entity", "patient", "type", "subtype", "action", "outcome",
                "source",
            ],
        ),
    ];
    for (ty, names) in brief {
        for n in names.iter().chain(&["_id", "_lastUpdated"]) {
            assert!(lookup(ty, n).is_some(), "{ty}.{n} is missing");
        }
    }
}
