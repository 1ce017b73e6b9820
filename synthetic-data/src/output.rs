//! Writing a population to disk: Bulk Data NDJSON (one `<ResourceType>.ndjson` per type),
//! one FHIR transaction Bundle per patient (`fhir/<patient-id>.json`), and `canaries.ndjson`.
//!
//! Patients are generated in parallel in fixed-size chunks and written in index order, so the
//! bytes never depend on the thread count and memory stays flat whatever the population size.
//! Everything is written under `.fhirdrill-partial/` inside the output folder and moved into
//! place only when the run succeeds: an interrupted run never leaves a file that looks complete.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use rayon::prelude::*;
use serde_json::{Value, json};

use crate::fhir::meta;
use crate::record::{Generator, PatientRecord};

/// Patients generated per parallel chunk: large enough to keep every core busy, small enough
/// that memory does not grow with the population.
const CHUNK: u64 = 128;

/// The staging folder inside the output folder.
pub const STAGING_DIR: &str = ".fhirdrill-partial";

/// Which files to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// Bulk Data NDJSON only.
    Ndjson,
    /// Transaction bundles only.
    Bundle,
    /// Both.
    Both,
}

impl OutputFormat {
    fn ndjson(self) -> bool {
        matches!(self, Self::Ndjson | Self::Both)
    }

    fn bundles(self) -> bool {
        matches!(self, Self::Bundle | Self::Both)
    }
}

/// What a write produced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteSummary {
    /// Patients written.
    pub patients: u64,
    /// Resources written (each counted once, whatever the formats).
    pub resources: u64,
    /// Bytes written across all files.
    pub bytes: u64,
}

/// Why a population could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The output folder has files in it and overwriting was not allowed.
    #[error(
        "output folder {path} is not empty: choose an empty or new folder, or pass --force to replace its files"
    )]
    NotEmpty {
        /// The folder.
        path: PathBuf,
    },
    /// A file or folder could not be created, written or moved.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file or folder concerned.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The worker threads could not be started.
    #[error("cannot start worker threads: {0}")]
    Threads(String),
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> WriteError + '_ {
    move |source| WriteError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// How to write: where, which formats, how many threads, and whether to replace files.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    /// The output folder (created if missing).
    pub out: PathBuf,
    /// Which files.
    pub format: OutputFormat,
    /// Worker threads (0 = one per core).
    pub threads: usize,
    /// Replace files in a non-empty output folder.
    pub force: bool,
    /// Also write the shared resources (the first shard does).
    pub include_shared: bool,
}

/// One patient's output, serialized by a worker, waiting to be written in order.
struct Serialized {
    resources: u64,
    /// NDJSON lines grouped by resource type, in generation order within each type.
    ndjson: BTreeMap<String, Vec<u8>>,
    canary: Vec<u8>,
}

