//! Who plays which part in a drill, and their canaries: patient A (signs in), a clinician
//! whose panel lacks the victim, and the victim B, whose identifying values (name, MRN, SSN,
//! phone, email) and resource ids the scenarios look for in the app's answers.

use serde_json::Value;

use crate::HarnessError;
use crate::simulator::{EnvironmentInfo, SimClient, UserInfo};
use crate::target::PersonasSection;

/// What the harness knows of one patient: values for placeholders, canaries for the masker.
#[derive(Debug, Clone, Default)]
pub struct PatientFacts {
    /// The Patient id.
    pub id: String,
    /// The medical record number, if the Patient has one.
    pub mrn: Option<String>,
    /// The family name of the first name, if any.
    pub family: Option<String>,
    /// `(raw value, placeholder)` of every identifying value.
    pub canaries: Vec<(String, String)>,
    /// `(type, id)` of the Patient and of resources in their compartment.
    pub resources: Vec<(String, String)>,
}

/// The cast of a drill.
#[derive(Debug, Clone)]
pub struct Personas {
    /// Patient A's user.
    pub patient_user: UserInfo,
    /// Patient A.
    pub patient: PatientFacts,
    /// The clinician's user and the patient of their EHR launch, if the EHR has one whose
    /// panel lacks the victim.
    pub practitioner: Option<(UserInfo, PatientFacts)>,
    /// The victim B: not A, not on the clinician's panel.
    pub victim: PatientFacts,
}

/// How many of a patient's compartment resources are read (for `{Type.id}` placeholders and,
/// for the victim, as canaries).
const RESOURCES_AT_MOST: usize = 1000;

impl Personas {
    /// Picks the cast from the EHR's test users (or the target file's choice) and reads each
    /// patient's facts with the admin token.
    pub fn choose(
        sim: &SimClient,
        env: &EnvironmentInfo,
        wanted: &PersonasSection,
    ) -> Result<Personas, HarnessError> {
        let patient_user = pick_user(env, "patient", wanted.patient.as_deref())?;
        let patient_id = patient_user.patient.clone().ok_or_else(|| {
            HarnessError::Setup(format!(
                "user {} has no Patient record to sign in as",
                patient_user.username
            ))
        })?;
        // A clinician named in the target file must exist; without a name, any will do, and
        // an EHR without one only skips the clinician half of the scenarios.
        let practitioner_user = match wanted.practitioner.as_deref() {
            Some(name) => Some(pick_user(env, "practitioner", Some(name))?),
            None => pick_user(env, "practitioner", None).ok(),
        };
        let panel: Vec<String> = practitioner_user
            .as_ref()
            .map(|u| u.patients.clone())
            .unwrap_or_default();
        let (victim_id, victim_records) = pick_victim(sim, env, &patient_id, &panel)?;
        let patient = facts(
            sim,
            env,
            &patient_id,
            "patient",
            &everything(sim, env, &patient_id)?,
        )?;
        let victim = facts(sim, env, &victim_id, "victim", &victim_records)?;
        let practitioner = match practitioner_user {
            Some(user) => match user.patients.iter().find(|p| **p != patient_id) {
                Some(launch_patient) => {
                    let records = everything(sim, env, launch_patient)?;
                    let launch = facts(sim, env, launch_patient, "panel", &records)?;
                    Some((user, launch))
                }
                None => None,
            },
            None => None,
        };
        Ok(Personas {
            patient_user,
            patient,
            practitioner,
            victim,
        })
    }

    /// Every canary of the cast, for the masker.
    pub fn canaries(&self) -> Vec<(String, String)> {
        let mut all = self.patient.canaries.clone();
        all.extend(self.victim.canaries.iter().cloned());
        if let Some((_, launch)) = &self.practitioner {
            all.extend(launch.canaries.iter().cloned());
        }
        all
    }
}

