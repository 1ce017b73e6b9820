//! [`Drill`]: the harness side of [`ScenarioCx`]. It signs personas in through the app's real
//! SMART flow (pre-deciding the EHR's answer through the admin API, then following the app's
//! redirects with a cookie jar), calls the app with placeholders filled, triggers the app's
//! jobs, and reads the simulator's access log.

use std::io::Read;
use std::time::Duration;

use fhirdrill_scenarios::cx::{
    AccessEntry, Endpoint, Exchange, FhirRequest, FhirSession, Persona, Registration, Revocation,
    Session, Whose,
};
use fhirdrill_scenarios::mask::percent_encode;
use fhirdrill_scenarios::{Masker, ScenarioCx, ScenarioError};

use crate::HarnessError;
use crate::personas::{PatientFacts, Personas};
use crate::simulator::{EnvironmentInfo, SimClient};
use crate::smart_client::{self, AuthRequest};
use crate::target::{SessionKind, Target};

/// How long the harness waits for one request to the app.
const APP_TIMEOUT: Duration = Duration::from_secs(30);
/// The most of an answer the harness reads (the rest is not looked at).
const MAX_ANSWER_BYTES: u64 = 8 * 1024 * 1024;

/// A signed-in session: who, and the HTTP client holding its cookies (or bearer token).
struct AppSession {
    username: String,
    http: reqwest::blocking::Client,
    bearer: Option<String>,
}

/// A run of scenarios against one target.
pub struct Drill {
    target: Target,
    sim: SimClient,
    env: EnvironmentInfo,
    personas: Personas,
    endpoints: Vec<Endpoint>,
    masker: Masker,
    sessions: Vec<AppSession>,
    fhir_tokens: Vec<String>,
    /// For requests outside a session (FHIR probes, jobs), built once: no cookie jar.
    http: reqwest::blocking::Client,
}

impl Drill {
    /// Connects to the simulator, picks the cast and builds the masker.
    pub fn new(
        target: Target,
        sim: SimClient,
        env: EnvironmentInfo,
    ) -> Result<Drill, HarnessError> {
        check_registration(&target, &env)?;
        let personas = Personas::choose(&sim, &env, &target.personas)?;
        let mut secrets = vec![(
            sim.admin_token().to_string(),
            "[SECRET:admin-token]".to_string(),
        )];
        for job in &target.jobs {
            for value in job.headers.values() {
                secrets.push((value.clone(), "[SECRET:job-credential]".to_string()));
            }
        }
        let masker = Masker::new(personas.canaries(), secrets);
        let endpoints = target.endpoints();
        let http = reqwest::blocking::Client::builder()
            .redirect(reqwest::redirect::Policy::limited(10))
            .timeout(APP_TIMEOUT)
            .build()
            .map_err(|e| HarnessError::Setup(format!("cannot build an HTTP client: {e}")))?;
        Ok(Drill {
            target,
            sim,
            env,
            personas,
            endpoints,
            masker,
            sessions: Vec::new(),
            fhir_tokens: Vec::new(),
            http,
        })
    }

    /// The target.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The environment under test.
    pub fn environment(&self) -> &EnvironmentInfo {
        &self.env
    }

    fn app_url(&self, path: &str) -> String {
        format!("{}{path}", self.target.app.base_url.trim_end_matches('/'))
    }

