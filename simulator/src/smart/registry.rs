//! Who may use an environment: its registered clients (apps) and its users (people who sign
//! in on the login page), from the configuration or, when it names none, built-in test ones.
//!
//! A practitioner user sees the patients on their care teams (their panel, computed from the
//! environment's CareTeam resources); a patient user sees their own record.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::Value;

use crate::smart::scopes::{Scope, parse_scopes};
use crate::store::Store;

/// How a client authenticates at the token endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientKind {
    /// A public client (browser or native app): no secret; PKCE is required.
    Public,
    /// A confidential client with a shared secret (`client_secret_basic` or `_post`).
    Symmetric {
        /// The secret.
        secret: String,
    },
    /// A confidential client that signs JWT assertions (`private_key_jwt`).
    Asymmetric {
        /// Its public keys, inline (a JWKS document), if registered so.
        jwks: Option<Value>,
        /// Where its public keys are published, if registered so.
        jwks_uri: Option<String>,
    },
}

impl ClientKind {
    /// `public`, `confidential-symmetric` or `confidential-asymmetric`.
    pub fn name(&self) -> &'static str {
        match self {
            ClientKind::Public => "public",
            ClientKind::Symmetric { .. } => "confidential-symmetric",
            ClientKind::Asymmetric { .. } => "confidential-asymmetric",
        }
    }
}

/// A registered client.
#[derive(Debug, Clone)]
pub struct Client {
    /// The client id.
    pub client_id: String,
    /// How it authenticates.
    pub kind: ClientKind,
    /// Its redirect URIs (matched exactly; a loopback IP literal without a port matches any
    /// port, as RFC 8252 section 7.3 requires for native apps).
    pub redirect_uris: Vec<String>,
    /// Where an EHR launch sends the browser, if it can be launched.
    pub launch_url: Option<String>,
    /// The scopes it may ever be granted.
    pub scopes: Vec<Scope>,
    /// The same, as text.
    pub scope_text: String,
    /// The Group (id) that bounds its `system/` access, if any.
    pub group: Option<String>,
    /// When its key or secret was issued (a date), if known.
    pub key_issued: Option<String>,
    /// For built-in test clients: the test-only credential to publish in
    /// `/_sim/registrations` (a secret, or a private JWK and PEM).
    pub test_credentials: Option<Value>,
}

impl Client {
    /// Whether `uri` is one of its redirect URIs.
    pub fn accepts_redirect(&self, uri: &str) -> bool {
        self.redirect_uris
            .iter()
            .any(|registered| redirect_matches(registered, uri))
    }

    /// Whether it is confidential (must authenticate at the token endpoint).
    pub fn is_confidential(&self) -> bool {
        !matches!(self.kind, ClientKind::Public)
    }
}

/// Exact match, except that a registered loopback IP literal without a port accepts any port.
fn redirect_matches(registered: &str, uri: &str) -> bool {
    if registered == uri {
        return true;
    }
    for host in ["http://127.0.0.1", "http://[::1]"] {
        if let Some(path) = registered.strip_prefix(host)
            && path.starts_with('/')
            && let Some(rest) = uri.strip_prefix(host)
            && let Some(after_colon) = rest.strip_prefix(':')
        {
            let digits = after_colon.bytes().take_while(u8::is_ascii_digit).count();
            return digits > 0 && digits <= 5 && &after_colon[digits..] == path;
        }
    }
    false
}

/// What a user is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A clinician: sees the patients on their care teams.
    Practitioner,
    /// A patient: sees their own record.
    Patient,
}

impl Role {
    /// `practitioner` or `patient`.
    pub fn name(self) -> &'static str {
        match self {
            Role::Practitioner => "practitioner",
            Role::Patient => "patient",
        }
    }
}

/// A person who can sign in on the login page.
#[derive(Debug, Clone)]
pub struct User {
    /// The login name.
    pub username: String,
    /// The password (test-only).
    pub password: String,
    /// Practitioner or patient.
    pub role: Role,
    /// Their FHIR resource: `Practitioner/<id>` or `Patient/<id>`.
    pub fhir_user: String,
    /// The patients they may see (`user/` scopes).
    pub patients: Arc<BTreeSet<String>>,
}

impl User {
    /// The Patient id of a patient user.
    pub fn patient_id(&self) -> Option<&str> {
        match self.role {
            Role::Patient => self.fhir_user.strip_prefix("Patient/"),
            Role::Practitioner => None,
        }
    }
}