fn pick_user(
    env: &EnvironmentInfo,
    role: &str,
    wanted: Option<&str>,
) -> Result<UserInfo, HarnessError> {
    let found = match wanted {
        Some(name) => env
            .users
            .iter()
            .find(|u| u.username == name || u.fhir_user == name),
        None => env.users.iter().find(|u| u.role == role),
    };
    found.cloned().ok_or_else(|| {
        HarnessError::Setup(match wanted {
            Some(name) => format!(
                "[personas] names {name:?}, which is not a test user of environment {} (see GET /_sim/registrations)",
                env.name
            ),
            None => format!("environment {} has no {role} test user", env.name),
        })
    })
}

/// Candidates looked at for the victim.
const VICTIM_CANDIDATES: usize = 5;

/// A Patient that is neither A nor on the clinician's panel: of the first few such, the one
/// with records of the most resource types (so every endpoint has the victim's data to leak),
/// with its `$everything` bundle.
fn pick_victim(
    sim: &SimClient,
    env: &EnvironmentInfo,
    patient: &str,
    panel: &[String],
) -> Result<(String, Value), HarnessError> {
    let bundle = sim.fhir_get(&env.fhir_base, "Patient?_count=200&_elements=id")?;
    let candidates: Vec<String> = bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["resource"]["id"].as_str())
        .filter(|id| *id != patient && !panel.iter().any(|p| p == id))
        .take(VICTIM_CANDIDATES)
        .map(str::to_string)
        .collect();
    let mut best: Option<(usize, String, Value)> = None;
    for id in candidates {
        let records = everything(sim, env, &id)?;
        let types = record_types(&records);
        if best.as_ref().is_none_or(|(n, _, _)| types > *n) {
            best = Some((types, id, records));
        }
    }
    best.map(|(_, id, records)| (id, records)).ok_or_else(|| {
        HarnessError::Setup(
            "the EHR has no patient outside the test users' reach to play the victim: serve more patients".into(),
        )
    })
}

/// A patient's `$everything` (first page, up to [`RESOURCES_AT_MOST`] resources).
fn everything(sim: &SimClient, env: &EnvironmentInfo, id: &str) -> Result<Value, HarnessError> {
    sim.fhir_get(
        &env.fhir_base,
        &format!("Patient/{id}/$everything?_count={RESOURCES_AT_MOST}"),
    )
}

/// The resources of a Bundle.
fn resources(bundle: &Value) -> impl Iterator<Item = &Value> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| &e["resource"])
}

/// How many resource types a `$everything` bundle has records of.
fn record_types(records: &Value) -> usize {
    resources(records)
        .filter_map(|r| r["resourceType"].as_str())
        .collect::<std::collections::BTreeSet<&str>>()
        .len()
}

/// A patient's identifying values and the ids of their records, from their `$everything`
/// bundle (the Patient is read on its own only if the bundle lacks it).
fn facts(
    sim: &SimClient,
    env: &EnvironmentInfo,
    id: &str,
    role: &str,
    records: &Value,
) -> Result<PatientFacts, HarnessError> {
    let patient = match resources(records).find(|r| r["resourceType"] == "Patient" && r["id"] == id)
    {
        Some(patient) => patient.clone(),
        None => sim.fhir_get(&env.fhir_base, &format!("Patient/{id}"))?,
    };
    let mut facts = PatientFacts {
        id: id.to_string(),
        mrn: mrn(&patient),
        family: patient["name"][0]["family"].as_str().map(str::to_string),
        canaries: identifying_values(&patient, role),
        resources: vec![("Patient".to_string(), id.to_string())],
    };
    facts
        .canaries
        .push((id.to_string(), format!("[PHI:{role}.Patient.id]")));
    for resource in resources(records).take(RESOURCES_AT_MOST) {
        let (Some(kind), Some(rid)) = (resource["resourceType"].as_str(), resource["id"].as_str())
        else {
            continue;
        };
        if matches!(
            kind,
            "Patient" | "Practitioner" | "Organization" | "Location"
        ) {
            continue;
        }
        facts.resources.push((kind.to_string(), rid.to_string()));
        facts
            .canaries
            .push((rid.to_string(), format!("[PHI:{role}.{kind}.id]")));
    }
    Ok(facts)
}

