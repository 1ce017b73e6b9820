//! The fhirdrill mock EHR: a FHIR R4 server over synthetic patients that behaves like
//! production — versioned resources, real search, history, batch and transaction Bundles,
//! OperationOutcome errors with the right status, rate limits and injected faults.
//!
//! [`Simulator::handle`] maps a [`SimRequest`] to a [`SimResponse`] with no HTTP library in
//! sight; [`server`] puts it on a socket (warp filters behind our own hyper accept loop, with
//! header timeouts, a connection cap and a body cap). [`loader`] fills environments from the
//! generator or from a folder of NDJSON or transaction bundles (ours or Synthea's).
//!
//! What it is not (yet): it does not authorize — SMART on FHIR and scope enforcement come next,
//! between routing and the store (see [`rest`]). It speaks JSON only, not XML.

pub mod access;
pub mod admin;
pub mod audit;
pub mod behaviour;
pub mod clock;
pub mod compartment;
pub mod config;
pub mod environment;
pub mod launch;
pub mod loader;
pub mod outcome;
pub mod request;
pub mod rest;
pub mod search;
pub mod server;
pub mod smart;
pub mod store;
pub mod stored;
pub mod trail;

use clock::Clock;
use environment::Environment;
use outcome::FhirError;
pub use request::{SimRequest, SimResponse};

/// The whole simulator: its environments, clock and behaviour settings.
#[derive(Debug)]
pub struct Simulator {
    environments: Vec<Environment>,
    clock: Clock,
    public_url: String,
    behaviour: behaviour::Behaviour,
    admin_token: String,
    trail: trail::Trail,
    jwks_cache: smart::jwks_cache::JwksCache,
}

impl Simulator {
    /// A simulator serving `environments` at `public_url` (e.g. `http://127.0.0.1:8080`).
    pub fn new(
        environments: Vec<Environment>,
        public_url: &str,
        behaviour: behaviour::Behaviour,
    ) -> Self {
        Self {
            environments,
            clock: Clock::default(),
            public_url: public_url.trim_end_matches('/').to_string(),
            behaviour,
            admin_token: format!("fd-admin-{}", uuid::Uuid::new_v4().simple()),
            trail: trail::Trail::default(),
            jwks_cache: smart::jwks_cache::JwksCache::new(jwks_http_client()),
        }
    }

    /// The cache of clients' JWKS documents fetched from their `jwks_uri`.
    pub fn jwks_cache(&self) -> &smart::jwks_cache::JwksCache {
        &self.jwks_cache
    }

    /// Work a request needs done asynchronously before [`Simulator::handle`]: fetching the
    /// `jwks_uri` of a client that authenticates with a JWT assertion.
    pub async fn prepare(&self, req: &SimRequest) {
        // Every request passes here: only token requests need to be looked at further.
        if !req.path.ends_with("/auth/token") {
            return;
        }
        let segments: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
        let [env, "auth", "token"] = segments.as_slice() else {
            return;
        };
        let Some(environment) = self.environments.iter().find(|e| e.name() == *env) else {
            return;
        };
        let form = request::parse_query(std::str::from_utf8(&req.body).unwrap_or(""));
        let Some((_, assertion)) = form.iter().find(|(k, _)| k == "client_assertion") else {
            return;
        };
        let Ok(peek) = smart::assertion::peek_assertion(assertion) else {
            return;
        };
        let client = peek
            .client_id
            .as_deref()
            .and_then(|id| environment.auth().registrations().client(id));
        if let Some(smart::registry::ClientKind::Asymmetric {
            jwks_uri: Some(uri),
            ..
        }) = client.map(|c| &c.kind)
            && let Err(e) = self.jwks_cache.get(uri, peek.kid.as_deref()).await
        {
            tracing::warn!(error = %e, "could not fetch a client's jwks_uri");
        }
    }

    /// Sets the trail (to write the audit log to a file).
    pub fn with_trail(mut self, trail: trail::Trail) -> Self {
        self.trail = trail;
        self
    }

    /// The access log and audit trail.
    pub fn trail(&self) -> &trail::Trail {
        &self.trail
    }

    /// Sets the admin token (else a random one is made).
    pub fn with_admin_token(mut self, token: &str) -> Self {
        self.admin_token = token.to_string();
        self
    }

