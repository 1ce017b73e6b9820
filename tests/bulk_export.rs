//! Bulk Data `$export` over a real socket: kick-off, polling, manifest, downloads, cancel.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::blocking::{Client, RequestBuilder, Response};
use serde_json::{Value, json};

use crate::server::Server;

fn client() -> Client {
    crate::server::admin_client()
}

fn send(request: RequestBuilder) -> Response {
    request.send().expect("request sent")
}

fn header(response: &Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// Kicks off `$export` at `url` with `Prefer: respond-async`; returns the status URL.
fn kick_off(url: &str) -> String {
    let response = send(
        client()
            .get(url)
            .header("accept", "application/fhir+json")
            .header("prefer", "respond-async"),
    );
    assert_eq!(response.status(), StatusCode::ACCEPTED, "{url}");
    let location = header(&response, "content-location");
    assert!(location.contains("/sandbox/fhir/_bulk/"), "{location}");
    location
}

/// Polls the status URL as a client would; returns whether a 202 came first, and the manifest.
fn wait_for_manifest(status_url: &str) -> (bool, Value) {
    let mut saw_progress = false;
    for _ in 0..30 {
        let response = send(client().get(status_url));
        match response.status() {
            StatusCode::ACCEPTED => {
                assert!(header(&response, "x-progress").starts_with("exporting"));
                saw_progress = true;
                let wait: u64 = header(&response, "retry-after").parse().unwrap_or(1);
                std::thread::sleep(Duration::from_secs(wait));
            }
            StatusCode::OK => {
                assert!(header(&response, "content-type").starts_with("application/json"));
                return (saw_progress, response.json().expect("a JSON manifest"));
            }
            other => panic!("unexpected status {other} from {status_url}"),
        }
    }
    panic!("the export at {status_url} never completed");
}

/// Downloads every output file, checks its line count and line types; returns the resources.
fn download_all(manifest: &Value) -> Vec<Value> {
    let mut resources = Vec::new();
    for output in manifest["output"].as_array().expect("an output array") {
        let url = output["url"].as_str().expect("a file url");
        let response = send(
            client()
                .get(url)
                .header("accept", "application/fhir+ndjson"),
        );
        assert_eq!(response.status(), StatusCode::OK, "{url}");
        assert_eq!(header(&response, "content-type"), "application/fhir+ndjson");
        let text = response.text().expect("an NDJSON body");
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("one JSON resource per line"))
            .collect();
        assert_eq!(Some(lines.len() as u64), output["count"].as_u64(), "{url}");
        assert!(lines.iter().all(|r| r["resourceType"] == output["type"]));
        resources.extend(lines);
    }
    resources
}

