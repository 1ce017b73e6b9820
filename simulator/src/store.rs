//! The in-memory resource store of one environment: every version of every resource, the
//! order in which they were written (for `_history`), and an index by patient compartment.
//!
//! The store is plain data behind the environment's lock; it knows nothing of HTTP. Writes
//! stamp `meta.versionId` and `meta.lastUpdated`; a checkpoint and rollback make a transaction
//! bundle all-or-nothing. Versions are held as compact JSON text ([`StoredJson`]); parsed
//! trees come from a cache shared by the store's clones.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::{Value, json};

use crate::compartment::patients_of;
use crate::stored::{ParseCache, StoredJson};

/// How a version came to be, for history bundles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteKind {
    /// Created (POST, or PUT of a new id, or loaded).
    Create,
    /// Updated (PUT of an existing id).
    Update,
    /// Deleted.
    Delete,
}

/// One version of a resource.
#[derive(Debug, Clone)]
pub struct Version {
    /// The version number (1, 2, …).
    pub version_id: u64,
    /// The resource as of this version (compact JSON), or `None` for a deletion.
    pub json: Option<StoredJson>,
    /// When the version was written (FHIR instant).
    pub last_updated: String,
    /// How it was written.
    pub kind: WriteKind,
    /// The patients this version is about, for access decisions: its patient compartments,
    /// plus any other patient it references (a deletion keeps the deleted version's).
    pub patients: Arc<[String]>,
}

/// What a lookup found.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// The resource (at the asked version).
    Found(Version),
    /// The resource exists but is deleted (at the asked version).
    Deleted(Version),
    /// No such resource or version.
    Missing,
}

/// A written version's identity, as `_history` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryKey {
    /// Resource type.
    pub resource_type: String,
    /// Resource id.
    pub id: String,
    /// Version number.
    pub version_id: u64,
}

/// A position in the write log, to roll back to.
#[derive(Debug, Clone, Copy)]
pub struct Checkpoint(usize);

/// The resources of one environment.
#[derive(Debug, Clone, Default)]
pub struct Store {
    resources: BTreeMap<String, BTreeMap<String, Vec<Version>>>,
    log: Vec<HistoryKey>,
    by_patient: HashMap<(String, String), BTreeSet<String>>,
    parsed: Arc<ParseCache>,
}

impl Version {
    /// The resource of this version parsed into a tree (`None` for a deletion); for paths that
    /// are rare or need to change the resource. Hot paths use [`Store::get`] (cached) or the text.
    pub fn resource(&self) -> Option<Value> {
        self.json
            .as_ref()
            .and_then(|j| serde_json::from_str(j.text()).ok())
    }
}

impl Store {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of current (not deleted) resources.
    pub fn len(&self) -> usize {
        self.resources
            .values()
            .flat_map(BTreeMap::values)
            .filter(|v| v.last().is_some_and(|v| v.json.is_some()))
            .count()
    }

    /// True when no resource is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The resource types that have at least one resource.
    pub fn types(&self) -> Vec<&str> {
        self.resources.keys().map(String::as_str).collect()
    }

    /// The current version of `resource_type/id`.
    pub fn current(&self, resource_type: &str, id: &str) -> Lookup {
        match self.versions(resource_type, id).and_then(|v| v.last()) {
            Some(v) if v.json.is_some() => Lookup::Found(v.clone()),
            Some(v) => Lookup::Deleted(v.clone()),
            None => Lookup::Missing,
        }
    }

    /// Version `version_id` of `resource_type/id`.
    pub fn version(&self, resource_type: &str, id: &str, version_id: u64) -> Lookup {
        let found = self
            .versions(resource_type, id)
            .and_then(|vs| vs.iter().find(|v| v.version_id == version_id));
        match found {
            Some(v) if v.json.is_some() => Lookup::Found(v.clone()),
            Some(v) => Lookup::Deleted(v.clone()),
            None => Lookup::Missing,
        }
    }

    /// The current resource parsed (through the cache), if it exists and is not deleted.
    pub fn get(&self, resource_type: &str, id: &str) -> Option<Arc<Value>> {
        self.get_json(resource_type, id)
            .map(|j| self.parsed.parse(j))
    }

