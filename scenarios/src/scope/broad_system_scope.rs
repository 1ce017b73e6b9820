//! `scope.broad-system-scope`: a backend client registered for, or asking for, `system/*`
//! access or all-patient reads of types it never uses.

use std::collections::BTreeSet;

use crate::scope::{data_scopes, narrow_scopes};
use crate::api::{
    Capability, Control, Evidence, Finding, Scenario, ScenarioError, ScenarioMeta, Severity,
    Subject,
};
use crate::cx::{AccessEntry, ScenarioCx};

/// The catalog entry.
pub static META: ScenarioMeta = ScenarioMeta {
    id: "scope.broad-system-scope",
    title: "Backend client has broader system/ access than it uses",
    family: "scope",
    summary: "Runs the app's backend jobs and compares the system/ scopes its backend clients are registered for and request with the resource types they actually read. A system/*.read grant reads every resource of every patient: a leaked backend key then exposes the whole EHR.",
    severity: Severity::High,
    controls: &[
        Control::Hipaa("164.502(b)"),
        Control::SmartAppLaunch("Backend Services: Scopes"),
        Control::OwaspApi("API5:2023"),
        Control::Cwe(250),
    ],
    references: &[
        "https://hl7.org/fhir/smart-app-launch/backend-services.html",
        "https://www.ecfr.gov/current/title-45/subtitle-A/subchapter-C/part-164/subpart-E/section-164.502",
    ],
    needs: &[Capability::BackendServices],
    fix: "Register and request only system/<Type>.rs for the types the job reads (bound to a Group of the app's patients where the EHR supports it); never system/*.",
    deprecated_ids: &[],
};

/// The scenario.
pub struct BroadSystemScope;

impl Scenario for BroadSystemScope {
    fn meta(&self) -> &'static ScenarioMeta {
        &META
    }

    fn run(&self, cx: &mut dyn ScenarioCx) -> Result<Vec<Finding>, ScenarioError> {
        let mark = cx.mark()?;
        cx.run_jobs()?;
        let entries = cx.access_since(mark)?;
        let registrations = cx.registrations()?;
        let mut findings = Vec::new();
        for client_id in cx.backend_clients().to_vec() {
            let registered = registrations
                .iter()
                .find(|r| r.client_id == client_id)
                .map(|r| r.scopes.clone())
                .unwrap_or_default();
            let mine: Vec<&AccessEntry> = entries
                .iter()
                .filter(|e| e.client_id.as_deref() == Some(client_id.as_str()))
                .collect();
            let requests: Vec<&AccessEntry> = mine
                .iter()
                .copied()
                .filter(|e| e.action == "token-client_credentials")
                .collect();
            let used: BTreeSet<String> = mine
                .iter()
                .filter(|e| e.is_fhir_data() && !e.has_user())
                .filter_map(|e| e.resource_type().map(str::to_string))
                .collect();
            let mut asked = registered.clone();
            for r in &requests {
                asked.push(' ');
                asked.push_str(r.scope_requested.as_deref().unwrap_or_default());
            }
            let system: Vec<_> = data_scopes(&asked)
                .into_iter()
                .filter(|(_, d)| d.level == "system" && d.reads())
                .collect();
            let wildcard: BTreeSet<String> = system
                .iter()
                .filter(|(_, d)| d.resource == "*")
                .map(|(s, _)| s.clone())
                .collect();
            // Unused types can only be judged when the client was seen at work.
            let unused: BTreeSet<String> = system
                .iter()
                .filter(|_| !used.is_empty())
                .filter(|(_, d)| d.resource != "*" && !used.contains(&d.resource))
                .map(|(s, _)| s.clone())
                .collect();
            if wildcard.is_empty() && unused.is_empty() {
                continue;
            }
            let masker = cx.masker();
            let (kind, what) = if wildcard.is_empty() {
                (
                    "unused-types",
                    unused.iter().cloned().collect::<Vec<_>>().join(" "),
                )
            } else {
                (
                    "wildcard",
                    wildcard.iter().cloned().collect::<Vec<_>>().join(" "),
                )
            };
            let narrow = narrow_scopes("system", &used);
            let message = format!(
                "Backend client {client_id} is registered for \"{registered}\" and requested {} token(s); it has {what}, but its jobs read only [{}]. Narrower set: \"{narrow}\".",
                requests.len(),
                used.iter().cloned().collect::<Vec<_>>().join(", ")
            );
            findings.push(
                Finding::new(
                    &META,
                    kind,
                    Subject::Client {
                        client_id: client_id.clone(),
                    },
                    masker.mask(&format!("Backend client {client_id} has {what}")),
                    masker.mask(&message),
                )
                .with(Evidence::note(
                    masker,
                    &format!("registered scopes: {registered}"),
                ))
                .with(Evidence::access_log(masker, requests.iter().copied())),
            );
        }
        Ok(findings)
    }
}
