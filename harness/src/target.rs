//! The target file (`drill.toml`): how to reach the integration under test. Unknown keys are
//! errors that name the key, so a typo never silently turns a scenario off.
//!
//! ```toml
//! name = "clinic-app"                       # shown in reports
//!
//! [app]
//! base_url = "http://127.0.0.1:3000"        # the app under test
//! client_id = "clinic-app"                  # its user-facing client at the EHR
//! redirect_uri = "http://127.0.0.1:3000/callback" # optional: checked against the EHR's
//! launch_url = "http://127.0.0.1:3000/launch"     #   registration of the client
//! backend_client_ids = ["clinic-app-sync"]  # its SMART Backend Services clients, if any
//!
//! [login]
//! session = "cookie"                        # "cookie": the app keeps a session cookie after
//!                                           #   its SMART redirect flow; "bearer": the app API
//!                                           #   takes the SMART access token as a bearer token
//! patient_login_path = "/login"             # standalone launch for patients (omit: none)
//! ehr_launch = true                         # clinicians open it from the EHR (the simulator
//!                                           #   sends them to the client's registered launch URL)
//!
//! [[jobs]]                                  # background jobs the harness triggers (e.g. a sync
//! name = "lab-sync"                         #   that fills the app's cache), run before scenarios
//! method = "POST"                           #   that need the app's data and by scope checks
//! path = "/internal/jobs/sync"
//! headers = { "X-Job-Token" = "from-your-config" }
//!
//! [[endpoints]]                             # the app API; placeholders: {patient.id},
//!                                           #   {patient.mrn}, and {<Type>.id} for one of the
//!                                           #   patient's records (e.g. {Observation.id})
//! method = "GET"
//! path = "/api/patients/{patient.id}/labs"
//!
//! [fhir]
//! target = "simulator"                      # attack the simulator itself (a self-test), or
//! # base_url = "https://app.example/fhir"   #   the app's own FHIR API (takes a SMART token)
//!
//! [simulator]
//! url = "http://127.0.0.1:8080"             # a running simulator (or --simulator URL), or
//! # config = "sim.toml"                     #   start one for the drill from this simulator
//! # state_dir = "drill-state"               #   config (relative to this file; give it a fixed
//! #                                         #   listen port so the app can be pointed at it)
//! environment = "sandbox"
//! # admin token: --admin-token or FHIRDRILL_ADMIN_TOKEN (or the embedded simulator's config)
//!
//! [personas]                                # optional: which test users play which part
//! patient = "patient1"                      # patient A (signs in)
//! practitioner = "clinician2"               # a clinician whose panel lacks the victim
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use fhirdrill_scenarios::cx::Endpoint;
use serde::Deserialize;

/// Why a target file was refused.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// It could not be read.
    #[error("cannot read the target file {path}: {source}")]
    Read {
        /// The path.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// It is not valid TOML or has unknown or missing keys.
    #[error("the target file {path} is not valid: {message}")]
    Parse {
        /// The path.
        path: String,
        /// What is wrong, with the location.
        message: String,
    },
    /// A value is wrong.
    #[error("the target file {path}: {message}")]
    Invalid {
        /// The path.
        path: String,
        /// What is wrong and how to fix it.
        message: String,
    },
}

/// A parsed target file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Shown in reports.
    pub name: String,
    /// The app under test.
    pub app: AppSection,
    /// How users sign in.
    #[serde(default)]
    pub login: LoginSection,
    /// Background jobs to trigger.
    #[serde(default)]
    pub jobs: Vec<Job>,
    /// The app's API endpoints.
    #[serde(default)]
    pub endpoints: Vec<EndpointSpec>,
    /// The FHIR endpoint to attack directly.
    pub fhir: Option<FhirSection>,
    /// Where the simulator is.
    #[serde(default)]
    pub simulator: SimulatorSection,
    /// Which test users play which part.
    #[serde(default)]
    pub personas: PersonasSection,
}

