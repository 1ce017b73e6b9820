//! Tests of the report writers over the fixture.

use std::path::{Path, PathBuf};
use std::process::Command;

use fhirdrill_scenarios::{Masked, Severity, Subject};
use proptest::prelude::*;
use serde_json::Value;

use super::fixture::{self, CANARY_ID, CANARY_MRN, CANARY_NAME, SECRET_TOKEN};
use super::{
    EXIT_COULD_NOT_RUN, EXIT_FINDINGS, EXIT_PASSED, Format, Outcome, ReportError, RunReport, html,
    json, junit, markdown, sarif, terminal, write_all,
};

/// Every rendering of `report`: the five files and the terminal with and without colours.
fn all_renderings(report: &RunReport) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = Format::ALL
        .into_iter()
        .map(|f| (f.name().to_string(), f.render(report)))
        .collect();
    all.push(("terminal+colour".into(), terminal::render(report, true)));
    all
}

/// Fails if any raw canary or secret (or a usual encoding of one) is in any rendering.
fn assert_no_canary(report: &RunReport, raws: &[&str]) {
    for (format, text) in all_renderings(report) {
        for raw in raws {
            for form in forms(raw) {
                assert!(
                    !text.contains(&form),
                    "{format} report contains the canary {raw:?} (as {form:?}):\n{text}"
                );
            }
        }
    }
}

/// A raw value as it could appear in a report: plain, URL-, JSON-, HTML- and XML-escaped.
fn forms(raw: &str) -> Vec<String> {
    let json_form = serde_json::to_string(raw).unwrap_or_default();
    let markup = raw
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;");
    vec![
        raw.to_string(),
        raw.replace(' ', "%20"),
        raw.replace(' ', "+"),
        json_form.trim_matches('"').to_string(),
        markup.replace('\'', "&#39;"),
        markup.replace('\'', "&apos;"),
    ]
}

#[test]
fn report_markdown_snapshot() {
    insta::assert_snapshot!(markdown::render(&fixture::report()));
}

#[test]
fn report_terminal_snapshot_without_colour() {
    let text = terminal::render(&fixture::report(), false);
    assert!(!text.contains('\x1b'));
    insta::assert_snapshot!(text);
}

#[test]
fn report_terminal_colours_only_when_asked_and_never_from_the_target() {
    let mut report = fixture::report();
    let coloured = terminal::render(&report, true);
    assert!(coloured.contains("\x1b[1;31m"), "the verdict is red");
    report.results[3].outcome = super::Outcome::Errored {
        reason: Masked::fixed("evil \x1b[2J answer"),
    };
    let plain = terminal::render(&report, false);
    assert!(
        !plain.contains('\x1b'),
        "a target's escape reached the terminal"
    );
    assert!(plain.contains("evil \\u{1b}[2J answer"));
}

#[test]
fn report_verdict_counts_findings_at_or_above_fail_on() {
    let mut report = fixture::report();
    let text = terminal::render(&report, false);
    assert!(
        text.ends_with("FAILED: 1 finding at or above high\n"),
        "{text}"
    );
    report.fail_on = Severity::Medium;
    assert!(terminal::render(&report, false).ends_with("FAILED: 2 findings at or above medium\n"));
    report.fail_on = Severity::Critical;
    report.results[0].findings.remove(0);
    // The fixture has an errored scenario: an incomplete drill does not pass.
    let text = terminal::render(&report, false);
    assert!(
        text.contains("ERROR: 1 scenario could not give a verdict"),
        "{text}"
    );
    assert_eq!(report.exit_code(), EXIT_COULD_NOT_RUN);
    report
        .results
        .retain(|r| !matches!(r.outcome, Outcome::Errored { .. }));
    assert!(terminal::render(&report, false).ends_with("passed (1 finding below critical)\n"));
    report.results[0].findings.clear();
    assert!(terminal::render(&report, false).ends_with("\npassed\n"));
    assert_eq!(report.exit_code(), EXIT_PASSED);
}

#[test]
fn report_json_has_schema_exit_code_and_the_model() {
    let report = fixture::report();
    let value: Value = serde_json::from_str(&json::render(&report)).expect("valid JSON");
    assert_eq!(value["schema"], json::SCHEMA);
    assert_eq!(value["exit_code"], EXIT_FINDINGS);
    assert_eq!(value["counts"]["scenarios"], 4);
    assert_eq!(value["counts"]["failing_findings"], 1);
    assert_eq!(value["fail_on"], "high");
    assert!(
        value.get("target_text").is_none(),
        "the target text stays out"
    );
    let first = &value["results"][0];
    assert_eq!(first["scenario"]["id"], "cross-patient.app-api");
    assert_eq!(first["outcome"]["status"], "failed");
    assert_eq!(first["findings"][0]["subject"]["type"], "app-route");
    let kinds: Vec<&str> = first["findings"][0]["evidence"]
        .as_array()
        .expect("evidence")
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert_eq!(kinds, ["http", "access-log"]);
    assert_eq!(value["results"][2]["outcome"]["status"], "skipped");
    assert!(value["results"][2]["outcome"]["reason"].is_string());
}