    fn cookie_client() -> Result<reqwest::blocking::Client, ScenarioError> {
        reqwest::blocking::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::limited(10))
            .timeout(APP_TIMEOUT)
            .build()
            .map_err(|e| harness(format!("cannot build an HTTP client: {e}")))
    }

    /// The patient whose values fill `Whose::Own` for a persona.
    fn own(&self, persona: Persona) -> Option<&PatientFacts> {
        match persona {
            Persona::Patient => Some(&self.personas.patient),
            Persona::Practitioner => self.personas.practitioner.as_ref().map(|(_, p)| p),
        }
    }

    /// Signs in through the app's cookie flow; returns the client holding the cookie.
    fn cookie_sign_in(
        &self,
        persona: Persona,
        username: &str,
        grant: Option<&str>,
    ) -> Result<reqwest::blocking::Client, ScenarioError> {
        let client_id = &self.target.app.client_id;
        let http = Self::cookie_client()?;
        let start = match persona {
            Persona::Patient => {
                let path = self.target.login.patient_login_path.as_deref().ok_or_else(|| {
                    ScenarioError::skip("the target file declares no patient login ([login] patient_login_path)")
                })?;
                self.sim
                    .predecide(client_id, username, None, grant)
                    .map_err(into_scenario)?;
                self.app_url(path)
            }
            Persona::Practitioner => {
                let (user, launch) = self.personas.practitioner.as_ref().ok_or_else(|| {
                    ScenarioError::skip("the EHR has no clinician whose panel lacks the victim")
                })?;
                self.sim
                    .predecide(client_id, &user.username, Some(&launch.id), grant)
                    .map_err(into_scenario)?;
                self.sim
                    .launch_url(client_id, &user.username, &launch.id)
                    .map_err(into_scenario)?
            }
        };
        let response = http.get(&start).send().map_err(|e| {
            harness(format!(
                "the {} sign-in did not complete: {}",
                persona.as_str(),
                e.without_url()
            ))
        })?;
        if !response.status().is_success() {
            return Err(harness(format!(
                "the {} sign-in ended with HTTP {} at the app (is [login] right?)",
                persona.as_str(),
                response.status().as_u16()
            )));
        }
        Ok(http)
    }

    /// The token request the sign-in caused, from the access log.
    fn issued_grant(&self, since: u64, fhir_user: &str) -> Result<AccessEntry, ScenarioError> {
        let entries = self.sim.access_since(since).map_err(into_scenario)?;
        entries
            .into_iter()
            .rev()
            .find(|e| {
                e.action == "token-authorization_code"
                    && e.outcome == "allowed"
                    && e.client_id.as_deref() == Some(self.target.app.client_id.as_str())
                    && e.user.as_deref() == Some(fhir_user)
            })
            .ok_or_else(|| {
                harness(
                    "the sign-in ended at the app, but no token was issued to it: the app did not complete the SMART flow"
                        .to_string(),
                )
            })
    }

    /// Fills an endpoint's placeholders with `facts` (percent-encoded for a URL, as they are
    /// for a body); a placeholder the patient has no value for skips the scenario.
    fn fill(
        &self,
        text: &str,
        facts: &PatientFacts,
        in_url: bool,
    ) -> Result<String, ScenarioError> {
        let encode = |v: &str| {
            if in_url {
                percent_encode(v)
            } else {
                v.to_string()
            }
        };
        let mut out = text.replace("{patient.id}", &encode(&facts.id));
        while let Some(kind) = first_record_placeholder(&out) {
            let id = facts
                .resources
                .iter()
                .find(|(t, _)| *t == kind)
                .map(|(_, id)| id.clone())
                .ok_or_else(|| {
                    ScenarioError::Skip(Masker::default().mask(&format!(
                        "an endpoint uses {{{kind}.id}}, and the patient has no {kind}"
                    )))
                })?;
            out = out.replace(&format!("{{{kind}.id}}"), &encode(&id));
        }
        if out.contains("{patient.mrn}") {
            let mrn = facts.mrn.as_deref().ok_or_else(|| {
                ScenarioError::skip("an endpoint uses {patient.mrn}, and the patient has no MRN")
            })?;
            out = out.replace("{patient.mrn}", &encode(mrn));
        }
        Ok(out)
    }

    fn send(
        &self,
        http: &reqwest::blocking::Client,
        bearer: Option<&str>,
        method: &str,
        url: &str,
        body: Option<(String, &str)>,
        headers: &[(&str, &str)],
    ) -> Result<Exchange, ScenarioError> {
        let method_value = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|_| harness(format!("{method} is not an HTTP method")))?;
        let mut request = http.request(method_value, url);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut sent = url.to_string();
        if let Some((text, content_type)) = &body {
            request = request
                .header("content-type", *content_type)
                .body(text.clone());
            sent.push('\n');
            sent.push_str(text);
        }
        let response = request.send().map_err(|e| {
            harness(format!(
                "{method} {} failed: {}",
                self.masker.mask(url),
                e.without_url()
            ))
        })?;
        let status = response.status().as_u16();
        let mut bytes = Vec::new();
        response
            .take(MAX_ANSWER_BYTES)
            .read_to_end(&mut bytes)
            .map_err(|_| {
                harness(format!(
                    "the answer to {method} {} broke off while being read",
                    self.masker.mask(url)
                ))
            })?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        Ok(Exchange {
            method: method.to_string(),
            url: url.to_string(),
            sent,
            status,
            body: text,
        })
    }
}

