//! `service-account.confused-deputy`: a user's request to the app leads to FHIR access under
//! a backend (system) token, before or after the user's own token is refused.

use crate::api::{
    Capability, Control, Evidence, Finding, Scenario, ScenarioError, ScenarioMeta, Severity,
    Subject,
};
use crate::cx::{AccessEntry, Persona, Revocation, ScenarioCx, Session, Whose};

/// The catalog entry.
pub static META: ScenarioMeta = ScenarioMeta {
    id: "service-account.confused-deputy",
    title: "User requests are served with the app's backend token",
    family: "service-account",
    summary: "Signs in as a patient and calls every endpoint; then revokes the user's grant at the EHR and calls them again. Every FHIR request the app makes for a user must carry that user's token: one made with a backend (client_credentials) token has no user in the EHR's audit trail and escapes the user's permissions.",
    severity: Severity::High,
    controls: &[
        Control::Hipaa("164.312(b)"),
        Control::Hipaa("164.312(a)(1)"),
        Control::OwaspApi("API1:2023"),
        Control::Cwe(441),
    ],
    references: &[
        "https://hl7.org/fhir/smart-app-launch/backend-services.html",
        "https://www.ecfr.gov/current/title-45/subtitle-A/subchapter-C/part-164/subpart-C/section-164.312",
    ],
    needs: &[Capability::PatientLogin, Capability::AppApi],
    fix: "Use the backend token only for the jobs it was registered for. When the user's token is refused, refresh it or send the user to sign in again; never retry with the backend token.",
    deprecated_ids: &[],
};

/// The scenario.
pub struct ConfusedDeputy;

impl Scenario for ConfusedDeputy {
    fn meta(&self) -> &'static ScenarioMeta {
        &META
    }

    fn run(&self, cx: &mut dyn ScenarioCx) -> Result<Vec<Finding>, ScenarioError> {
        let session = cx.sign_in(Persona::Patient, None)?;
        let mut findings = Vec::new();
        check_every_endpoint(cx, &session, "while-signed-in", &mut findings)?;
        cx.revoke(&session, Revocation::Grant)?;
        check_every_endpoint(cx, &session, "after-refusal", &mut findings)?;
        Ok(findings)
    }
}

fn check_every_endpoint(
    cx: &mut dyn ScenarioCx,
    session: &Session,
    phase: &str,
    findings: &mut Vec<Finding>,
) -> Result<(), ScenarioError> {
    for endpoint in cx.endpoints().to_vec() {
        let route = endpoint.route();
        let mark = cx.mark()?;
        let exchange = cx.call_app(session, &endpoint, Whose::Own)?;
        let deputy: Vec<AccessEntry> = cx
            .access_since(mark)?
            .into_iter()
            .filter(|e| {
                e.channel == "fhir"
                    && e.user.as_deref() != Some(session.fhir_user.as_str())
                    && e.client_id.is_some()
            })
            .collect();
        if deputy.is_empty()
            || findings.iter().any(|f| {
                f.subject
                    == (Subject::AppRoute {
                        route: route.clone(),
                    })
            })
        {
            continue;
        }
        let masker = cx.masker();
        let clients: Vec<&str> = deputy
            .iter()
            .filter_map(|e| e.client_id.as_deref())
            .collect();
        let when = if phase == "after-refusal" {
            "after the user's grant was revoked"
        } else {
            "while the user was signed in"
        };
        findings.push(
            Finding::new(&META, "", Subject::AppRoute { route: route.clone() },
                masker.mask(&format!("{route} reads the EHR with a backend token ({when})")),
                masker.mask(&format!("A request of {}'s session to {route} made {} FHIR request(s) under client {} with no user: the EHR cannot attribute them, and the user's permissions did not apply.", session.persona.as_str(), deputy.len(), clients.first().copied().unwrap_or("?"))))
            .with(Evidence::note(masker, &format!("{} {} answered HTTP {}", endpoint.method, endpoint.path, exchange.status)))
            .with(Evidence::access_log(masker, deputy.iter())),
        );
    }
    Ok(())
}
