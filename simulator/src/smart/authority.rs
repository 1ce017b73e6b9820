//! One environment's authorization server: its registrations, signing keys, issued tokens and
//! the state of authorizations in flight (login transactions, codes, EHR launches, decisions
//! pre-made by the admin API), and the routing of its OAuth endpoints under `/<env>/auth/`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::assertion::JtiCache;
use super::keys::SigningKeys;
use super::registry::Registrations;
use super::scopes::Scope;
use super::tokens::TokenStore;
use crate::request::SimResponse;

/// How long an authorization code is accepted (seconds).
pub const CODE_LIFETIME_SECONDS: i64 = 60;
/// How long a login transaction or a launch context waits for the user (seconds).
pub const FLOW_LIFETIME_SECONDS: i64 = 600;
/// In-flight authorizations kept at most; the oldest are dropped beyond.
const MAX_IN_FLIGHT: usize = 10_000;

/// Token settings of an environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSettings {
    /// Access token lifetime in seconds (default 3600).
    pub access_lifetime_seconds: i64,
    /// Whether a refresh replaces the refresh token (and reuse of a replaced one revokes the
    /// whole grant).
    pub rotate_refresh_tokens: bool,
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self {
            access_lifetime_seconds: 3600,
            rotate_refresh_tokens: true,
        }
    }
}

/// A validated authorization request, waiting for the user.
#[derive(Debug, Clone)]
pub struct AuthRequest {
    /// The client.
    pub client_id: String,
    /// The redirect URI (checked against the registration).
    pub redirect_uri: String,
    /// The client's `state`, echoed back.
    pub state: String,
    /// The scopes asked for, already narrowed to the registration.
    pub scopes: Vec<Scope>,
    /// The scope text as the client sent it.
    pub scope_requested: String,
    /// The PKCE S256 challenge, if sent.
    pub code_challenge: Option<String>,
    /// The OpenID Connect nonce, if sent.
    pub nonce: Option<String>,
    /// The EHR launch context, when `launch` was sent.
    pub launch: Option<LaunchContext>,
}

/// A login transaction: an authorization request and what the user has done so far.
#[derive(Debug, Clone)]
pub struct Transaction {
    /// The request.
    pub request: AuthRequest,
    /// The signed-in user's username, once signed in.
    pub username: Option<String>,
    /// The chosen patient, once known.
    pub patient: Option<String>,
    /// When it started (simulated clock).
    pub created: OffsetDateTime,
}

/// An EHR launch: the context an EHR hands an app through the `launch` parameter.
#[derive(Debug, Clone)]
pub struct LaunchContext {
    /// The launch id (the opaque `launch` value).
    pub id: String,
    /// The app launched.
    pub client_id: String,
    /// The patient in context.
    pub patient: Option<String>,
    /// The user at the EHR (username), if named.
    pub username: Option<String>,
    /// The encounter in context.
    pub encounter: Option<String>,
    /// When it was made (simulated clock).
    pub created: OffsetDateTime,
}

/// An authorization decided ahead by the admin API (`POST /_sim/authorizations`).
#[derive(Debug, Clone)]
pub struct PreDecision {
    /// The user (username or `fhirUser` reference).
    pub user: Option<String>,
    /// The patient context.
    pub patient: Option<String>,
    /// The scopes to grant (at most what is asked and registered); all asked when `None`.
    pub scope: Option<String>,
    /// Deny instead.
    pub deny: bool,
}

/// An issued authorization code.
#[derive(Debug, Clone)]
pub struct CodeRecord {
    /// The client it was issued to.
    pub client_id: String,
    /// The redirect URI it was issued for.
    pub redirect_uri: String,
    /// The PKCE challenge it is bound to.
    pub code_challenge: Option<String>,
    /// The user who authorized, if any.
    pub username: Option<String>,
    /// The patient context.
    pub patient: Option<String>,
    /// The encounter context.
    pub encounter: Option<String>,
    /// The granted scopes.
    pub scopes: Vec<Scope>,
    /// The scope text the client asked for.
    pub scope_requested: String,
    /// The OpenID Connect nonce.
    pub nonce: Option<String>,
    /// When it was issued (simulated clock).
    pub issued_at: OffsetDateTime,
    /// Whether it was redeemed already.
    pub used: bool,
    /// The token family its tokens belong to.
    pub family: String,
}

/// Authorizations in flight.
#[derive(Debug, Default)]
pub struct Flows {
    /// Login transactions by id.
    pub transactions: HashMap<String, Transaction>,
    /// Codes by value.
    pub codes: HashMap<String, CodeRecord>,
    /// EHR launches by id.
    pub launches: HashMap<String, LaunchContext>,
    /// Decisions pre-made per client.
    pub decisions: HashMap<String, PreDecision>,
}

