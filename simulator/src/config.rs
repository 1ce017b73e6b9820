//! Simulator configuration: a TOML file (`--config sim.toml`) whose settings the command line
//! can override. Unknown keys are errors that name the key, so typos do not pass silently.
//!
//! ```toml
//! listen = "127.0.0.1:8080"          # loopback by default; port 0 picks a free port
//! max_body_bytes = 10485760         # larger request bodies get 413
//!
//! [[environments]]                   # default: one environment, "sandbox"
//! name = "sandbox"                   # FHIR base: http://<listen>/sandbox/fhir
//! patients = 100                     # generated in-process…
//! seed = 1
//! # data = "synthetic"               # …or loaded from a folder of NDJSON or bundles
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentConfig {
    /// Name (and first path segment of the FHIR base).
    pub name: String,
    /// Its data.
    pub data: DataSource,
}

/// The whole simulator configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
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
            environments.push(EnvironmentConfig {
                name: env.name,
                data,
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
        Ok(Self {
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
        assert_eq!(
            c.environments,
            vec![EnvironmentConfig {
                name: "sandbox".into(),
                data: DataSource::Generated {
                    patients: 100,
                    seed: 1
                }
            }]
        );
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
