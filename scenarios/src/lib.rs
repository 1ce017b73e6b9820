//! The fhirdrill attack catalog.
//!
//! A [`Scenario`] attacks one weakness of a healthcare integration (a startup's app and its
//! API, or a FHIR endpoint) and returns [`Finding`]s. Scenarios only see the integration through
//! [`ScenarioCx`], which the harness implements: they never open sockets, read the simulator's
//! store or write reports themselves. Everything a finding carries is [`Masked`]: canary values
//! (a synthetic patient's name, MRN, phone…) and issued credentials never reach a report.
//!
//! Adding a scenario is one new file under its family's folder plus one line in
//! [`registry::registry`].
//!
//! Not here: HTTP, the simulator, report formats (see `fhirdrill-harness`).

pub mod api;
pub mod cx;
pub mod mask;
pub mod registry;

pub mod cross_patient;
pub mod scope;
pub mod service_account;

pub use api::{
    Capability, Control, Evidence, Finding, Scenario, ScenarioError, ScenarioMeta, Severity,
    Subject,
};
pub use cx::ScenarioCx;
pub use mask::{Masked, Masker};
