//! The Markdown report, for a pull-request comment: the verdict as a heading, a summary table,
//! then one section per finding. Deterministic: the only times are the report's own.

use std::fmt::Write as _;

use fhirdrill_scenarios::Finding;

use super::text::{self, EvidenceText};
use super::{Outcome, RunReport, ScenarioResult};

/// `report` as Markdown.
pub fn render(report: &RunReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## fhirdrill: {}\n", inline(&text::verdict(report)));
    let _ = writeln!(
        out,
        "Target {} ({}), environment {}, fhirdrill {}, started {}, took {} s.\n",
        code(&report.target),
        code(&report.target_file),
        code(&report.environment),
        inline(report.tool_version),
        inline(&report.started_at),
        text::seconds(report.duration_ms)
    );
    summary_table(&mut out, report);
    let _ = writeln!(out, "\n{}", inline(&text::totals(report)));
    let findings: Vec<&Finding> = report.findings().collect();
    if !findings.is_empty() {
        out.push_str("\n### Findings\n");
        for (number, finding) in findings.iter().enumerate() {
            finding_section(&mut out, number + 1, finding);
        }
    }
    out
}

fn summary_table(out: &mut String, report: &RunReport) {
    out.push_str("| Scenario | Outcome | Findings |\n| --- | --- | --- |\n");
    for result in &report.results {
        let _ = writeln!(
            out,
            "| {} {} | {} | {} |",
            code(result.scenario.id),
            cell(result.scenario.title),
            cell(&outcome_cell(&result.outcome)),
            findings_cell(result)
        );
    }
}

fn outcome_cell(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Passed => "✅ passed".to_string(),
        Outcome::Failed => "❌ failed".to_string(),
        Outcome::Skipped { reason } => format!("⏭️ skipped: {reason}"),
        Outcome::Errored { reason } => format!("⚠️ errored: {reason}"),
    }
}

fn findings_cell(result: &ScenarioResult) -> String {
    if result.findings.is_empty() {
        return match result.outcome {
            Outcome::Skipped { .. } | Outcome::Errored { .. } => "—".to_string(),
            Outcome::Passed | Outcome::Failed => "0".to_string(),
        };
    }
    let findings: Vec<&Finding> = result.findings.iter().collect();
    format!(
        "{} ({})",
        findings.len(),
        text::severity_breakdown(&findings)
    )
}

fn finding_section(out: &mut String, number: usize, finding: &Finding) {
    let _ = writeln!(
        out,
        "\n#### {number}. [{}] {}\n",
        finding.severity,
        inline(finding.title.as_str())
    );
    let _ = writeln!(out, "- **Severity:** {}", finding.severity);
    let _ = writeln!(out, "- **Scenario:** {}", code(&finding.kind));
    let _ = writeln!(out, "- **Subject:** {}", code(&finding.subject.label()));
    let _ = writeln!(out, "- **Fingerprint:** {}\n", code(&finding.fingerprint));
    for line in finding.message.as_str().lines() {
        let _ = writeln!(out, "{}", inline(line));
    }
    for evidence in &finding.evidence {
        let text = EvidenceText::of(evidence);
        let body = text.body();
        let fence = fence_for(&body);
        let _ = writeln!(
            out,
            "\n**Evidence: {}**\n\n{fence}text\n{body}\n{fence}",
            inline(&text.label)
        );
    }
    let _ = writeln!(out, "\n**Fix:** {}", inline(finding.fix));
}

/// A fence of backticks longer than any run of backticks in `body` (at least three).
fn fence_for(body: &str) -> String {
    let longest = body.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    "`".repeat((longest + 1).max(3))
}

/// Text as an inline code span, whatever backticks it holds.
fn code(text: &str) -> String {
    let text = text.replace(['\n', '\r'], " ");
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let ticks = "`".repeat(longest + 1);
    if text.starts_with('`') || text.ends_with('`') {
        format!("{ticks} {text} {ticks}")
    } else {
        format!("{ticks}{text}{ticks}")
    }
}

/// Prose from a report: HTML-significant characters escaped so a response excerpt cannot
/// inject markup into the comment.
fn inline(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Prose for a table cell: also no pipes or line breaks.
fn cell(text: &str) -> String {
    inline(text).replace('|', "\\|").replace(['\n', '\r'], " ")
}
