//! The app's settings and its error type.

use std::path::PathBuf;
use std::time::Duration;

use crate::flaws::Flaws;

/// The default client id of the user-facing (public) client.
pub const DEFAULT_CLIENT_ID: &str = "clinic-app";
/// The default client id of the backend (confidential-asymmetric) client.
pub const DEFAULT_BACKEND_CLIENT_ID: &str = "clinic-app-backend";

/// Everything the app needs to know once it is bound.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// The FHIR base URL of the EHR; the only `iss` an EHR launch may name.
    pub fhir_base: String,
    /// The user-facing public client's id.
    pub client_id: String,
    /// The backend services client's id.
    pub backend_client_id: String,
    /// The mistakes switched on (none: the correct app).
    pub flaws: Flaws,
    /// The secret `POST /internal/jobs/sync` needs in `X-Job-Token`.
    pub job_token: String,
    /// Where the backend key (and, unless `log_file` says otherwise, the log) live.
    pub state_dir: PathBuf,
    /// The JSON-lines request log (default: `app.log` in `state_dir`).
    pub log_file: Option<PathBuf>,
    /// Where to post analytics events, if anywhere.
    pub analytics_url: Option<String>,
    /// How often to run the sync job by itself (default: never).
    pub sync_every: Option<Duration>,
}

impl AppConfig {
    /// The correct app for `fhir_base`, with default client ids, a random job token and
    /// state in `state_dir`.
    pub fn new(fhir_base: &str, state_dir: PathBuf) -> Self {
        Self {
            fhir_base: fhir_base.trim_end_matches('/').to_string(),
            client_id: DEFAULT_CLIENT_ID.into(),
            backend_client_id: DEFAULT_BACKEND_CLIENT_ID.into(),
            flaws: Flaws::none(),
            job_token: crate::random::token(24).unwrap_or_default(),
            state_dir,
            log_file: None,
            analytics_url: None,
            sync_every: None,
        }
    }
}

/// Why the app could not start, stop or do something.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source} (pick another port, or 0 for a free one)")]
    Bind {
        /// The address.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A setting is unusable.
    #[error("{0}")]
    Config(String),
    /// The backend key could not be made, read or used.
    #[error("backend key {0}")]
    Key(String),
    /// The EHR could not be reached or answered something unusable.
    #[error("{0}")]
    Upstream(String),
    /// Anything else (runtime, threads, random source).
    #[error("{0}")]
    Internal(String),
}
