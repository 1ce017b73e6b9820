//! `cross-patient.app-api`: the app's own API, called with another patient's ids.

use crate::cross_patient::{victim_fetches, victim_values};
use crate::api::{
    Capability, Control, Evidence, Finding, Gathered, Scenario, ScenarioError, ScenarioMeta,
    Severity, Subject,
};
use crate::cx::{Endpoint, Persona, ScenarioCx, Session, Whose};

/// The catalog entry.
pub static META: ScenarioMeta = ScenarioMeta {
    id: "cross-patient.app-api",
    title: "App API serves another patient's data",
    family: "cross-patient",
    summary: "Signs in as patient A (and, separately, as a clinician without the victim on any care team) and calls every endpoint of the app's API with the victim's identifiers. Fails if the victim's identifying values or record ids come back, or if the EHR served the victim's data to the app during the call.",
    severity: Severity::Critical,
    controls: &[
        Control::OwaspApi("API1:2023"),
        Control::Hipaa("164.312(a)(1)"),
        Control::Hipaa("164.502(b)"),
        Control::Cwe(639),
    ],
    references: &[
        "https://owasp.org/API-Security/editions/2023/en/0xa1-broken-object-level-authorization/",
        "https://hl7.org/fhir/smart-app-launch/app-launch.html",
    ],
    needs: &[Capability::PatientLogin, Capability::AppApi],
    fix: "Authorize every request against the session: a patient session may name only its own patient; a clinician session only patients the EHR lets that user see (ask the EHR with the user's token). Never answer from data fetched with a backend credential without that check.",
    deprecated_ids: &[],
};

/// The scenario.
pub struct AppApi;

impl Scenario for AppApi {
    fn meta(&self) -> &'static ScenarioMeta {
        &META
    }

    fn run(&self, cx: &mut dyn ScenarioCx) -> Result<Vec<Finding>, ScenarioError> {
        let mut gathered = Gathered::default();
        for persona in [Persona::Patient, Persona::Practitioner] {
            let session = match cx.sign_in(persona, None) {
                Ok(s) => s,
                Err(ScenarioError::Skip(_)) if persona == Persona::Practitioner => continue,
                Err(e) => return Err(e),
            };
            for endpoint in cx.endpoints().to_vec() {
                gathered.add(probe(cx, &session, &endpoint));
            }
        }
        gathered.finish()
    }
}

/// Calls one endpoint of the app with the victim's ids in a session; a finding if the victim's
/// data came back or the EHR served it to the app meanwhile.
fn probe(
    cx: &mut dyn ScenarioCx,
    session: &Session,
    endpoint: &Endpoint,
) -> Result<Option<Finding>, ScenarioError> {
    let persona = session.persona;
    let mark = cx.mark()?;
    let exchange = cx.call_app(session, endpoint, Whose::Victim)?;
    let entries = cx.access_since(mark)?;
    let victim = cx.victim_id().to_string();
    let fetched = victim_fetches(&entries, &victim);
    let leaked_in_answer = !victim_values(cx.masker(), &exchange).is_empty();
    if !leaked_in_answer && fetched.is_empty() {
        return Ok(None);
    }
    // With nothing of the victim in the answer, the EHR's records alone must show the fetch on
    // every call: a job of the app running on its own schedule can coincide with one call.
    if !leaked_in_answer && !fetched_every_time(cx, session, endpoint, &victim)? {
        return Ok(None);
    }
    let masker = cx.masker();
    let values = victim_values(masker, &exchange);
    let route = endpoint.route();
    let placeholders: Vec<&str> = values.iter().map(|(p, _)| *p).collect();
    let message = format!(
        "Signed in as {} and asked {route} for the victim: HTTP {}, the answer held {} of the victim's values ({}), and the EHR served the victim's data to the app {} time(s) during the call.",
        persona.as_str(),
        exchange.status,
        values.len(),
        placeholders.join(", "),
        fetched.len()
    );
    let mut finding = Finding::new(
        &META,
        persona.as_str(),
        Subject::AppRoute {
            route: route.clone(),
        },
        masker.mask(&format!(
            "{route} serves another patient's data to a {} session",
            persona.as_str()
        )),
        masker.mask(&message),
    )
    .with(Evidence::http(
        masker,
        &exchange,
        values.first().map(|(_, raw)| *raw),
    ));
    if !fetched.is_empty() {
        finding = finding.with(Evidence::access_log(masker, fetched.iter().copied()));
    }
    Ok(Some(finding))
}

/// Extra calls that must show the victim fetched again before the EHR's records alone count.
const CONFIRMATIONS: usize = 2;

/// Whether each of [`CONFIRMATIONS`] more calls makes the EHR serve the victim's data again.
fn fetched_every_time(
    cx: &mut dyn ScenarioCx,
    session: &Session,
    endpoint: &Endpoint,
    victim: &str,
) -> Result<bool, ScenarioError> {
    for _ in 0..CONFIRMATIONS {
        let mark = cx.mark()?;
        cx.call_app(session, endpoint, Whose::Victim)?;
        if victim_fetches(&cx.access_since(mark)?, victim).is_empty() {
            return Ok(false);
        }
    }
    Ok(true)
}
