//! `scope.downscoped-grant`: the user grants less than the app asked for. The app must keep
//! working within the grant and must not reach for the missing data another way.

use std::collections::{BTreeMap, BTreeSet};

use crate::scope::data_scopes;
use crate::scope::user_request_of;
use crate::api::{
    Capability, Control, Evidence, Finding, Scenario, ScenarioError, ScenarioMeta, Severity,
    Subject,
};
use crate::cx::{Persona, ScenarioCx, Session, Whose};

/// The catalog entry.
pub static META: ScenarioMeta = ScenarioMeta {
    id: "scope.downscoped-grant",
    title: "App mishandles a grant narrower than it asked for",
    family: "scope",
    summary: "Signs in with the full grant and learns which resource types each endpoint reads; signs in again with one of those types withheld (as a patient unticking it on the consent page would) and calls every endpoint. The app must read the granted scopes from the token response: it must not ask the EHR for the withheld type, must not fetch it with another credential, and must keep the other endpoints working.",
    severity: Severity::High,
    controls: &[
        Control::SmartAppLaunch("Scopes and Launch Context: scopes granted may differ"),
        Control::Hipaa("164.508"),
        Control::OwaspApi("API5:2023"),
        Control::Cwe(863),
    ],
    references: &[
        "https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html",
        "https://hl7.org/fhir/smart-app-launch/app-launch.html#response-5",
    ],
    needs: &[Capability::PatientLogin, Capability::AppApi],
    fix: "Read `scope` from the token response and gate each feature on it; when a scope is missing, tell the user which permission the feature needs instead of calling the EHR or using a backend credential.",
    deprecated_ids: &[],
};

/// The scenario.
pub struct DownscopedGrant;

/// Per endpoint route: its status and the types it read with the user's token.
type Baseline = BTreeMap<String, (u16, BTreeSet<String>)>;

impl Scenario for DownscopedGrant {
    fn meta(&self) -> &'static ScenarioMeta {
        &META
    }

    fn run(&self, cx: &mut dyn ScenarioCx) -> Result<Vec<Finding>, ScenarioError> {
        let full = cx.sign_in(Persona::Patient, None)?;
        let baseline = exercise(cx, &full)?;
        let Some(withheld) = pick_withheld(&baseline) else {
            return Err(ScenarioError::skip(
                "the app's endpoints read nothing from the EHR with the user's token, so there is no scope to withhold",
            ));
        };
        let grant = grant_without(&full.scope_granted, &withheld, &baseline);
        let narrow = cx.sign_in(Persona::Patient, Some(&grant))?;
        if data_scopes(&narrow.scope_granted)
            .iter()
            .any(|(_, d)| d.covers(&withheld))
        {
            return Err(ScenarioError::skip(
                "the EHR did not narrow the grant as asked",
            ));
        }
        let mut findings = Vec::new();
        for endpoint in cx.endpoints().to_vec() {
            let route = endpoint.route();
            let mark = cx.mark()?;
            let exchange = cx.call_app(&narrow, &endpoint, Whose::Own)?;
            let entries = cx.access_since(mark)?;
            let refused: Vec<_> = entries
                .iter()
                .filter(|e| user_request_of(e, &narrow.client_id, &narrow.fhir_user))
                .filter(|e| {
                    e.resource_type() == Some(withheld.as_str()) && matches!(e.status, 401 | 403)
                })
                .collect();
            let elsewhere: Vec<_> = entries
                .iter()
                .filter(|e| e.is_fhir_data() && e.resource_type() == Some(withheld.as_str()))
                .filter(|e| !user_request_of(e, &narrow.client_id, &narrow.fhir_user))
                .collect();
            let (was_status, was_types) = baseline.get(&route).cloned().unwrap_or_default();
            // An endpoint that never read the withheld type must keep answering as before.
            let broke = (200..300).contains(&was_status)
                && !was_types.contains(&withheld)
                && !exchange.ok();
            let masker = cx.masker();
            let subject = Subject::AppRoute {
                route: route.clone(),
            };
            let note = Evidence::note(
                masker,
                &format!("granted: {} (withheld: {withheld})", narrow.scope_granted),
            );
            if !refused.is_empty() {
                findings.push(
                    Finding::new(&META, "ignored-grant", subject.clone(),
                        masker.mask(&format!("{route} asked the EHR for {withheld} after the user withheld it")),
                        masker.mask(&format!("With {withheld} withheld, {route} still requested it and the EHR refused: the app assumes every scope it asked for was granted.")))
                    .with(note.clone())
                    .with(Evidence::http(masker, &exchange, None))
                    .with(Evidence::access_log(masker, refused.iter().copied())),
                );
            }
            if !elsewhere.is_empty() {
                findings.push(
                    Finding::new(&META, "other-credential", subject.clone(),
                        masker.mask(&format!("{route} fetched the withheld {withheld} with another credential")),
                        masker.mask(&format!("The user withheld {withheld}, and the app read it anyway with a token that is not the user's.")))
                    .severity(Severity::Critical)
                    .with(note.clone())
                    .with(Evidence::access_log(masker, elsewhere.iter().copied())),
                );
            }
            if broke {
                findings.push(
                    Finding::new(&META, "broken", subject,
                        masker.mask(&format!("{route} fails when {withheld} is withheld, though it does not need it")),
                        masker.mask(&format!("{route} answered {was_status} with the full grant and {} with {withheld} withheld, which it never reads.", exchange.status)))
                    .severity(Severity::Medium)
                    .with(note)
                    .with(Evidence::http(masker, &exchange, None)),
                );
            }
        }
        Ok(findings)
    }
}

