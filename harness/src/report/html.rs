//! The HTML report: one self-contained page (inline CSS, no scripts, no external resources)
//! with the verdict, a summary table and every finding with its evidence. Everything from the
//! report is HTML-escaped.

use std::fmt::Write as _;

use fhirdrill_scenarios::Finding;

use super::text::{self, EvidenceText};
use super::{EXIT_PASSED, Outcome, RunReport, ScenarioResult};

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:70rem;padding:0 1rem;color:#1b1f24;line-height:1.45}\
h1{font-size:1.6rem}h2{margin-top:2rem;border-bottom:1px solid #d0d7de}\
.verdict{padding:.75rem 1rem;border-radius:6px;font-weight:600}\
.verdict.pass{background:#dafbe1;color:#116329}.verdict.fail{background:#ffebe9;color:#a40e26}\
table{border-collapse:collapse;width:100%}th,td{border:1px solid #d0d7de;padding:.35rem .6rem;text-align:left;vertical-align:top}\
th{background:#f6f8fa}code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.9em}\
pre{background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:.75rem;overflow-x:auto;white-space:pre-wrap;word-break:break-all}\
.finding{border:1px solid #d0d7de;border-radius:6px;padding:0 1rem 1rem;margin:1rem 0}\
.sev{display:inline-block;padding:0 .5rem;border-radius:1rem;color:#fff;font-size:.85em;text-transform:uppercase}\
.critical{background:#82071e}.high{background:#cf222e}.medium{background:#bf8700}.low{background:#0969da}.info{background:#6e7781}\
.passed{color:#116329}.failed{color:#a40e26}.skipped{color:#6e7781}.errored{color:#8250df}\
dl{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem}dt{font-weight:600}dd{margin:0}";

/// `report` as one self-contained HTML page.
pub fn render(report: &RunReport) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>fhirdrill report: {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        escape(&report.target)
    );
    header(&mut out, report);
    summary_table(&mut out, report);
    let findings: Vec<&Finding> = report.findings().collect();
    if !findings.is_empty() {
        out.push_str("<h2>Findings</h2>\n");
        for finding in findings {
            finding_section(&mut out, finding);
        }
    }
    out.push_str("</body>\n</html>\n");
    out
}

fn header(out: &mut String, report: &RunReport) {
    let class = if report.exit_code() == EXIT_PASSED {
        "pass"
    } else {
        "fail"
    };
    let _ = writeln!(
        out,
        "<h1>fhirdrill report: {}</h1>\n<p class=\"verdict {class}\">{}</p>",
        escape(&report.target),
        escape(&text::verdict(report))
    );
    let _ = writeln!(
        out,
        "<dl>\n<dt>Target file</dt><dd><code>{}</code></dd>\n<dt>Environment</dt><dd><code>{}</code></dd>\n\
         <dt>fhirdrill</dt><dd>{}</dd>\n<dt>Started</dt><dd>{}</dd>\n<dt>Duration</dt><dd>{} s</dd>\n\
         <dt>Fails on</dt><dd>{} and above</dd>\n</dl>",
        escape(&report.target_file),
        escape(&report.environment),
        escape(report.tool_version),
        escape(&report.started_at),
        text::seconds(report.duration_ms),
        report.fail_on
    );
}

fn summary_table(out: &mut String, report: &RunReport) {
    out.push_str("<h2>Scenarios</h2>\n<table>\n<thead><tr><th>Scenario</th><th>Title</th><th>Outcome</th><th>Findings</th></tr></thead>\n<tbody>\n");
    for result in &report.results {
        let _ = writeln!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td><td class=\"{}\">{}</td><td>{}</td></tr>",
            escape(result.scenario.id),
            escape(result.scenario.title),
            text::outcome_name(&result.outcome),
            escape(&outcome_text(result)),
            findings_cell(result)
        );
    }
    let _ = writeln!(
        out,
        "</tbody>\n</table>\n<p>{}</p>",
        escape(&text::totals(report))
    );
}

fn outcome_text(result: &ScenarioResult) -> String {
    match &result.outcome {
        Outcome::Passed | Outcome::Failed => text::outcome_name(&result.outcome).to_string(),
        Outcome::Skipped { reason } => format!("skipped: {reason}"),
        Outcome::Errored { reason } => format!("errored: {reason}"),
    }
}

/// The number of findings, or a dash when the scenario gave no verdict.
fn findings_cell(result: &ScenarioResult) -> String {
    match result.outcome {
        Outcome::Skipped { .. } | Outcome::Errored { .. } => "—".to_string(),
        Outcome::Passed | Outcome::Failed => result.findings.len().to_string(),
    }
}

fn finding_section(out: &mut String, finding: &Finding) {
    let severity = finding.severity.as_str();
    let _ = writeln!(
        out,
        "<section class=\"finding\">\n<h3><span class=\"sev {severity}\">{severity}</span> {}</h3>",
        escape(finding.title.as_str())
    );
    let _ = writeln!(
        out,
        "<dl>\n<dt>Scenario</dt><dd><code>{}</code></dd>\n<dt>Subject</dt><dd><code>{}</code></dd>\n\
         <dt>Fingerprint</dt><dd><code>{}</code></dd>\n</dl>",
        escape(&finding.kind),
        escape(&finding.subject.label()),
        escape(&finding.fingerprint)
    );
    let _ = writeln!(out, "<p>{}</p>", escape(finding.message.as_str()));
    for evidence in &finding.evidence {
        let text = EvidenceText::of(evidence);
        let _ = writeln!(
            out,
            "<h4>Evidence: {}</h4>\n<pre>{}</pre>",
            escape(&text.label),
            escape(&text.body())
        );
    }
    let _ = writeln!(
        out,
        "<p><strong>Fix:</strong> {}</p>\n</section>",
        escape(finding.fix)
    );
}

/// Escapes text for HTML element content and quoted attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && !matches!(c, '\n' | '\t') => {
                out.push_str(&c.escape_unicode().to_string());
            }
            c => out.push(c),
        }
    }
    out
}
