//! `fhirdrill serve`: the FHIR REST API over a real socket.

use reqwest::StatusCode;
use reqwest::blocking::{Client, Response};
use serde_json::{Value, json};

use crate::server::Server;

fn client() -> Client {
    crate::server::admin_client()
}

fn body(response: Response) -> Value {
    response.json().expect("a JSON body")
}

fn post(url: &str, resource: &Value) -> Response {
    client()
        .post(url)
        .header("content-type", "application/fhir+json")
        .body(resource.to_string())
        .send()
        .expect("request sent")
}

fn put(url: &str, resource: &Value, if_match: Option<&str>) -> Response {
    let mut request = client()
        .put(url)
        .header("content-type", "application/fhir+json")
        .body(resource.to_string());
    if let Some(etag) = if_match {
        request = request.header("if-match", etag);
    }
    request.send().expect("request sent")
}

fn get(url: &str) -> Response {
    client().get(url).send().expect("request sent")
}

#[test]
fn health_names_every_environment_base() {
    let server = Server::start(&["--patients", "2"]);
    let health = body(get(&format!("{}/_sim/health", server.url)));
    assert_eq!(health["status"], "ok");
    assert_eq!(health["environments"][0]["fhir_base"], server.fhir());
    assert_eq!(health["audit_log"]["status"], "ok");
}

#[test]
fn a_resource_lives_through_create_read_update_history_and_delete() {
    let server = Server::start(&["--patients", "1"]);
    let base = server.fhir();
    let created = post(
        &format!("{base}/Patient"),
        &json!({"resourceType": "Patient", "id": "ignored", "gender": "female"}),
    );
    assert_eq!(created.status(), StatusCode::CREATED);
    let location = created.headers()["location"]
        .to_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        location.starts_with(&format!("{base}/Patient/")) && location.ends_with("/_history/1"),
        "{location}"
    );
    let patient = body(created);
    let id = patient["id"].as_str().unwrap_or_default().to_string();
    assert_ne!(id, "ignored", "the server assigns ids on create");
    let url = format!("{base}/Patient/{id}");

    let read = get(&url);
    assert_eq!(read.headers()["etag"], "W/\"1\"");
    assert!(read.headers().contains_key("last-modified"));
    let not_modified = client()
        .get(&url)
        .header("if-none-match", "W/\"1\"")
        .send()
        .expect("sent");
    assert_eq!(not_modified.status(), StatusCode::NOT_MODIFIED);

    let mut changed = body(read);
    changed["gender"] = json!("male");
    assert_eq!(
        put(&url, &changed, Some("W/\"7\"")).status(),
        StatusCode::PRECONDITION_FAILED
    );
    let updated = put(&url, &changed, Some("W/\"1\""));
    assert_eq!(updated.status(), StatusCode::OK);
    assert_eq!(body(updated)["meta"]["versionId"], "2");
    assert_eq!(body(get(&format!("{url}/_history/1")))["gender"], "female");

    assert_eq!(
        client().delete(&url).send().expect("sent").status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(get(&url).status(), StatusCode::GONE);
    let history = body(get(&format!("{url}/_history")));
    assert_eq!(history["type"], "history");
    assert_eq!(history["total"], 3);
    assert_eq!(history["entry"][0]["request"]["method"], "DELETE");
    assert_eq!(history["entry"][2]["request"]["method"], "POST");
}

/// Sends a request and checks the status and that the body is an OperationOutcome whose
/// diagnostics contain `expected`.
#[track_caller]
fn check_error(response: Response, status: u16, expected: &str) {
    assert_eq!(response.status().as_u16(), status);
    let outcome = body(response);
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    let diagnostics = outcome["issue"][0]["diagnostics"]
        .as_str()
        .unwrap_or_default();
    assert!(
        diagnostics.contains(expected),
        "{diagnostics:?} should contain {expected:?}"
    );
}

