//! Test helpers: an in-memory [`ResourceSource`] and request-pair builders.

use super::evaluate::{ResourceSource, patient_compartment_of};
use serde_json::Value;
use std::cell::RefCell;
use std::sync::Arc;

/// How the in-memory source answers compartment requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Index {
    /// No index: `in_patient_compartment` returns `None`.
    None,
    /// An exact index computed from the registry's compartment parameters.
    Exact,
    /// A sloppy index that returns every resource of the type (a superset).
    Superset,
}

/// An in-memory store that records which access paths the engine used.
pub(crate) struct MemorySource {
    /// Every resource, in insertion order.
    resources: Vec<Arc<Value>>,
    /// The compartment behaviour.
    index: Index,
    /// When true, `all_of_type` returns resources in reverse insertion order.
    reversed: bool,
    /// Log of calls: `get:T/id`, `all:T`, `compartment:T/id`.
    pub(crate) calls: RefCell<Vec<String>>,
}

impl MemorySource {
    /// A source without a compartment index.
    pub(crate) fn new(resources: Vec<Value>) -> Self {
        Self {
            resources: resources.into_iter().map(Arc::new).collect(),
            index: Index::None,
            reversed: false,
            calls: RefCell::new(Vec::new()),
        }
    }

    /// The same source with another compartment behaviour.
    pub(crate) fn with_index(mut self, index: Index) -> Self {
        self.index = index;
        self
    }

    /// The same source returning `all_of_type` in reverse order.
    pub(crate) fn reversed(mut self) -> Self {
        self.reversed = true;
        self
    }

    /// Resources of one type in insertion order.
    fn of_type(&self, resource_type: &str) -> Vec<Arc<Value>> {
        self.resources
            .iter()
            .filter(|r| r.get("resourceType").and_then(Value::as_str) == Some(resource_type))
            .cloned()
            .collect()
    }
}

impl ResourceSource for MemorySource {
    fn get(&self, resource_type: &str, id: &str) -> Option<Arc<Value>> {
        self.calls
            .borrow_mut()
            .push(format!("get:{resource_type}/{id}"));
        self.of_type(resource_type)
            .into_iter()
            .find(|r| r.get("id").and_then(Value::as_str) == Some(id))
    }

    fn all_of_type(&self, resource_type: &str) -> Vec<Arc<Value>> {
        self.calls.borrow_mut().push(format!("all:{resource_type}"));
        let mut out = self.of_type(resource_type);
        if self.reversed {
            out.reverse();
        }
        out
    }

    fn in_patient_compartment(
        &self,
        resource_type: &str,
        patient_id: &str,
    ) -> Option<Vec<Arc<Value>>> {
        self.calls
            .borrow_mut()
            .push(format!("compartment:{resource_type}/{patient_id}"));
        match self.index {
            Index::None => None,
            Index::Superset => Some(self.of_type(resource_type)),
            Index::Exact => Some(
                self.of_type(resource_type)
                    .into_iter()
                    .filter(|r| patient_compartment_of(r).iter().any(|p| p == patient_id))
                    .collect(),
            ),
        }
    }
}

/// Splits `a=1&b=2` into decoded pairs (values in tests never contain `&`).
pub(crate) fn pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}
