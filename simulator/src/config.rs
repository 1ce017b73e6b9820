//! Simulator configuration: a TOML file (`--config sim.toml`) whose settings the command line
//! can override. Unknown keys are errors that name the key, so typos do not pass silently.
//!
//! ```toml
//! listen = "127.0.0.1:8080"          # loopback by default; port 0 picks a free port
//! max_body_bytes = 10485760         # larger request bodies get 413
//!
//! # admin_token = "…"                # else FHIRDRILL_ADMIN_TOKEN, else random (printed)
//! # state_dir = "state"              # audit log and keys; else a new temporary folder
//!
//! [[environments]]                   # default: one environment, "sandbox"
//! name = "sandbox"                   # FHIR base: http://<listen>/sandbox/fhir
//! patients = 100                     # generated in-process…
//! seed = 1
//! # data = "synthetic"               # …or loaded from a folder of NDJSON or bundles
//! access_token_lifetime = 3600       # seconds
//! rotate_refresh_tokens = true
//!
//! [[environments.clients]]           # none: built-in test clients (printed at start)
//! client_id = "my-app"
//! kind = "public"                    # or confidential-symmetric (secret = "…"),
//!                                    # confidential-asymmetric (jwks = '{"keys":[…]}' or jwks_uri)
//! redirect_uris = ["http://localhost:3000/callback"]
//! launch_url = "http://localhost:3000/launch"
//! scopes = "launch launch/patient openid fhirUser offline_access patient/*.rs"
//! # group = "Group/abc"              # bounds system/ access to the Group's patients
//! # key_issued = "2026-01-15"
//!
//! [[environments.users]]             # none: built-in test users (printed at start)
//! username = "dr-jones"
//! password = "…"
//! fhir_user = "Practitioner/<id>"    # or Patient/<id>
//!
//! [rate_limit]                       # off unless present
//! requests_per_second = 20
//! burst = 40
//!
//! [[faults]]                         # off unless present
//! path_prefix = "/sandbox/fhir/Observation"
//! latency_ms = 200
//! error_rate = 0.1
//! error_status = 503
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::behaviour::{FaultRule, RateLimit};
use crate::environment::is_valid_name;
use crate::smart::authority::TokenSettings;
use crate::smart::registry::{ClientConfig, UserConfig};

/// The default listen address: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The default request body limit (10 MiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// Where an environment's data comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataSource {
    /// Generated in-process: `patients` patients of `seed`.
    Generated {
        /// Population size.
        patients: u64,
        /// Seed.
        seed: u64,
    },
    /// Loaded from a folder of NDJSON files and/or FHIR Bundles.
    Folder(PathBuf),
}

/// One environment's settings.
#[derive(Debug, Clone)]
pub struct EnvironmentConfig {
    /// Name (and first path segment of the FHIR base).
    pub name: String,
    /// Its data.
    pub data: DataSource,
    /// Its registered clients (none: built-in test clients).
    pub clients: Vec<ClientConfig>,
    /// Its users (none: built-in test users).
    pub users: Vec<UserConfig>,
    /// Token lifetimes and rotation.
    pub tokens: TokenSettings,
}

/// The whole simulator configuration.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The admin token, if configured (the CLI also reads `--admin-token` and the environment).
    pub admin_token: Option<String>,
    /// Where the audit log and keys live, if configured.
    pub state_dir: Option<PathBuf>,
    /// The HTTP listen address.
    pub listen: SocketAddr,
    /// The request body limit in bytes.
    pub max_body_bytes: usize,
    /// The environments.
    pub environments: Vec<EnvironmentConfig>,
    /// The rate limit, if any.
    pub rate_limit: Option<RateLimit>,
    /// Injected faults.
    pub faults: Vec<FaultRule>,
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown or mistyped keys.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A value is out of range or inconsistent.
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    admin_token: Option<String>,
    state_dir: Option<PathBuf>,
    max_body_bytes: Option<usize>,
    #[serde(default)]
    environments: Vec<FileEnvironment>,
    rate_limit: Option<RateLimit>,
    #[serde(default)]
    faults: Vec<FaultRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEnvironment {
    name: String,
    patients: Option<u64>,
    seed: Option<u64>,
    data: Option<PathBuf>,
    access_token_lifetime: Option<i64>,
    rotate_refresh_tokens: Option<bool>,
    #[serde(default)]
    clients: Vec<ClientConfig>,
    #[serde(default)]
    users: Vec<UserConfig>,
}