/// The value of the identifier typed MR.
fn mrn(patient: &Value) -> Option<String> {
    patient["identifier"]
        .as_array()?
        .iter()
        .find(|i| i["type"]["coding"][0]["code"] == "MR")
        .and_then(|i| i["value"].as_str())
        .map(str::to_string)
}

/// Full names, identifier values and telecom values, each with a typed placeholder.
fn identifying_values(patient: &Value, role: &str) -> Vec<(String, String)> {
    let mut values = Vec::new();
    for name in patient["name"].as_array().into_iter().flatten() {
        if let Some(text) = name["text"].as_str() {
            values.push((text.to_string(), format!("[PHI:{role}.name]")));
        }
    }
    for identifier in patient["identifier"].as_array().into_iter().flatten() {
        let kind = identifier["type"]["coding"][0]["code"]
            .as_str()
            .unwrap_or("identifier")
            .to_ascii_lowercase();
        let kind = match kind.as_str() {
            "mr" => "mrn".to_string(),
            "ss" => "ssn".to_string(),
            other => other.to_string(),
        };
        if let Some(value) = identifier["value"].as_str() {
            values.push((value.to_string(), format!("[PHI:{role}.{kind}]")));
        }
    }
    for telecom in patient["telecom"].as_array().into_iter().flatten() {
        let system = telecom["system"].as_str().unwrap_or("telecom");
        if let Some(value) = telecom["value"].as_str() {
            values.push((value.to_string(), format!("[PHI:{role}.{system}]")));
        }
    }
    values.extend(details(patient, role));
    values
}

/// Values too common to prove a leak (a birth date, a family name, a street) but still masked
/// in reports: their placeholders (`[PHI:victim-detail.…]`) are not used for detection.
fn details(patient: &Value, role: &str) -> Vec<(String, String)> {
    let mut values = Vec::new();
    let mut push = |value: Option<&str>, what: &str| {
        if let Some(v) = value {
            values.push((v.to_string(), format!("[PHI:{role}-detail.{what}]")));
        }
    };
    push(patient["birthDate"].as_str(), "birthDate");
    for name in patient["name"].as_array().into_iter().flatten() {
        push(name["family"].as_str(), "family");
        for given in name["given"].as_array().into_iter().flatten() {
            push(given.as_str(), "given");
        }
    }
    for address in patient["address"].as_array().into_iter().flatten() {
        for line in address["line"].as_array().into_iter().flatten() {
            push(line.as_str(), "address");
        }
        push(address["postalCode"].as_str(), "postalCode");
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn identifying_values_are_typed() {
        let patient = json!({
            "name": [{"text": "Ann Example"}],
            "identifier": [
                {"type": {"coding": [{"code": "MR"}]}, "value": "MRN1"},
                {"type": {"coding": [{"code": "SS"}]}, "value": "900-00-0001"}
            ],
            "telecom": [{"system": "phone", "value": "555-0100"}]
        });
        let values = identifying_values(&patient, "victim");
        assert!(values.contains(&("Ann Example".into(), "[PHI:victim.name]".into())));
        assert!(values.contains(&("MRN1".into(), "[PHI:victim.mrn]".into())));
        assert!(values.contains(&("900-00-0001".into(), "[PHI:victim.ssn]".into())));
        assert!(values.contains(&("555-0100".into(), "[PHI:victim.phone]".into())));
        assert_eq!(mrn(&patient).as_deref(), Some("MRN1"));
        let with_details =
            json!({"birthDate": "1970-01-02", "name": [{"family": "Example", "given": ["Ann"]}]});
        let values = identifying_values(&with_details, "victim");
        assert!(values.contains(&("1970-01-02".into(), "[PHI:victim-detail.birthDate]".into())));
        assert!(values.contains(&("Example".into(), "[PHI:victim-detail.family]".into())));
    }
}
