//! Small builders for the FHIR R4 data types the generator writes (Coding, Reference, Quantity…).
//!
//! Resources are plain `serde_json::Value`s; these helpers keep their shape in one place.

use serde_json::{Map, Value, json};

/// A code from a code system, as written in tables (`system`, `code`, `display`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code {
    /// The code system URI.
    pub system: &'static str,
    /// The code within that system.
    pub code: &'static str,
    /// The human-readable display of the code.
    pub display: &'static str,
}

/// Code system URIs used by the generator.
pub mod system {
    /// LOINC.
    pub const LOINC: &str = "http://loinc.org";
    /// SNOMED CT.
    pub const SNOMED: &str = "http://snomed.info/sct";
    /// RxNorm.
    pub const RXNORM: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";
    /// CDC vaccine codes (CVX).
    pub const CVX: &str = "http://hl7.org/fhir/sid/cvx";
    /// ICD-10-CM.
    pub const ICD10CM: &str = "http://hl7.org/fhir/sid/icd-10-cm";
    /// UCUM units.
    pub const UCUM: &str = "http://unitsofmeasure.org";
    /// US Social Security numbers (used for SSN-shaped, never-issued values).
    pub const US_SSN: &str = "http://hl7.org/fhir/sid/us-ssn";
    /// US National Provider Identifier.
    pub const US_NPI: &str = "http://hl7.org/fhir/sid/us-npi";
    /// HL7 v2 table 0203 (identifier types).
    pub const V2_0203: &str = "http://terminology.hl7.org/CodeSystem/v2-0203";
    /// HL7 v2 table 0074 (diagnostic service sections).
    pub const V2_0074: &str = "http://terminology.hl7.org/CodeSystem/v2-0074";
    /// HL7 v3 ActCode.
    pub const V3_ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
    /// HL7 v3 ActReason (holds `HTEST`, the test-data security label).
    pub const V3_ACT_REASON: &str = "http://terminology.hl7.org/CodeSystem/v3-ActReason";
    /// HL7 v3 observation interpretation.
    pub const V3_INTERPRETATION: &str =
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation";
    /// FHIR observation categories.
    pub const OBSERVATION_CATEGORY: &str =
        "http://terminology.hl7.org/CodeSystem/observation-category";
    /// FHIR condition categories.
    pub const CONDITION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/condition-category";
    /// FHIR condition clinical status.
    pub const CONDITION_CLINICAL: &str = "http://terminology.hl7.org/CodeSystem/condition-clinical";
    /// FHIR condition verification status.
    pub const CONDITION_VERIFICATION: &str =
        "http://terminology.hl7.org/CodeSystem/condition-ver-status";
    /// FHIR allergy clinical status.
    pub const ALLERGY_CLINICAL: &str =
        "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical";
    /// FHIR allergy verification status.
    pub const ALLERGY_VERIFICATION: &str =
        "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification";
    /// US Core DocumentReference category.
    pub const US_CORE_DOC_CATEGORY: &str =
        "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category";
    /// US Core condition category extension codes (screening-assessment, health-concern…).
    pub const US_CORE_CATEGORY: &str = "http://hl7.org/fhir/us/core/CodeSystem/us-core-category";
    /// NUCC provider taxonomy.
    pub const NUCC_TAXONOMY: &str = "http://nucc.org/provider-taxonomy";
    /// CDC race and ethnicity (OMB categories).
    pub const CDC_RACE_ETHNICITY: &str = "urn:oid:2.16.840.1.113883.6.238";
    /// BCP 47 language tags.
    pub const BCP47: &str = "urn:ietf:bcp:47";
    /// FHIR organization types.
    pub const ORGANIZATION_TYPE: &str = "http://terminology.hl7.org/CodeSystem/organization-type";
    /// The tag fhirdrill puts on every synthetic resource.
    pub const FHIRDRILL_TAG: &str = "urn:fhirdrill:codesystem:data-origin";
}

