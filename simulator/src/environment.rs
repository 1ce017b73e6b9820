//! Environments (sandbox, staging, prod-like…): each has its own FHIR base path and its own
//! data, restorable to the seed state with `POST /_sim/reset`.

use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::rest::BulkJobs;
use crate::smart::authority::{Authority, TokenSettings};
use crate::smart::registry::Registrations;
use crate::smart::tokens::TokenStore;
use crate::store::Store;

/// One simulated EHR environment.
#[derive(Debug)]
pub struct Environment {
    name: String,
    store: RwLock<Store>,
    seed: Store,
    jobs: Mutex<BulkJobs>,
    auth: Authority,
}

impl Environment {
    /// An environment named `name` whose seed state is `seed`.
    pub fn new(name: &str, seed: Store) -> Self {
        Self {
            name: name.to_string(),
            store: RwLock::new(seed.clone()),
            seed,
            jobs: Mutex::new(BulkJobs::default()),
            auth: Authority::new(Registrations::default(), TokenSettings::default(), None),
        }
    }

    /// The same environment with its authorization server (registrations, keys, settings).
    pub fn with_authority(mut self, auth: Authority) -> Self {
        self.auth = auth;
        self
    }

    /// The environment's authorization server.
    pub fn auth(&self) -> &Authority {
        &self.auth
    }

    /// The environment's name (also the first segment of its FHIR base path).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The FHIR base path, e.g. `/sandbox/fhir`.
    pub fn base_path(&self) -> String {
        format!("/{}/fhir", self.name)
    }

    /// Read access to the store. A panic while holding the lock cannot leave the store
    /// half-written (writes are single calls or rolled back), so a poisoned lock is recovered.
    pub fn read(&self) -> RwLockReadGuard<'_, Store> {
        self.store
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Write access to the store.
    pub fn write(&self) -> RwLockWriteGuard<'_, Store> {
        self.store
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The environment's Bulk Data export jobs. Lock order: the store first, then the jobs.
    pub(crate) fn jobs(&self) -> MutexGuard<'_, BulkJobs> {
        self.jobs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The tokens this environment issued.
    pub fn tokens(&self) -> &TokenStore {
        self.auth.tokens()
    }

    /// Why a bearer token this environment never issued is refused, as precisely as can be
    /// told without trusting it.
    /// `issuer` and `fhir_base` are this environment's; `now_unix` is the simulated time.
    pub fn diagnose_unknown_token(
        &self,
        token: &str,
        issuer: &str,
        fhir_base: &str,
        now_unix: i64,
    ) -> String {
        let parsed = match crate::smart::jwt::parse_compact(token, crate::smart::jwt::MAX_TOKEN_LEN)
        {
            Ok(parsed) => parsed,
            Err(e) => return format!("the bearer token is not one this environment issued ({e})"),
        };
        let claimed = parsed.claims.get("iss").and_then(serde_json::Value::as_str);
        if let Some(other) = claimed.filter(|i| *i != issuer) {
            return format!(
                "the bearer token was issued by {}, not by this environment ({issuer}): a token \
                 is accepted only where it was issued",
                crate::smart::jwt::shown(other)
            );
        }
        match self
            .auth
            .keys()
            .map(|k| k.verify(token, issuer, fhir_base, now_unix))
        {
            Ok(Err(e)) => format!("the bearer token was refused: {e}"),
            _ => "the bearer token is not one this environment issued (tokens do not survive a \
                  restart of the simulator)"
                .into(),
        }
    }

    /// Restores the seed state, discarding every change since start and every export job.
    pub fn reset(&self) {
        let mut store = self.write();
        *store = self.seed.clone();
        // Cleared under the write lock: a kick-off holds the read lock until its job is kept.
        self.jobs().clear();
        self.auth.reset();
    }

    /// The number of resources in the seed state.
    pub fn seed_len(&self) -> usize {
        self.seed.len()
    }
}

/// An environment as configured: its data, its registrations (configured, or built-in test
/// clients and users), its token settings; keys are kept under `key_dir` when given.
pub fn from_config(
    config: &crate::config::EnvironmentConfig,
    store: Store,
    key_dir: Option<&std::path::Path>,
) -> Result<Environment, String> {
    use crate::smart::registry;
    let clients = if config.clients.is_empty() {
        registry::default_clients(key_dir.map(|d| d.join("clients")).as_deref())
            .map_err(|e| format!("cannot make the built-in test clients' keys: {e}"))?
    } else {
        config
            .clients
            .iter()
            .map(registry::client_from_config)
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?
    };
    let users = if config.users.is_empty() {
        registry::default_users(&store)
    } else {
        let panels = registry::practitioner_panels(&store);
        config
            .users
            .iter()
            .map(|u| registry::user_from_config(u, &store, &panels))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?
    };
    let authority = Authority::new(
        Registrations::new(clients, users),
        config.tokens.clone(),
        key_dir.map(|d| d.join("signing")),
    );
    Ok(Environment::new(&config.name, store).with_authority(authority))
}

/// Whether `name` can name an environment (it becomes a URL path segment).
pub fn is_valid_name(name: &str) -> bool {
    (1..=40).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && name != "_sim"
}