    /// The current resource's stored JSON, if it exists and is not deleted.
    pub fn get_json(&self, resource_type: &str, id: &str) -> Option<&StoredJson> {
        self.versions(resource_type, id)?.last()?.json.as_ref()
    }

    /// The patients the current (or, if deleted, the last) version of `resource_type/id` is
    /// about: what access decisions are made on, without parsing the resource.
    pub fn patients_of(&self, resource_type: &str, id: &str) -> Option<&[String]> {
        Some(&self.versions(resource_type, id)?.last()?.patients)
    }

    fn versions(&self, resource_type: &str, id: &str) -> Option<&Vec<Version>> {
        self.resources.get(resource_type)?.get(id)
    }

    /// Every current (not deleted) version of a type with its id, in id order: the stored
    /// text and `lastUpdated`, without parsing anything.
    pub fn current_of_type(&self, resource_type: &str) -> Vec<(&str, &Version)> {
        self.resources
            .get(resource_type)
            .into_iter()
            .flatten()
            .filter_map(|(id, versions)| {
                Some((id.as_str(), versions.last().filter(|v| v.json.is_some())?))
            })
            .collect()
    }

    /// The current versions of a type in patient `patient_id`'s compartment, in id order.
    pub fn current_in_patient_compartment(
        &self,
        resource_type: &str,
        patient_id: &str,
    ) -> Vec<(&str, &Version)> {
        let key = (resource_type.to_string(), patient_id.to_string());
        self.by_patient
            .get(&key)
            .into_iter()
            .flatten()
            .filter_map(|id| {
                let version = self
                    .versions(resource_type, id)?
                    .last()
                    .filter(|v| v.json.is_some())?;
                Some((id.as_str(), version))
            })
            .collect()
    }

    /// Every current resource of a type, parsed (through the cache), in id order.
    pub fn all_of_type(&self, resource_type: &str) -> Vec<Arc<Value>> {
        self.parse_all(self.current_of_type(resource_type))
    }

    /// Current resources of a type in patient `patient_id`'s compartment, parsed, in id order.
    pub fn in_patient_compartment(&self, resource_type: &str, patient_id: &str) -> Vec<Arc<Value>> {
        self.parse_all(self.current_in_patient_compartment(resource_type, patient_id))
    }

    fn parse_all(&self, versions: Vec<(&str, &Version)>) -> Vec<Arc<Value>> {
        versions
            .into_iter()
            .filter_map(|(_, v)| v.json.as_ref())
            .map(|j| self.parsed.parse(j))
            .collect()
    }

    /// Writes `resource` as a new version stamped `last_updated`, keeping its `id`.
    /// Returns the stored version.
    pub fn put(&mut self, mut resource: Value, last_updated: &str) -> Version {
        let (resource_type, id) = type_and_id(&resource);
        let previous = self
            .get_json(&resource_type, &id)
            .map(|j| j.text().to_string());
        let previous: Option<Value> = previous.and_then(|t| serde_json::from_str(&t).ok());
        let versions = self
            .resources
            .entry(resource_type.clone())
            .or_default()
            .entry(id.clone())
            .or_default();
        let version_id = versions.last().map_or(1, |v| v.version_id + 1);
        let kind = if previous.is_some() {
            WriteKind::Update
        } else {
            WriteKind::Create
        };
        stamp_meta(&mut resource, version_id, last_updated);
        let version = Version {
            version_id,
            json: Some(StoredJson::new(&resource)),
            last_updated: last_updated.to_string(),
            kind,
            patients: patients_about(&resource).into(),
        };
        versions.push(version.clone());
        self.reindex(&resource_type, &id, previous.as_ref(), Some(&resource));
        self.log.push(HistoryKey {
            resource_type,
            id,
            version_id,
        });
        version
    }

    /// Stores a resource as loaded from data, keeping its `meta.versionId` and
    /// `meta.lastUpdated` when present (so a seed state is the same on every start).
    pub fn load(&mut self, resource: Value, default_last_updated: &str) -> Version {
        let last_updated = resource["meta"]["lastUpdated"]
            .as_str()
            .unwrap_or(default_last_updated)
            .to_string();
        self.put(resource, &last_updated)
    }

