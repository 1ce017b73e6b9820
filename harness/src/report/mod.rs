//! The result of a drill ([`RunReport`]) and the files written from it: terminal summary,
//! JSON, JUnit XML, SARIF 2.1.0, Markdown and a self-contained HTML page. Every text in a
//! report comes from [`Masked`] values or from the catalog: no canary or credential can reach
//! a report file.

use std::path::{Path, PathBuf};

use fhirdrill_scenarios::{Finding, Masked, ScenarioMeta, Severity};
use serde::Serialize;

pub mod html;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod sarif;
pub mod terminal;
mod text;

#[cfg(test)]
mod fixture;
#[cfg(test)]
mod tests;

/// How one scenario ended.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Outcome {
    /// It ran and found nothing.
    Passed,
    /// It ran and found something (see the findings).
    Failed,
    /// It did not run: the target lacks what it needs, or it was filtered out.
    Skipped {
        /// Why.
        reason: Masked,
    },
    /// It could not give a verdict.
    Errored {
        /// Why.
        reason: Masked,
    },
}

/// One scenario's result.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    /// The catalog entry.
    pub scenario: &'static ScenarioMeta,
    /// How it ended.
    pub outcome: Outcome,
    /// What it found (empty unless failed).
    pub findings: Vec<Finding>,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
}

/// A whole drill.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// fhirdrill's version.
    pub tool_version: &'static str,
    /// The target's name (from the target file).
    pub target: String,
    /// The path of the target file, relative to where the run started (SARIF locations point
    /// into it).
    pub target_file: String,
    /// The target file's text (to find the line of an endpoint); not serialized.
    #[serde(skip)]
    pub target_text: String,
    /// The simulator environment the drill ran against.
    pub environment: String,
    /// When the run started (RFC 3339, UTC).
    pub started_at: String,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
    /// Findings at or above this severity fail the run.
    pub fail_on: Severity,
    /// Per scenario, in catalog order (the whole catalog: skipped ones too).
    pub results: Vec<ScenarioResult>,
    /// Set when the harness itself could not run (exit code 2).
    pub harness_error: Option<Masked>,
    /// Every placeholder the masker may have written (SARIF `redactionTokens`).
    pub redaction_tokens: Vec<String>,
}

/// Exit code: nothing at or above `--fail-on`.
pub const EXIT_PASSED: u8 = 0;
/// Exit code: findings at or above `--fail-on`.
pub const EXIT_FINDINGS: u8 = 1;
/// Exit code: the harness could not run.
pub const EXIT_COULD_NOT_RUN: u8 = 2;

impl RunReport {
    /// Every finding, in result order.
    pub fn findings(&self) -> impl Iterator<Item = &Finding> {
        self.results.iter().flat_map(|r| r.findings.iter())
    }

    /// The findings at or above `fail_on`.
    pub fn failing_findings(&self) -> impl Iterator<Item = &Finding> {
        self.findings().filter(|f| f.severity >= self.fail_on)
    }

    /// 0 nothing at or above `fail_on`, 1 findings, 2 the harness could not run (or some
    /// scenario could not give a verdict and nothing else failed: an incomplete drill must not
    /// pass).
    pub fn exit_code(&self) -> u8 {
        if self.harness_error.is_some() {
            EXIT_COULD_NOT_RUN
        } else if self.failing_findings().next().is_some() {
            EXIT_FINDINGS
        } else if self.errored().next().is_some() {
            EXIT_COULD_NOT_RUN
        } else {
            EXIT_PASSED
        }
    }

    /// The scenarios that could not give a verdict.
    pub fn errored(&self) -> impl Iterator<Item = &ScenarioResult> {
        self.results
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Errored { .. }))
    }

    /// Counts: (passed, failed, skipped, errored).
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let mut counts = (0, 0, 0, 0);
        for r in &self.results {
            match r.outcome {
                Outcome::Passed => counts.0 += 1,
                Outcome::Failed => counts.1 += 1,
                Outcome::Skipped { .. } => counts.2 += 1,
                Outcome::Errored { .. } => counts.3 += 1,
            }
        }
        counts
    }
}

/// A report format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// The summary printed to the terminal (no file).
    Terminal,
    /// The whole report as JSON (`harness/REPORT_SCHEMA.md`).
    Json,
    /// JUnit XML for CI test views.
    Junit,
    /// SARIF 2.1.0 for code scanning.
    Sarif,
    /// Markdown for a pull-request comment.
    Markdown,
    /// A self-contained HTML page.
    Html,
}

impl Format {
    /// Every format, the terminal first.
    pub const ALL: [Format; 6] = [
        Format::Terminal,
        Format::Json,
        Format::Junit,
        Format::Sarif,
        Format::Markdown,
        Format::Html,
    ];

    /// The formats written to files, in the order [`write_all`] writes them.
    pub const FILES: [Format; 5] = [
        Format::Json,
        Format::Junit,
        Format::Sarif,
        Format::Markdown,
        Format::Html,
    ];

    /// The lower-case name (`sarif`), as a command line spells it.
    pub fn name(self) -> &'static str {
        match self {
            Format::Terminal => "terminal",
            Format::Json => "json",
            Format::Junit => "junit",
            Format::Sarif => "sarif",
            Format::Markdown => "markdown",
            Format::Html => "html",
        }
    }

    /// The format named `name` (case-insensitive).
    pub fn parse(name: &str) -> Option<Format> {
        Format::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(name))
    }

    /// The file name it is written to (`fhirdrill-report.sarif`); `None` for the terminal.
    pub fn file_name(self) -> Option<&'static str> {
        match self {
            Format::Terminal => None,
            Format::Json => Some("fhirdrill-report.json"),
            Format::Junit => Some("fhirdrill-report.junit.xml"),
            Format::Sarif => Some("fhirdrill-report.sarif"),
            Format::Markdown => Some("fhirdrill-report.md"),
            Format::Html => Some("fhirdrill-report.html"),
        }
    }

    /// `report` in this format (the terminal one without colours).
    pub fn render(self, report: &RunReport) -> String {
        match self {
            Format::Terminal => terminal::render(report, false),
            Format::Json => json::render(report),
            Format::Junit => junit::render(report),
            Format::Sarif => sarif::render(report),
            Format::Markdown => markdown::render(report),
            Format::Html => html::render(report),
        }
    }
}

/// A report file that could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The output folder could not be created.
    #[error("cannot create the report folder {}: {source}", path.display())]
    CreateDir {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A report file could not be written.
    #[error("cannot write the report {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Writes every file format of `report` into `dir` (created if missing) and returns the paths
/// written, in [`Format::FILES`] order.
pub fn write_all(report: &RunReport, dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    std::fs::create_dir_all(dir).map_err(|source| ReportError::CreateDir {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut written = Vec::new();
    for format in Format::FILES {
        let Some(name) = format.file_name() else {
            continue;
        };
        let path = dir.join(name);
        std::fs::write(&path, format.render(report)).map_err(|source| ReportError::Write {
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    Ok(written)
}