fn output_types(manifest: &Value) -> Vec<String> {
    manifest["output"]
        .as_array()
        .expect("an output array")
        .iter()
        .filter_map(|o| o["type"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn system_export_holds_every_resource() {
    let server = Server::start(&["--patients", "3"]);
    let base = server.fhir();
    let health: Value = send(client().get(format!("{}/_sim/health", server.url)))
        .json()
        .expect("health JSON");
    let stored = health["environments"][0]["resources"]
        .as_u64()
        .expect("a resource count");

    let status_url = kick_off(&format!(
        "{base}/$export?_outputFormat=application/fhir%2Bndjson"
    ));
    let (saw_progress, manifest) = wait_for_manifest(&status_url);
    assert!(saw_progress, "the first poll reports progress with 202");
    assert_eq!(manifest["requiresAccessToken"], true);
    assert_eq!(manifest["error"], json!([]));
    let request = manifest["request"].as_str().unwrap_or_default();
    assert!(
        request.starts_with(&format!("{base}/$export?")),
        "{request}"
    );
    assert!(manifest["transactionTime"].as_str().is_some());
    let types = output_types(&manifest);
    let mut sorted = types.clone();
    sorted.sort();
    assert_eq!(types, sorted, "outputs are in type order");
    assert!(!types.contains(&"AuditEvent".to_string()));

    let resources = download_all(&manifest);
    assert_eq!(
        resources.len() as u64,
        stored,
        "every stored resource, once"
    );
}

#[test]
fn patient_and_group_exports_follow_compartments() {
    let server = Server::start(&["--patients", "3"]);
    let base = server.fhir();
    let (_, patients) = wait_for_manifest(&kick_off(&format!("{base}/Patient/$export")));
    let everyone = download_all(&patients);
    let patient_ids: Vec<String> = everyone
        .iter()
        .filter(|r| r["resourceType"] == "Patient")
        .filter_map(|r| r["id"].as_str().map(str::to_string))
        .collect();
    assert_eq!(patient_ids.len(), 3);
    assert!(output_types(&patients).contains(&"Observation".to_string()));

    let group = json!({"resourceType": "Group", "type": "person", "actual": true,
        "member": [{"entity": {"reference": format!("Patient/{}", patient_ids[0])}}]});
    let created = send(
        client()
            .post(format!("{base}/Group"))
            .header("content-type", "application/fhir+json")
            .body(group.to_string()),
    );
    assert_eq!(created.status(), StatusCode::CREATED);
    let group_id = created.json::<Value>().expect("the Group")["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    let (_, manifest) = wait_for_manifest(&kick_off(&format!("{base}/Group/{group_id}/$export")));
    let members = download_all(&manifest);
    let exported_patients: BTreeSet<&str> = members
        .iter()
        .filter(|r| r["resourceType"] == "Patient")
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert_eq!(exported_patients, BTreeSet::from([patient_ids[0].as_str()]));
    assert!(members.len() > 1 && members.len() < everyone.len());

    let missing = send(
        client()
            .get(format!("{base}/Group/no-such-group/$export"))
            .header("prefer", "respond-async"),
    );
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let outcome: Value = missing.json().expect("an OperationOutcome");
    assert_eq!(outcome["resourceType"], "OperationOutcome");
}

#[test]
fn type_and_since_filter_the_output() {
    let server = Server::start(&["--patients", "3"]);
    let base = server.fhir();
    let (_, manifest) = wait_for_manifest(&kick_off(&format!(
        "{base}/$export?_type=Patient,Observation"
    )));
    assert_eq!(output_types(&manifest), ["Observation", "Patient"]);
    download_all(&manifest);

    let (_, future) = wait_for_manifest(&kick_off(&format!(
        "{base}/Patient/$export?_since=2999-01-01T00:00:00Z"
    )));
    assert_eq!(future["output"], json!([]));
}

/// Checks a refused kick-off: the status and an OperationOutcome mentioning `expected`.
#[track_caller]
fn check_refused(request: RequestBuilder, status: StatusCode, expected: &str) {
    let response = send(request);
    assert_eq!(response.status(), status);
    let outcome: Value = response.json().expect("an OperationOutcome");
    let diagnostics = outcome["issue"][0]["diagnostics"]
        .as_str()
        .unwrap_or_default();
    assert!(diagnostics.contains(expected), "{diagnostics:?}");
}

#[test]
fn bad_kick_offs_are_refused() {
    let server = Server::start(&["--patients", "1"]);
    let base = server.fhir();
    let bad = StatusCode::BAD_REQUEST;
    check_refused(
        client().get(format!("{base}/$export")),
        bad,
        "Prefer: respond-async",
    );
    let asynchronous = |query: &str| {
        client()
            .get(format!("{base}/$export?{query}"))
            .header("prefer", "respond-async")
    };
    check_refused(asynchronous("_outputFormat=text/csv"), bad, "_outputFormat");
    check_refused(asynchronous("_type=Patient,Banana"), bad, "Banana");
    check_refused(asynchronous("_since=last-week"), bad, "_since");
}

#[test]
fn cancelled_and_unknown_jobs_are_gone() {
    let server = Server::start(&["--patients", "1"]);
    let base = server.fhir();
    let status_url = kick_off(&format!("{base}/$export"));
    let (_, manifest) = wait_for_manifest(&status_url);
    let file_url = manifest["output"][0]["url"]
        .as_str()
        .expect("a file url")
        .to_string();

    let cancelled = send(client().delete(&status_url));
    assert_eq!(cancelled.status(), StatusCode::ACCEPTED);
    assert_eq!(
        send(client().get(&status_url)).status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send(client().get(&file_url)).status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send(client().delete(&status_url)).status(),
        StatusCode::NOT_FOUND
    );
    let unknown = send(client().get(format!("{base}/_bulk/00000000-0000-4000-8000-000000000000")));
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}
