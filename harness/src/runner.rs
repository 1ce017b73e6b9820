//! The runner: checks what each scenario needs against the target, runs the ones that can
//! run (one at a time, in catalog order, each isolated from the others' panics), and gathers
//! a [`RunReport`].

use std::panic::AssertUnwindSafe;
use std::time::Instant;

use fhirdrill_scenarios::{
    Capability, Finding, Masked, Masker, Scenario, ScenarioCx, ScenarioError, Severity,
};

use crate::drill::Drill;
use crate::report::{Outcome, RunReport, ScenarioResult};
use crate::target::{SessionKind, Target};

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Findings at or above this fail the run.
    pub fail_on: Severity,
    /// Run only these scenario ids or families (empty: all).
    pub only: Vec<String>,
    /// The target file's path as given (reports point into it).
    pub target_file: String,
    /// The target file's text.
    pub target_text: String,
}

/// What a target offers.
pub fn capabilities(target: &Target) -> Vec<Capability> {
    let mut offered = Vec::new();
    if target.login.patient_login_path.is_some() || target.login.session == SessionKind::Bearer {
        offered.push(Capability::PatientLogin);
    }
    if target.login.ehr_launch && target.login.session == SessionKind::Cookie {
        offered.push(Capability::PractitionerLogin);
    }
    if !target.endpoints.is_empty() {
        offered.push(Capability::AppApi);
    }
    if target.fhir.is_some() {
        offered.push(Capability::FhirEndpoint);
    }
    if !target.app.backend_client_ids.is_empty() {
        offered.push(Capability::BackendServices);
    }
    offered
}

/// Whether `scenario` is selected by `only` (an id or a family; empty selects all).
fn selected(only: &[String], id: &str, family: &str) -> bool {
    only.is_empty() || only.iter().any(|o| o == id || o == family)
}

/// Runs `scenarios` against the drill's target: first the target's jobs (so the app has its
/// data), then each scenario.
pub fn run(drill: &mut Drill, scenarios: &[Box<dyn Scenario>], options: &RunOptions) -> RunReport {
    let started = Instant::now();
    let started_at = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let offered = capabilities(drill.target());
    let setup = drill.run_jobs();
    let mut results = Vec::new();
    for scenario in scenarios {
        let meta = scenario.meta();
        let began = Instant::now();
        let outcome = if !selected(&options.only, meta.id, meta.family) {
            (
                Outcome::Skipped {
                    reason: Masked::fixed("not selected (--only)"),
                },
                Vec::new(),
            )
        } else if let Some(missing) = meta.needs.iter().find(|n| !offered.contains(n)) {
            let reason =
                Masker::default().mask(&format!("the target lacks {}", missing.describe()));
            (Outcome::Skipped { reason }, Vec::new())
        } else if let Err(error) = &setup {
            (
                Outcome::Errored {
                    reason: Masker::default().mask(&format!("the target's jobs failed: {error}")),
                },
                Vec::new(),
            )
        } else {
            run_one(drill, scenario.as_ref())
        };
        results.push(ScenarioResult {
            scenario: meta,
            outcome: outcome.0,
            findings: outcome.1,
            duration_ms: began.elapsed().as_millis() as u64,
        });
    }
    let target = drill.target();
    RunReport {
        tool_version: env!("CARGO_PKG_VERSION"),
        target: target.name.clone(),
        target_file: options.target_file.clone(),
        target_text: options.target_text.clone(),
        environment: drill.environment().name.clone(),
        started_at,
        duration_ms: started.elapsed().as_millis() as u64,
        fail_on: options.fail_on,
        results,
        harness_error: None,
        redaction_tokens: drill.masker().placeholders(),
    }
}

/// Runs one scenario; a panic becomes an error outcome, not a crash.
fn run_one(drill: &mut Drill, scenario: &dyn Scenario) -> (Outcome, Vec<Finding>) {
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| scenario.run(drill)));
    match result {
        Ok(Ok(findings)) if findings.is_empty() => (Outcome::Passed, findings),
        Ok(Ok(findings)) => (Outcome::Failed, findings),
        Ok(Err(ScenarioError::Skip(reason))) => (Outcome::Skipped { reason }, Vec::new()),
        Ok(Err(ScenarioError::Harness(reason))) => (Outcome::Errored { reason }, Vec::new()),
        Err(_) => (
            Outcome::Errored {
                reason: Masked::fixed(
                    "the scenario panicked (a bug in fhirdrill: please report it)",
                ),
            },
            Vec::new(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_takes_ids_and_families() {
        assert!(selected(&[], "scope.x", "scope"));
        assert!(selected(&["scope".into()], "scope.x", "scope"));
        assert!(selected(&["scope.x".into()], "scope.x", "scope"));
        assert!(!selected(&["cross-patient".into()], "scope.x", "scope"));
    }
}
