//! The harness's view of the simulator: its admin API (`/_sim/...`, with the admin token) and
//! ground-truth FHIR reads (the admin token is a full-access bearer token on FHIR endpoints).

use std::time::Duration;

use fhirdrill_scenarios::cx::{AccessEntry, Registration};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::HarnessError;

/// An environment as `GET /_sim/registrations` describes it.
#[derive(Debug, Clone, Deserialize)]
pub struct EnvironmentInfo {
    /// Its name.
    pub name: String,
    /// Its FHIR base URL.
    pub fhir_base: String,
    /// Authorization endpoint.
    pub authorize_url: String,
    /// Token endpoint.
    pub token_url: String,
    /// Registered clients.
    pub clients: Vec<ClientInfo>,
    /// Test users.
    pub users: Vec<UserInfo>,
}

/// A registered client.
#[derive(Debug, Clone, Deserialize)]
pub struct ClientInfo {
    /// Client id.
    pub client_id: String,
    /// Kind (`public`, `confidential-symmetric`, `confidential-asymmetric`).
    pub kind: String,
    /// Allowed scopes (space-separated).
    #[serde(default)]
    pub scopes: String,
    /// Redirect URIs.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// EHR launch URL.
    pub launch_url: Option<String>,
}

/// A test user.
#[derive(Debug, Clone, Deserialize)]
pub struct UserInfo {
    /// Login name.
    pub username: String,
    /// `patient` or `practitioner`.
    pub role: String,
    /// `Patient/…` or `Practitioner/…`.
    #[serde(rename = "fhirUser")]
    pub fhir_user: String,
    /// A patient user's Patient id.
    pub patient: Option<String>,
    /// A practitioner's panel (Patient ids).
    #[serde(default)]
    pub patients: Vec<String>,
}

impl From<&ClientInfo> for Registration {
    fn from(c: &ClientInfo) -> Registration {
        Registration {
            client_id: c.client_id.clone(),
            kind: c.kind.clone(),
            scopes: c.scopes.clone(),
        }
    }
}

/// A connection to a simulator's admin API.
#[derive(Debug, Clone)]
pub struct SimClient {
    url: String,
    admin_token: String,
    environment: String,
    http: reqwest::blocking::Client,
}