/// Calls every endpoint for the session's own patient; per route, the status and the types
/// read with the user's token.
fn exercise(cx: &mut dyn ScenarioCx, session: &Session) -> Result<Baseline, ScenarioError> {
    let mut baseline = Baseline::new();
    for endpoint in cx.endpoints().to_vec() {
        let mark = cx.mark()?;
        let exchange = cx.call_app(session, &endpoint, Whose::Own)?;
        let types = cx
            .access_since(mark)?
            .iter()
            .filter(|e| {
                user_request_of(e, &session.client_id, &session.fhir_user) && e.is_fhir_data()
            })
            .filter_map(|e| e.resource_type().map(str::to_string))
            .collect();
        baseline.insert(endpoint.route(), (exchange.status, types));
    }
    Ok(baseline)
}

/// The type read by the fewest endpoints (Patient last: apps need the patient's own record).
fn pick_withheld(baseline: &Baseline) -> Option<String> {
    let mut uses: BTreeMap<&String, usize> = BTreeMap::new();
    for (_, types) in baseline.values() {
        for t in types {
            *uses.entry(t).or_default() += 1;
        }
    }
    uses.into_iter()
        .min_by_key(|(t, n)| (t.as_str() == "Patient", *n))
        .map(|(t, _)| t.clone())
}

/// The resource types a wildcard is narrowed to when one type is withheld: the US Core types
/// and those a patient-facing app commonly reads (a wildcard grants every type; dropping one
/// must not also drop types the app checks for without reading them).
const WILDCARD_TYPES: &[&str] = &[
    "AllergyIntolerance",
    "CarePlan",
    "CareTeam",
    "Condition",
    "Coverage",
    "Device",
    "DiagnosticReport",
    "DocumentReference",
    "Encounter",
    "Goal",
    "Immunization",
    "Location",
    "Medication",
    "MedicationDispense",
    "MedicationRequest",
    "Observation",
    "Organization",
    "Patient",
    "Practitioner",
    "PractitionerRole",
    "Procedure",
    "Provenance",
    "QuestionnaireResponse",
    "RelatedPerson",
    "ServiceRequest",
    "Specimen",
];

/// The granted scopes without `withheld`: a wildcard becomes every type it covered (the
/// common types and those the app was seen reading) but `withheld`.
fn grant_without(granted: &str, withheld: &str, baseline: &Baseline) -> String {
    let mut types: BTreeSet<&str> = WILDCARD_TYPES.iter().copied().collect();
    types.extend(
        baseline
            .values()
            .flat_map(|(_, t)| t.iter().map(String::as_str)),
    );
    let mut out = Vec::new();
    for scope in granted.split_whitespace() {
        match crate::scope::DataScope::parse(scope) {
            Some(d) if d.resource == "*" => {
                let permissions = scope.rsplit_once('.').map_or("rs", |(_, p)| p);
                out.extend(
                    types
                        .iter()
                        .filter(|t| **t != withheld)
                        .map(|t| format!("{}/{t}.{permissions}", d.level)),
                );
            }
            Some(d) if d.resource == withheld => {}
            _ => out.push(scope.to_string()),
        }
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn baseline() -> Baseline {
        let mut b = Baseline::new();
        b.insert(
            "GET /a".into(),
            (200, BTreeSet::from(["Patient".to_string()])),
        );
        b.insert(
            "GET /b".into(),
            (
                200,
                BTreeSet::from(["Patient".to_string(), "Observation".to_string()]),
            ),
        );
        b.insert(
            "GET /c".into(),
            (200, BTreeSet::from(["MedicationRequest".to_string()])),
        );
        b
    }

    #[test]
    fn the_least_used_type_other_than_patient_is_withheld() {
        assert_eq!(
            pick_withheld(&baseline()).as_deref(),
            Some("MedicationRequest")
        );
    }

    #[test]
    fn withholding_removes_the_type_and_expands_wildcards() {
        let b = baseline();
        assert_eq!(
            grant_without(
                "openid patient/Patient.rs patient/MedicationRequest.rs",
                "MedicationRequest",
                &b
            ),
            "openid patient/Patient.rs"
        );
        let narrowed = grant_without("launch/patient patient/*.read", "MedicationRequest", &b);
        assert!(narrowed.starts_with("launch/patient "), "{narrowed}");
        assert!(
            narrowed.contains("patient/Patient.read")
                && narrowed.contains("patient/Condition.read")
        );
        assert!(
            !narrowed.contains("MedicationRequest") && !narrowed.contains('*'),
            "{narrowed}"
        );
    }
}