#[test]
fn report_json_fields_are_all_documented() {
    let schema_doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("REPORT_SCHEMA.md"))
            .expect("harness/REPORT_SCHEMA.md");
    let value: Value = serde_json::from_str(&json::render(&fixture::report())).expect("valid JSON");
    let mut keys = Vec::new();
    collect_keys(&value, &mut keys);
    for key in keys {
        assert!(
            schema_doc.contains(&format!("`{key}`")),
            "REPORT_SCHEMA.md does not document `{key}`"
        );
    }
}

fn collect_keys(value: &Value, keys: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                if !keys.contains(key) {
                    keys.push(key.clone());
                }
                collect_keys(inner, keys);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_keys(v, keys)),
        _ => {}
    }
}

#[test]
fn report_junit_parses_back_with_a_case_per_scenario() {
    let xml = junit::render(&fixture::report());
    let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    for (name, want) in [
        ("tests", "4"),
        ("failures", "1"),
        ("errors", "1"),
        ("skipped", "1"),
    ] {
        assert_eq!(root.attribute(name), Some(want), "testsuites {name}");
    }
    assert_eq!(root.attribute("time"), Some("4.321"));
    let suites: Vec<_> = root
        .children()
        .filter(|n| n.has_tag_name("testsuite"))
        .collect();
    let names: Vec<_> = suites.iter().filter_map(|s| s.attribute("name")).collect();
    assert_eq!(names, ["cross-patient", "scope"]);
    assert_eq!(suites[0].attribute("tests"), Some("2"));
    assert_eq!(suites[0].attribute("failures"), Some("1"));
    assert_eq!(suites[1].attribute("skipped"), Some("1"));
    assert_eq!(suites[1].attribute("errors"), Some("1"));
    assert_eq!(suites[0].attribute("time"), Some("2.000"));

    let case = |id: &str| {
        doc.descendants()
            .find(|n| n.has_tag_name("testcase") && n.attribute("name") == Some(id))
            .unwrap_or_else(|| panic!("a testcase for {id}"))
    };
    let child = |id: &str, tag: &str| case(id).children().find(|n| n.has_tag_name(tag));

    let passed = case("cross-patient.fhir-vectors");
    assert_eq!(
        passed.attribute("classname"),
        Some("fhirdrill.cross-patient")
    );
    assert_eq!(passed.children().filter(|n| n.is_element()).count(), 0);

    let failure = child("cross-patient.app-api", "failure").expect("a failure");
    assert_eq!(failure.attribute("type"), Some("critical"));
    assert_eq!(failure.attribute("message"), Some("2 findings"));
    let text = failure.text().unwrap_or_default();
    assert!(text.contains("returned [PHI:B.name]'s record"), "{text}");
    assert!(text.contains(&fixture::report().results[0].findings[1].fingerprint));
    assert!(text.contains("evidence: HTTP exchange"));

    let skipped = child("scope.minimum-necessary", "skipped").expect("skipped");
    assert!(
        skipped
            .attribute("message")
            .unwrap_or_default()
            .contains("backend client")
    );
    let error = child("scope.refresh-rotation", "error").expect("an error");
    assert_eq!(
        error.attribute("message"),
        Some("the token endpoint answered 500 for [PHI:B.name] <[PHI:B.mrn]> & \"quotes\"")
    );
    assert_eq!(
        case("scope.refresh-rotation").attribute("classname"),
        Some("fhirdrill.scope")
    );
}

#[test]
fn report_junit_reports_a_harness_error_as_an_error_case() {
    let mut report = fixture::report();
    report.harness_error = Some(Masked::fixed("cannot reach the simulator"));
    let xml = junit::render(&report);
    let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
    assert_eq!(doc.root_element().attribute("errors"), Some("2"));
    assert_eq!(doc.root_element().attribute("tests"), Some("5"));
    let error = doc
        .descendants()
        .find(|n| n.has_tag_name("error") && n.attribute("type") == Some("harness"))
        .expect("a harness error");
    assert_eq!(
        error.attribute("message"),
        Some("cannot reach the simulator")
    );
}

#[test]
fn report_xml_escaping_round_trips_every_character_class() {
    let nasty = "a&b<c>d\"e'f\ng\th\r\u{1}i\u{FFFF}j";
    let xml = format!(
        "<x a=\"{}\">{}</x>",
        junit::attr(nasty),
        junit::content(nasty)
    );
    let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
    let want = "a&b<c>d\"e'f\ng\th\r\\u{1}i\\u{ffff}j";
    assert_eq!(doc.root_element().attribute("a"), Some(want));
    assert_eq!(doc.root_element().text(), Some(want));
}