/// `[app]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppSection {
    /// The app's base URL.
    pub base_url: String,
    /// Its user-facing client id at the EHR.
    pub client_id: String,
    /// Its redirect URI (checked against the EHR's registration).
    pub redirect_uri: Option<String>,
    /// Its EHR launch URL (checked against the EHR's registration).
    pub launch_url: Option<String>,
    /// Its backend client ids.
    #[serde(default)]
    pub backend_client_ids: Vec<String>,
}

/// How the app keeps a signed-in user.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionKind {
    /// A cookie set at the end of the app's SMART redirect flow.
    #[default]
    Cookie,
    /// The app API takes the SMART access token as a bearer token.
    Bearer,
}

/// `[login]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginSection {
    /// Cookie or bearer.
    #[serde(default)]
    pub session: SessionKind,
    /// The app path that starts a patient's standalone login.
    pub patient_login_path: Option<String>,
    /// Whether clinicians open the app from the EHR.
    #[serde(default)]
    pub ehr_launch: bool,
}

/// `[[jobs]]`: a background job the harness triggers over HTTP.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Job {
    /// Its name.
    pub name: String,
    /// HTTP method (default POST).
    #[serde(default = "post")]
    pub method: String,
    /// The app path.
    pub path: String,
    /// Headers to send (e.g. the job's own token).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

fn post() -> String {
    "POST".to_string()
}

/// `[[endpoints]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointSpec {
    /// HTTP method (default GET).
    #[serde(default = "get")]
    pub method: String,
    /// Path and query with placeholders.
    pub path: String,
    /// Body template.
    pub body: Option<String>,
}

fn get() -> String {
    "GET".to_string()
}

/// `[fhir]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FhirSection {
    /// `simulator` to attack the simulator's own FHIR API.
    pub target: Option<String>,
    /// The app's own FHIR API.
    pub base_url: Option<String>,
}

/// `[simulator]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulatorSection {
    /// The simulator's URL (the command line may give it instead).
    pub url: Option<String>,
    /// A simulator config file to start an embedded simulator from (relative to the target
    /// file), when no URL is given.
    pub config: Option<String>,
    /// Where the embedded simulator keeps its audit log and keys (default: a new temporary
    /// folder).
    pub state_dir: Option<String>,
    /// The environment (default: the first).
    pub environment: Option<String>,
}

/// `[personas]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonasSection {
    /// The patient user who signs in (A).
    pub patient: Option<String>,
    /// The clinician user whose panel lacks the victim.
    pub practitioner: Option<String>,
}

/// The placeholders an endpoint template may use, besides `{<Type>.id}` (a record of the
/// patient of that FHIR resource type).
pub const PLACEHOLDERS: &[&str] = &["{patient.id}", "{patient.mrn}"];

/// The resource type of a `{<Type>.id}` placeholder (`{Observation.id}` → `Observation`).
pub fn record_placeholder(candidate: &str) -> Option<&str> {
    let kind = candidate.strip_prefix('{')?.strip_suffix(".id}")?;
    let mut chars = kind.chars();
    (chars.next()?.is_ascii_uppercase() && chars.all(|c| c.is_ascii_alphanumeric())).then_some(kind)
}