/// The app's clients must be registered in the environment, with the redirect URI and launch
/// URL the target file states (a mismatch would send every login somewhere else).
fn check_registration(target: &Target, env: &EnvironmentInfo) -> Result<(), HarnessError> {
    let app = &target.app;
    let client = env
        .clients
        .iter()
        .find(|c| c.client_id == app.client_id)
        .ok_or_else(|| {
            HarnessError::Setup(format!(
                "the app's client {} is not registered in environment {} (see GET /_sim/registrations)",
                app.client_id, env.name
            ))
        })?;
    if let Some(uri) = &app.redirect_uri
        && !client.redirect_uris.contains(uri)
    {
        return Err(HarnessError::Setup(format!(
            "[app] redirect_uri {uri} is not among the EHR's redirect URIs for {}: {:?}",
            client.client_id, client.redirect_uris
        )));
    }
    if let Some(url) = &app.launch_url
        && client.launch_url.as_ref() != Some(url)
    {
        return Err(HarnessError::Setup(format!(
            "[app] launch_url {url} differs from the EHR's launch URL for {}: {:?}",
            client.client_id, client.launch_url
        )));
    }
    for backend in &app.backend_client_ids {
        if !env.clients.iter().any(|c| &c.client_id == backend) {
            return Err(HarnessError::Setup(format!(
                "[app] backend client {backend} is not registered in environment {}",
                env.name
            )));
        }
    }
    Ok(())
}

fn harness(message: String) -> ScenarioError {
    ScenarioError::Harness(Masker::default().mask(&message))
}

fn into_scenario(error: HarnessError) -> ScenarioError {
    harness(error.to_string())
}

impl ScenarioCx for Drill {
    fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    fn backend_clients(&self) -> &[String] {
        &self.target.app.backend_client_ids
    }

    fn has_fhir_endpoint(&self) -> bool {
        self.target.fhir.is_some()
    }

    fn masker(&self) -> &Masker {
        &self.masker
    }

    fn sign_in(&mut self, persona: Persona, grant: Option<&str>) -> Result<Session, ScenarioError> {
        let since = self.mark()?;
        let (username, fhir_user) = match persona {
            Persona::Patient => (
                self.personas.patient_user.username.clone(),
                self.personas.patient_user.fhir_user.clone(),
            ),
            Persona::Practitioner => {
                let (user, _) = self.personas.practitioner.as_ref().ok_or_else(|| {
                    ScenarioError::skip("the EHR has no clinician whose panel lacks the victim")
                })?;
                (user.username.clone(), user.fhir_user.clone())
            }
        };
        let (http, bearer) = match self.target.login.session {
            SessionKind::Cookie => (self.cookie_sign_in(persona, &username, grant)?, None),
            SessionKind::Bearer => {
                let tokens = self.bearer_tokens(persona, &username, grant)?;
                (Self::cookie_client()?, Some(tokens))
            }
        };
        let issued = self.issued_grant(since, &fhir_user)?;
        let session = Session {
            handle: self.sessions.len(),
            persona,
            client_id: self.target.app.client_id.clone(),
            fhir_user,
            patient: issued.patient_context.clone(),
            scope_requested: issued.scope_requested.clone().unwrap_or_default(),
            scope_granted: issued.scope_granted.clone().unwrap_or_default(),
        };
        if let Some(token) = &bearer {
            self.masker
                .extend(vec![(token.clone(), "[SECRET:access-token]".to_string())]);
        }
        self.sessions.push(AppSession {
            username,
            http,
            bearer,
        });
        Ok(session)
    }

