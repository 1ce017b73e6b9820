//! `scope.unused-grants`: data scopes a user granted the app that it never used while every
//! endpoint of its API was exercised (minimum necessary).

use std::collections::BTreeSet;

use crate::scope::{DataScope, data_scopes, narrow_scopes, user_request_of};
use crate::api::{
    Capability, Control, Evidence, Finding, Scenario, ScenarioError, ScenarioMeta, Severity,
    Subject,
};
use crate::cx::{Persona, ScenarioCx, Whose};

/// The catalog entry.
pub static META: ScenarioMeta = ScenarioMeta {
    id: "scope.unused-grants",
    title: "App is granted data scopes it never uses",
    family: "scope",
    summary: "Signs in as a patient (and as a clinician), calls every endpoint of the app's API for the signed-in patient, and compares the data scopes granted with the resource types the app read under the user's token. Scopes never exercised widen what a stolen token exposes and what the user was asked to consent to.",
    severity: Severity::Medium,
    controls: &[
        Control::Hipaa("164.502(b)"),
        Control::SmartAppLaunch("Scopes and Launch Context"),
        Control::Cwe(272),
    ],
    references: &[
        "https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html",
        "https://www.rfc-editor.org/rfc/rfc9700#section-2.3",
    ],
    needs: &[Capability::PatientLogin, Capability::AppApi],
    fix: "Request only the data scopes the app uses (the narrower set in the finding); request more when a feature needs it.",
    deprecated_ids: &[],
};

/// The scenario.
pub struct UnusedGrants;

impl Scenario for UnusedGrants {
    fn meta(&self) -> &'static ScenarioMeta {
        &META
    }

    fn run(&self, cx: &mut dyn ScenarioCx) -> Result<Vec<Finding>, ScenarioError> {
        let mut findings = Vec::new();
        for persona in [Persona::Patient, Persona::Practitioner] {
            let mark = cx.mark()?;
            let session = match cx.sign_in(persona, None) {
                Ok(s) => s,
                Err(ScenarioError::Skip(_)) if persona == Persona::Practitioner => continue,
                Err(e) => return Err(e),
            };
            for endpoint in cx.endpoints().to_vec() {
                cx.call_app(&session, &endpoint, Whose::Own)?;
            }
            let entries = cx.access_since(mark)?;
            let used: BTreeSet<String> = entries
                .iter()
                .filter(|e| user_request_of(e, &session.client_id, &session.fhir_user))
                .filter_map(|e| e.resource_type().map(str::to_string))
                .collect();
            let granted: Vec<(String, DataScope)> = data_scopes(&session.scope_granted)
                .into_iter()
                .filter(|(_, d)| d.level != "system" && d.reads())
                .collect();
            // A scope is exercised when the EHR names it as what permitted a request.
            let exercised: BTreeSet<&str> = entries
                .iter()
                .filter(|e| user_request_of(e, &session.client_id, &session.fhir_user))
                .flat_map(|e| e.scopes_used.iter().map(String::as_str))
                .collect();
            let unused: Vec<&String> = granted
                .iter()
                .filter(|(s, d)| d.resource == "*" || !exercised.contains(s.as_str()))
                .map(|(s, _)| s)
                .collect();
            if unused.is_empty() {
                continue;
            }
            let level = granted.first().map_or("patient", |(_, d)| d.level.as_str());
            let narrow = narrow_scopes(level, &used);
            let masker = cx.masker();
            let unused_text = unused
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" ");
            let message = format!(
                "Granted \"{}\"; calling every app endpoint read only [{}]. Unused or wider than used: {unused_text}. Narrower set: \"{narrow}\".",
                session.scope_granted,
                used.iter().cloned().collect::<Vec<_>>().join(", ")
            );
            findings.push(
                Finding::new(
                    &META,
                    persona.as_str(),
                    Subject::Session {
                        persona: persona.as_str().to_string(),
                    },
                    masker.mask(&format!(
                        "A {} session is granted scopes it never uses: {unused_text}",
                        persona.as_str()
                    )),
                    masker.mask(&message),
                )
                .with(Evidence::note(
                    masker,
                    &format!(
                        "requested: {}; granted: {}",
                        session.scope_requested, session.scope_granted
                    ),
                )),
            );
        }
        Ok(findings)
    }
}
