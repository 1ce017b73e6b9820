//! The SARIF 2.1.0 report, for code-scanning tools (GitHub code scanning and the like).
//!
//! Every scenario of the report is a rule, in result order, so an alert closes when its
//! scenario passes. Each finding is a result whose location is always a file of the repository
//! (the target file, at the line declaring the attacked endpoint), never a URL, with the
//! finding's fingerprint as `partialFingerprints["fhirdrill/v1"]`.

use fhirdrill_scenarios::{Control, Evidence, Finding, ScenarioMeta, Severity, Subject};
use serde_json::{Value, json};

use super::{Outcome, RunReport, ScenarioResult};

/// The SARIF version written.
pub const VERSION: &str = "2.1.0";
/// The schema of SARIF 2.1.0 (OASIS errata 01).
pub const SCHEMA_URI: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";
/// Where readers learn about the tool.
pub const INFORMATION_URI: &str = "https://example.invalid/fhirdrill";
/// The key of fhirdrill's fingerprint in `partialFingerprints`.
pub const FINGERPRINT_KEY: &str = "fhirdrill/v1";

/// `report` as a SARIF 2.1.0 log.
pub fn to_value(report: &RunReport) -> Value {
    json!({
        "$schema": SCHEMA_URI,
        "version": VERSION,
        "runs": [run(report)],
    })
}

/// `report` as pretty SARIF 2.1.0 JSON (ends with a newline).
pub fn render(report: &RunReport) -> String {
    let mut out = serde_json::to_string_pretty(&to_value(report)).unwrap_or_default();
    out.push('\n');
    out
}

fn run(report: &RunReport) -> Value {
    json!({
        "tool": {
            "driver": {
                "name": "fhirdrill",
                "version": report.tool_version,
                "semanticVersion": report.tool_version,
                "informationUri": INFORMATION_URI,
                "rules": report.results.iter().map(|r| rule(r.scenario)).collect::<Vec<_>>(),
            }
        },
        "automationDetails": { "id": format!("fhirdrill/{}/", report.environment) },
        "invocations": [invocation(report)],
        "redactionTokens": report.redaction_tokens,
        "columnKind": "unicodeCodePoints",
        "results": results(report),
    })
}

/// The SARIF level of a severity.
pub fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// GitHub's `security-severity` score of a severity (bands ≥9, 7–8.9, 4–6.9, <4).
pub fn security_severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "1.0",
    }
}

fn rule(meta: &ScenarioMeta) -> Value {
    let mut tags: Vec<String> = vec!["security".to_string()];
    tags.extend(meta.controls.iter().map(Control::tag));
    let mut rule = json!({
        "id": meta.id,
        "name": rule_name(meta.id),
        "shortDescription": { "text": meta.title },
        "fullDescription": { "text": meta.summary },
        "help": { "text": help_text(meta), "markdown": help_markdown(meta) },
        "defaultConfiguration": { "level": level(meta.severity) },
        "properties": {
            "tags": tags,
            "security-severity": security_severity(meta.severity),
            "precision": "high",
        },
    });
    if let Some(uri) = meta.references.first() {
        rule["helpUri"] = json!(uri);
    }
    if !meta.deprecated_ids.is_empty() {
        rule["deprecatedIds"] = json!(meta.deprecated_ids);
    }
    rule
}

/// `cross-patient.app-api` → `CrossPatientAppApi`.
fn rule_name(id: &str) -> String {
    id.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}

fn help_text(meta: &ScenarioMeta) -> String {
    let mut text = format!("{}\n\nFix: {}", meta.summary, meta.fix);
    if !meta.controls.is_empty() {
        let controls: Vec<String> = meta.controls.iter().map(Control::label).collect();
        text.push_str(&format!("\n\nControls: {}", controls.join(", ")));
    }
    if !meta.references.is_empty() {
        text.push_str(&format!("\n\nReferences: {}", meta.references.join(" ")));
    }
    text
}

fn help_markdown(meta: &ScenarioMeta) -> String {
    let mut md = format!("{}\n\n**Fix:** {}\n", meta.summary, meta.fix);
    if !meta.controls.is_empty() {
        md.push_str("\n**Controls:**\n\n");
        for control in meta.controls {
            md.push_str(&format!("- {}\n", control.label()));
        }
    }
    if !meta.references.is_empty() {
        md.push_str("\n**References:**\n\n");
        for reference in meta.references {
            md.push_str(&format!("- <{reference}>\n"));
        }
    }
    md
}