/// A client as written in the configuration.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// The client id.
    pub client_id: String,
    /// `public`, `confidential-symmetric` or `confidential-asymmetric`.
    pub kind: String,
    /// The secret of a symmetric client.
    pub secret: Option<String>,
    /// An inline JWKS of an asymmetric client, as a JSON string.
    pub jwks: Option<String>,
    /// The JWKS URL of an asymmetric client.
    pub jwks_uri: Option<String>,
    /// Redirect URIs.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// The EHR launch URL.
    pub launch_url: Option<String>,
    /// The scopes it may be granted (space-separated).
    #[serde(default)]
    pub scopes: String,
    /// A Group id bounding its `system/` access.
    pub group: Option<String>,
    /// When its key or secret was issued (YYYY-MM-DD).
    pub key_issued: Option<String>,
}

/// A user as written in the configuration.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// The login name.
    pub username: String,
    /// The password.
    pub password: String,
    /// `Practitioner/<id>` or `Patient/<id>`.
    pub fhir_user: String,
}

/// Why a registration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RegistrationError(pub String);

/// The clients and users of one environment.
#[derive(Debug, Clone, Default)]
pub struct Registrations {
    clients: BTreeMap<String, Client>,
    users: Vec<User>,
}

impl Registrations {
    /// Registrations from configured clients and users, checked against the environment's data.
    pub fn new(clients: Vec<Client>, users: Vec<User>) -> Self {
        Self {
            clients: clients
                .into_iter()
                .map(|c| (c.client_id.clone(), c))
                .collect(),
            users,
        }
    }

    /// The client `client_id`, if registered.
    pub fn client(&self, client_id: &str) -> Option<&Client> {
        self.clients.get(client_id)
    }

    /// Every client, by id.
    pub fn clients(&self) -> impl Iterator<Item = &Client> {
        self.clients.values()
    }

    /// The user who signs in as `username`.
    pub fn user(&self, username: &str) -> Option<&User> {
        self.users.iter().find(|u| u.username == username)
    }

    /// The user whose FHIR resource is `fhir_user`, or whose username is that.
    pub fn find_user(&self, name_or_fhir_user: &str) -> Option<&User> {
        self.user(name_or_fhir_user)
            .or_else(|| self.users.iter().find(|u| u.fhir_user == name_or_fhir_user))
    }

    /// Every user.
    pub fn users(&self) -> &[User] {
        &self.users
    }
}

/// A client from its configuration.
pub fn client_from_config(config: &ClientConfig) -> Result<Client, RegistrationError> {
    let id = &config.client_id;
    let bad = |message: String| RegistrationError(format!("client {id:?}: {message}"));
    if id.is_empty() || id.len() > 200 || id.chars().any(|c| c.is_control() || c == ' ') {
        return Err(bad("client_id must be 1 to 200 visible characters".into()));
    }
    let kind = match config.kind.as_str() {
        "public" => ClientKind::Public,
        "confidential-symmetric" => ClientKind::Symmetric {
            secret: config
                .secret
                .clone()
                .filter(|s| s.len() >= 16)
                .ok_or_else(|| {
                    bad("a symmetric client needs a secret of 16 or more characters".into())
                })?,
        },
        "confidential-asymmetric" => {
            let jwks = match &config.jwks {
                Some(text) => Some(
                    serde_json::from_str::<Value>(text)
                        .ok()
                        .filter(|v| v["keys"].is_array())
                        .ok_or_else(|| {
                            bad("jwks must be a JSON document {\"keys\": [...]}".into())
                        })?,
                ),
                None => None,
            };
            if jwks.is_none() && config.jwks_uri.is_none() {
                return Err(bad("an asymmetric client needs jwks or jwks_uri".into()));
            }
            ClientKind::Asymmetric {
                jwks,
                jwks_uri: config.jwks_uri.clone(),
            }
        }
        other => {
            return Err(bad(format!(
                "kind {other:?}: use public, confidential-symmetric or confidential-asymmetric"
            )));
        }
    };
    let scopes = parse_scopes(&config.scopes).map_err(|e| bad(e.to_string()))?;
    Ok(Client {
        client_id: id.clone(),
        kind,
        redirect_uris: config.redirect_uris.clone(),
        launch_url: config.launch_url.clone(),
        scope_text: scope_text(&scopes),
        scopes,
        group: config.group.clone(),
        key_issued: config.key_issued.clone(),
        test_credentials: None,
    })
}

