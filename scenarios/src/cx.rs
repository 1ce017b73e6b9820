//! What a scenario can ask of the harness ([`ScenarioCx`]), and the plain data that crosses
//! that line: app endpoints, sessions, HTTP exchanges and access-log entries.

use serde::Deserialize;

use crate::api::ScenarioError;
use crate::mask::Masker;

/// Who signs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Persona {
    /// Patient A, through the app's standalone launch.
    Patient,
    /// A clinician whose panel does not include the victim, through an EHR launch.
    Practitioner,
}

impl Persona {
    /// `patient` or `practitioner`.
    pub fn as_str(self) -> &'static str {
        match self {
            Persona::Patient => "patient",
            Persona::Practitioner => "practitioner",
        }
    }
}

/// An app API endpoint, as the target file declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `GET`, `POST`…
    pub method: String,
    /// The path and query with placeholders: `/api/patients/{patient.id}/labs`.
    pub path: String,
    /// A body template (placeholders allowed), for POST/PUT.
    pub body: Option<String>,
}

impl Endpoint {
    /// `GET /api/patients/{patient.id}`: the stable name of the endpoint.
    pub fn route(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// Whose values fill an endpoint's placeholders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whose {
    /// The signed-in patient's (or, for a clinician, the launch patient's).
    Own,
    /// The victim's (patient B, on nobody's panel among the personas).
    Victim,
}

/// A signed-in session with the app.
#[derive(Debug, Clone)]
pub struct Session {
    /// The harness's handle.
    pub handle: usize,
    /// Who signed in.
    pub persona: Persona,
    /// The app's client id at the EHR.
    pub client_id: String,
    /// The user's `fhirUser` reference (`Patient/…`, `Practitioner/…`).
    pub fhir_user: String,
    /// The patient in context (id).
    pub patient: Option<String>,
    /// The scopes the app asked for.
    pub scope_requested: String,
    /// The scopes granted.
    pub scope_granted: String,
}

/// A FHIR session: a token for the FHIR endpoint under test.
#[derive(Debug, Clone)]
pub struct FhirSession {
    /// The harness's handle.
    pub handle: usize,
    /// The patient in context (id).
    pub patient: String,
    /// The scopes granted.
    pub scope: String,
}

/// A FHIR request relative to the FHIR base: `Patient/{id}`, `Observation?patient=…`.
#[derive(Debug, Clone)]
pub struct FhirRequest {
    /// `GET` or `POST`.
    pub method: &'static str,
    /// Path and query relative to the base (no leading slash; empty for the base itself).
    pub path: String,
    /// Body and its content type.
    pub body: Option<(String, &'static str)>,
    /// Extra headers (e.g. `Prefer: respond-async`).
    pub headers: Vec<(&'static str, &'static str)>,
}

impl FhirRequest {
    /// A GET of `path`.
    pub fn get(path: impl Into<String>) -> FhirRequest {
        FhirRequest {
            method: "GET",
            path: path.into(),
            body: None,
            headers: Vec::new(),
        }
    }

    /// A POST of `body` (with its content type) to `path`.
    pub fn post(path: impl Into<String>, body: String, content_type: &'static str) -> FhirRequest {
        FhirRequest {
            method: "POST",
            path: path.into(),
            body: Some((body, content_type)),
            headers: Vec::new(),
        }
    }
}

/// What the harness sent and got back. Raw: scenarios mask before reporting.
#[derive(Debug, Clone, Default)]
pub struct Exchange {
    /// Method.
    pub method: String,
    /// Full URL.
    pub url: String,
    /// Everything the request carried that could be echoed back (URL and body).
    pub sent: String,
    /// Status.
    pub status: u16,
    /// Response body as text.
    pub body: String,
}

impl Exchange {
    /// 2xx.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// One line of the simulator's access log (`GET /_sim/access-log`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AccessEntry {
    /// Position in the log.
    pub seq: u64,
    /// The environment.
    pub environment: String,
    /// `fhir`, `oauth` or `admin`.
    pub channel: String,
    /// What was done (`read`, `search-type`, `token-client_credentials`…).
    pub action: String,
    /// Route with ids masked.
    pub route: String,
    /// The client.
    pub client_id: Option<String>,
    /// The user (`Patient/…`, `Practitioner/…`), if the token has one.
    pub user: Option<String>,
    /// The token's patient context.
    pub patient_context: Option<String>,
    /// The token id.
    pub token_id: Option<String>,
    /// `access`, `refresh`, `admin`, `none`…
    pub token_kind: String,
    /// Granted scopes that permitted this request.
    pub scopes_used: Vec<String>,
    /// Scope asked for (token requests).
    pub scope_requested: Option<String>,
    /// Scope granted (token requests).
    pub scope_granted: Option<String>,
    /// Resources returned or changed (`Type/id`).
    pub resources: Vec<String>,
    /// Patients whose data was returned or changed (ids).
    pub patients: Vec<String>,
    /// HTTP status.
    pub status: u16,
    /// `allowed`, `denied` or `error`.
    pub outcome: String,
    /// Why it was denied.
    pub reason: Option<String>,
}

impl AccessEntry {
    /// A FHIR interaction that returned or changed data.
    pub fn is_fhir_data(&self) -> bool {
        self.channel == "fhir" && self.outcome == "allowed" && (200..300).contains(&self.status)
    }