fn invocation(report: &RunReport) -> Value {
    let mut notifications: Vec<Value> = Vec::new();
    if let Some(error) = &report.harness_error {
        notifications.push(json!({
            "level": "error",
            "message": { "text": error.as_str() },
        }));
    }
    for (index, result) in report.results.iter().enumerate() {
        if let Some(notification) = scenario_notification(index, result) {
            notifications.push(notification);
        }
    }
    let mut invocation = json!({
        "executionSuccessful": report.harness_error.is_none() && report.errored().next().is_none(),
        "exitCode": report.exit_code(),
    });
    if !report.started_at.is_empty() {
        invocation["startTimeUtc"] = json!(report.started_at);
    }
    if !notifications.is_empty() {
        invocation["toolExecutionNotifications"] = json!(notifications);
    }
    invocation
}

/// A note for a skipped scenario, an error for one that could not give a verdict.
fn scenario_notification(index: usize, result: &ScenarioResult) -> Option<Value> {
    let (level, text) = match &result.outcome {
        Outcome::Skipped { reason } => ("note", format!("skipped: {reason}")),
        Outcome::Errored { reason } => ("error", format!("errored: {reason}")),
        Outcome::Passed | Outcome::Failed => return None,
    };
    Some(json!({
        "level": level,
        "message": { "text": text },
        "associatedRule": { "id": result.scenario.id, "index": index },
    }))
}

fn results(report: &RunReport) -> Vec<Value> {
    let mut out = Vec::new();
    for (index, result) in report.results.iter().enumerate() {
        for finding in &result.findings {
            out.push(sarif_result(report, index, finding));
        }
    }
    out
}

fn sarif_result(report: &RunReport, rule_index: usize, finding: &Finding) -> Value {
    let mut result = json!({
        "ruleId": finding.scenario,
        "ruleIndex": rule_index,
        "kind": "fail",
        "level": level(finding.severity),
        "message": { "text": message_text(finding) },
        "locations": [location(report, &finding.subject)],
        "partialFingerprints": { FINGERPRINT_KEY: finding.fingerprint },
        "properties": {
            "severity": finding.severity.as_str(),
            "security-severity": security_severity(finding.severity),
            "kind": finding.kind,
            "subject": finding.subject,
            "fix": finding.fix,
            "evidence": finding.evidence,
        },
    });
    if let Some((request, response)) = web_exchange(&finding.evidence) {
        result["webRequest"] = request;
        result["webResponse"] = response;
    }
    result
}

/// The masked title and message as one text.
fn message_text(finding: &Finding) -> String {
    let title = finding.title.as_str().trim_end();
    let separator = if title.ends_with(['.', '!', '?', ':']) {
        " "
    } else {
        ". "
    };
    // `[text](target)` is an embedded link in a SARIF message: never let masked text form one.
    format!("{title}{separator}{}", finding.message).replace("](", "] (")
}

fn location(report: &RunReport, subject: &Subject) -> Value {
    json!({
        "physicalLocation": {
            "artifactLocation": { "uri": file_uri(&report.target_file) },
            "region": { "startLine": subject_line(&report.target_text, subject) },
        },
        "logicalLocations": [{
            "name": subject.label(),
            "fullyQualifiedName": subject.key(),
            "kind": "resource",
        }],
    })
}

/// The 1-based line of the target file that declares the subject: for an app route, the first
/// line naming the whole route, else its quoted path, else its path; otherwise line 1.
pub fn subject_line(target_text: &str, subject: &Subject) -> usize {
    let Subject::AppRoute { route } = subject else {
        return 1;
    };
    let path = route.split_whitespace().last().unwrap_or(route);
    let candidates = [
        route.clone(),
        format!("\"{path}\""),
        format!("'{path}'"),
        path.to_string(),
    ];
    candidates
        .iter()
        .filter(|c| !c.is_empty())
        .find_map(|needle| {
            target_text
                .lines()
                .position(|line| line.contains(needle.as_str()))
        })
        .map_or(1, |at| at + 1)
}

/// A relative path as a URI reference: forward slashes, no `./`, other bytes percent-encoded.
fn file_uri(path: &str) -> String {
    let path = path.replace('\\', "/");
    let path = path.trim_start_matches("./");
    let mut uri = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            uri.push(char::from(byte));
        } else {
            uri.push_str(&format!("%{byte:02X}"));
        }
    }
    uri
}

/// The first HTTP exchange of the evidence as SARIF `webRequest` and `webResponse` (masked).
fn web_exchange(evidence: &[Evidence]) -> Option<(Value, Value)> {
    evidence.iter().find_map(|e| match e {
        Evidence::Http {
            request,
            status,
            excerpt,
        } => {
            let (method, target) = request
                .as_str()
                .split_once(' ')
                .unwrap_or(("", request.as_str()));
            let mut web_request = json!({ "target": target });
            if !method.is_empty() {
                web_request["method"] = json!(method);
            }
            let web_response = json!({
                "statusCode": status,
                "body": { "text": excerpt.as_str() },
            });
            Some((web_request, web_response))
        }
        Evidence::AccessLog { .. } | Evidence::Note { .. } => None,
    })
}