impl Flows {
    /// Drops what has expired by `now`, and the oldest entries beyond the cap.
    pub fn prune(&mut self, now: OffsetDateTime) {
        let flow_cutoff = now - time::Duration::seconds(FLOW_LIFETIME_SECONDS);
        self.transactions.retain(|_, t| t.created > flow_cutoff);
        self.launches.retain(|_, l| l.created > flow_cutoff);
        // Used codes are kept for the flow lifetime so a replay is recognised and punished.
        self.codes.retain(|_, c| c.issued_at > flow_cutoff);
        for map_len in [
            self.transactions.len(),
            self.codes.len(),
            self.launches.len(),
        ] {
            if map_len > MAX_IN_FLIGHT {
                self.transactions.clear();
                self.launches.clear();
                break;
            }
        }
    }
}

/// The authorization server of one environment.
#[derive(Debug)]
pub struct Authority {
    registrations: Registrations,
    settings: TokenSettings,
    key_dir: Option<PathBuf>,
    keys: RwLock<Option<Arc<SigningKeys>>>,
    tokens: TokenStore,
    flows: Mutex<Flows>,
    jti: JtiCache,
}

impl Authority {
    /// An authorization server with these registrations; signing keys are loaded from (or
    /// generated into) `key_dir` on first use, or kept in memory when it is `None`.
    pub fn new(
        registrations: Registrations,
        settings: TokenSettings,
        key_dir: Option<PathBuf>,
    ) -> Self {
        Self {
            registrations,
            settings,
            key_dir,
            keys: RwLock::new(None),
            tokens: TokenStore::default(),
            flows: Mutex::new(Flows::default()),
            // Room for a busy backend: 250,000 assertions per client within their 5 minutes.
            jti: JtiCache::with_limits(1_000_000, 250_000),
        }
    }

    /// The registered clients and users.
    pub fn registrations(&self) -> &Registrations {
        &self.registrations
    }

    /// Token lifetimes and rotation.
    pub fn settings(&self) -> &TokenSettings {
        &self.settings
    }

    /// The issued tokens.
    pub fn tokens(&self) -> &TokenStore {
        &self.tokens
    }

    /// The flows in progress (locked).
    pub fn flows(&self) -> MutexGuard<'_, Flows> {
        self.flows.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Assertion `jti`s seen, for replay detection.
    pub fn jti_cache(&self) -> &JtiCache {
        &self.jti
    }

    /// The signing keys (loaded from the key folder, or generated, on first use).
    pub fn keys(&self) -> Result<Arc<SigningKeys>, String> {
        if let Some(keys) = self.keys.read().unwrap_or_else(|p| p.into_inner()).as_ref() {
            return Ok(Arc::clone(keys));
        }
        let mut slot = self.keys.write().unwrap_or_else(|p| p.into_inner());
        if let Some(keys) = slot.as_ref() {
            return Ok(Arc::clone(keys));
        }
        let keys = match &self.key_dir {
            Some(dir) => SigningKeys::load_or_generate(dir),
            None => SigningKeys::generate(),
        }
        .map(Arc::new)
        .map_err(|e| e.to_string())?;
        *slot = Some(Arc::clone(&keys));
        Ok(keys)
    }

    /// Replaces the signing keys with new ones; the old ones keep verifying (and stay in the
    /// JWKS) for one access-token lifetime. Returns the new access-token key id.
    pub fn rotate_keys(&self, now_unix: i64) -> Result<String, String> {
        let mut keys = (*self.keys()?).clone();
        keys.rotate(now_unix, self.settings.access_lifetime_seconds)
            .map_err(|e| e.to_string())?;
        let kid = keys.access_kid().to_string();
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(keys));
        Ok(kid)
    }

    /// Forgets the flows in progress (on reset). Issued tokens stay valid — a data reset
    /// should not sign every app out — as do keys and registrations.
    pub fn reset(&self) {
        *self.flows() = Flows::default();
    }
}

/// The first clinical scope that names a resource type this server does not know, as an
/// `invalid_scope` description.
pub fn unknown_type(scopes: &[Scope]) -> Option<String> {
    scopes.iter().find_map(|s| match s {
        Scope::Clinical(c) => c
            .resource_type
            .as_deref()
            .filter(|t| crate::rest::types::check_type(t).is_err())
            .map(|t| format!("scope {s}: {t} is not a FHIR R4 resource type")),
        _ => None,
    })
}

/// An OAuth 2.0 error response (RFC 6749 section 5.2): JSON, never cached.
pub fn oauth_error(status: u16, error: &str, description: &str) -> SimResponse {
    no_store(SimResponse::json(
        status,
        &json!({"error": error, "error_description": description}),
        false,
        "application/json",
    ))
}

/// Marks a response as not to be cached (token and introspection responses).
pub fn no_store(response: SimResponse) -> SimResponse {
    response
        .with_header("cache-control", "no-store")
        .with_header("pragma", "no-cache")
}

/// A JSON response of the OAuth endpoints.
pub fn oauth_json(value: &Value) -> SimResponse {
    no_store(SimResponse::json(200, value, false, "application/json"))
}

/// A new random opaque value (codes, transaction ids, refresh tokens, launch ids).
pub fn random_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}