    fn call_app(
        &mut self,
        session: &Session,
        endpoint: &Endpoint,
        whose: Whose,
    ) -> Result<Exchange, ScenarioError> {
        let facts = match whose {
            Whose::Own => self
                .own(session.persona)
                .ok_or_else(|| ScenarioError::skip("no patient for this persona"))?,
            Whose::Victim => &self.personas.victim,
        }
        .clone();
        let url = self.app_url(&self.fill(&endpoint.path, &facts, true)?);
        let body = match &endpoint.body {
            Some(b) => Some((self.fill(b, &facts, false)?, "application/json")),
            None => None,
        };
        let app = self
            .sessions
            .get(session.handle)
            .ok_or_else(|| harness("unknown session".into()))?;
        self.send(
            &app.http,
            app.bearer.as_deref(),
            &endpoint.method,
            &url,
            body,
            &[],
        )
    }

    fn revoke(&mut self, session: &Session, what: Revocation) -> Result<(), ScenarioError> {
        let app = self
            .sessions
            .get(session.handle)
            .ok_or_else(|| harness("unknown session".into()))?;
        self.sim
            .revoke(
                &session.client_id,
                &app.username,
                what == Revocation::AccessTokens,
            )
            .map_err(into_scenario)?;
        Ok(())
    }

    fn run_jobs(&mut self) -> Result<(), ScenarioError> {
        for job in self.target.jobs.clone() {
            let method = reqwest::Method::from_bytes(job.method.as_bytes()).map_err(|_| {
                harness(format!(
                    "job {}: {} is not an HTTP method",
                    job.name, job.method
                ))
            })?;
            let mut request = self.http.request(method, self.app_url(&job.path));
            for (name, value) in &job.headers {
                request = request.header(name, value);
            }
            let response = request.send().map_err(|e| {
                harness(format!(
                    "job {} could not be triggered: {}",
                    job.name,
                    e.without_url()
                ))
            })?;
            if !response.status().is_success() {
                return Err(harness(format!(
                    "job {} answered HTTP {} (check [[jobs]] in the target file)",
                    job.name,
                    response.status().as_u16()
                )));
            }
        }
        Ok(())
    }

    fn fhir_session(&mut self) -> Result<FhirSession, ScenarioError> {
        if self.target.fhir.is_none() {
            return Err(ScenarioError::skip(
                "the target file declares no [fhir] endpoint",
            ));
        }
        let username = self.personas.patient_user.username.clone();
        let tokens = self.patient_tokens(&username, None)?;
        self.masker.extend(vec![(
            tokens.access_token.clone(),
            "[SECRET:access-token]".to_string(),
        )]);
        self.fhir_tokens.push(tokens.access_token);
        Ok(FhirSession {
            handle: self.fhir_tokens.len() - 1,
            patient: tokens
                .patient
                .unwrap_or_else(|| self.personas.patient.id.clone()),
            scope: tokens.scope,
        })
    }

    fn fhir(
        &mut self,
        session: &FhirSession,
        request: &FhirRequest,
    ) -> Result<Exchange, ScenarioError> {
        let base = match self.target.fhir.as_ref().and_then(|f| f.base_url.clone()) {
            Some(url) => url,
            None => self.env.fhir_base.clone(),
        };
        let token = self
            .fhir_tokens
            .get(session.handle)
            .cloned()
            .ok_or_else(|| harness("unknown FHIR session".into()))?;
        let url = if request.path.is_empty() {
            base.trim_end_matches('/').to_string()
        } else {
            format!("{}/{}", base.trim_end_matches('/'), request.path)
        };
        let body = request.body.as_ref().map(|(b, t)| (b.clone(), *t));
        self.send(
            &self.http,
            Some(&token),
            request.method,
            &url,
            body,
            &request.headers,
        )
    }