/// Scopes as space-separated canonical text.
pub fn scope_text(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Each practitioner's panel: the patients of the CareTeams they are a member of.
pub fn practitioner_panels(store: &Store) -> BTreeMap<String, BTreeSet<String>> {
    let mut panels: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for team in store.all_of_type("CareTeam") {
        let Some(patient) = team["subject"]["reference"]
            .as_str()
            .and_then(|r| r.strip_prefix("Patient/"))
        else {
            continue;
        };
        for participant in team["participant"].as_array().into_iter().flatten() {
            if let Some(practitioner) = participant["member"]["reference"]
                .as_str()
                .and_then(|r| r.strip_prefix("Practitioner/"))
            {
                panels
                    .entry(practitioner.to_string())
                    .or_default()
                    .insert(patient.to_string());
            }
        }
    }
    panels
}

/// A user from its configuration, with the patients they may see.
pub fn user_from_config(
    config: &UserConfig,
    store: &Store,
    panels: &BTreeMap<String, BTreeSet<String>>,
) -> Result<User, RegistrationError> {
    let bad = |m: String| RegistrationError(format!("user {:?}: {m}", config.username));
    if config.username.is_empty() || config.password.is_empty() {
        return Err(bad("username and password must not be empty".into()));
    }
    let (role, id) = match config.fhir_user.split_once('/') {
        Some(("Practitioner", id)) => (Role::Practitioner, id),
        Some(("Patient", id)) => (Role::Patient, id),
        _ => {
            return Err(bad(format!(
                "fhir_user {:?} must be Practitioner/<id> or Patient/<id>",
                config.fhir_user
            )));
        }
    };
    let resource_type = role_type(role);
    if store.get(resource_type, id).is_none() {
        return Err(bad(format!(
            "{} is not in this environment's data",
            config.fhir_user
        )));
    }
    let patients = match role {
        Role::Practitioner => panels.get(id).cloned().unwrap_or_default(),
        Role::Patient => BTreeSet::from([id.to_string()]),
    };
    Ok(User {
        username: config.username.clone(),
        password: config.password.clone(),
        role,
        fhir_user: config.fhir_user.clone(),
        patients: Arc::new(patients),
    })
}

fn role_type(role: Role) -> &'static str {
    match role {
        Role::Practitioner => "Practitioner",
        Role::Patient => "Patient",
    }
}

/// Built-in test users: the three practitioners with the largest panels and the first three
/// patients, each with a random password.
pub fn default_users(store: &Store) -> Vec<User> {
    let panels = practitioner_panels(store);
    let mut by_size: Vec<(&String, &BTreeSet<String>)> = panels.iter().collect();
    by_size.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(b.0)));
    let mut users = Vec::new();
    for (i, (id, panel)) in by_size.into_iter().take(3).enumerate() {
        users.push(User {
            username: format!("clinician{}", i + 1),
            password: test_password(),
            role: Role::Practitioner,
            fhir_user: format!("Practitioner/{id}"),
            patients: Arc::new(panel.clone()),
        });
    }
    for (i, (id, _)) in store
        .current_of_type("Patient")
        .into_iter()
        .take(3)
        .enumerate()
    {
        users.push(User {
            username: format!("patient{}", i + 1),
            password: test_password(),
            role: Role::Patient,
            fhir_user: format!("Patient/{id}"),
            patients: Arc::new(BTreeSet::from([id.to_string()])),
        });
    }
    users
}

/// The id of the built-in public test client.
pub const DEMO_PUBLIC: &str = "fhirdrill-demo-public";
/// The id of the built-in confidential (client secret) test client.
pub const DEMO_CONFIDENTIAL: &str = "fhirdrill-demo-confidential";
/// The id of the built-in backend client that signs with RS384.
pub const BACKEND_RS384: &str = "fhirdrill-backend-rs384";
/// The id of the built-in backend client that signs with ES384.
pub const BACKEND_ES384: &str = "fhirdrill-backend-es384";

/// Redirect URIs of the built-in app clients: any loopback port (RFC 8252) and the usual
/// local development servers.
const DEMO_REDIRECTS: &[&str] = &[
    "http://127.0.0.1/callback",
    "http://[::1]/callback",
    "http://localhost:3000/callback",
    "http://localhost:5173/callback",
    "http://localhost:8000/callback",
];
/// Scopes the built-in app clients may be granted.
const DEMO_SCOPES: &str = "launch launch/patient launch/encounter openid fhirUser profile \
                           offline_access online_access patient/*.cruds user/*.cruds";