/// Command-line settings that override the file (they apply to the first environment).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--listen`.
    pub listen: Option<SocketAddr>,
    /// `--patients`.
    pub patients: Option<u64>,
    /// `--seed`.
    pub seed: Option<u64>,
    /// `--data`.
    pub data: Option<PathBuf>,
}

impl SimConfig {
    /// Reads `file` (if given) and applies `overrides`.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        let parsed = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                toml::from_str::<FileConfig>(&text).map_err(|e| ConfigError::Parse {
                    path: path.to_path_buf(),
                    message: e.to_string().trim().replace('\n', " "),
                })?
            }
            None => FileConfig::default(),
        };
        let base = file.and_then(Path::parent).unwrap_or(Path::new("."));
        Self::from_file(parsed, base, overrides)
    }

    fn from_file(
        file: FileConfig,
        base: &Path,
        overrides: &Overrides,
    ) -> Result<Self, ConfigError> {
        let listen = match (overrides.listen, file.listen) {
            (Some(addr), _) => addr,
            (None, Some(text)) => text.parse().map_err(|_| {
                ConfigError::Invalid(format!(
                    "listen = {text:?} is not an address such as 127.0.0.1:8080"
                ))
            })?,
            (None, None) => DEFAULT_LISTEN
                .parse()
                .map_err(|_| ConfigError::Invalid("bad default".into()))?,
        };
        let mut environments = Vec::new();
        let file_envs = if file.environments.is_empty() {
            vec![FileEnvironment {
                name: "sandbox".into(),
                patients: None,
                seed: None,
                data: None,
                access_token_lifetime: None,
                rotate_refresh_tokens: None,
                clients: Vec::new(),
                users: Vec::new(),
            }]
        } else {
            file.environments
        };
        for (i, env) in file_envs.into_iter().enumerate() {
            if !is_valid_name(&env.name) {
                return Err(ConfigError::Invalid(format!(
                    "environment name {:?}: use 1 to 40 lower-case letters, digits or '-'",
                    env.name
                )));
            }
            if environments
                .iter()
                .any(|e: &EnvironmentConfig| e.name == env.name)
            {
                return Err(ConfigError::Invalid(format!(
                    "environment {:?} is defined twice",
                    env.name
                )));
            }
            let first = i == 0;
            let data = match (first.then(|| overrides.data.clone()).flatten(), env.data) {
                (Some(dir), _) => DataSource::Folder(dir),
                (None, Some(dir))
                    if !(first && (overrides.patients.is_some() || overrides.seed.is_some())) =>
                {
                    DataSource::Folder(base.join(dir))
                }
                _ => DataSource::Generated {
                    patients: first
                        .then_some(overrides.patients)
                        .flatten()
                        .or(env.patients)
                        .unwrap_or(100),
                    seed: first
                        .then_some(overrides.seed)
                        .flatten()
                        .or(env.seed)
                        .unwrap_or(1),
                },
            };
            if matches!(data, DataSource::Generated { patients: 0, .. }) {
                return Err(ConfigError::Invalid(format!(
                    "environment {:?}: patients must be at least 1",
                    env.name
                )));
            }
            let defaults = TokenSettings::default();
            let lifetime = env
                .access_token_lifetime
                .unwrap_or(defaults.access_lifetime_seconds);
            if !(30..=86_400).contains(&lifetime) {
                return Err(ConfigError::Invalid(format!(
                    "environment {:?}: access_token_lifetime must be 30 to 86400 seconds",
                    env.name
                )));
            }
            environments.push(EnvironmentConfig {
                name: env.name,
                data,
                clients: env.clients,
                users: env.users,
                tokens: TokenSettings {
                    access_lifetime_seconds: lifetime,
                    rotate_refresh_tokens: env
                        .rotate_refresh_tokens
                        .unwrap_or(defaults.rotate_refresh_tokens),
                },
            });
        }
        if let Some(limit) = file.rate_limit
            && (limit.requests_per_second.is_nan()
                || limit.requests_per_second <= 0.0
                || limit.burst == 0)
        {
            return Err(ConfigError::Invalid(
                "rate_limit needs requests_per_second > 0 and burst >= 1".into(),
            ));
        }
        for fault in &file.faults {
            if !(0.0..=1.0).contains(&fault.error_rate)
                || !(500..=599).contains(&fault.error_status)
            {
                return Err(ConfigError::Invalid(format!(
                    "fault on {:?}: error_rate must be between 0 and 1 and error_status a 5xx",
                    fault.path_prefix
                )));
            }
        }
        if file.admin_token.as_ref().is_some_and(|t| t.len() < 16) {
            return Err(ConfigError::Invalid(
                "admin_token must be at least 16 characters".into(),
            ));
        }
        Ok(Self {
            admin_token: file.admin_token,
            state_dir: file.state_dir.map(|d| base.join(d)),
            listen,
            max_body_bytes: file.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES),
            environments,
            rate_limit: file.rate_limit,
            faults: file.faults,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, overrides: &Overrides) -> Result<SimConfig, String> {
        let file: FileConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        SimConfig::from_file(file, Path::new("/cfg"), overrides).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_one_loopback_sandbox_of_100_patients() {
        let c = parse("", &Overrides::default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.environments.len(), 1);
        assert_eq!(c.environments[0].name, "sandbox");
        assert_eq!(
            c.environments[0].data,
            DataSource::Generated {
                patients: 100,
                seed: 1
            }
        );
        assert!(c.environments[0].clients.is_empty() && c.environments[0].users.is_empty());
        assert_eq!(c.environments[0].tokens, TokenSettings::default());
    }

    #[test]
    fn flags_override_the_first_environment() {
        let text = "[[environments]]\nname = \"dev\"\ndata = \"d\"\n[[environments]]\nname = \"prod\"\npatients = 5\n";
        let o = Overrides {
            patients: Some(7),
            ..Overrides::default()
        };
        let c = parse(text, &o).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.environments[0].data,
            DataSource::Generated {
                patients: 7,
                seed: 1
            }
        );
        assert_eq!(
            c.environments[1].data,
            DataSource::Generated {
                patients: 5,
                seed: 1
            }
        );
        let c = parse(text, &Overrides::default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.environments[0].data,
            DataSource::Folder(PathBuf::from("/cfg/d"))
        );
    }

    #[test]
    fn clients_users_and_token_settings_are_read() {
        let text = "[[environments]]\nname = \"dev\"\naccess_token_lifetime = 570\nrotate_refresh_tokens = false\n\
                    [[environments.clients]]\nclient_id = \"app\"\nkind = \"public\"\nredirect_uris = [\"https://app/cb\"]\nscopes = \"openid\"\n\
                    [[environments.users]]\nusername = \"u\"\npassword = \"p\"\nfhir_user = \"Patient/1\"\n";
        let c = parse(text, &Overrides::default()).unwrap_or_else(|e| panic!("{e}"));
        let env = &c.environments[0];
        assert_eq!(env.tokens.access_lifetime_seconds, 570);
        assert!(!env.tokens.rotate_refresh_tokens);
        assert_eq!(env.clients[0].client_id, "app");
        assert_eq!(env.users[0].fhir_user, "Patient/1");
        assert!(
            parse(
                "[[environments]]\nname = \"x\"\naccess_token_lifetime = 5",
                &Overrides::default()
            )
            .is_err()
        );
        assert!(
            parse("[[environments]]\nname = \"x\"\n[[environments.clients]]\nclient_id = \"a\"\nkind = \"public\"\nbogus = 1", &Overrides::default())
                .is_err_and(|e| e.contains("bogus"))
        );
    }

    #[test]
    fn mistakes_are_named() {
        assert!(parse("lisen = \"x\"", &Overrides::default()).is_err_and(|e| e.contains("lisen")));
        assert!(
            parse(
                "[[environments]]\nname = \"Bad Name\"",
                &Overrides::default()
            )
            .is_err_and(|e| e.contains("Bad Name"))
        );
        assert!(
            parse(
                "[rate_limit]\nrequests_per_second = 0\nburst = 1",
                &Overrides::default()
            )
            .is_err()
        );
        assert!(
            parse(
                "[[faults]]\npath_prefix = \"/\"\nerror_rate = 2.0",
                &Overrides::default()
            )
            .is_err()
        );
    }
}
