//! The terminal summary: one line per scenario, then each finding with its evidence, then the
//! totals and the verdict. ANSI colours only when asked (the CLI asks when stdout is a TTY).

use fhirdrill_scenarios::{Finding, Severity};

use super::text::{self, EvidenceText};
use super::{Outcome, RunReport, ScenarioResult};

const RESET: &str = "\x1b[0m";
const BOLD: &str = "\x1b[1m";
const DIM: &str = "\x1b[2m";
const RED: &str = "\x1b[31m";
const BOLD_RED: &str = "\x1b[1;31m";
const GREEN: &str = "\x1b[32m";
const BOLD_GREEN: &str = "\x1b[1;32m";
const YELLOW: &str = "\x1b[33m";
const MAGENTA: &str = "\x1b[35m";
const CYAN: &str = "\x1b[36m";

/// The summary of `report` for a terminal, with ANSI colours when `colour` is true.
pub fn render(report: &RunReport, colour: bool) -> String {
    let paint = Painter { colour };
    let mut out = String::new();
    out.push_str(&paint.apply(BOLD, &header(report)));
    out.push('\n');
    for result in &report.results {
        out.push_str(&scenario_line(&paint, result));
        out.push('\n');
    }
    let findings: Vec<&Finding> = report.findings().collect();
    if !findings.is_empty() {
        out.push('\n');
        out.push_str(&paint.apply(BOLD, "Findings"));
        out.push('\n');
        for finding in findings {
            out.push_str(&finding_block(&paint, finding));
        }
    }
    out.push('\n');
    out.push_str(&clean(&text::totals(report)));
    out.push('\n');
    let verdict_colour = if report.exit_code() == super::EXIT_PASSED {
        BOLD_GREEN
    } else {
        BOLD_RED
    };
    out.push_str(&paint.apply(verdict_colour, &text::verdict(report)));
    out.push('\n');
    out
}

/// Wraps text in ANSI codes, or not.
struct Painter {
    colour: bool,
}

impl Painter {
    /// `text`, cleaned of control characters, in the colour `code`.
    fn apply(&self, code: &str, text: &str) -> String {
        let text = clean(text);
        if self.colour {
            format!("{code}{text}{RESET}")
        } else {
            text
        }
    }
}

/// `text` with control characters (a target's ANSI escapes, say) shown as escapes, so nothing
/// a target sent can drive the terminal.
fn clean(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    text.chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn header(report: &RunReport) -> String {
    clean(&format!(
        "fhirdrill {}: target {} ({}), environment {}",
        report.tool_version, report.target, report.target_file, report.environment
    ))
}

fn scenario_line(paint: &Painter, result: &ScenarioResult) -> String {
    let (mark, code) = match result.outcome {
        Outcome::Passed => ("pass ", GREEN),
        Outcome::Failed => ("FAIL ", BOLD_RED),
        Outcome::Skipped { .. } => ("skip ", YELLOW),
        Outcome::Errored { .. } => ("ERROR", MAGENTA),
    };
    let detail = match &result.outcome {
        Outcome::Passed => "no findings".to_string(),
        Outcome::Failed => text::plural(result.findings.len(), "finding"),
        Outcome::Skipped { reason } => format!("skipped: {reason}"),
        Outcome::Errored { reason } => format!("error: {reason}"),
    };
    format!(
        "  {} {}  {}  {}",
        paint.apply(code, mark),
        clean(result.scenario.id),
        clean(result.scenario.title),
        paint.apply(DIM, &format!("({detail})"))
    )
}

fn severity_colour(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => BOLD_RED,
        Severity::High => RED,
        Severity::Medium => YELLOW,
        Severity::Low => CYAN,
        Severity::Info => DIM,
    }
}

fn finding_block(paint: &Painter, finding: &Finding) -> String {
    let severity = format!("[{}]", finding.severity.as_str().to_uppercase());
    let mut out = format!(
        "\n  {} {}\n",
        paint.apply(severity_colour(finding.severity), &severity),
        paint.apply(BOLD, finding.title.as_str())
    );
    out.push_str(&format!("    scenario:    {}\n", clean(&finding.kind)));
    out.push_str(&format!(
        "    subject:     {}\n",
        clean(&finding.subject.label())
    ));
    out.push_str(&format!("    fingerprint: {}\n", finding.fingerprint));
    for line in finding.message.as_str().lines() {
        out.push_str(&format!("    {}\n", clean(line)));
    }
    for evidence in &finding.evidence {
        let text = EvidenceText::of(evidence);
        out.push_str(&format!("    evidence: {}\n", clean(&text.label)));
        for line in &text.lines {
            out.push_str(&format!("      {}\n", paint.apply(DIM, line)));
        }
    }
    out.push_str(&format!("    fix: {}\n", clean(finding.fix)));
    out
}