/// Generates patients `range` of `generator` and writes them under `options.out`.
/// `progress` is called with the number of patients written so far.
pub fn write_population(
    generator: &Generator,
    range: Range<u64>,
    options: &WriteOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<WriteSummary, WriteError> {
    prepare_output_dir(&options.out, options.force)?;
    let staging = options.out.join(STAGING_DIR);
    let result = write_staged(generator, range, options, &staging, progress)
        .and_then(|summary| publish(&staging, &options.out).map(|()| summary));
    if result.is_err() {
        // Leave nothing half-written behind; the error says what failed.
        let _ = fs::remove_dir_all(&staging);
    }
    result
}

/// Creates the output folder, or checks that it may be written into.
fn prepare_output_dir(out: &Path, force: bool) -> Result<(), WriteError> {
    fs::create_dir_all(out).map_err(io_error(out))?;
    let mut entries = fs::read_dir(out).map_err(io_error(out))?;
    if entries.next().is_some() && !force {
        return Err(WriteError::NotEmpty {
            path: out.to_path_buf(),
        });
    }
    let staging = out.join(STAGING_DIR);
    if staging.exists() {
        fs::remove_dir_all(&staging).map_err(io_error(&staging))?;
    }
    // Probe writability now, so a read-only folder fails before any work is done.
    fs::create_dir(&staging).map_err(io_error(&staging))
}

fn write_staged(
    generator: &Generator,
    range: Range<u64>,
    options: &WriteOptions,
    staging: &Path,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<WriteSummary, WriteError> {
    let bundle_dir = staging.join("fhir");
    if options.format.bundles() {
        fs::create_dir_all(&bundle_dir).map_err(io_error(&bundle_dir))?;
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(options.threads)
        .build()
        .map_err(|e| WriteError::Threads(e.to_string()))?;
    let mut sink = Sink::new(staging, options.format.ndjson());
    if options.include_shared {
        sink.write_shared(generator.shared_resources(), options.format, &bundle_dir)?;
    }
    let (sender, receiver) = mpsc::sync_channel::<Result<Vec<Serialized>, WriteError>>(2);
    std::thread::scope(|scope| {
        let writer = scope.spawn(move || -> Result<Sink, WriteError> {
            for chunk in receiver {
                for patient in chunk? {
                    sink.write_patient(&patient)?;
                }
                progress(sink.summary.patients);
            }
            Ok(sink)
        });
        let mut start = range.start;
        while start < range.end {
            let end = (start + CHUNK).min(range.end);
            let chunk: Result<Vec<Serialized>, WriteError> = pool.install(|| {
                (start..end)
                    .into_par_iter()
                    .map(|i| serialize_patient(&generator.patient(i), options.format, &bundle_dir))
                    .collect()
            });
            let failed = chunk.is_err();
            if sender.send(chunk).is_err() || failed {
                break;
            }
            start = end;
        }
        drop(sender);
        let sink = writer
            .join()
            .map_err(|_| WriteError::Threads("the writer thread panicked".into()))??;
        sink.finish()
    })
}

/// Serializes one patient: NDJSON lines by type, the canary line, and (written right away, as
/// each patient has its own file) the transaction bundle.
fn serialize_patient(
    record: &PatientRecord,
    format: OutputFormat,
    bundle_dir: &Path,
) -> Result<Serialized, WriteError> {
    let mut ndjson: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    if format.ndjson() {
        for resource in &record.resources {
            let kind = resource["resourceType"].as_str().unwrap_or("Unknown");
            let buf = ndjson.entry(kind.to_string()).or_default();
            push_line(buf, resource);
        }
    }
    if format.bundles() {
        let path = bundle_dir.join(format!("{}.json", record.patient_id));
        write_bundle(&path, &record.patient_id, &record.resources)?;
    }
    let mut canary = Vec::with_capacity(256);
    // A struct of strings always serializes.
    let _ = serde_json::to_writer(&mut canary, &record.canary);
    canary.push(b'\n');
    Ok(Serialized {
        resources: record.resources.len() as u64,
        ndjson,
        canary,
    })
}

fn push_line(buf: &mut Vec<u8>, value: &Value) {
    // Serializing a `Value` into memory cannot fail.
    let _ = serde_json::to_writer(&mut *buf, value);
    buf.push(b'\n');
}

/// A FHIR transaction Bundle that creates or replaces each resource under its own id, so any
/// FHIR server can load it and the references between resources stay valid.
pub fn transaction_bundle(id: &str, resources: &[Value]) -> Value {
    let entries: Vec<Value> = resources
        .iter()
        .map(|r| {
            let kind = r["resourceType"].as_str().unwrap_or_default();
            let rid = r["id"].as_str().unwrap_or_default();
            json!({
                "fullUrl": format!("urn:uuid:{rid}"),
                "resource": r,
                "request": {"method": "PUT", "url": format!("{kind}/{rid}")}
            })
        })
        .collect();
    let mut bundle_meta = meta("", "");
    if let Value::Object(m) = &mut bundle_meta {
        m.remove("versionId");
        m.remove("lastUpdated");
    }
    json!({
        "resourceType": "Bundle",
        "id": id,
        "meta": bundle_meta,
        "type": "transaction",
        "entry": entries
    })
}

fn write_bundle(path: &Path, id: &str, resources: &[Value]) -> Result<u64, WriteError> {
    let bytes = serde_json::to_vec(&transaction_bundle(id, resources))
        .map_err(|e| io_error(path)(e.into()))?;
    fs::write(path, &bytes).map_err(io_error(path))?;
    Ok(bytes.len() as u64)
}

/// The ordered writer: NDJSON files opened on first use, and `canaries.ndjson`.
struct Sink {
    dir: PathBuf,
    ndjson: bool,
    files: BTreeMap<String, BufWriter<File>>,
    summary: WriteSummary,
}

impl Sink {
    fn new(dir: &Path, ndjson: bool) -> Self {
        Self {
            dir: dir.to_path_buf(),
            ndjson,
            files: BTreeMap::new(),
            summary: WriteSummary::default(),
        }
    }

    fn append(&mut self, name: &str, bytes: &[u8]) -> Result<(), WriteError> {
        if !self.files.contains_key(name) {
            let path = self.dir.join(name);
            let file = File::create(&path).map_err(io_error(&path))?;
            self.files
                .insert(name.to_string(), BufWriter::with_capacity(1 << 16, file));
        }
        let path = self.dir.join(name);
        if let Some(file) = self.files.get_mut(name) {
            file.write_all(bytes).map_err(io_error(&path))?;
        }
        self.summary.bytes += bytes.len() as u64;
        Ok(())
    }

    fn write_shared(
        &mut self,
        shared: &[Value],
        format: OutputFormat,
        bundle_dir: &Path,
    ) -> Result<(), WriteError> {
        if format.ndjson() {
            for resource in shared {
                let kind = resource["resourceType"].as_str().unwrap_or("Unknown");
                let mut line = Vec::new();
                push_line(&mut line, resource);
                self.append(&format!("{kind}.ndjson"), &line)?;
            }
        }
        if format.bundles() {
            let bytes = write_bundle(&bundle_dir.join("shared.json"), "shared", shared)?;
            self.summary.bytes += bytes;
        }
        self.summary.resources += shared.len() as u64;
        Ok(())
    }

    fn write_patient(&mut self, patient: &Serialized) -> Result<(), WriteError> {
        if self.ndjson {
            for (kind, lines) in &patient.ndjson {
                self.append(&format!("{kind}.ndjson"), lines)?;
            }
        }
        self.append("canaries.ndjson", &patient.canary)?;
        self.summary.patients += 1;
        self.summary.resources += patient.resources;
        Ok(())
    }

    fn finish(mut self) -> Result<WriteSummary, WriteError> {
        for (name, file) in &mut self.files {
            let path = self.dir.join(name);
            file.flush().map_err(io_error(&path))?;
        }
        Ok(self.summary)
    }
}

/// Moves every staged file and folder into the output folder, replacing same-named ones.
fn publish(staging: &Path, out: &Path) -> Result<(), WriteError> {
    let entries = fs::read_dir(staging).map_err(io_error(staging))?;
    for entry in entries {
        let entry = entry.map_err(io_error(staging))?;
        let target = out.join(entry.file_name());
        if target.is_dir() {
            fs::remove_dir_all(&target).map_err(io_error(&target))?;
        } else if target.exists() {
            fs::remove_file(&target).map_err(io_error(&target))?;
        }
        fs::rename(entry.path(), &target).map_err(io_error(&target))?;
    }
    fs::remove_dir(staging).map_err(io_error(staging))
}