/// Built-in test clients, so `fhirdrill serve` works with no configuration: a public app, a
/// confidential app with a secret, and two backend services clients (RS384 and ES384) whose
/// keys are kept in `key_dir` (or in memory). Their test-only credentials are published in
/// `/_sim/registrations`.
pub fn default_clients(
    key_dir: Option<&std::path::Path>,
) -> Result<Vec<Client>, super::keys::KeyError> {
    use super::keys::{ClientAlg, ClientKey};
    let app = |client_id: &str, kind: ClientKind, credentials: Option<Value>| Client {
        client_id: client_id.to_string(),
        kind,
        redirect_uris: DEMO_REDIRECTS.iter().map(|s| s.to_string()).collect(),
        launch_url: Some("http://localhost:3000/launch".into()),
        scopes: parse_scopes(DEMO_SCOPES).unwrap_or_default(),
        scope_text: DEMO_SCOPES.split_whitespace().collect::<Vec<_>>().join(" "),
        group: None,
        key_issued: None,
        test_credentials: credentials,
    };
    let secret = test_password();
    let mut clients = vec![
        app(DEMO_PUBLIC, ClientKind::Public, None),
        app(
            DEMO_CONFIDENTIAL,
            ClientKind::Symmetric {
                secret: secret.clone(),
            },
            Some(serde_json::json!({"client_secret": secret})),
        ),
    ];
    for (client_id, alg) in [
        (BACKEND_RS384, ClientAlg::Rs384),
        (BACKEND_ES384, ClientAlg::Es384),
    ] {
        let key = match key_dir {
            Some(dir) => ClientKey::load_or_generate(&dir.join(format!("{client_id}.pem")), alg)?,
            None => ClientKey::generate(alg)?,
        };
        let scopes = "system/*.cruds";
        clients.push(Client {
            client_id: client_id.to_string(),
            kind: ClientKind::Asymmetric {
                jwks: Some(key.public_jwks()),
                jwks_uri: None,
            },
            redirect_uris: Vec::new(),
            launch_url: None,
            scopes: parse_scopes(scopes).unwrap_or_default(),
            scope_text: scopes.to_string(),
            group: None,
            key_issued: None,
            test_credentials: Some(serde_json::json!({
                "kid": key.kid(),
                "alg": alg.name(),
                "private_jwk": key.private_jwk(),
                "private_key_pem": key.private_key_pem(),
            })),
        });
    }
    Ok(clients)
}

/// A random test-only password or secret.
pub fn test_password() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("test-{}", &id[..20])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn redirect_uris_match_exactly_except_loopback_ports() {
        let check = |registered: &str, uri: &str| redirect_matches(registered, uri);
        assert!(check("https://app.example/cb", "https://app.example/cb"));
        assert!(!check("https://app.example/cb", "https://app.example/cb/"));
        assert!(!check(
            "https://app.example/cb",
            "https://app.example/cb?x=1"
        ));
        assert!(!check(
            "https://app.example/cb",
            "https://app.example.evil/cb"
        ));
        assert!(check("http://127.0.0.1/cb", "http://127.0.0.1:5173/cb"));
        assert!(check("http://[::1]/cb", "http://[::1]:80/cb"));
        assert!(!check("http://127.0.0.1/cb", "http://127.0.0.1:5173/cb2"));
        assert!(!check("http://127.0.0.1/cb", "http://127.0.0.1:/cb"));
        assert!(!check(
            "http://127.0.0.1/cb",
            "http://127.0.0.1:5173@evil/cb"
        ));
        assert!(!check("http://localhost/cb", "http://localhost:3000/cb"));
    }

    #[test]
    fn panels_come_from_care_teams() {
        let mut store = Store::new();
        store.put(json!({"resourceType": "Patient", "id": "p1"}), "t");
        store.put(json!({"resourceType": "Practitioner", "id": "d1"}), "t");
        store.put(
            json!({"resourceType": "CareTeam", "id": "c1", "subject": {"reference": "Patient/p1"},
                   "participant": [{"member": {"reference": "Practitioner/d1"}}]}),
            "t",
        );
        let users = default_users(&store);
        assert_eq!(users.len(), 2);
        assert_eq!(users[0].fhir_user, "Practitioner/d1");
        assert!(users[0].patients.contains("p1"));
        assert_eq!(users[1].patient_id(), Some("p1"));
        let configured = UserConfig {
            username: "x".into(),
            password: "y".into(),
            fhir_user: "Practitioner/nope".into(),
        };
        assert!(user_from_config(&configured, &store, &practitioner_panels(&store)).is_err());
    }

    #[test]
    fn client_configs_are_checked() {
        let mut config = ClientConfig {
            client_id: "app".into(),
            kind: "confidential-symmetric".into(),
            secret: Some("short".into()),
            ..ClientConfig::default()
        };
        assert!(client_from_config(&config).is_err());
        config.secret = Some("a-long-enough-secret".into());
        config.scopes = "patient/Observation.rs openid".into();
        let client = client_from_config(&config).expect("valid");
        assert_eq!(client.kind.name(), "confidential-symmetric");
        config.scopes = "patient/Observation.bogus".into();
        assert!(client_from_config(&config).is_err());
        config.kind = "confidential-asymmetric".into();
        config.scopes = String::new();
        assert!(client_from_config(&config).is_err(), "no keys");
    }
}
