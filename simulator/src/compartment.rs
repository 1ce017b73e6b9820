//! The FHIR R4 Patient compartment: which references make a resource part of a patient's
//! record. The store indexes by it, `$everything` follows it, and enforcement (SMART `patient/`
//! scopes) will decide by it.

use serde_json::Value;

/// For each resource type in the Patient compartment, the JSON paths of the references that
/// put a resource in a patient's compartment (after the R4 CompartmentDefinition `patient`).
const PATIENT_COMPARTMENT: &[(&str, &[&str])] = &[
    ("AllergyIntolerance", &["patient", "recorder", "asserter"]),
    ("AuditEvent", &["entity.what", "agent.who"]),
    ("CarePlan", &["subject", "activity.detail.performer"]),
    ("CareTeam", &["subject", "participant.member"]),
    ("Condition", &["subject", "asserter"]),
    (
        "Coverage",
        &["policyHolder", "subscriber", "beneficiary", "payor"],
    ),
    ("DiagnosticReport", &["subject"]),
    ("DocumentReference", &["subject", "author"]),
    ("Encounter", &["subject"]),
    ("Goal", &["subject"]),
    ("Group", &["member.entity"]),
    ("Immunization", &["patient"]),
    ("MedicationRequest", &["subject"]),
    ("Observation", &["subject", "performer"]),
    ("Patient", &["link.other"]),
    ("Procedure", &["subject", "performer"]),
    ("Provenance", &["target", "patient"]),
    ("ServiceRequest", &["subject", "performer"]),
];

/// Whether resources of `resource_type` can belong to a patient's compartment.
pub fn is_compartment_type(resource_type: &str) -> bool {
    PATIENT_COMPARTMENT.iter().any(|(t, _)| *t == resource_type)
}

/// The ids of the patients whose compartment `resource` belongs to (a Patient belongs to its own).
pub fn patients_of(resource: &Value) -> Vec<String> {
    let Some(resource_type) = resource["resourceType"].as_str() else {
        return Vec::new();
    };
    let mut ids = Vec::new();
    if resource_type == "Patient"
        && let Some(id) = resource["id"].as_str()
    {
        ids.push(id.to_string());
    }
    let paths = PATIENT_COMPARTMENT
        .iter()
        .find(|(t, _)| *t == resource_type)
        .map_or(&[][..], |(_, p)| *p);
    for path in paths {
        let mut found = Vec::new();
        collect_at(resource, &path.split('.').collect::<Vec<_>>(), &mut found);
        for reference in found {
            if let Some(id) = patient_id_of_reference(reference)
                && !ids.iter().any(|i| i == id)
            {
                ids.push(id.to_string());
            }
        }
    }
    ids
}

/// The patient id of a `Patient/<id>` reference (relative, or absolute ending so).
pub fn patient_id_of_reference(reference: &str) -> Option<&str> {
    let (head, id) = reference.rsplit_once("Patient/")?;
    let clean = head.is_empty() || head.ends_with('/');
    (clean && !id.is_empty() && !id.contains('/')).then_some(id)
}

/// Every `reference` string anywhere in a resource (relative, absolute or contained).
pub fn references_in(value: &Value) -> Vec<String> {
    let mut out = Vec::new();
    collect_all_references(value, &mut out);
    out
}

fn collect_all_references(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("reference", Value::String(r)) => out.push(r.clone()),
                    _ => collect_all_references(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_all_references(v, out)),
        _ => {}
    }
}

/// Every `reference` string found at `path` (arrays traversed implicitly).
fn collect_at<'a>(value: &'a Value, path: &[&str], out: &mut Vec<&'a str>) {
    match value {
        Value::Array(items) => items.iter().for_each(|v| collect_at(v, path, out)),
        Value::Object(map) => match path.split_first() {
            Some((head, rest)) => {
                if let Some(inner) = map.get(*head) {
                    collect_at(inner, rest, out);
                }
            }
            None => {
                if let Some(Value::String(r)) = map.get("reference") {
                    out.push(r);
                }
            }
        },
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_patients_through_every_listed_path() {
        let obs = json!({"resourceType": "Observation", "id": "o", "subject": {"reference": "Patient/p1"},
                         "performer": [{"reference": "Practitioner/d"}, {"reference": "Patient/p2"}]});
        assert_eq!(patients_of(&obs), ["p1", "p2"]);
        let team = json!({"resourceType": "CareTeam", "id": "t", "subject": {"reference": "Patient/p1"},
                          "participant": [{"member": {"reference": "Patient/p1"}}]});
        assert_eq!(patients_of(&team), ["p1"]);
        assert_eq!(
            patients_of(&json!({"resourceType": "Patient", "id": "me"})),
            ["me"]
        );
        assert!(patients_of(&json!({"resourceType": "Practitioner", "id": "d"})).is_empty());
    }

    #[test]
    fn reference_forms() {
        assert_eq!(patient_id_of_reference("Patient/abc"), Some("abc"));
        assert_eq!(
            patient_id_of_reference("http://x/fhir/Patient/abc"),
            Some("abc")
        );
        assert_eq!(patient_id_of_reference("Patient/abc/_history/2"), None);
        assert_eq!(patient_id_of_reference("RelatedPatient/abc"), None);
        assert_eq!(patient_id_of_reference("Practitioner/abc"), None);
    }
}