#[test]
fn errors_are_operation_outcomes_with_the_right_status() {
    let server = Server::start(&["--patients", "1"]);
    let base = server.fhir();
    let c = client();
    check_error(
        get(&format!("{base}/Banana/1")),
        404,
        "unknown resource type",
    );
    check_error(
        get(&format!("{base}/Patient/nope")),
        404,
        "Patient/nope is not known",
    );
    let bad_json = c
        .post(format!("{base}/Patient"))
        .header("content-type", "application/fhir+json")
        .body("{\"resourceType\": ");
    check_error(bad_json.send().expect("sent"), 400, "not valid JSON");
    let xml = c
        .post(format!("{base}/Patient"))
        .header("content-type", "application/fhir+xml")
        .body("<Patient/>");
    check_error(xml.send().expect("sent"), 415, "Content-Type");
    check_error(
        c.get(format!("{base}/Patient/x"))
            .header("accept", "application/fhir+xml")
            .send()
            .expect("sent"),
        406,
        "not supported",
    );
    check_error(
        get(&format!("{base}/Patient/x?_format=xml")),
        406,
        "not supported",
    );
    check_error(
        post(
            &format!("{base}/Patient"),
            &json!({"resourceType": "Observation"}),
        ),
        400,
        "does not match",
    );
    check_error(
        put(
            &format!("{base}/Patient/a"),
            &json!({"resourceType": "Patient", "id": "b"}),
            None,
        ),
        400,
        "does not match the URL",
    );
    assert_oversized_body_is_refused(&server.url);
    check_error(
        c.patch(format!("{base}/Patient/x")).send().expect("sent"),
        405,
        "not supported",
    );
    check_error(
        get(&format!("{}/nowhere", server.url)),
        404,
        "nothing at /nowhere",
    );
}

#[test]
fn a_transaction_is_all_or_nothing_and_resolves_urn_uuids() {
    let server = Server::start(&["--patients", "1"]);
    let base = server.fhir();
    let good = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:11111111-1111-4111-8111-111111111111", "resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": "urn:uuid:11111111-1111-4111-8111-111111111111"}}, "request": {"method": "POST", "url": "Observation"}}
    ]});
    let response = body(post(&base, &good));
    assert_eq!(response["type"], "transaction-response");
    assert_eq!(response["entry"][0]["response"]["status"], "201 Created");
    let patient_ref = format!(
        "Patient/{}",
        response["entry"][0]["resource"]["id"]
            .as_str()
            .unwrap_or_default()
    );
    assert_eq!(
        response["entry"][1]["resource"]["subject"]["reference"],
        patient_ref.as_str()
    );

    let before =
        body(get(&format!("{}/_sim/health", server.url)))["environments"][0]["resources"].clone();
    let bad = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Patient", "id": "x"}, "request": {"method": "PUT", "url": "Patient/y"}}
    ]});
    check_error(post(&base, &bad), 400, "nothing was written");
    let after =
        body(get(&format!("{}/_sim/health", server.url)))["environments"][0]["resources"].clone();
    assert_eq!(before, after);

    let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}},
        {"request": {"method": "GET", "url": "Patient/does-not-exist"}}
    ]});
    let response = body(post(&base, &batch));
    assert_eq!(response["entry"][0]["response"]["status"], "201 Created");
    assert_eq!(response["entry"][1]["response"]["status"], "404");
}

#[test]
fn reset_restores_the_seed_state() {
    let server = Server::start(&["--patients", "1"]);
    let count = || {
        body(get(&format!("{}/_sim/health", server.url)))["environments"][0]["resources"].clone()
    };
    let seed = count();
    post(
        &format!("{}/Patient", server.fhir()),
        &json!({"resourceType": "Patient"}),
    );
    assert_ne!(count(), seed);
    let reset = client()
        .post(format!("{}/_sim/reset", server.url))
        .send()
        .expect("sent");
    assert_eq!(reset.status(), StatusCode::OK);
    assert_eq!(count(), seed);
}