impl SimClient {
    /// Connects to the simulator at `url` and picks `environment` (default: the first).
    pub fn connect(
        url: &str,
        admin_token: &str,
        environment: Option<&str>,
    ) -> Result<(SimClient, EnvironmentInfo), HarnessError> {
        let http = reqwest::blocking::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| HarnessError::Setup(format!("cannot build an HTTP client: {e}")))?;
        let mut client = SimClient {
            url: url.trim_end_matches('/').to_string(),
            admin_token: admin_token.to_string(),
            environment: String::new(),
            http,
        };
        let registrations = client.admin_get("registrations")?;
        let environments: Vec<EnvironmentInfo> =
            serde_json::from_value(registrations["environments"].clone()).map_err(|e| {
                HarnessError::Setup(format!(
                    "the simulator's /_sim/registrations is not what this harness understands: {e}"
                ))
            })?;
        let info = match environment {
            Some(name) => environments.into_iter().find(|e| e.name == name),
            None => environments.into_iter().next(),
        }
        .ok_or_else(|| {
            HarnessError::Setup(format!(
                "the simulator has no environment {:?} (see GET {}/_sim/health)",
                environment.unwrap_or("(any)"),
                client.url
            ))
        })?;
        client.environment = info.name.clone();
        Ok((client, info))
    }

    /// The simulator's base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Its HTTP client: no redirects followed (OAuth redirects are read, not followed).
    pub fn http(&self) -> &reqwest::blocking::Client {
        &self.http
    }

    /// The admin token.
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    fn admin_get(&self, path: &str) -> Result<Value, HarnessError> {
        let url = format!("{}/_sim/{path}", self.url);
        let response = self
            .http
            .get(&url)
            .bearer_auth(&self.admin_token)
            .send()
            .map_err(|e| unreachable_simulator(&self.url, &e))?;
        json_of(response, &format!("GET /_sim/{path}"))
    }

    fn admin_post(&self, path: &str, body: &Value) -> Result<Value, HarnessError> {
        let response = self
            .http
            .post(format!("{}/_sim/{path}", self.url))
            .bearer_auth(&self.admin_token)
            .json(body)
            .send()
            .map_err(|e| unreachable_simulator(&self.url, &e))?;
        json_of(response, &format!("POST /_sim/{path}"))
    }

    /// Decides the next authorization of `client_id`: `user` signs in, with `patient` in
    /// context and `scope` granted (else what the app asks for).
    pub fn predecide(
        &self,
        client_id: &str,
        user: &str,
        patient: Option<&str>,
        scope: Option<&str>,
    ) -> Result<(), HarnessError> {
        let mut body =
            json!({"client_id": client_id, "user": user, "environment": self.environment});
        if let Some(p) = patient {
            body["patient"] = json!(p);
        }
        if let Some(s) = scope {
            body["scope"] = json!(s);
        }
        self.admin_post("authorizations", &body).map(|_| ())
    }

    /// Starts an EHR launch of `client_id` for `user` with `patient` in context: the URL the
    /// EHR would open (the app's launch URL with `iss` and `launch`).
    pub fn launch_url(
        &self,
        client_id: &str,
        user: &str,
        patient: &str,
    ) -> Result<String, HarnessError> {
        let response = self
            .http
            .get(format!("{}/_sim/launch", self.url))
            .query(&[
                ("client_id", client_id),
                ("user", user),
                ("patient", patient),
                ("environment", &self.environment),
            ])
            .bearer_auth(&self.admin_token)
            .send()
            .map_err(|e| unreachable_simulator(&self.url, &e))?;
        response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| {
                HarnessError::Setup(format!(
                    "the simulator did not launch {client_id} (HTTP {}): is a launch URL registered for it?",
                    response.status().as_u16()
                ))
            })
    }

    /// The seq of the newest access-log entry.
    pub fn last_seq(&self) -> Result<u64, HarnessError> {
        let health = self.admin_get("health")?;
        health["access_log"]["last_seq"].as_u64().ok_or_else(|| {
            HarnessError::Setup(
                "the simulator's /_sim/health has no access_log.last_seq: upgrade the simulator"
                    .into(),
            )
        })
    }

    /// Every access-log entry of this environment after `since`, without the admin token's
    /// own requests (the harness's ground-truth reads) and admin calls.
    pub fn access_since(&self, since: u64) -> Result<Vec<AccessEntry>, HarnessError> {
        let mut entries = Vec::new();
        let mut from = since;
        loop {
            let response = self
                .http
                .get(format!("{}/_sim/access-log", self.url))
                .query(&[("since", from.to_string())])
                .bearer_auth(&self.admin_token)
                .send()
                .map_err(|e| unreachable_simulator(&self.url, &e))?;
            let status = response.status().as_u16();
            let text = response.text().map_err(|e| {
                HarnessError::Setup(format!("cannot read the access log: {}", e.without_url()))
            })?;
            if status != 200 {
                return Err(HarnessError::Setup(format!(
                    "GET /_sim/access-log answered {status}"
                )));
            }
            let mut page = 0;
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let entry: AccessEntry = serde_json::from_str(line).map_err(|e| {
                    HarnessError::Setup(format!("an access-log line is not understood: {e}"))
                })?;
                from = from.max(entry.seq);
                page += 1;
                if !entry.is_admin()
                    && entry.channel != "admin"
                    && entry.environment == self.environment
                {
                    entries.push(entry);
                }
            }
            // Pages are read until one comes back empty: the page size is the simulator's.
            if page == 0 {
                break;
            }
        }
        Ok(entries)
    }

    /// Revokes the tokens of `client_id` for `user` (`kind`: `access` only, or all).
    pub fn revoke(
        &self,
        client_id: &str,
        user: &str,
        access_only: bool,
    ) -> Result<u64, HarnessError> {
        let mut body =
            json!({"client_id": client_id, "user": user, "environment": self.environment});
        if access_only {
            body["kind"] = json!("access");
        }
        let answer = self.admin_post("tokens/revoke", &body)?;
        Ok(answer["revoked"].as_u64().unwrap_or(0))
    }

    /// A ground-truth FHIR read with the admin token: `path` relative to `fhir_base`.
    pub fn fhir_get(&self, fhir_base: &str, path: &str) -> Result<Value, HarnessError> {
        let response = self
            .http
            .get(format!("{fhir_base}/{path}"))
            .bearer_auth(&self.admin_token)
            .header("accept", "application/fhir+json")
            .send()
            .map_err(|e| unreachable_simulator(&self.url, &e))?;
        json_of(response, "a ground-truth FHIR read")
    }
}

fn unreachable_simulator(url: &str, error: &reqwest::Error) -> HarnessError {
    HarnessError::Setup(format!(
        "cannot reach the simulator at {url}: {error} (is it running? check --simulator)"
    ))
}

fn json_of(response: reqwest::blocking::Response, what: &str) -> Result<Value, HarnessError> {
    let status = response.status().as_u16();
    let body: Value = response.json().unwrap_or(Value::Null);
    match status {
        200..=299 => Ok(body),
        401 => Err(HarnessError::Setup(format!(
            "{what}: the simulator refused the admin token (pass the one it printed with --admin-token or FHIRDRILL_ADMIN_TOKEN)"
        ))),
        _ => Err(HarnessError::Setup(format!(
            "{what} answered HTTP {status}: {}",
            diagnostics(&body)
        ))),
    }
}

/// The message of an OperationOutcome, or the text of an admin error.
fn diagnostics(body: &Value) -> String {
    body["issue"][0]["diagnostics"]
        .as_str()
        .or_else(|| body["error"].as_str())
        .unwrap_or("no details")
        .to_string()
}