    /// Whether the request ran with a user's token (not a backend or admin token).
    pub fn has_user(&self) -> bool {
        self.user.is_some()
    }

    /// Whether it was made by the admin token (the harness's own ground-truth reads).
    pub fn is_admin(&self) -> bool {
        self.token_kind == "admin"
    }

    /// The FHIR resource type of the request, from its route (`/env/fhir/Observation/{id}`).
    pub fn resource_type(&self) -> Option<&str> {
        let mut parts = self.route.split('/').filter(|s| !s.is_empty());
        parts.find(|s| *s == "fhir")?;
        parts
            .next()
            .filter(|t| t.chars().next().is_some_and(|c| c.is_ascii_uppercase()))
    }

    /// A one-line summary for evidence (not yet masked).
    pub fn summary_line(&self) -> String {
        let mut line = format!(
            "#{} {} {} {} {} status={}",
            self.seq, self.channel, self.action, self.route, self.outcome, self.status
        );
        let mut field = |name: &str, value: Option<&str>| {
            if let Some(v) = value.filter(|v| !v.is_empty()) {
                line.push_str(&format!(" {name}={v}"));
            }
        };
        field("client", self.client_id.as_deref());
        field("user", self.user.as_deref());
        field("token_kind", Some(&self.token_kind));
        field("scope_requested", self.scope_requested.as_deref());
        field("scope_granted", self.scope_granted.as_deref());
        if !self.scopes_used.is_empty() {
            line.push_str(&format!(" scopes_used={}", self.scopes_used.join(",")));
        }
        if !self.patients.is_empty() {
            line.push_str(&format!(" patients={}", self.patients.join(",")));
        }
        line
    }
}

/// A registered client of the EHR, as the simulator reports it.
#[derive(Debug, Clone, Default)]
pub struct Registration {
    /// Client id.
    pub client_id: String,
    /// `public`, `confidential-symmetric`, `confidential-asymmetric`.
    pub kind: String,
    /// The scopes it may be granted.
    pub scopes: String,
}

/// What to revoke of a session's grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    /// Its access tokens only: a well-behaved app refreshes.
    AccessTokens,
    /// Access and refresh tokens: the user must sign in again.
    Grant,
}

/// The harness, as scenarios see it.
pub trait ScenarioCx {
    /// The app endpoints the target file declares (empty: none).
    fn endpoints(&self) -> &[Endpoint];
    /// The app's backend client ids the target file declares (empty: none).
    fn backend_clients(&self) -> &[String];
    /// Whether the target has a FHIR endpoint to attack.
    fn has_fhir_endpoint(&self) -> bool;
    /// The masker for this run (canaries of every persona and of the victim, issued secrets).
    fn masker(&self) -> &Masker;

    /// Signs in to the app as `persona` through its real SMART flow, the EHR granting
    /// `grant` (space-separated scopes) or, when `None`, everything the app asks for. Each call
    /// makes a new session.
    fn sign_in(&mut self, persona: Persona, grant: Option<&str>) -> Result<Session, ScenarioError>;
    /// Calls an app endpoint in `session` with `whose` values in its placeholders.
    fn call_app(
        &mut self,
        session: &Session,
        endpoint: &Endpoint,
        whose: Whose,
    ) -> Result<Exchange, ScenarioError>;
    /// Revokes part of a session's grant at the EHR.
    fn revoke(&mut self, session: &Session, what: Revocation) -> Result<(), ScenarioError>;
    /// Runs the app's declared background jobs (e.g. a sync) and waits for them.
    fn run_jobs(&mut self) -> Result<(), ScenarioError>;

    /// A patient-A token for the FHIR endpoint under test.
    fn fhir_session(&mut self) -> Result<FhirSession, ScenarioError>;
    /// A request to the FHIR endpoint under test with a FHIR session's token.
    fn fhir(
        &mut self,
        session: &FhirSession,
        request: &FhirRequest,
    ) -> Result<Exchange, ScenarioError>;
    /// The victim's ids, for building FHIR probes: `(resource type, id)` of their Patient
    /// and of resources in their compartment.
    fn victim_resources(&self) -> &[(String, String)];

    /// The current end of the simulator's access log (a mark to read from).
    fn mark(&mut self) -> Result<u64, ScenarioError>;
    /// The access-log entries after `mark` of the app's clients (user-facing and backend) in
    /// the environment under test: not the harness's admin reads, not other apps.
    fn access_since(&mut self, mark: u64) -> Result<Vec<AccessEntry>, ScenarioError>;
    /// The EHR's registrations of the app's clients (user-facing and backend).
    fn registrations(&mut self) -> Result<Vec<Registration>, ScenarioError>;
    /// The victim's patient id (B).
    fn victim_id(&self) -> &str;
    /// The victim's family name, for name searches and chains (never reported unmasked).
    fn victim_family(&self) -> Option<&str>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_entries_name_their_resource_type() {
        let entry = AccessEntry {
            route: "/sandbox/fhir/Observation/{id}".into(),
            ..AccessEntry::default()
        };
        assert_eq!(entry.resource_type(), Some("Observation"));
        let entry = AccessEntry {
            route: "/sandbox/fhir/metadata".into(),
            ..AccessEntry::default()
        };
        assert_eq!(entry.resource_type(), None);
        let entry = AccessEntry {
            route: "/sandbox/fhir".into(),
            ..AccessEntry::default()
        };
        assert_eq!(entry.resource_type(), None);
    }
}
