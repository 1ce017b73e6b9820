//! The fhirdrill harness: reads a target file, connects to the simulator (the EHR the app
//! under test talks to), signs test personas in through the app's real SMART flows, runs the
//! scenarios of `fhirdrill-scenarios` against the app and its FHIR endpoint, and writes the
//! reports CI systems read.
//!
//! Not here: the attacks themselves (`fhirdrill-scenarios`), the EHR (`fhirdrill-simulator`).
//! The harness only talks to the simulator through its HTTP admin API and FHIR endpoints, so a
//! remote simulator deployed next to staging works the same as an embedded one.

pub mod drill;
pub mod personas;
pub mod report;
pub mod runner;
pub mod simulator;
pub mod smart_client;
pub mod target;

/// Why the harness could not run (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// The target file, the simulator or the app is not usable as given.
    #[error("{0}")]
    Setup(String),
    /// A target file problem.
    #[error(transparent)]
    Target(#[from] target::TargetError),
}