impl Code {
    /// This code as a FHIR `Coding`.
    pub fn coding(&self) -> Value {
        json!({"system": self.system, "code": self.code, "display": self.display})
    }

    /// This code as a FHIR `CodeableConcept` with `text` set to the display.
    pub fn concept(&self) -> Value {
        json!({"coding": [self.coding()], "text": self.display})
    }
}

/// A SNOMED CT code.
pub const fn sct(code: &'static str, display: &'static str) -> Code {
    Code {
        system: system::SNOMED,
        code,
        display,
    }
}

/// A ICD-10-CM code.
pub const fn icd(code: &'static str, display: &'static str) -> Code {
    Code {
        system: system::ICD10CM,
        code,
        display,
    }
}

/// A RxNorm code.
pub const fn rx(code: &'static str, display: &'static str) -> Code {
    Code {
        system: system::RXNORM,
        code,
        display,
    }
}

/// A CVX code.
pub const fn cvx(code: &'static str, display: &'static str) -> Code {
    Code {
        system: system::CVX,
        code,
        display,
    }
}

/// A LOINC code.
pub const fn loinc(code: &'static str, display: &'static str) -> Code {
    Code {
        system: system::LOINC,
        code,
        display,
    }
}

/// A `CodeableConcept` with several codings (e.g. SNOMED CT and its ICD-10-CM translation).
pub fn concept_of(codes: &[Code], text: &str) -> Value {
    json!({"coding": codes.iter().map(Code::coding).collect::<Vec<_>>(), "text": text})
}

/// A `Reference` to `Type/id`.
pub fn reference(resource_type: &str, id: &str) -> Value {
    json!({"reference": format!("{resource_type}/{id}")})
}

/// A `Reference` to `Type/id` with a display string.
pub fn reference_with_display(resource_type: &str, id: &str, display: &str) -> Value {
    json!({"reference": format!("{resource_type}/{id}"), "display": display})
}

/// A UCUM `Quantity`.
pub fn quantity(value: f64, unit: &str) -> Value {
    json!({"value": value, "unit": unit, "system": system::UCUM, "code": unit})
}

/// The `meta` every synthetic resource carries: its US Core profile, the HL7 `HTEST` security
/// label and the fhirdrill synthetic-data tag, with a fixed `lastUpdated`.
pub fn meta(profile: &str, last_updated: &str) -> Value {
    let mut meta = Map::new();
    meta.insert("versionId".into(), json!("1"));
    meta.insert("lastUpdated".into(), json!(last_updated));
    if !profile.is_empty() {
        meta.insert(
            "profile".into(),
            json!([format!(
                "http://hl7.org/fhir/us/core/StructureDefinition/{profile}"
            )]),
        );
    }
    meta.insert("security".into(), json!([TEST_DATA_LABEL.coding()]));
    meta.insert("tag".into(), json!([SYNTHETIC_TAG.coding()]));
    Value::Object(meta)
}

/// The HL7 security label for test data.
pub const TEST_DATA_LABEL: Code = Code {
    system: system::V3_ACT_REASON,
    code: "HTEST",
    display: "test health data",
};

/// The fhirdrill tag that marks synthetic data.
pub const SYNTHETIC_TAG: Code = Code {
    system: system::FHIRDRILL_TAG,
    code: "synthetic",
    display: "fhirdrill synthetic test data, not about a real person",
};

/// Starts a resource object with `resourceType`, `id` and `meta` in that order.
pub fn resource(
    resource_type: &str,
    id: &str,
    profile: &str,
    last_updated: &str,
) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("resourceType".into(), json!(resource_type));
    map.insert("id".into(), json!(id));
    map.insert("meta".into(), meta(profile, last_updated));
    map
}

/// Extends a resource map with the fields of a JSON object literal, keeping their order.
pub fn with(mut map: Map<String, Value>, fields: Value) -> Value {
    if let Value::Object(extra) = fields {
        map.extend(extra);
    }
    Value::Object(map)
}
