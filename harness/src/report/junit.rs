//! The JUnit XML report: one `<testsuite>` per scenario family and one `<testcase>` per
//! scenario, passing ones included, so a clean run shows its tests rather than "0 tests".
//! Skips are `<skipped>`, findings a `<failure>` typed by the highest severity, and a
//! scenario (or the harness) that could not give a verdict an `<error>`.

use std::fmt::Write as _;

use fhirdrill_scenarios::Finding;

use super::text::{self, EvidenceText};
use super::{Outcome, RunReport, ScenarioResult};

/// The family name of the suite that reports a harness error.
const HARNESS_SUITE: &str = "harness";

/// `report` as JUnit XML.
pub fn render(report: &RunReport) -> String {
    let suites = suites(report);
    let mut totals = Counts::default();
    for suite in &suites {
        totals.add(&suite.counts);
    }
    if report.harness_error.is_some() {
        totals.tests += 1;
        totals.errors += 1;
    }
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"fhirdrill\" {} timestamp=\"{}\">",
        totals.attributes(report.duration_ms),
        attr(&report.started_at)
    );
    for suite in &suites {
        write_suite(&mut out, suite, report);
    }
    if let Some(error) = &report.harness_error {
        write_harness_error(&mut out, error.as_str());
    }
    out.push_str("</testsuites>\n");
    out
}

/// The results of one family.
struct Suite<'a> {
    family: &'static str,
    results: Vec<&'a ScenarioResult>,
    counts: Counts,
}

/// The counts a `<testsuites>` or `<testsuite>` carries.
#[derive(Default)]
struct Counts {
    tests: usize,
    failures: usize,
    errors: usize,
    skipped: usize,
    duration_ms: u64,
}

impl Counts {
    fn count(&mut self, result: &ScenarioResult) {
        self.tests += 1;
        self.duration_ms += result.duration_ms;
        match result.outcome {
            Outcome::Passed => {}
            Outcome::Failed => self.failures += 1,
            Outcome::Skipped { .. } => self.skipped += 1,
            Outcome::Errored { .. } => self.errors += 1,
        }
    }

    fn add(&mut self, other: &Counts) {
        self.tests += other.tests;
        self.failures += other.failures;
        self.errors += other.errors;
        self.skipped += other.skipped;
        self.duration_ms += other.duration_ms;
    }

    fn attributes(&self, duration_ms: u64) -> String {
        format!(
            "tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{}\"",
            self.tests,
            self.failures,
            self.errors,
            self.skipped,
            text::seconds(duration_ms)
        )
    }
}

/// The families in the order they first appear, each with its results.
fn suites(report: &RunReport) -> Vec<Suite<'_>> {
    let mut suites: Vec<Suite<'_>> = Vec::new();
    for result in &report.results {
        let family = result.scenario.family;
        let at = match suites.iter().position(|s| s.family == family) {
            Some(at) => at,
            None => {
                suites.push(Suite {
                    family,
                    results: Vec::new(),
                    counts: Counts::default(),
                });
                suites.len() - 1
            }
        };
        suites[at].results.push(result);
        suites[at].counts.count(result);
    }
    suites
}

fn write_suite(out: &mut String, suite: &Suite<'_>, report: &RunReport) {
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" {} timestamp=\"{}\">",
        attr(suite.family),
        suite.counts.attributes(suite.counts.duration_ms),
        attr(&report.started_at)
    );
    for result in &suite.results {
        write_case(out, result);
    }
    out.push_str("  </testsuite>\n");
}

fn write_case(out: &mut String, result: &ScenarioResult) {
    let meta = result.scenario;
    let _ = write!(
        out,
        "    <testcase classname=\"fhirdrill.{}\" name=\"{}\" time=\"{}\"",
        attr(meta.family),
        attr(meta.id),
        text::seconds(result.duration_ms)
    );
    match &result.outcome {
        Outcome::Passed => out.push_str("/>\n"),
        Outcome::Skipped { reason } => {
            let _ = writeln!(
                out,
                ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                attr(reason.as_str())
            );
        }
        Outcome::Errored { reason } => {
            let _ = writeln!(
                out,
                ">\n      <error type=\"errored\" message=\"{}\">{}</error>\n    </testcase>",
                attr(reason.as_str()),
                content(reason.as_str())
            );
        }
        Outcome::Failed => {
            let _ = writeln!(
                out,
                ">\n      <failure type=\"{}\" message=\"{}\">{}</failure>\n    </testcase>",
                text::highest_severity(result),
                attr(&text::plural(result.findings.len(), "finding")),
                content(&failure_text(&result.findings))
            );
        }
    }
}

/// The text of a `<failure>`: each finding's masked title, fingerprint and evidence.
fn failure_text(findings: &[Finding]) -> String {
    let mut out = String::new();
    for (number, finding) in findings.iter().enumerate() {
        if number > 0 {
            out.push('\n');
        }
        let _ = writeln!(
            out,
            "[{}] {}\n  kind: {}\n  subject: {}\n  fingerprint: {}",
            finding.severity,
            finding.title,
            finding.kind,
            finding.subject.label(),
            finding.fingerprint
        );
        for line in finding.message.as_str().lines() {
            let _ = writeln!(out, "  {line}");
        }
        for evidence in &finding.evidence {
            let text = EvidenceText::of(evidence);
            let _ = writeln!(out, "  evidence: {}", text.label);
            for line in &text.lines {
                let _ = writeln!(out, "    {line}");
            }
        }
        let _ = writeln!(out, "  fix: {}", finding.fix);
    }
    out
}

fn write_harness_error(out: &mut String, error: &str) {
    let _ = writeln!(
        out,
        "  <testsuite name=\"{HARNESS_SUITE}\" tests=\"1\" failures=\"0\" errors=\"1\" skipped=\"0\" time=\"0.000\">\n    \
         <testcase classname=\"fhirdrill.{HARNESS_SUITE}\" name=\"{HARNESS_SUITE}\" time=\"0.000\">\n      \
         <error type=\"harness\" message=\"{}\">{}</error>\n    </testcase>\n  </testsuite>",
        attr(error),
        content(error)
    );
}

/// Escapes text for an attribute value (quotes, and whitespace kept as character references).
pub(crate) fn attr(text: &str) -> String {
    escape(text, true)
}

/// Escapes text for element content.
pub(crate) fn content(text: &str) -> String {
    escape(text, false)
}

fn escape(text: &str, in_attribute: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if in_attribute => out.push_str("&quot;"),
            '\'' if in_attribute => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            '\n' | '\t' if in_attribute => {
                let _ = write!(out, "&#{};", u32::from(c));
            }
            c if allowed_in_xml(c) => out.push(c),
            // Characters XML 1.0 cannot carry at all are shown as escapes.
            c => out.push_str(&c.escape_unicode().to_string()),
        }
    }
    out
}

/// Whether XML 1.0 allows `c` in a document (`Char` production).
fn allowed_in_xml(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}
