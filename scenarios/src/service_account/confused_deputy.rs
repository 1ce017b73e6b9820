//! `service-account.confused-deputy`: a user's request to the app leads to FHIR access under
//! a backend (system) token, before or after the user's own token is refused.

use crate::api::{
    Capability, Control, Evidence, Finding, Scenario, ScenarioError, ScenarioMeta, Severity,
    Subject,
};
use crate::cx::{AccessEntry, Endpoint, Exchange, Persona, Revocation, ScenarioCx, Session, Whose};

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

/// Extra calls that must show the same backend access before it counts, when it does not
/// mirror a refused request of the user: a job of the app that runs on its own schedule can
/// coincide with one call, a deputy shows up on every call.
const CONFIRMATIONS: usize = 2;

fn check_every_endpoint(
    cx: &mut dyn ScenarioCx,
    session: &Session,
    phase: &str,
    findings: &mut Vec<Finding>,
) -> Result<(), ScenarioError> {
    for endpoint in cx.endpoints().to_vec() {
        let route = endpoint.route();
        let subject = Subject::AppRoute {
            route: route.clone(),
        };
        if findings.iter().any(|f| f.subject == subject) {
            continue;
        }
        let call = deputy_calls(cx, session, &endpoint)?;
        if call.deputy.is_empty() || !(call.mirrors_a_refusal || confirmed(cx, session, &endpoint)?) {
            continue;
        }
        let masker = cx.masker();
        let clients: Vec<&str> = call
            .deputy
            .iter()
            .filter_map(|e| e.client_id.as_deref())
            .collect();
        let when = if phase == "after-refusal" {
            "after the user's grant was revoked"
        } else {
            "while the user was signed in"
        };
        let how = if call.mirrors_a_refusal {
            "repeating a request the EHR had just refused to the user's token"
        } else {
            "on every call"
        };
        findings.push(
            Finding::new(&META, "", subject,
                masker.mask(&format!("{route} reads the EHR with a backend token ({when})")),
                masker.mask(&format!("A request of {}'s session to {route} made {} FHIR request(s) under client {} with no user, {how}: the EHR cannot attribute them, and the user's permissions did not apply.", session.persona.as_str(), call.deputy.len(), clients.first().copied().unwrap_or("?"))))
            .with(Evidence::note(masker, &format!("{} {} answered HTTP {}", endpoint.method, endpoint.path, call.exchange.status)))
            .with(Evidence::access_log(masker, call.entries.iter())),
        );
    }
    Ok(())
}

/// What one call of an endpoint led to at the EHR.
struct Call {
    /// The app's answer.
    exchange: Exchange,
    /// Everything the app's clients did during the call.
    entries: Vec<AccessEntry>,
    /// The requests under an identity other than the user's, about the session's patient (or
    /// about no patient in particular).
    deputy: Vec<AccessEntry>,
    /// Whether a deputy request repeats one the EHR refused to the user's token just before
    /// (same route): the fallback pattern, which no scheduled job produces.
    mirrors_a_refusal: bool,
}

/// Calls `endpoint` for the session's own patient and sorts out what the EHR saw.
fn deputy_calls(
    cx: &mut dyn ScenarioCx,
    session: &Session,
    endpoint: &Endpoint,
) -> Result<Call, ScenarioError> {
    let mark = cx.mark()?;
    let exchange = cx.call_app(session, endpoint, Whose::Own)?;
    let own = session.patient.as_deref();
    let entries: Vec<AccessEntry> = cx
        .access_since(mark)?
        .into_iter()
        .filter(|e| e.channel == "fhir")
        .collect();
    let is_user = |e: &AccessEntry| e.user.as_deref() == Some(session.fhir_user.as_str());
    let deputy: Vec<AccessEntry> = entries
        .iter()
        .filter(|e| {
            !is_user(e)
                && (e.patients.is_empty() || e.patients.iter().any(|p| Some(p.as_str()) == own))
        })
        .cloned()
        .collect();
    let mirrors_a_refusal = deputy.iter().any(|d| {
        entries.iter().any(|u| {
            is_user(u) && matches!(u.status, 401 | 403 | 404) && u.route == d.route && u.seq < d.seq
        })
    });
    let entries = entries
        .into_iter()
        .filter(|e| deputy.iter().any(|d| d.seq == e.seq) || (is_user(e) && e.status >= 400))
        .collect();
    Ok(Call {
        exchange,
        entries,
        deputy,
        mirrors_a_refusal,
    })
}

/// Whether every one of [`CONFIRMATIONS`] more calls shows backend access again.
fn confirmed(
    cx: &mut dyn ScenarioCx,
    session: &Session,
    endpoint: &Endpoint,
) -> Result<bool, ScenarioError> {
    for _ in 0..CONFIRMATIONS {
        if deputy_calls(cx, session, endpoint)?.deputy.is_empty() {
            return Ok(false);
        }
    }
    Ok(true)
}
