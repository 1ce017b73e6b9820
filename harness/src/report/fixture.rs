//! A fixed [`RunReport`] for the report tests: two families; one scenario passed, one failed
//! with two findings of different severities carrying all three kinds of evidence, one skipped
//! and one errored. Findings are built the way scenarios build them: raw text with canary
//! values, through a [`Masker`].

use fhirdrill_scenarios::cx::{AccessEntry, Exchange};
use fhirdrill_scenarios::{
    Capability, Control, Evidence, Finding, Masked, Masker, ScenarioMeta, Severity, Subject,
};

use super::{Outcome, RunReport, ScenarioResult};

/// The fake patient name the default fixture leaks.
pub(crate) const CANARY_NAME: &str = "Zed Q Canary";
/// The fake MRN the default fixture leaks.
pub(crate) const CANARY_MRN: &str = "MRN-990011";
/// The fake id of the other patient.
pub(crate) const CANARY_ID: &str = "pat-canary-2";
/// An access token the harness was issued.
pub(crate) const SECRET_TOKEN: &str = "tok-7f3e9a2c-secret";

/// The target file the fixture's SARIF locations point into.
pub(crate) const TARGET_FILE: &str = "examples/clinic-app/drill.toml";
/// Its text: the attacked endpoint's path is declared on line 12.
pub(crate) const TARGET_TEXT: &str = r#"# The clinic app, as fhirdrill attacks it.
name = "clinic-app"
environment = "default"

[app]
base_url = "http://127.0.0.1:8080"

[login]
launch_url = "http://127.0.0.1:8080/launch"

[[endpoints]]
path = "/api/patients/{patient}"
method = "GET"
"#;
/// The line of [`TARGET_TEXT`] declaring `/api/patients/{patient}`.
pub(crate) const ROUTE_LINE: usize = 12;
/// The route attacked.
pub(crate) const ROUTE: &str = "GET /api/patients/{patient}";

/// A failing scenario (critical).
pub(crate) static APP_API: ScenarioMeta = ScenarioMeta {
    id: "cross-patient.app-api",
    title: "Another patient's record through the app API",
    family: "cross-patient",
    summary: "Signs in as one patient and asks the app's API for another patient's data.",
    severity: Severity::Critical,
    controls: &[
        Control::Cwe(639),
        Control::OwaspApi("API1:2023"),
        Control::Hipaa("164.502(b)"),
    ],
    references: &[
        "https://owasp.org/API-Security/editions/2023/en/0xa1-broken-object-level-authorization/",
    ],
    needs: &[Capability::PatientLogin, Capability::AppApi],
    fix: "Check on every request that the signed-in patient may see the requested patient.",
    deprecated_ids: &["cross-patient.app-idor"],
};

/// A passing scenario (high).
pub(crate) static FHIR_VECTORS: ScenarioMeta = ScenarioMeta {
    id: "cross-patient.fhir-vectors",
    title: "Other patients through FHIR search vectors",
    family: "cross-patient",
    summary: "Tries _include, chaining and batch to reach other patients' resources.",
    severity: Severity::High,
    controls: &[Control::Cwe(639)],
    references: &["https://hl7.org/fhir/R4/search.html"],
    needs: &[Capability::FhirEndpoint],
    fix: "Apply the patient compartment to every search parameter.",
    deprecated_ids: &[],
};

/// A skipped scenario (medium).
pub(crate) static MINIMUM_SCOPES: ScenarioMeta = ScenarioMeta {
    id: "scope.minimum-necessary",
    title: "Scopes beyond what the app uses",
    family: "scope",
    summary: "Compares the scopes granted with the scopes used.",
    severity: Severity::Medium,
    controls: &[
        Control::Hipaa("164.502(b)"),
        Control::SmartAppLaunch("Scopes"),
    ],
    references: &["https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html"],
    needs: &[Capability::BackendServices],
    fix: "Request only the scopes the app uses.",
    deprecated_ids: &[],
};

/// An errored scenario (low).
pub(crate) static REFRESH: ScenarioMeta = ScenarioMeta {
    id: "scope.refresh-rotation",
    title: "Refresh tokens are not rotated",
    family: "scope",
    summary: "Uses a refresh token twice.",
    severity: Severity::Low,
    controls: &[Control::Cwe(613)],
    references: &[],
    needs: &[Capability::PatientLogin],
    fix: "Rotate refresh tokens and revoke the family on reuse.",
    deprecated_ids: &[],
};

/// The default fixture, leaking [`CANARY_NAME`] and [`CANARY_MRN`].
pub(crate) fn report() -> RunReport {
    report_with(CANARY_NAME, CANARY_MRN)
}

