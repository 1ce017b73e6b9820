//! Properties every generated record must have, checked over random seeds and indexes, and a
//! snapshot of one patient so any change to generated data is seen in review.

use std::collections::{BTreeSet, HashSet};

use proptest::prelude::*;
use serde_json::Value;
use time::macros::date;

use super::*;
use crate::dates::DEFAULT_REFERENCE_DATE;
use crate::fhir::system;

fn generator(seed: u64) -> Generator {
    Generator::new(seed, DEFAULT_REFERENCE_DATE, "sandbox")
}

/// Every `reference` string in a value.
fn references(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                match (key.as_str(), inner) {
                    ("reference", Value::String(r)) => out.push(r.clone()),
                    _ => references(inner, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, out)),
        _ => {}
    }
}

/// Every `(key, string)` pair in a value, for date and coding checks.
fn strings<'a>(value: &'a Value, out: &mut Vec<(&'a str, &'a str)>) {
    match value {
        Value::Object(map) => {
            for (k, inner) in map {
                match inner {
                    Value::String(s) => out.push((k.as_str(), s.as_str())),
                    _ => strings(inner, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        _ => {}
    }
}

/// Every Coding (`system` + `code`) in a value.
fn codings(value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            if let (Some(Value::String(s)), Some(Value::String(c))) =
                (map.get("system"), map.get("code"))
            {
                out.push((s.clone(), c.clone()));
            }
            map.values().for_each(|v| codings(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| codings(v, out)),
        _ => {}
    }
}

const DATE_KEYS: [&str; 14] = [
    "birthDate",
    "effectiveDateTime",
    "issued",
    "onsetDateTime",
    "recordedDate",
    "authoredOn",
    "occurrenceDateTime",
    "performedDateTime",
    "date",
    "start",
    "end",
    "abatementDateTime",
    "creation",
    "lastUpdated",
];

/// Whether `code` is well-formed for its code system.
fn code_fits_system(system_uri: &str, code: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match system_uri {
        system::LOINC => code
            .split_once('-')
            .is_some_and(|(a, b)| digits(a) && digits(b) && b.len() == 1),
        system::SNOMED | system::RXNORM | system::CVX => digits(code),
        system::ICD10CM => {
            let b = code.as_bytes();
            b.len() >= 3
                && b[0].is_ascii_uppercase()
                && b[1].is_ascii_digit()
                && b[2].is_ascii_alphanumeric()
        }
        system::UCUM | system::NUCC_TAXONOMY | system::CDC_RACE_ETHNICITY | system::BCP47 => {
            !code.is_empty()
        }
        other => {
            other.starts_with("http://terminology.hl7.org/CodeSystem/")
                || other.starts_with("http://hl7.org/fhir/us/core/CodeSystem/")
                || other.starts_with("urn:fhirdrill:")
                || other == "https://nahdo.org/sopt"
                || other == "http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode"
        }
    }
}

fn check_record(g: &Generator, record: &PatientRecord) -> Result<(), TestCaseError> {
    let mut known: HashSet<String> = g
        .shared_resources()
        .iter()
        .map(|r| {
            format!(
                "{}/{}",
                r["resourceType"].as_str().unwrap_or(""),
                r["id"].as_str().unwrap_or("")
            )
        })
        .collect();
    for r in &record.resources {
        let id = format!(
            "{}/{}",
            r["resourceType"].as_str().unwrap_or(""),
            r["id"].as_str().unwrap_or("")
        );
        prop_assert!(known.insert(id.clone()), "duplicate resource {}", id);
    }
    let birth = record.canary.birth_date.as_str();
    let reference = fhir_date(DEFAULT_REFERENCE_DATE);
    for r in &record.resources {
        prop_assert_eq!(&r["meta"]["security"][0]["code"], "HTEST");
        let mut refs = Vec::new();
        references(r, &mut refs);
        for reference in refs {
            prop_assert!(
                known.contains(&reference),
                "dangling reference {} in {}",
                reference,
                r["resourceType"]
            );
        }
        let mut pairs = Vec::new();
        strings(r, &mut pairs);
        for (key, value) in pairs.into_iter().filter(|(k, _)| DATE_KEYS.contains(k)) {
            let day = &value[..10.min(value.len())];
            prop_assert!(
                day >= birth && day <= reference.as_str(),
                "{} {} outside {}..{}",
                key,
                value,
                birth,
                reference
            );
        }
        let mut found = Vec::new();
        codings(r, &mut found);
        for (s, c) in found {
            prop_assert!(
                code_fits_system(&s, &c),
                "code {} does not fit system {}",
                c,
                s
            );
        }
        if let (Some(start), Some(end)) =
            (r["period"]["start"].as_str(), r["period"]["end"].as_str())
        {
            prop_assert!(start <= end);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn records_are_consistent(seed in any::<u64>(), index in 0u64..10_000_000) {
        let g = generator(seed);
        let record = g.patient(index);
        check_record(&g, &record)?;
        prop_assert_eq!(record.patient_id, g.patient_id(index));
    }

    #[test]
    fn identifiers_are_unique_within_a_sample(seed in any::<u64>(), start in 0u64..1_000_000) {
        let g = generator(seed);
        let mut seen = HashSet::new();
        for index in start..start + 40 {
            let c = g.patient(index).canary;
            for value in [c.patient_id, c.mrn, c.ssn, c.phone, c.email] {
                prop_assert!(seen.insert(value.clone()), "{} repeats", value);
            }
        }
    }
}

#[test]
fn a_patient_is_the_same_whatever_was_generated_before() {
    let g = generator(42);
    let direct = g.patient(17);
    for i in 0..17 {
        let _ = g.patient(i);
    }
    assert_eq!(g.patient(17).resources, direct.resources);
    assert_eq!(generator(42).patient(17).resources, direct.resources);
}

#[test]
fn the_reference_date_bounds_every_date() {
    let g = Generator::new(5, date!(2015 - 06 - 30), "sandbox");
    let record = g.patient(3);
    let mut pairs = Vec::new();
    for r in &record.resources {
        strings(r, &mut pairs);
    }
    assert!(
        pairs
            .iter()
            .filter(|(k, _)| DATE_KEYS.contains(k))
            .all(|(_, v)| &v[..10] <= "2015-06-30")
    );
}

#[test]
fn conditions_drive_treatment_and_care_team() {
    let g = generator(7);
    let mut checked = BTreeSet::new();
    for index in 0..400 {
        let record = g.patient(index);
        let has = |code: &str| {
            record
                .resources
                .iter()
                .any(|r| r["resourceType"] == "Condition" && r["code"]["coding"][0]["code"] == code)
        };
        let prescribed = |codes: &[&str]| {
            record.resources.iter().any(|r| {
                r["resourceType"] == "MedicationRequest"
                    && codes
                        .iter()
                        .any(|c| r["medicationCodeableConcept"]["coding"][0]["code"] == *c)
            })
        };
        if has("44054006") {
            assert!(
                prescribed(&["861007", "860975", "106892"]),
                "diabetic without metformin or insulin"
            );
            checked.insert("diabetes");
        }
        if has("59621000") {
            assert!(
                prescribed(&["314076", "197361", "310798"]),
                "hypertensive without antihypertensive"
            );
            checked.insert("hypertension");
        }
        let team = record
            .resources
            .iter()
            .find(|r| r["resourceType"] == "CareTeam");
        let members = team
            .map(|t| t["participant"].as_array().map_or(0, Vec::len))
            .unwrap_or(0);
        assert_eq!(
            members,
            record.care_team.len() + 1,
            "the patient and every practitioner"
        );
    }
    assert_eq!(
        checked.len(),
        2,
        "the sample should contain both conditions"
    );
}

#[test]
fn patient_0_of_seed_42() {
    let record = generator(42).patient(0);
    let lines: Vec<String> = record
        .resources
        .iter()
        .map(|r| serde_json::to_string(r).unwrap_or_default())
        .collect();
    insta::assert_snapshot!(lines.join("\n"));
}