#[test]
fn report_sarif_rules_results_and_locations() {
    let report = fixture::report();
    let log = sarif::to_value(&report);
    assert_eq!(log["version"], "2.1.0");
    let run = &log["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().expect("rules");
    let ids: Vec<_> = rules.iter().filter_map(|r| r["id"].as_str()).collect();
    assert_eq!(
        ids,
        [
            "cross-patient.app-api",
            "cross-patient.fhir-vectors",
            "scope.minimum-necessary",
            "scope.refresh-rotation"
        ]
    );
    let app = &rules[0];
    assert_eq!(app["name"], "CrossPatientAppApi");
    assert_eq!(app["properties"]["security-severity"], "9.5");
    let tags = app["properties"]["tags"].as_array().expect("tags");
    for tag in ["CWE-639", "OWASP-API1:2023", "HIPAA-164.502(b)"] {
        assert!(tags.iter().any(|t| t == tag), "tag {tag}");
    }
    assert_eq!(app["deprecatedIds"][0], "cross-patient.app-idor");
    assert!(
        app["help"]["markdown"]
            .as_str()
            .unwrap_or_default()
            .contains("**Fix:**")
    );
    assert!(rules[1].get("deprecatedIds").is_none());
    assert_eq!(rules[2]["properties"]["security-severity"], "5.5");
    assert_eq!(rules[3]["properties"]["security-severity"], "3.0");

    let results = run["results"].as_array().expect("results");
    assert_eq!(results.len(), 2);
    for (result, finding) in results.iter().zip(report.findings()) {
        let index = result["ruleIndex"].as_u64().expect("ruleIndex") as usize;
        assert_eq!(rules[index]["id"], result["ruleId"]);
        assert_eq!(result["ruleId"], finding.scenario);
        assert_eq!(
            result["partialFingerprints"]["fhirdrill/v1"],
            finding.fingerprint
        );
        let physical = &result["locations"][0]["physicalLocation"];
        assert_eq!(physical["artifactLocation"]["uri"], fixture::TARGET_FILE);
        assert!(
            !physical["artifactLocation"]["uri"]
                .as_str()
                .unwrap_or_default()
                .contains("://")
        );
    }
    assert_eq!(results[0]["level"], "error");
    assert_eq!(results[1]["level"], "warning");
    let line = |r: &Value| r["locations"][0]["physicalLocation"]["region"]["startLine"].clone();
    assert_eq!(line(&results[0]), fixture::ROUTE_LINE);
    assert_eq!(line(&results[1]), 1);
    assert_eq!(
        results[0]["locations"][0]["logicalLocations"][0]["name"],
        fixture::ROUTE
    );
    assert!(
        results[0]["message"]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("[PHI:B.name]")
    );
    assert_eq!(results[0]["webResponse"]["statusCode"], 200);
    assert_eq!(
        results[0]["properties"]["evidence"][1]["type"],
        "access-log"
    );

    assert_eq!(run["automationDetails"]["id"], "fhirdrill/default/");
    assert_eq!(
        run["invocations"][0]["executionSuccessful"], false,
        "the fixture has an errored scenario"
    );
    assert_eq!(run["invocations"][0]["exitCode"], EXIT_FINDINGS);
    let tokens = run["redactionTokens"].as_array().expect("redactionTokens");
    assert!(tokens.iter().any(|t| t == "[PHI:B.mrn]"));
}

#[test]
fn report_sarif_marks_a_harness_error_unsuccessful() {
    let mut report = fixture::report();
    report.harness_error = Some(Masked::fixed("cannot reach the simulator"));
    let log = sarif::to_value(&report);
    let invocation = &log["runs"][0]["invocations"][0];
    assert_eq!(invocation["executionSuccessful"], false);
    assert_eq!(invocation["exitCode"], EXIT_COULD_NOT_RUN);
    let notes = invocation["toolExecutionNotifications"]
        .as_array()
        .expect("notes");
    assert_eq!(notes[0]["message"]["text"], "cannot reach the simulator");
    assert_eq!(notes[0]["level"], "error");
}

#[test]
fn report_sarif_subject_lines() {
    let text = "a\npath = \"/api/patients\"\npath = \"/api/patients/{patient}\"\nGET /x/{id}\n";
    let route = |r: &str| Subject::AppRoute {
        route: r.to_string(),
    };
    assert_eq!(
        sarif::subject_line(text, &route("GET /api/patients/{patient}")),
        3
    );
    assert_eq!(sarif::subject_line(text, &route("GET /api/patients")), 2);
    assert_eq!(sarif::subject_line(text, &route("GET /x/{id}")), 4);
    assert_eq!(sarif::subject_line(text, &route("GET /nowhere")), 1);
    let client = Subject::Client {
        client_id: "a".to_string(),
    };
    assert_eq!(sarif::subject_line(text, &client), 1);
}

/// The repository root (where scripts/setup-python.sh creates `.venv`).
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the harness is in the workspace")
        .to_path_buf()
}