#[test]
fn synthea_bundles_load_with_their_references_resolved() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/synthea-r4");
    let server = Server::start(&["--data", dir]);
    let health = body(get(&format!("{}/_sim/health", server.url)));
    assert!(health["environments"][0]["resources"].as_u64().unwrap_or(0) > 1000);
    let patient = body(get(&format!(
        "{}/Patient/018f428e-34f6-4707-8009-5ad742f901e7",
        server.fhir()
    )));
    assert_eq!(patient["resourceType"], "Patient");
    let history = body(get(&format!(
        "{}/Observation/_history?_count=1",
        server.fhir()
    )));
    let reference = history["entry"][0]["resource"]["subject"]["reference"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        reference.starts_with("Patient/"),
        "urn:uuid resolved: {reference}"
    );
    assert_eq!(
        get(&format!("{}/{reference}", server.fhir())).status(),
        StatusCode::OK
    );
}

#[test]
fn generated_folders_load_as_ndjson_or_bundles() {
    let tmp = tempfile::tempdir().expect("temp dir");
    for format in ["ndjson", "bundle"] {
        let out = tmp.path().join(format);
        let out_str = out.to_str().expect("utf-8 path");
        let generated = crate::util::fhirdrill(&[
            "generate",
            "--patients",
            "3",
            "--format",
            format,
            "--out",
            out_str,
            "--quiet",
        ]);
        assert!(generated.status.success());
        let from_folder = Server::start(&["--data", out_str]);
        let in_process = Server::start(&["--patients", "3"]);
        let count = |s: &Server| {
            body(get(&format!("{}/_sim/health", s.url)))["environments"][0]["resources"].clone()
        };
        assert_eq!(count(&from_folder), count(&in_process), "{format}");
    }
}

#[test]
fn ctrl_c_stops_the_server_cleanly() {
    let server = Server::start(&["--patients", "1"]);
    assert_eq!(server.interrupt(), Some(0));
}

#[test]
fn a_taken_port_is_a_one_line_error() {
    let server = Server::start(&["--patients", "1"]);
    let address = server.url.trim_start_matches("http://").to_string();
    let second = crate::util::fhirdrill(&["serve", "--listen", &address, "--patients", "1"]);
    assert_eq!(second.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.starts_with("error: cannot listen on") && stderr.contains(&address),
        "{stderr}"
    );
}

#[test]
fn the_simulator_never_writes_a_canary_to_its_output_access_log_or_audit_log() {
    // The canaries of the population the server generates (same seed, same size).
    let tmp = tempfile::tempdir().expect("temp dir");
    let out = tmp.path().join("data");
    let out_str = out.to_str().expect("utf-8 path");
    crate::util::fhirdrill(&[
        "generate",
        "--patients",
        "3",
        "--seed",
        "1",
        "--format",
        "ndjson",
        "--out",
        out_str,
        "--quiet",
    ]);
    let canaries: Vec<String> = std::fs::read_to_string(out.join("canaries.ndjson"))
        .expect("canaries written")
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .flat_map(|c| {
            ["mrn", "ssn", "phone", "email", "name", "birth_date"]
                .map(|k| c[k].as_str().unwrap_or("").to_string())
        })
        .collect();
    assert_eq!(canaries.len(), 18);

    let server = Server::start_with_env(
        &["--patients", "3", "--seed", "1"],
        &[("FHIRDRILL_LOG", "trace")],
    );
    let base = server.fhir();
    let mut echoed = 0;
    for value in &canaries {
        // Identifying values in queries, paths and malformed bodies: the ways a client leaks them.
        let encoded: String = form_urlencoded::byte_serialize(value.as_bytes()).collect();
        let found = get(&format!(
            "{base}/Patient?identifier={encoded}&name={encoded}&birthdate={encoded}"
        ));
        echoed += usize::from(found.text().unwrap_or_default().contains(value.as_str()));
        get(&format!("{base}/Patient/{encoded}"));
        let bad = format!("{{\"resourceType\": \"Patient\", \"name\": \"{value}\"");
        client()
            .post(format!("{base}/Patient"))
            .header("content-type", "application/fhir+json")
            .body(bad)
            .send()
            .expect("sent");
    }
    assert!(
        echoed >= 6,
        "the searches found the patients, so their values were handled"
    );
    let access_log = client()
        .get(format!("{}/_sim/access-log", server.url))
        .send()
        .expect("sent")
        .text()
        .expect("ndjson");
    let (output, state) = server.stop_keeping_state();
    assert!(
        output.contains("route=/sandbox/fhir/Patient/{id}"),
        "the access log was on: {output}"
    );
    let audit = std::fs::read_to_string(state.path().join("audit").join("audit.ndjson"))
        .expect("the audit log");
    assert!(
        audit.lines().count() > canaries.len(),
        "every request was audited"
    );
    for value in &canaries {
        for (what, text) in [
            ("output", &output),
            ("access log", &access_log),
            ("audit log", &audit),
        ] {
            assert!(
                !text.contains(value.as_str()),
                "fhirdrill wrote the canary {value:?} to its {what}"
            );
        }
    }
}

