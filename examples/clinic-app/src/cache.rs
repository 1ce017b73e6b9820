//! The local cache the backend sync job fills: per patient, the demographics summary and the
//! recent lab rows.

use std::collections::HashMap;
use std::sync::RwLock;

use serde_json::Value;

/// One cached patient.
#[derive(Debug, Clone)]
pub(crate) struct CachedPatient {
    /// `{"id","name","birthDate","gender","mrn"}`.
    pub(crate) summary: Value,
    /// Lab rows, newest first.
    pub(crate) labs: Vec<Value>,
}

/// Cached patients by id.
#[derive(Debug, Default)]
pub(crate) struct Cache {
    patients: RwLock<HashMap<String, CachedPatient>>,
}

impl Cache {
    /// The cached patient `id`, if the sync job saw it.
    pub(crate) fn get(&self, id: &str) -> Option<CachedPatient> {
        self.patients
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    /// Replaces the whole cache with a sync job's result.
    pub(crate) fn replace(&self, patients: HashMap<String, CachedPatient>) {
        *self.patients.write().unwrap_or_else(|p| p.into_inner()) = patients;
    }
}