    /// Deletes `resource_type/id`; returns the deletion's version, or `None` if there was
    /// nothing current to delete.
    pub fn delete(&mut self, resource_type: &str, id: &str, last_updated: &str) -> Option<Version> {
        let previous = self.get(resource_type, id)?;
        let versions = self.resources.get_mut(resource_type)?.get_mut(id)?;
        let version_id = versions.last().map_or(1, |v| v.version_id + 1);
        let patients = versions
            .last()
            .map_or_else(|| Arc::from(Vec::new()), |v| Arc::clone(&v.patients));
        let version = Version {
            version_id,
            json: None,
            last_updated: last_updated.to_string(),
            kind: WriteKind::Delete,
            patients,
        };
        versions.push(version.clone());
        self.reindex(resource_type, id, Some(&previous), None);
        self.log.push(HistoryKey {
            resource_type: resource_type.to_string(),
            id: id.to_string(),
            version_id,
        });
        Some(version)
    }

    /// The write log, newest first, optionally limited to a type or one resource.
    pub fn history(
        &self,
        resource_type: Option<&str>,
        id: Option<&str>,
    ) -> Vec<(HistoryKey, Version)> {
        self.log
            .iter()
            .rev()
            .filter(|k| resource_type.is_none_or(|t| t == k.resource_type))
            .filter(|k| id.is_none_or(|i| i == k.id))
            .filter_map(
                |k| match self.version(&k.resource_type, &k.id, k.version_id) {
                    Lookup::Found(v) | Lookup::Deleted(v) => Some((k.clone(), v)),
                    Lookup::Missing => None,
                },
            )
            .collect()
    }

    /// The current position in the write log.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint(self.log.len())
    }

    /// Undoes every write made since `checkpoint`, newest first.
    pub fn rollback(&mut self, checkpoint: Checkpoint) {
        while self.log.len() > checkpoint.0 {
            let Some(key) = self.log.pop() else { break };
            let before = self.get(&key.resource_type, &key.id);
            if let Some(by_id) = self.resources.get_mut(&key.resource_type)
                && let Some(versions) = by_id.get_mut(&key.id)
            {
                versions.pop();
                if versions.is_empty() {
                    by_id.remove(&key.id);
                }
            }
            let after = self.get(&key.resource_type, &key.id);
            self.reindex(
                &key.resource_type,
                &key.id,
                before.as_deref(),
                after.as_deref(),
            );
        }
    }

    fn reindex(&mut self, resource_type: &str, id: &str, old: Option<&Value>, new: Option<&Value>) {
        for patient in old.map(compartment_patients).unwrap_or_default() {
            if let Some(ids) = self
                .by_patient
                .get_mut(&(resource_type.to_string(), patient))
            {
                ids.remove(id);
            }
        }
        for patient in new.map(compartment_patients).unwrap_or_default() {
            self.by_patient
                .entry((resource_type.to_string(), patient))
                .or_default()
                .insert(id.to_string());
        }
    }
}