    fn victim_resources(&self) -> &[(String, String)] {
        &self.personas.victim.resources
    }

    fn mark(&mut self) -> Result<u64, ScenarioError> {
        self.sim.last_seq().map_err(into_scenario)
    }

    fn access_since(&mut self, mark: u64) -> Result<Vec<AccessEntry>, ScenarioError> {
        let app = &self.target.app;
        let ours = |client: &str| {
            client == app.client_id || app.backend_client_ids.iter().any(|c| c == client)
        };
        Ok(self
            .sim
            .access_since(mark)
            .map_err(into_scenario)?
            .into_iter()
            .filter(|e| e.client_id.as_deref().is_some_and(ours))
            .collect())
    }

    fn registrations(&mut self) -> Result<Vec<Registration>, ScenarioError> {
        let ours: Vec<&String> = std::iter::once(&self.target.app.client_id)
            .chain(&self.target.app.backend_client_ids)
            .collect();
        Ok(self
            .env
            .clients
            .iter()
            .filter(|c| ours.contains(&&c.client_id))
            .map(Registration::from)
            .collect())
    }

    fn victim_id(&self) -> &str {
        &self.personas.victim.id
    }

    fn victim_family(&self) -> Option<&str> {
        self.personas.victim.family.as_deref()
    }
}

impl Drill {
    /// A patient-A token from the app's own client (the harness plays the app).
    fn patient_tokens(
        &self,
        username: &str,
        grant: Option<&str>,
    ) -> Result<smart_client::Tokens, ScenarioError> {
        let client = self
            .env
            .clients
            .iter()
            .find(|c| c.client_id == self.target.app.client_id)
            .ok_or_else(|| {
                harness(format!(
                    "the app's client {} is not registered in environment {}",
                    self.target.app.client_id, self.env.name
                ))
            })?;
        if client.kind != "public" {
            return Err(ScenarioError::skip(
                "the app's client is confidential, so the harness cannot get a patient token with it",
            ));
        }
        let redirect_uri = client
            .redirect_uris
            .first()
            .ok_or_else(|| harness("the app's client has no redirect URI".into()))?;
        let mut scope: Vec<&str> = vec!["launch/patient"];
        scope.extend(
            client
                .scopes
                .split_whitespace()
                .filter(|s| s.starts_with("patient/")),
        );
        smart_client::authorize(
            &self.sim,
            &self.env,
            &AuthRequest {
                client_id: &client.client_id,
                redirect_uri,
                user: username,
                scope: &scope.join(" "),
                grant,
            },
        )
        .map_err(into_scenario)
    }

    fn bearer_tokens(
        &self,
        persona: Persona,
        username: &str,
        grant: Option<&str>,
    ) -> Result<String, ScenarioError> {
        match persona {
            Persona::Patient => Ok(self.patient_tokens(username, grant)?.access_token),
            Persona::Practitioner => Err(ScenarioError::skip(
                "bearer sessions are only made for patients (an EHR launch needs the app's own flow)",
            )),
        }
    }
}

/// The resource type of the first `{<Type>.id}` placeholder in `text`.
fn first_record_placeholder(text: &str) -> Option<String> {
    crate::target::placeholders(text)
        .find_map(crate::target::record_placeholder)
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_placeholders_are_found_and_values_encoded() {
        assert_eq!(
            first_record_placeholder("/api/x/{patient.id}/obs/{Observation.id}").as_deref(),
            Some("Observation")
        );
        assert_eq!(first_record_placeholder("/api/{patient.id}"), None);
        assert_eq!(percent_encode("a b/c"), "a%20b%2Fc");
    }
}
