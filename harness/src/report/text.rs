//! Plain-text pieces every format shares: the verdict, outcome labels, counts and the text of
//! a piece of evidence. Everything here is built from masked values and catalog text only.

use fhirdrill_scenarios::{Evidence, Finding, Severity};

use super::{EXIT_COULD_NOT_RUN, EXIT_FINDINGS, Outcome, RunReport, ScenarioResult};

/// `1 finding`, `2 findings`.
pub(crate) fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("{n} {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// The verdict against `--fail-on`: `FAILED: 2 findings at or above high`, `passed`, or why
/// the harness could not run.
pub(crate) fn verdict(report: &RunReport) -> String {
    match report.exit_code() {
        EXIT_COULD_NOT_RUN => match &report.harness_error {
            Some(error) => format!("ERROR: the harness could not run: {}", error.as_str()),
            None => {
                let ids: Vec<&str> = report.errored().map(|r| r.scenario.id).collect();
                format!(
                    "ERROR: {} could not give a verdict ({}); see the reasons above",
                    plural(ids.len(), "scenario"),
                    ids.join(", ")
                )
            }
        },
        EXIT_FINDINGS => format!(
            "FAILED: {} at or above {}",
            plural(report.failing_findings().count(), "finding"),
            report.fail_on
        ),
        _ => {
            let below = report.findings().count();
            if below == 0 {
                "passed".to_string()
            } else {
                format!(
                    "passed ({} below {})",
                    plural(below, "finding"),
                    report.fail_on
                )
            }
        }
    }
}

/// `4 scenarios: 1 passed, 1 failed, 1 skipped, 1 errored; 2 findings (1 critical, 1 medium)`.
pub(crate) fn totals(report: &RunReport) -> String {
    let (passed, failed, skipped, errored) = report.counts();
    let findings: Vec<&Finding> = report.findings().collect();
    let mut line = format!(
        "{}: {passed} passed, {failed} failed, {skipped} skipped, {errored} errored; {}",
        plural(report.results.len(), "scenario"),
        plural(findings.len(), "finding")
    );
    let by_severity = severity_breakdown(&findings);
    if !by_severity.is_empty() {
        line.push_str(&format!(" ({by_severity})"));
    }
    line
}

/// `1 critical, 1 medium`, highest first; empty when there are no findings.
pub(crate) fn severity_breakdown(findings: &[&Finding]) -> String {
    Severity::ALL
        .iter()
        .rev()
        .filter_map(|s| {
            let n = findings.iter().filter(|f| f.severity == *s).count();
            (n > 0).then(|| format!("{n} {s}"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The lower-case name of an outcome (`passed`, `failed`, `skipped`, `errored`).
pub(crate) fn outcome_name(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Passed => "passed",
        Outcome::Failed => "failed",
        Outcome::Skipped { .. } => "skipped",
        Outcome::Errored { .. } => "errored",
    }
}

/// The highest severity among a result's findings, else the scenario's own.
pub(crate) fn highest_severity(result: &ScenarioResult) -> Severity {
    result
        .findings
        .iter()
        .map(|f| f.severity)
        .max()
        .unwrap_or(result.scenario.severity)
}

/// A piece of evidence as a label and a body of text lines.
pub(crate) struct EvidenceText {
    /// `HTTP exchange`, `Access log (2 entries)`, `Note`.
    pub(crate) label: String,
    /// The lines of the proof.
    pub(crate) lines: Vec<String>,
}

impl EvidenceText {
    /// The label and lines of `evidence`.
    pub(crate) fn of(evidence: &Evidence) -> EvidenceText {
        match evidence {
            Evidence::Http {
                request,
                status,
                excerpt,
            } => {
                let mut lines = vec![request.to_string(), format!("-> HTTP {status}")];
                lines.extend(excerpt.as_str().lines().map(str::to_string));
                EvidenceText {
                    label: "HTTP exchange".to_string(),
                    lines,
                }
            }
            Evidence::AccessLog { lines } => EvidenceText {
                label: match lines.len() {
                    1 => "Access log (1 entry)".to_string(),
                    n => format!("Access log ({n} entries)"),
                },
                lines: lines.iter().map(|l| l.to_string()).collect(),
            },
            Evidence::Note { text } => EvidenceText {
                label: "Note".to_string(),
                lines: text.as_str().lines().map(str::to_string).collect(),
            },
        }
    }

    /// The lines joined with newlines.
    pub(crate) fn body(&self) -> String {
        self.lines.join("\n")
    }
}

/// Seconds with millisecond precision (`1.234`).
pub(crate) fn seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}