/// The fixture with the given canary name and MRN in every raw text.
pub(crate) fn report_with(name: &str, mrn: &str) -> RunReport {
    let masker = Masker::new(
        vec![
            (name.to_string(), "[PHI:B.name]".to_string()),
            (mrn.to_string(), "[PHI:B.mrn]".to_string()),
            (CANARY_ID.to_string(), "[PHI:B.id]".to_string()),
        ],
        vec![(
            SECRET_TOKEN.to_string(),
            "[SECRET:access_token]".to_string(),
        )],
    );
    RunReport {
        tool_version: "0.1.0",
        target: "clinic-app".to_string(),
        target_file: TARGET_FILE.to_string(),
        target_text: TARGET_TEXT.to_string(),
        environment: "default".to_string(),
        started_at: "2026-01-02T03:04:05Z".to_string(),
        duration_ms: 4321,
        fail_on: Severity::High,
        results: vec![
            ScenarioResult {
                scenario: &APP_API,
                outcome: Outcome::Failed,
                findings: vec![
                    route_finding(&masker, name, mrn),
                    include_finding(&masker, mrn),
                ],
                duration_ms: 1200,
            },
            ScenarioResult {
                scenario: &FHIR_VECTORS,
                outcome: Outcome::Passed,
                findings: vec![],
                duration_ms: 800,
            },
            ScenarioResult {
                scenario: &MINIMUM_SCOPES,
                outcome: Outcome::Skipped {
                    reason: Masked::fixed(
                        "the target lacks the app's backend client ([backend] client_id)",
                    ),
                },
                findings: vec![],
                duration_ms: 0,
            },
            ScenarioResult {
                scenario: &REFRESH,
                outcome: Outcome::Errored {
                    reason: masker.mask(&format!(
                        "the token endpoint answered 500 for {name} <{mrn}> & \"quotes\""
                    )),
                },
                findings: vec![],
                duration_ms: 15,
            },
        ],
        harness_error: None,
        redaction_tokens: masker.placeholders(),
    }
}

/// The critical finding: the app returned the other patient's record (HTTP and access log).
fn route_finding(masker: &Masker, name: &str, mrn: &str) -> Finding {
    let body = serde_json::json!({
        "resourceType": "Patient",
        "id": CANARY_ID,
        "name": [{ "text": name }],
        "identifier": [{ "value": mrn }],
    })
    .to_string();
    let exchange = Exchange {
        method: "GET".to_string(),
        url: format!(
            "http://127.0.0.1:8080/api/patients/{CANARY_ID}?access_token={SECRET_TOKEN}&q={}",
            percent_encode(name)
        ),
        sent: String::new(),
        status: 200,
        body,
    };
    let entry = AccessEntry {
        seq: 7,
        channel: "fhir".to_string(),
        action: "read".to_string(),
        route: "/default/fhir/Patient/{id}".to_string(),
        client_id: Some("clinic-app".to_string()),
        user: Some("Patient/pat-1".to_string()),
        token_id: Some(SECRET_TOKEN.to_string()),
        token_kind: "access".to_string(),
        scopes_used: vec!["patient/Patient.read".to_string()],
        patients: vec![CANARY_ID.to_string()],
        status: 200,
        outcome: "allowed".to_string(),
        ..AccessEntry::default()
    };
    Finding::new(
        &APP_API,
        "",
        Subject::AppRoute {
            route: ROUTE.to_string(),
        },
        masker.mask(&format!("{ROUTE} returned {name}'s record to another patient")),
        masker.mask(&format!(
            "Signed in as patient pat-1, the app returned {name} (MRN {mrn}). <b>Any</b> patient can read any other."
        )),
    )
    .with(Evidence::http(masker, &exchange, Some(name)))
    .with(Evidence::access_log(masker, [&entry]))
}

/// The medium finding: a note only, severity lowered.
fn include_finding(masker: &Masker, mrn: &str) -> Finding {
    Finding::new(
        &APP_API,
        "identifier-search",
        Subject::FhirVector {
            vector: "identifier".to_string(),
        },
        masker.mask(&format!("Search by identifier {mrn} confirms the patient exists")),
        masker.mask("The app answers 403 rather than 404 for identifiers it knows | pipes `ticks`."),
    )
    .severity(Severity::Medium)
    .with(Evidence::note(
        masker,
        &format!("GET /api/search?identifier={mrn} -> 403\nGET /api/search?identifier=MRN-000000 -> 404\n```"),
    ))
}

/// The URL form of a value (as a browser sends it).
fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