#[test]
fn environments_in_one_process_keep_their_own_data() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let config = tmp.path().join("sim.toml");
    std::fs::write(
        &config,
        "[[environments]]\nname = \"sandbox\"\npatients = 2\n\n[[environments]]\nname = \"staging\"\npatients = 1\nseed = 7\n",
    )
    .expect("config written");
    let server = Server::start(&["--config", config.to_str().expect("utf-8 path")]);
    let health = body(get(&format!("{}/_sim/health", server.url)));
    let bases: Vec<&str> = health["environments"]
        .as_array()
        .map(|e| e.iter().filter_map(|e| e["fhir_base"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        bases,
        [
            format!("{}/sandbox/fhir", server.url),
            format!("{}/staging/fhir", server.url)
        ]
    );
    let staging = format!("{}/staging/fhir", server.url);
    let count = |base: &str| body(get(&format!("{base}/Patient?_summary=count")))["total"].clone();
    assert_eq!(
        (count(&server.fhir()), count(&staging)),
        (json!(2), json!(1))
    );
    let created = body(post(
        &format!("{staging}/Patient"),
        &json!({"resourceType": "Patient"}),
    ));
    let id = created["id"].as_str().unwrap_or_default();
    assert_eq!(
        get(&format!("{staging}/Patient/{id}")).status(),
        StatusCode::OK
    );
    assert_eq!(
        get(&format!("{}/Patient/{id}", server.fhir())).status(),
        StatusCode::NOT_FOUND
    );
    // Each environment's patients carry its own MRN system.
    let with_mrn = |base: &str, env: &str| {
        body(get(&format!(
            "{base}/Patient?identifier=urn:fhirdrill:{env}:mrn|&_summary=count"
        )))["total"]
            .clone()
    };
    assert_eq!(with_mrn(&staging, "staging"), json!(1));
    assert_eq!(with_mrn(&staging, "sandbox"), json!(0));
    assert_eq!(with_mrn(&server.fhir(), "sandbox"), json!(2));
    assert_eq!(
        get(&format!("{}/prod/fhir/metadata", server.url)).status(),
        StatusCode::NOT_FOUND
    );
}

/// Announces an 11 MiB body and sends none of it: the server must refuse with 413 from the
/// headers alone (a client racing to upload the body would see the connection close instead).
fn assert_oversized_body_is_refused(url: &str) {
    use std::io::{Read, Write};
    let address = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    let request = format!(
        "POST /sandbox/fhir/Patient HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/fhir+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        11 * 1024 * 1024
    );
    stream.write_all(request.as_bytes()).expect("headers sent");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(
        response.contains("OperationOutcome") && response.contains("byte limit"),
        "{response}"
    );
}