/// The patients whose compartment a resource belongs to: the R4 CompartmentDefinition table,
/// joined with every compartment search parameter the search engine knows, so the index is a
/// superset of what searches and `$everything` need.
fn compartment_patients(resource: &Value) -> Vec<String> {
    let mut ids = patients_of(resource);
    for id in crate::search::patient_compartment_of(resource) {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids
}

/// The patients a resource is about, for access decisions: its compartments, plus every patient
/// it references anywhere else (a reference outside the compartment paths still reveals data
/// about that patient, so access to it must reach that patient too).
pub fn patients_about(resource: &Value) -> Vec<String> {
    let mut ids = compartment_patients(resource);
    for reference in crate::compartment::references_in(resource) {
        if let Some(id) = crate::compartment::patient_id_of_reference(&reference)
            && !ids.iter().any(|i| i == id)
        {
            ids.push(id.to_string());
        }
    }
    ids
}

/// The search engine reads the store directly; the compartment index is its fast path.
impl crate::search::ResourceSource for Store {
    fn get(&self, resource_type: &str, id: &str) -> Option<Arc<Value>> {
        Store::get(self, resource_type, id)
    }

    fn all_of_type(&self, resource_type: &str) -> Vec<Arc<Value>> {
        Store::all_of_type(self, resource_type)
    }

    fn in_patient_compartment(
        &self,
        resource_type: &str,
        patient_id: &str,
    ) -> Option<Vec<Arc<Value>>> {
        Some(Store::in_patient_compartment(
            self,
            resource_type,
            patient_id,
        ))
    }
}

fn type_and_id(resource: &Value) -> (String, String) {
    let t = resource["resourceType"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let id = resource["id"].as_str().unwrap_or_default().to_string();
    (t, id)
}

/// Sets `meta.versionId` and `meta.lastUpdated`, keeping the rest of `meta` (labels, tags), and
/// puts `resourceType`, `id` and `meta` first, the way FHIR servers print resources.
fn stamp_meta(resource: &mut Value, version_id: u64, last_updated: &str) {
    let Value::Object(map) = resource else { return };
    let mut meta = match map.remove("meta") {
        Some(Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    meta.insert("versionId".into(), json!(version_id.to_string()));
    meta.insert("lastUpdated".into(), json!(last_updated));
    let mut ordered = serde_json::Map::with_capacity(map.len() + 1);
    for key in ["resourceType", "id"] {
        if let Some(v) = map.remove(key) {
            ordered.insert(key.into(), v);
        }
    }
    ordered.insert("meta".into(), Value::Object(meta));
    ordered.append(map);
    *map = ordered;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(id: &str, patient: &str) -> Value {
        json!({"resourceType": "Observation", "id": id, "subject": {"reference": format!("Patient/{patient}")}})
    }

    #[test]
    fn versions_accumulate_and_deletes_are_remembered() {
        let mut s = Store::new();
        assert_eq!(s.put(obs("o1", "a"), "t1").version_id, 1);
        let v2 = s.put(obs("o1", "b"), "t2");
        assert_eq!((v2.version_id, v2.kind), (2, WriteKind::Update));
        assert_eq!(
            v2.resource().map(|r| r["meta"]["versionId"].clone()),
            Some(json!("2"))
        );
        assert!(matches!(
            s.version("Observation", "o1", 1),
            Lookup::Found(_)
        ));
        assert!(s.delete("Observation", "o1", "t3").is_some());
        assert!(matches!(s.current("Observation", "o1"), Lookup::Deleted(_)));
        assert!(s.delete("Observation", "o1", "t4").is_none());
        assert_eq!(s.history(Some("Observation"), Some("o1")).len(), 3);
        assert!(matches!(s.current("Observation", "nope"), Lookup::Missing));
    }

    #[test]
    fn compartment_index_follows_updates_and_deletes() {
        let mut s = Store::new();
        s.put(obs("o1", "a"), "t1");
        assert_eq!(s.in_patient_compartment("Observation", "a").len(), 1);
        s.put(obs("o1", "b"), "t2");
        assert!(s.in_patient_compartment("Observation", "a").is_empty());
        assert_eq!(s.in_patient_compartment("Observation", "b").len(), 1);
        s.delete("Observation", "o1", "t3");
        assert!(s.in_patient_compartment("Observation", "b").is_empty());
    }

    #[test]
    fn rollback_undoes_everything_since_the_checkpoint() {
        let mut s = Store::new();
        s.put(obs("o1", "a"), "t1");
        let before = s.clone();
        let cp = s.checkpoint();
        s.put(obs("o1", "b"), "t2");
        s.put(obs("o2", "b"), "t2");
        s.delete("Observation", "o1", "t3");
        s.rollback(cp);
        assert_eq!(s.len(), before.len());
        assert_eq!(s.get("Observation", "o1"), before.get("Observation", "o1"));
        assert!(s.get("Observation", "o2").is_none());
        assert_eq!(s.in_patient_compartment("Observation", "a").len(), 1);
        assert!(s.in_patient_compartment("Observation", "b").is_empty());
        assert_eq!(s.history(None, None).len(), 1);
    }
}