    /// The admin token: it guards `/_sim/` and is a full-access bearer token on FHIR APIs.
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// Whether the request carries the admin token as its bearer token.
    pub fn is_admin(&self, req: &SimRequest) -> bool {
        bearer_token(req)
            .is_some_and(|t| constant_time_eq(t.as_bytes(), self.admin_token.as_bytes()))
    }

    /// The simulated clock.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The URL clients use to reach this simulator.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// Every environment, in configuration order.
    pub fn environments(&self) -> &[Environment] {
        &self.environments
    }

    /// Production-like behaviour settings (rate limit, faults).
    pub fn behaviour(&self) -> &behaviour::Behaviour {
        &self.behaviour
    }

    /// Handles one request: the admin API under `/_sim/`, and each environment's FHIR API
    /// under `/<environment>/fhir/`.
    pub fn handle(&self, req: &SimRequest) -> SimResponse {
        let segments: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
        match segments.as_slice() {
            ["_sim", rest @ ..] => admin::handle(self, req, rest),
            [env, area @ ("fhir" | "auth"), rest @ ..] => {
                match self.environments.iter().find(|e| e.name() == *env) {
                    Some(environment) if *area == "auth" => {
                        smart::handle(self, environment, req, rest)
                    }
                    Some(environment) => self.fhir(environment, req, rest),
                    None => not_found(&format!(
                        "no environment named {env:?}: see GET /_sim/health for the FHIR base URLs"
                    )),
                }
            }
            _ => not_found(&format!(
                "nothing at {}: FHIR APIs are under /<environment>/fhir (see GET /_sim/health)",
                req.path
            )),
        }
    }
}

impl Simulator {
    /// A FHIR API request: the CapabilityStatement is public; everything else needs a bearer
    /// token (this environment's, or the admin token) and goes through enforcement.
    fn fhir(&self, env: &Environment, req: &SimRequest, segments: &[&str]) -> SimResponse {
        let touched = rest::Touched::default();
        if segments == ["metadata"] {
            return rest::handle(
                self,
                env,
                req,
                segments,
                &access::Principal::Admin,
                &touched,
            );
        }
        if segments == [".well-known", "smart-configuration"] {
            return smart::smart_configuration(self, env);
        }
        let principal = self.authenticate(env, req);
        let response = match &principal {
            Ok(principal) => rest::handle(self, env, req, segments, principal, &touched),
            Err(refused) => {
                touched.name_route(&req.method, segments);
                refused.response.clone()
            }
        };
        let mut record = fhir_record(self, env, req, principal.as_ref().ok(), &touched, &response);
        if let Err(Refused {
            token: Some(token), ..
        }) = &principal
        {
            // A refused token is still attributed: which client's and user's token was it?
            record.token_kind = token.kind.as_str();
            record.token_id = Some(token.id.clone());
            record.client_id = Some(token.grant.client_id.clone());
            record.user.clone_from(&token.grant.user);
            record.patient_context.clone_from(&token.grant.patient);
        }
        self.trail.record(record);
        response
    }

    /// Who is calling: the admin, or the grant of an active access token of this environment.
    fn authenticate(
        &self,
        env: &Environment,
        req: &SimRequest,
    ) -> Result<access::Principal, Refused> {
        let known = bearer_token(req).and_then(|t| env.tokens().get(t));
        self.check_bearer(env, req).map_err(|response| Refused {
            response,
            token: known,
        })
    }

    /// The principal of a request's bearer token, or the 401 that says why there is none.
    fn check_bearer(
        &self,
        env: &Environment,
        req: &SimRequest,
    ) -> Result<access::Principal, SimResponse> {
        let Some(token) = bearer_token(req) else {
            let message = match req.header("authorization") {
                Some(_) => "the Authorization header must be \"Bearer <access token>\"",
                None => "this request needs an access token: send Authorization: Bearer <token>",
            };
            return Err(unauthorized(
                env,
                self,
                message,
                req.header("authorization").is_some(),
            ));
        };
        if constant_time_eq(token.as_bytes(), self.admin_token.as_bytes()) {
            return Ok(access::Principal::Admin);
        }
        let now = self.clock.now();
        match env.tokens().get(token) {
            Some(record) if record.kind != smart::tokens::TokenKind::Access => Err(unauthorized(
                env,
                self,
                "this is a refresh token: present it to the token endpoint, not the FHIR API",
                true,
            )),
            Some(record) if record.is_revoked() => Err(unauthorized(
                env,
                self,
                "the access token was revoked",
                true,
            )),
            Some(record) if record.is_expired(now) => Err(unauthorized(
                env,
                self,
                &format!(
                    "the access token expired at {}",
                    record
                        .expires_at
                        .map(clock::fhir_instant)
                        .unwrap_or_default()
                ),
                true,
            )),
            Some(record) => Ok(access::Principal::Bearer(std::sync::Arc::clone(
                &record.grant,
            ))),
            None => Err(unauthorized(
                env,
                self,
                &env.diagnose_unknown_token(
                    token,
                    &smart::issuer(self, env),
                    &format!("{}{}", self.public_url, env.base_path()),
                    now.unix_timestamp(),
                ),
                true,
            )),
        }
    }
}

