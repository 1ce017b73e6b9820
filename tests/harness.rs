//! The harness end to end: `fhirdrill demo` starts the simulator and the sample clinic app
//! with chosen flaws and attacks it over real sockets. The flaw matrix is the proof that each
//! scenario finds what it claims and accuses nothing else.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::util::fhirdrill;

/// Runs the demo with `flaws` and returns its exit code and JSON report.
fn demo(flaws: &str, dir: &Path) -> (i32, Value) {
    let report_dir = dir.join("report");
    let out = fhirdrill(&[
        "demo",
        "--flaws",
        flaws,
        "--patients",
        "30",
        "--report-dir",
        report_dir.to_str().expect("utf-8 path"),
    ]);
    let code = out.status.code().unwrap_or(-1);
    let text =
        std::fs::read_to_string(report_dir.join("fhirdrill-report.json")).unwrap_or_else(|_| {
            panic!(
                "no JSON report for --flaws {flaws}; stdout: {} stderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
    (
        code,
        serde_json::from_str(&text).expect("the JSON report parses"),
    )
}

/// The ids of the scenarios that failed.
fn failed(report: &Value) -> BTreeSet<String> {
    report["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter(|r| r["outcome"]["status"] == "failed")
        .map(|r| r["scenario"]["id"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Runs one row of the matrix: `flaws` alone makes exactly `expected` fail, and the findings'
/// evidence names each of `evidence` (the flaw's fingerprints in the EHR's records).
fn check(flaws: &str, expected: &[&str], evidence: &[&str]) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (code, report) = demo(flaws, dir.path());
    let expected: BTreeSet<String> = expected.iter().map(|s| s.to_string()).collect();
    assert_eq!(failed(&report), expected, "--flaws {flaws}: {report:#}");
    for result in report["results"].as_array().expect("results") {
        let status = result["outcome"]["status"].as_str().unwrap_or_default();
        assert!(matches!(status, "passed" | "failed"), "{flaws}: {result:#}");
        for finding in result["findings"].as_array().into_iter().flatten() {
            assert!(
                !finding["evidence"].as_array().expect("evidence").is_empty(),
                "a finding without evidence: {finding:#}"
            );
        }
    }
    let findings = report["results"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["findings"].as_array().cloned().unwrap_or_default())
        .map(|f| f.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    for needle in evidence {
        assert!(
            findings.contains(needle),
            "--flaws {flaws}: no finding names {needle}: {findings}"
        );
    }
    let high = report["counts"]["failing_findings"].as_u64().unwrap_or(0);
    assert_eq!(
        code,
        if high > 0 { 1 } else { 0 },
        "exit code of --flaws {flaws}"
    );
}

#[test]
fn the_correct_app_passes_every_scenario_with_zero_findings() {
    check("none", &[], &[]);
}

#[test]
fn cross_patient_api_is_found_by_the_app_api_scenario() {
    // The flawed app answers from its backend-filled cache, so it also never uses the user's
    // Patient grant: a true, second finding.
    check(
        "cross-patient-api",
        &["cross-patient.app-api", "scope.unused-grants"],
        &[
            "[PHI:victim.name]",
            "[PHI:victim.mrn]",
            "GET /api/patients/{patient.id}",
        ],
    );
}

#[test]
fn service_account_fallback_is_found_as_a_confused_deputy() {
    // The fallback also serves a clinician patients the EHR refused them: the deputy's harm.
    check(
        "service-account-fallback",
        &["service-account.confused-deputy", "cross-patient.app-api"],
        &[
            "client=clinic-app-backend",
            "after the user's grant was revoked",
        ],
    );
}

#[test]
fn broad_system_scope_is_found() {
    check(
        "broad-system-scope",
        &["scope.broad-system-scope"],
        &["system/*.read", "clinic-app-backend"],
    );
}

#[test]
fn requests_unused_scopes_is_found() {
    check(
        "requests-unused-scopes",
        &["scope.unused-grants"],
        &["patient/*.read", "user/*.read"],
    );
}

#[test]
fn ignores_downscoped_grant_is_found() {
    check(
        "ignores-downscoped-grant",
        &["scope.downscoped-grant"],
        &["ignored-grant", "status=403"],
    );
}

#[test]
fn widens_on_refresh_is_found() {
    check(
        "widens-on-refresh",
        &["scope.widen-on-refresh"],
        &["patient/Condition.rs", "token-refresh_token"],
    );
}

/// The demo's default selection: each flaw found, and their combination adds no accusation.
#[test]
fn the_demo_defaults_are_found_together() {
    check(
        "cross-patient-api,service-account-fallback,requests-unused-scopes",
        &[
            "cross-patient.app-api",
            "scope.unused-grants",
            "service-account.confused-deputy",
        ],
        &[
            "[PHI:victim.mrn]",
            "patient/*.read",
            "client=clinic-app-backend",
        ],
    );
}

#[test]
fn every_report_file_is_written_and_the_sarif_validates() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_, report) = demo("cross-patient-api", dir.path());
    let report_dir = dir.path().join("report");
    for name in ["junit.xml", "sarif", "md", "html"] {
        let path = report_dir.join(format!("fhirdrill-report.{name}"));
        let text = std::fs::read_to_string(&path).expect("report file");
        assert!(!text.is_empty(), "{name}");
    }
    let junit =
        std::fs::read_to_string(report_dir.join("fhirdrill-report.junit.xml")).expect("junit");
    let cases = junit.matches("<testcase ").count();
    assert_eq!(
        cases,
        report["results"].as_array().map_or(0, Vec::len),
        "one testcase per scenario"
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".venv/bin/python");
    if !python.exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install .venv (scripts/setup-python.sh)"
        );
        eprintln!("SARIF SCHEMA VALIDATION NOT RUN: run scripts/setup-python.sh first");
        return;
    }
    let validated = std::process::Command::new(python)
        .arg(root.join("scripts/validate_sarif.py"))
        .arg(report_dir.join("fhirdrill-report.sarif"))
        .output()
        .expect("the validator runs");
    assert!(
        validated.status.success(),
        "{}{}",
        String::from_utf8_lossy(&validated.stdout),
        String::from_utf8_lossy(&validated.stderr)
    );
}

#[test]
fn the_reports_never_hold_a_canary() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_, report) = demo("cross-patient-api,service-account-fallback", dir.path());
    let json = report.to_string();
    assert!(
        json.contains("[PHI:victim.name]"),
        "the leak is shown masked"
    );
    for file in ["md", "sarif", "junit.xml", "html", "json"] {
        let text =
            std::fs::read_to_string(dir.path().join(format!("report/fhirdrill-report.{file}")))
                .expect("report file");
        // MRNs and emails of the synthetic patients have these shapes; the demo's admin
        // token starts with "demo-".
        for leak in ["MRN", "@example.com", "demo-"] {
            assert!(!text.contains(leak), "{leak} reached the {file} report");
        }
    }
}

#[test]
fn the_catalog_is_listed_and_a_missing_simulator_exits_2() {
    let out = fhirdrill(&["scenarios", "list"]);
    assert!(out.status.success());
    let list = String::from_utf8_lossy(&out.stdout);
    for id in [
        "cross-patient.app-api",
        "scope.widen-on-refresh",
        "service-account.confused-deputy",
    ] {
        assert!(list.contains(id), "{id} listed");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let target = dir.path().join("drill.toml");
    std::fs::write(
        &target,
        "name = \"x\"\n[app]\nbase_url = \"http://127.0.0.1:9\"\nclient_id = \"x\"\n",
    )
    .expect("write");
    let out = fhirdrill(&[
        "run",
        "--target",
        target.to_str().expect("utf-8"),
        "--simulator",
        "http://127.0.0.1:9",
        "--admin-token",
        "0123456789abcdef0123",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot reach the simulator"), "{stderr}");
}

/// A free loopback port (bound, read, released: the simulator binds it right after).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The clinic app with `flaws`, running in this process, and in `dir` a simulator config that
/// registers it and a target file (edited by `edit`) that starts that simulator.
fn clinic_for_run(
    dir: &Path,
    flaws: &str,
    edit: impl Fn(String) -> String,
) -> clinic_app::RunningApp {
    clinic_with(dir, flaws, edit, |_| {})
}

/// [`clinic_for_run`], with the app's config adjusted by `configure`.
fn clinic_with(
    dir: &Path,
    flaws: &str,
    edit: impl Fn(String) -> String,
    configure: impl Fn(&mut clinic_app::AppConfig),
) -> clinic_app::RunningApp {
    let flaws: clinic_app::Flaws = flaws.parse().expect("flaws");
    let app = clinic_app::App::bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
    let app_state = dir.join("app");
    let jwks = clinic_app::public_jwks(&app_state).expect("jwks");
    let registration = clinic_app::registration_toml(
        &app.url(),
        &flaws,
        clinic_app::DEFAULT_CLIENT_ID,
        clinic_app::DEFAULT_BACKEND_CLIENT_ID,
        &jwks,
    );
    let port = free_port();
    std::fs::write(
        dir.join("sim.toml"),
        format!(
            "listen = \"127.0.0.1:{port}\"\nadmin_token = \"run-test-admin-token-0123\"\n\n[[environments]]\nname = \"sandbox\"\npatients = 30\nseed = 3\n\n{registration}"
        ),
    )
    .expect("sim.toml");
    let mut config =
        clinic_app::AppConfig::new(&format!("http://127.0.0.1:{port}/sandbox/fhir"), app_state);
    config.flaws = flaws;
    configure(&mut config);
    let target = include_str!("../examples/clinic-app/drill.toml")
        .replace("{app_url}", &app.url())
        .replace("{job_token}", &config.job_token)
        .replace(
            "url = \"{simulator_url}\"",
            "config = \"sim.toml\"\nstate_dir = \"sim-state\"",
        )
        // The FHIR attacks go to a base URL, as for a startup's own FHIR API.
        .replace(
            "target = \"simulator\"",
            &format!("base_url = \"http://127.0.0.1:{port}/sandbox/fhir\""),
        );
    std::fs::write(dir.join("drill.toml"), edit(target)).expect("drill.toml");
    app.start(config).expect("the app starts")
}

/// Runs `fhirdrill run` on `dir`'s target file; the exit code and the JSON report.
fn run_drill(dir: &Path, fail_on: &str, reports: &str) -> (Option<i32>, Value) {
    let out = fhirdrill(&[
        "run",
        "--target",
        dir.join("drill.toml").to_str().expect("utf-8"),
        "--fail-on",
        fail_on,
        "--report-dir",
        dir.join(reports).to_str().expect("utf-8"),
    ]);
    let json = std::fs::read_to_string(dir.join(reports).join("fhirdrill-report.json"))
        .unwrap_or_else(|_| {
            panic!(
                "no report: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
    (
        out.status.code(),
        serde_json::from_str(&json).expect("report"),
    )
}

/// The outcome status of scenario `id`.
fn status_of<'a>(report: &'a Value, id: &str) -> &'a str {
    report["results"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["scenario"]["id"] == id))
        .and_then(|r| r["outcome"]["status"].as_str())
        .unwrap_or("missing")
}

/// `fhirdrill run` as a user runs it in CI: the clinic app already running, the target file
/// starting the simulator from its own config, reports written, exit code from `--fail-on`.
#[test]
fn run_starts_the_simulator_from_the_target_file_and_exits_by_severity() {
    let dir = tempfile::tempdir().expect("temp dir");
    let app = clinic_for_run(dir.path(), "requests-unused-scopes", |t| t);
    let (code, report) = run_drill(dir.path(), "medium", "strict");
    assert_eq!(code, Some(1), "{report:#}");
    assert_eq!(
        failed(&report),
        BTreeSet::from(["scope.unused-grants".to_string()])
    );
    assert_eq!(status_of(&report, "cross-patient.fhir-vectors"), "passed");
    assert!(
        dir.path().join("sim-state/audit").exists(),
        "the embedded simulator kept its audit log"
    );
    let (code, _) = run_drill(dir.path(), "high", "lenient");
    assert_eq!(code, Some(0), "a medium finding passes --fail-on high");
    app.stop().expect("the app stops");
}

/// An app API that takes the SMART access token as a bearer token (no cookie session): the
/// harness gets the token itself and the same scenarios apply.
#[test]
fn bearer_sessions_find_the_same_leak_and_clear_the_correct_app() {
    let bearer = |t: String| {
        t.replace("session = \"cookie\"", "session = \"bearer\"")
            .replace("ehr_launch = true", "ehr_launch = false")
    };
    for (flaws, expected) in [
        ("", vec![]),
        (
            "cross-patient-api",
            vec!["cross-patient.app-api", "scope.unused-grants"],
        ),
    ] {
        let dir = tempfile::tempdir().expect("temp dir");
        let app = clinic_for_run(dir.path(), flaws, bearer);
        let (_, report) = run_drill(dir.path(), "high", "report");
        let expected: BTreeSet<String> = expected.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            failed(&report),
            expected,
            "bearer, --flaws {flaws}: {report:#}"
        );
        assert_ne!(status_of(&report, "cross-patient.app-api"), "skipped");
        assert_eq!(
            status_of(&report, "scope.widen-on-refresh"),
            "skipped",
            "a bearer client holds no refresh token the app could use"
        );
        app.stop().expect("the app stops");
    }
}

/// A drill that cannot finish must not pass: a wrong login path makes the login scenarios
/// error (exit 2, "ERROR" verdict), and a misspelled persona stops the drill before it starts.
#[test]
fn an_incomplete_drill_exits_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let app = clinic_for_run(dir.path(), "", |t| {
        t.replace(
            "patient_login_path = \"/login\"",
            "patient_login_path = \"/signin\"",
        )
    });
    let (code, report) = run_drill(dir.path(), "high", "report");
    assert_eq!(code, Some(2), "{report:#}");
    assert_eq!(status_of(&report, "cross-patient.app-api"), "errored");
    assert!(
        report["verdict"]
            .as_str()
            .unwrap_or("")
            .starts_with("ERROR"),
        "{report:#}"
    );
    let target = std::fs::read_to_string(dir.path().join("drill.toml")).expect("target");
    std::fs::write(
        dir.path().join("drill.toml"),
        format!("{target}\n[personas]\npractitioner = \"clinican2\"\n"),
    )
    .expect("write");
    let out = fhirdrill(&[
        "run",
        "--target",
        dir.path().join("drill.toml").to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("clinican2"), "{stderr}");
    app.stop().expect("the app stops");
}

/// An app whose own sync job runs every second during the drill: its backend traffic must not
/// be blamed on the user requests it happens to coincide with.
#[test]
fn a_scheduled_job_of_the_correct_app_is_not_mistaken_for_a_flaw() {
    let dir = tempfile::tempdir().expect("temp dir");
    let app = clinic_with(
        dir.path(),
        "",
        |t| t,
        |config| config.sync_every = Some(std::time::Duration::from_secs(1)),
    );
    let (code, report) = run_drill(dir.path(), "low", "report");
    assert_eq!(failed(&report), BTreeSet::new(), "{report:#}");
    assert_eq!(code, Some(0));
    app.stop().expect("the app stops");
}
