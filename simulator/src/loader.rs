//! Filling an environment: generate patients in-process, or load a folder of our own output
//! (NDJSON or bundles) or of Synthea FHIR R4 transaction bundles (`urn:uuid:` fullUrls resolved).

use std::path::{Path, PathBuf};

use fhirdrill_synthetic_data::Generator;
use fhirdrill_synthetic_data::dates::DEFAULT_REFERENCE_DATE;
use rayon::prelude::*;
use serde_json::Value;

use crate::config::{DataSource, EnvironmentConfig};
use crate::outcome::FhirError;
use crate::rest::load_bundle;
use crate::rest::types::{check_resource, is_storable_type};
use crate::store::Store;

/// Why data could not be loaded. Each names the file (and line) so it can be fixed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A file or folder could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A line or file is not a valid resource.
    #[error("{path}:{line}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The line (1 for whole-file JSON).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The folder holds no NDJSON or JSON files.
    #[error(
        "{0} has no .ndjson or .json FHIR files (expected `fhirdrill generate` output or Synthea bundles)"
    )]
    Empty(PathBuf),
}

/// Builds the seed store of one environment; `now` stamps resources without `meta.lastUpdated`.
pub fn load_environment(config: &EnvironmentConfig, now: &str) -> Result<Store, LoadError> {
    match &config.data {
        DataSource::Generated { patients, seed } => {
            Ok(generate(&config.name, *patients, *seed, now))
        }
        DataSource::Folder(dir) => load_folder(dir, now),
    }
}

/// Generates `patients` patients of `seed` (in parallel, inserted in index order).
fn generate(environment: &str, patients: u64, seed: u64, now: &str) -> Store {
    let generator = Generator::new(seed, DEFAULT_REFERENCE_DATE, environment);
    let mut store = Store::new();
    for resource in generator.shared_resources() {
        store.load(resource.clone(), now);
    }
    let mut start = 0;
    while start < patients {
        let end = (start + 1024).min(patients);
        let records: Vec<_> = (start..end)
            .into_par_iter()
            .map(|i| generator.patient(i))
            .collect();
        for record in records {
            for resource in record.resources {
                store.load(resource, now);
            }
        }
        start = end;
    }
    store
}

fn load_folder(dir: &Path, now: &str) -> Result<Store, LoadError> {
    let read_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| LoadError::Read { path, source }
    };
    let mut files = Vec::new();
    for folder in [dir.to_path_buf(), dir.join("fhir")] {
        if folder != dir && !folder.is_dir() {
            continue;
        }
        for entry in std::fs::read_dir(&folder).map_err(read_err(&folder))? {
            let path = entry.map_err(read_err(&folder))?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let wanted =
                (name.ends_with(".ndjson") && name != "canaries.ndjson") || name.ends_with(".json");
            if path.is_file() && wanted {
                files.push(path);
            }
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(LoadError::Empty(dir.to_path_buf()));
    }
    let mut store = Store::new();
    for file in &files {
        let text = std::fs::read_to_string(file).map_err(read_err(file))?;
        if file.extension().is_some_and(|e| e == "ndjson") {
            load_ndjson(&mut store, file, &text, now)?;
        } else {
            load_json(&mut store, file, &text, now)?;
        }
    }
    Ok(store)
}

fn invalid(path: &Path, line: usize, message: impl Into<String>) -> LoadError {
    LoadError::Invalid {
        path: path.to_path_buf(),
        line,
        message: message.into(),
    }
}

fn load_ndjson(store: &mut Store, path: &Path, text: &str, now: &str) -> Result<(), LoadError> {
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let value: Value = serde_json::from_str(line)
            .map_err(|e| invalid(path, i + 1, format!("not JSON: {e}")))?;
        load_resource(store, value, now).map_err(|e| invalid(path, i + 1, e.diagnostics))?;
    }
    Ok(())
}

fn load_json(store: &mut Store, path: &Path, text: &str, now: &str) -> Result<(), LoadError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| invalid(path, e.line(), format!("not JSON: {e}")))?;
    let result = match (value["resourceType"].as_str(), value["type"].as_str()) {
        (Some("Bundle"), Some("transaction" | "batch")) => {
            load_bundle(store, &value, now).map(|_| ())
        }
        (Some("Bundle"), Some("collection" | "searchset" | "history")) => {
            let empty = Vec::new();
            value["entry"]
                .as_array()
                .unwrap_or(&empty)
                .iter()
                .filter_map(|e| e.get("resource").cloned())
                .try_for_each(|r| load_resource(store, r, now))
        }
        _ => load_resource(store, value, now),
    };
    result.map_err(|e| invalid(path, 1, e.diagnostics))
}

fn load_resource(store: &mut Store, resource: Value, now: &str) -> Result<(), FhirError> {
    let resource_type = resource["resourceType"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if !is_storable_type(&resource_type) {
        return Err(FhirError::bad_request(format!(
            "{resource_type:?} is not a FHIR R4 resource type this server stores"
        )));
    }
    check_resource(&resource, &resource_type)?;
    if resource.get("id").is_none() {
        return Err(FhirError::bad_request(format!(
            "a {resource_type} has no id: loaded resources need ids"
        )));
    }
    store.load(resource, now);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_environments_hold_patients_and_the_directory() {
        let config = EnvironmentConfig {
            name: "sandbox".into(),
            data: DataSource::Generated {
                patients: 3,
                seed: 1,
            },
            clients: Vec::new(),
            users: Vec::new(),
            tokens: crate::smart::authority::TokenSettings::default(),
        };
        let store = load_environment(&config, "2026-01-01T00:00:00Z").unwrap_or_default();
        assert_eq!(store.all_of_type("Patient").len(), 3);
        assert_eq!(store.all_of_type("Practitioner").len(), 24);
        let patient = &store.all_of_type("Patient")[0];
        let id = patient["id"].as_str().unwrap_or_default();
        assert!(!store.in_patient_compartment("Observation", id).is_empty());
    }

    #[test]
    fn bad_lines_are_located() {
        let mut store = Store::new();
        let text = "{\"resourceType\":\"Patient\",\"id\":\"a\"}\n{not json}\n";
        let err = load_ndjson(&mut store, Path::new("P.ndjson"), text, "t")
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.starts_with("P.ndjson:2: not JSON")));
        let err = load_ndjson(
            &mut store,
            Path::new("P.ndjson"),
            "{\"resourceType\":\"Patient\"}",
            "t",
        )
        .err();
        assert!(err.is_some_and(|e| e.to_string().contains("has no id")));
    }
}
