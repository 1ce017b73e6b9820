//! Deterministic synthetic patients for fhirdrill.
//!
//! This crate turns a seed and a patient index into a complete, US Core shaped FHIR R4 record
//! (Patient, encounters, problems, vitals and labs, medications, allergies, immunizations,
//! procedures, notes, care team, coverage), plus the resources every patient shares
//! (organizations, locations, practitioners). Patient `i` of seed `s` depends only on `(s, i)`:
//! the same bytes on every machine, whatever the thread count or shard.
//!
//! Every resource is labelled as test data (`meta.security` = v3-ActReason `HTEST`, plus a
//! fhirdrill tag), and every patient's identifying values — MRN, SSN-shaped value, phone,
//! email — are unique in the population and drawn from ranges that no real person can have,
//! so the harness can search for them byte-exactly as canaries.
//!
//! The main entry points:
//! - [`Generator`]: `Generator::new(seed, reference_date, environment).patient(i)` builds one
//!   [`PatientRecord`] in memory, without touching the disk (the simulator uses this);
//! - [`write_population`]: streams a population (or one shard of it) to NDJSON and/or
//!   transaction-bundle files, in parallel, with flat memory.
//!
//! What this crate is not: it serves nothing and reads no clock (the reference date is an
//! argument), and it makes no claim of epidemiological accuracy — prevalences and values are
//! plausible, rounded from public figures (see [`clinical`]).

pub mod care;
pub mod clinical;
pub mod dates;
pub mod demographics;
pub mod fhir;
pub mod identifiers;
mod names;
mod notes;
pub mod observations;
mod output;
mod record;
pub mod rng;
mod shard;
pub mod shared;

pub use output::{
    OutputFormat, STAGING_DIR, WriteError, WriteOptions, WriteSummary, transaction_bundle,
    write_population,
};
pub use record::{Canary, Generator, PatientRecord, mrn_system};
pub use shard::{Shard, ShardError};