impl Target {
    /// Reads and checks a target file.
    pub fn load(path: &Path) -> Result<Target, TargetError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| TargetError::Read {
            path: shown.clone(),
            source,
        })?;
        Target::parse(&text, &shown)
    }

    /// Parses and checks target-file text (`path` names it in errors).
    pub fn parse(text: &str, path: &str) -> Result<Target, TargetError> {
        let target: Target = toml::from_str(text).map_err(|e| TargetError::Parse {
            path: path.to_string(),
            message: e.to_string().trim().replace('\n', " "),
        })?;
        target.check(path)?;
        Ok(target)
    }

    fn check(&self, path: &str) -> Result<(), TargetError> {
        let invalid = |message: String| TargetError::Invalid {
            path: path.to_string(),
            message,
        };
        if !self.app.base_url.starts_with("http://") && !self.app.base_url.starts_with("https://") {
            return Err(invalid(format!(
                "[app] base_url {:?} must start with http:// or https://",
                self.app.base_url
            )));
        }
        for endpoint in &self.endpoints {
            if !endpoint.path.starts_with('/') {
                return Err(invalid(format!(
                    "[[endpoints]] path {:?} must start with / (it is relative to [app] base_url)",
                    endpoint.path
                )));
            }
            if let Some(unknown) = unknown_placeholder(&endpoint.path) {
                return Err(invalid(format!(
                    "[[endpoints]] path {:?} uses {unknown}, which is not a placeholder: use {} or {{<Type>.id}}",
                    endpoint.path,
                    PLACEHOLDERS.join(", ")
                )));
            }
        }
        if self.simulator.url.is_some() && self.simulator.config.is_some() {
            return Err(invalid(
                "[simulator] needs url (a running simulator) or config (start one), not both"
                    .into(),
            ));
        }
        if let Some(fhir) = &self.fhir {
            match (fhir.target.as_deref(), &fhir.base_url) {
                (Some("simulator"), None) | (None, Some(_)) => {}
                _ => {
                    return Err(invalid(
                        "[fhir] needs exactly one of target = \"simulator\" or base_url = \"…\""
                            .into(),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The app endpoints, as scenarios see them.
    pub fn endpoints(&self) -> Vec<Endpoint> {
        self.endpoints
            .iter()
            .map(|e| Endpoint {
                method: e.method.to_ascii_uppercase(),
                path: e.path.clone(),
                body: e.body.clone(),
            })
            .collect()
    }
}

/// Every `{…}` in `text`, braces included, in order.
pub fn placeholders(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        let open = rest.find('{')?;
        let close = rest[open..].find('}')? + open;
        let found = &rest[open..=close];
        rest = &rest[close + 1..];
        Some(found)
    })
}

/// The first `{…}` in `text` that is not a known placeholder.
fn unknown_placeholder(text: &str) -> Option<String> {
    placeholders(text)
        .find(|p| !PLACEHOLDERS.contains(p) && record_placeholder(p).is_none())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
name = "app"
[app]
base_url = "http://127.0.0.1:3000"
client_id = "app"
[[endpoints]]
path = "/api/patients/{patient.id}"
"#;

    #[test]
    fn a_minimal_target_parses_with_defaults() {
        let target = Target::parse(MINIMAL, "drill.toml").expect("valid");
        assert_eq!(target.login.session, SessionKind::Cookie);
        assert_eq!(target.endpoints()[0].method, "GET");
        assert!(target.fhir.is_none());
    }

    #[test]
    fn mistakes_are_named() {
        let typo = MINIMAL.replace("client_id", "clientid");
        let err = Target::parse(&typo, "drill.toml").expect_err("unknown key");
        assert!(err.to_string().contains("clientid"), "{err}");
        let record = MINIMAL.replace("{patient.id}", "{Observation.id}");
        assert!(
            Target::parse(&record, "drill.toml").is_ok(),
            "a record placeholder"
        );
        assert_eq!(record_placeholder("{observation.id}"), None);
        let placeholder = MINIMAL.replace("{patient.id}", "{pid}");
        let err = Target::parse(&placeholder, "drill.toml").expect_err("bad placeholder");
        assert!(err.to_string().contains("{pid}"), "{err}");
        let both = format!("{MINIMAL}\n[fhir]\ntarget = \"simulator\"\nbase_url = \"http://x\"\n");
        let err = Target::parse(&both, "drill.toml").expect_err("ambiguous fhir");
        assert!(err.to_string().contains("exactly one"), "{err}");
        let two_simulators =
            format!("{MINIMAL}\n[simulator]\nurl = \"http://x\"\nconfig = \"sim.toml\"\n");
        let err = Target::parse(&two_simulators, "drill.toml").expect_err("two simulators");
        assert!(err.to_string().contains("not both"), "{err}");
    }
}
