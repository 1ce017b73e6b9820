//! Environments (sandbox, staging, prod-like…): each has its own FHIR base path and its own
//! data, restorable to the seed state with `POST /_sim/reset`.

use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::rest::BulkJobs;
use crate::store::Store;

/// One simulated EHR environment.
#[derive(Debug)]
pub struct Environment {
    name: String,
    store: RwLock<Store>,
    seed: Store,
    jobs: Mutex<BulkJobs>,
}

impl Environment {
    /// An environment named `name` whose seed state is `seed`.
    pub fn new(name: &str, seed: Store) -> Self {
        Self {
            name: name.to_string(),
            store: RwLock::new(seed.clone()),
            seed,
            jobs: Mutex::new(BulkJobs::default()),
        }
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

    /// Restores the seed state, discarding every change since start and every export job.
    pub fn reset(&self) {
        let mut store = self.write();
        *store = self.seed.clone();
        // Cleared under the write lock: a kick-off holds the read lock until its job is kept.
        self.jobs().clear();
    }

    /// The number of resources in the seed state.
    pub fn seed_len(&self) -> usize {
        self.seed.len()
    }
}

/// Whether `name` can name an environment (it becomes a URL path segment).
pub fn is_valid_name(name: &str) -> bool {
    (1..=40).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && name != "_sim"
}
