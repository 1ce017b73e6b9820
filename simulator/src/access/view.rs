//! The store as one grant sees it: a [`ResourceSource`] that hides every resource the grant
//! does not reach, so searches, chains, `_has` and includes evaluated over it cannot reveal
//! anything outside the grant.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::Value;

use super::{Grant, is_patient_type};
use crate::search::ResourceSource;
use crate::store::Store;

/// The store, filtered to what `grant` may see.
pub struct Visible<'a> {
    store: &'a Store,
    grant: &'a Grant,
}

impl<'a> Visible<'a> {
    /// The view of `store` through `grant`.
    pub fn new(store: &'a Store, grant: &'a Grant) -> Self {
        Self { store, grant }
    }

    /// Whether the grant sees this current resource.
    pub fn sees(&self, resource: &Value) -> bool {
        let resource_type = resource["resourceType"].as_str().unwrap_or_default();
        let id = resource["id"].as_str().unwrap_or_default();
        let patients = self
            .store
            .patients_of(resource_type, id)
            .unwrap_or_default();
        let needs_body = self.grant.restricts(resource_type);
        self.grant.sees(
            resource_type,
            patients,
            needs_body.then_some(resource),
            self.store,
        )
    }

    fn visible(&self, resources: Vec<Arc<Value>>) -> Vec<Arc<Value>> {
        resources.into_iter().filter(|r| self.sees(r)).collect()
    }

    /// The resources of a type in the compartments of `patients`, in id order, once each.
    fn in_compartments(&self, resource_type: &str, patients: &BTreeSet<String>) -> Vec<Arc<Value>> {
        let mut ids = BTreeSet::new();
        let mut out = Vec::new();
        for patient in patients {
            for (id, _) in self
                .store
                .current_in_patient_compartment(resource_type, patient)
            {
                if ids.insert(id.to_string())
                    && let Some(resource) = self.store.get(resource_type, id)
                {
                    out.push(resource);
                }
            }
        }
        out.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
        out
    }
}

impl ResourceSource for Visible<'_> {
    fn get(&self, resource_type: &str, id: &str) -> Option<Arc<Value>> {
        self.store.get(resource_type, id).filter(|r| self.sees(r))
    }

    fn all_of_type(&self, resource_type: &str) -> Vec<Arc<Value>> {
        if !self.grant.may(super::Action::Read, resource_type)
            && !self.grant.may(super::Action::Search, resource_type)
        {
            return Vec::new();
        }
        match self.grant.patient_bound(resource_type) {
            Some(patients) if is_patient_type(resource_type) => {
                self.visible(self.in_compartments(resource_type, &patients))
            }
            _ => self.visible(self.store.all_of_type(resource_type)),
        }
    }

    fn in_patient_compartment(
        &self,
        resource_type: &str,
        patient_id: &str,
    ) -> Option<Vec<Arc<Value>>> {
        Some(self.visible(self.store.in_patient_compartment(resource_type, patient_id)))
    }
}