/// A request whose bearer token was refused: the 401, and the token's record when it is one
/// this environment issued (revoked, expired, or a refresh token), for the access log.
struct Refused {
    response: SimResponse,
    token: Option<std::sync::Arc<smart::tokens::TokenRecord>>,
}

/// The access-log record of a FHIR request.
fn fhir_record(
    sim: &Simulator,
    env: &Environment,
    req: &SimRequest,
    principal: Option<&access::Principal>,
    touched: &rest::Touched,
    response: &SimResponse,
) -> trail::AccessRecord {
    let mut record = trail::AccessRecord {
        time: clock::fhir_instant(sim.clock.now()),
        environment: env.name().to_string(),
        channel: "fhir",
        action: touched.action().to_string(),
        route: server::route_template(&req.path),
        token_kind: "none",
        status: response.status,
        outcome: trail::AccessRecord::outcome_of(response.status),
        patients: touched.patients(),
        ..trail::AccessRecord::default()
    };
    let resources = touched.resources();
    match principal {
        Some(access::Principal::Admin) => record.token_kind = "admin",
        Some(access::Principal::Bearer(grant)) => {
            record.token_kind = "access";
            record.client_id = Some(grant.client_id.clone());
            record.user.clone_from(&grant.user);
            record.patient_context.clone_from(&grant.patient);
            record.token_id = Some(grant.token_id.clone());
            record.scopes_used = grant.scopes_used(touched.resource_type().as_deref(), &resources);
        }
        None => {}
    }
    // Only the simulator's own authorization messages (ids, scopes, times) are kept: other
    // errors may echo request values, which can be identifiers.
    if matches!(response.status, 401 | 403) {
        record.reason = error_diagnostics(response);
    } else if response.status >= 400 {
        record.reason = Some(format!("HTTP {}", response.status));
    }
    record.set_resources(resources);
    record
}

/// The diagnostics of an OperationOutcome response, for the access log.
fn error_diagnostics(response: &SimResponse) -> Option<String> {
    let outcome: serde_json::Value = serde_json::from_slice(&response.body).ok()?;
    outcome["issue"][0]["diagnostics"]
        .as_str()
        .map(str::to_string)
}

/// The HTTP client that fetches clients' `jwks_uri`: few redirects, no proxy from the
/// environment (the keys of a loopback app must not go through a corporate proxy).
fn jwks_http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::limited(3))
        .no_proxy()
        .build()
        .unwrap_or_default()
}

/// The bearer token of a request, if it has one.
pub fn bearer_token(req: &SimRequest) -> Option<&str> {
    let value = req.header("authorization")?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Compares secrets in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A 401 with `WWW-Authenticate: Bearer`, saying why (RFC 6750 section 3).
fn unauthorized(env: &Environment, sim: &Simulator, message: &str, invalid: bool) -> SimResponse {
    let realm = format!("{}{}", sim.public_url(), env.base_path());
    let challenge = if invalid {
        format!(
            "Bearer realm=\"{realm}\", error=\"invalid_token\", error_description=\"{}\"",
            message.replace(['"', '\\'], "'")
        )
    } else {
        format!("Bearer realm=\"{realm}\"")
    };
    let error = FhirError::new(401, outcome::IssueType::Login, message);
    SimResponse::error(&error, false).with_header("www-authenticate", challenge)
}

fn not_found(message: &str) -> SimResponse {
    SimResponse::error(&FhirError::not_found(message), false)
}