#[test]
fn report_sarif_validates_against_the_official_schema() {
    let root = repo_root();
    let python = root.join(".venv/bin/python");
    let has_jsonschema = Command::new(&python)
        .args(["-c", "import jsonschema"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_jsonschema {
        let message = format!(
            "SARIF SCHEMA VALIDATION NOT RUN: {} with jsonschema is missing; run scripts/setup-python.sh",
            python.display()
        );
        assert!(std::env::var_os("CI").is_none(), "{message}");
        eprintln!("\n!!! {message} !!!\n");
        return;
    }
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut failing = fixture::report();
    failing.harness_error = Some(Masked::fixed("cannot reach the simulator"));
    let mut empty = fixture::report();
    empty.results.clear();
    empty.redaction_tokens.clear();
    let mut files = Vec::new();
    for (name, report) in [
        ("full", fixture::report()),
        ("error", failing),
        ("empty", empty),
    ] {
        let path = dir.path().join(format!("{name}.sarif"));
        std::fs::write(&path, sarif::render(&report)).expect("write SARIF");
        files.push(path);
    }
    let output = Command::new(&python)
        .arg(root.join("scripts/validate_sarif.py"))
        .args(&files)
        .output()
        .expect("run the validator");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("3 valid, 0 invalid"), "{stdout}");
}

#[test]
fn report_html_is_self_contained_and_escaped() {
    let page = html::render(&fixture::report());
    assert!(page.starts_with("<!DOCTYPE html>"));
    for forbidden in ["<script", "src=", "href=", "<link", "@import", "url("] {
        assert!(!page.contains(forbidden), "the page has {forbidden}");
    }
    assert!(
        page.contains("&lt;b&gt;Any&lt;/b&gt;"),
        "markup from a finding is escaped"
    );
    assert!(page.contains("<pre>"));
    assert!(page.contains("FAILED: 1 finding at or above high"));
}

#[test]
fn report_files_are_written_to_a_new_folder() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let out = dir.path().join("nested/reports");
    let written = write_all(&fixture::report(), &out).expect("written");
    let names: Vec<_> = written
        .iter()
        .filter_map(|p| p.file_name()?.to_str())
        .collect();
    assert_eq!(
        names,
        [
            "fhirdrill-report.json",
            "fhirdrill-report.junit.xml",
            "fhirdrill-report.sarif",
            "fhirdrill-report.md",
            "fhirdrill-report.html"
        ]
    );
    for path in &written {
        assert!(std::fs::metadata(path).expect("exists").len() > 0);
    }
}

#[test]
fn report_write_errors_name_the_path() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let file = dir.path().join("not-a-folder");
    std::fs::write(&file, "x").expect("write");
    let error = write_all(&fixture::report(), &file.join("sub")).expect_err("cannot create");
    assert!(matches!(error, ReportError::CreateDir { .. }));
    assert!(error.to_string().contains("not-a-folder"), "{error}");
}

#[test]
fn report_formats_parse_by_name() {
    for format in Format::ALL {
        assert_eq!(Format::parse(format.name()), Some(format));
    }
    assert_eq!(Format::parse("SARIF"), Some(Format::Sarif));
    assert_eq!(Format::parse("pdf"), None);
    assert_eq!(Format::Terminal.file_name(), None);
}

#[test]
fn report_has_no_canary_for_several_canaries() {
    let canaries = [
        (CANARY_NAME, CANARY_MRN),
        ("Ana María O'Canary", "MRN-000001"),
        ("Li \"Quoted\" Canary", "MRN/777-a&b"),
        ("Bob <b>Canary</b>", "MRN 42 42"),
    ];
    for (name, mrn) in canaries {
        let report = fixture::report_with(name, mrn);
        assert_no_canary(&report, &[name, mrn, CANARY_ID, SECRET_TOKEN]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// No canary reaches any report format, whatever the canary.
    #[test]
    fn report_has_no_canary_for_any_canary(
        name in "[A-Z][a-z]{2,8} [A-Z]['a-z-]{2,10} Canary",
        mrn in "MRN-[0-9]{6}",
    ) {
        let report = fixture::report_with(&name, &mrn);
        assert_no_canary(&report, &[&name, &mrn, CANARY_ID, SECRET_TOKEN]);
    }
}
