//! The JSON report: the [`RunReport`] as pretty JSON with its schema id, the exit code and
//! the counts first. Every field is documented in `harness/REPORT_SCHEMA.md`.

use serde::Serialize;

use super::RunReport;
use super::text;

/// The id of the JSON report's schema (version 1).
pub const SCHEMA: &str = "https://fhirdrill.invalid/schemas/report-v1.json";

/// The top-level object.
#[derive(Serialize)]
struct JsonReport<'a> {
    schema: &'static str,
    exit_code: u8,
    verdict: String,
    counts: Counts,
    #[serde(flatten)]
    report: &'a RunReport,
}

/// How many scenarios ended how, and how many findings there are.
#[derive(Serialize)]
struct Counts {
    scenarios: usize,
    passed: usize,
    failed: usize,
    skipped: usize,
    errored: usize,
    findings: usize,
    failing_findings: usize,
}

impl Counts {
    fn of(report: &RunReport) -> Counts {
        let (passed, failed, skipped, errored) = report.counts();
        Counts {
            scenarios: report.results.len(),
            passed,
            failed,
            skipped,
            errored,
            findings: report.findings().count(),
            failing_findings: report.failing_findings().count(),
        }
    }
}

/// `report` as pretty JSON (ends with a newline).
pub fn render(report: &RunReport) -> String {
    let value = JsonReport {
        schema: SCHEMA,
        exit_code: report.exit_code(),
        verdict: text::verdict(report),
        counts: Counts::of(report),
        report,
    };
    // Serializing plain structs of strings and numbers into a String cannot fail.
    let mut out = serde_json::to_string_pretty(&value).unwrap_or_default();
    out.push('\n');
    out
}
