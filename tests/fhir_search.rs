//! `fhirdrill serve`: search, paging, includes, compartments, `$everything`, the
//! CapabilityStatement, and production-like behaviour (rate limit, faults), over a real socket.

use std::collections::HashSet;

use reqwest::StatusCode;
use reqwest::blocking::Response;
use serde_json::Value;

use crate::server::Server;

fn get(url: &str) -> Response {
    crate::server::admin_client()
        .get(url)
        .send()
        .expect("request sent")
}

fn json(url: &str) -> Value {
    let response = get(url);
    assert_eq!(response.status(), StatusCode::OK, "{url}");
    response.json().expect("JSON body")
}

fn ids(bundle: &Value, mode: &str) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter(|e| e["search"]["mode"] == mode)
                .filter_map(|e| e["resource"]["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn link<'a>(bundle: &'a Value, relation: &str) -> Option<&'a str> {
    bundle["link"]
        .as_array()?
        .iter()
        .find(|l| l["relation"] == relation)?["url"]
        .as_str()
}

fn first_patient(server: &Server) -> Value {
    json(&format!("{}/Patient?_count=1&_sort=_id", server.fhir()))["entry"][0]["resource"].clone()
}

#[test]
fn following_next_links_returns_every_match_once() {
    let server = Server::start(&["--patients", "2"]);
    let patient = first_patient(&server);
    let pid = patient["id"].as_str().unwrap_or_default();
    let mut url = format!("{}/Observation?patient={pid}&_count=7", server.fhir());
    let first = json(&url);
    let total = first["total"].as_u64().unwrap_or(0) as usize;
    assert!(total > 14, "several pages expected, got {total}");
    let mut seen = Vec::new();
    loop {
        let page = json(&url);
        assert!(page["entry"].as_array().map_or(0, Vec::len) <= 7);
        seen.extend(ids(&page, "match"));
        match link(&page, "next") {
            Some(next) => url = next.to_string(),
            None => break,
        }
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!((seen.len(), unique.len()), (total, total));
    let everything_of_patient = json(&format!(
        "{}/Patient/{pid}/Observation?_count=1000",
        server.fhir()
    ));
    let compartment: HashSet<String> = ids(&everything_of_patient, "match").into_iter().collect();
    assert_eq!(
        compartment,
        seen.into_iter().collect::<HashSet<_>>(),
        "compartment search = patient search"
    );
}

#[test]
fn unknown_parameters_are_ignored_unless_handling_is_strict() {
    let server = Server::start(&["--patients", "1"]);
    let url = format!(
        "{}/Patient?gender=female,male&flavour=vanilla",
        server.fhir()
    );
    let bundle = json(&url);
    let self_link = link(&bundle, "self").unwrap_or_default();
    assert!(
        self_link.contains("gender=") && !self_link.contains("flavour"),
        "{self_link}"
    );
    let strict = crate::server::admin_client()
        .get(&url)
        .header("prefer", "handling=strict")
        .send()
        .expect("sent");
    assert_eq!(strict.status(), StatusCode::BAD_REQUEST);
    let outcome: Value = strict.json().expect("OperationOutcome");
    assert!(
        outcome["issue"][0]["diagnostics"]
            .as_str()
            .unwrap_or_default()
            .contains("flavour")
    );
    let bad = get(&format!("{}/Observation?date=yesterday", server.fhir()));
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

#[test]
fn us_core_searches_summary_and_includes() {
    let server = Server::start(&["--patients", "3"]);
    let base = server.fhir();
    let patient = first_patient(&server);
    let pid = patient["id"].as_str().unwrap_or_default();
    let family = patient["name"][0]["family"].as_str().unwrap_or_default();

    let count = json(&format!(
        "{base}/Observation?patient={pid}&category=laboratory&_summary=count"
    ));
    assert!(count["total"].as_u64().is_some() && count.get("entry").is_none());

    let chained = json(&format!(
        "{base}/Observation?subject:Patient.family={family}&_count=1000"
    ));
    let direct = json(&format!("{base}/Observation?patient={pid}&_count=1000"));
    assert!(ids(&chained, "match").len() >= ids(&direct, "match").len());

    let posted = crate::server::admin_client()
        .post(format!("{base}/Condition/_search"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("patient={pid}&clinical-status=active"))
        .send()
        .expect("sent");
    let posted: Value = posted.json().expect("bundle");
    let got = json(&format!(
        "{base}/Condition?patient={pid}&clinical-status=active"
    ));
    assert_eq!(ids(&posted, "match"), ids(&got, "match"));

    let with_requester = json(&format!(
        "{base}/MedicationRequest?_include=MedicationRequest:requester&_count=3"
    ));
    if !ids(&with_requester, "match").is_empty() {
        let included = with_requester["entry"].as_array().map_or(0, |e| {
            e.iter()
                .filter(|e| e["search"]["mode"] == "include")
                .count()
        });
        assert!(included > 0, "the requesters are included");
    }
    let elements = json(&format!("{base}/Patient?_id={pid}&_elements=gender"));
    let shown = &elements["entry"][0]["resource"];
    assert!(shown.get("gender").is_some() && shown.get("name").is_none());
}

#[test]
fn everything_holds_the_patient_and_nothing_of_other_patients() {
    let server = Server::start(&["--patients", "3"]);
    let patient = first_patient(&server);
    let pid = patient["id"].as_str().unwrap_or_default();
    let bundle = json(&format!(
        "{}/Patient/{pid}/$everything?_count=1000",
        server.fhir()
    ));
    let entries = bundle["entry"].as_array().cloned().unwrap_or_default();
    let types: HashSet<&str> = entries
        .iter()
        .filter_map(|e| e["resource"]["resourceType"].as_str())
        .collect();
    for expected in [
        "Patient",
        "Encounter",
        "Observation",
        "CareTeam",
        "Practitioner",
        "Organization",
    ] {
        assert!(
            types.contains(expected),
            "{expected} missing from $everything"
        );
    }
    let patients: Vec<&str> = entries
        .iter()
        .filter(|e| e["resource"]["resourceType"] == "Patient")
        .filter_map(|e| e["resource"]["id"].as_str())
        .collect();
    assert_eq!(patients, [pid]);
    let foreign = entries.iter().any(|e| {
        let subject = e["resource"]["subject"]["reference"]
            .as_str()
            .or(e["resource"]["patient"]["reference"].as_str());
        subject.is_some_and(|s| s.starts_with("Patient/") && s != format!("Patient/{pid}"))
    });
    assert!(
        !foreign,
        "another patient's resource leaked into $everything"
    );
    assert_eq!(
        get(&format!("{}/Patient/nobody/$everything", server.fhir())).status(),
        StatusCode::NOT_FOUND
    );
}

#[test]
fn capability_statement_tells_what_is_served() {
    let server = Server::start(&["--patients", "1"]);
    let capability = json(&format!("{}/metadata", server.fhir()));
    let issuer = format!("{}/sandbox/auth", server.url);
    let text = capability.to_string().replace(&issuer, "[issuer]");
    let capability: Value = serde_json::from_str(&text).expect("json");
    insta::assert_json_snapshot!(capability, {
        ".url" => "[base]/metadata",
        ".implementation.url" => "[base]",
    });
}

#[test]
fn smart_configuration_lists_endpoints_and_true_capabilities() {
    let server = Server::start(&["--patients", "1"]);
    let url = format!("{}/.well-known/smart-configuration", server.fhir());
    let response = reqwest::blocking::get(&url).expect("sent");
    assert_eq!(response.status(), StatusCode::OK, "public, no token");
    let text = response
        .text()
        .expect("body")
        .replace(&format!("{}/sandbox/auth", server.url), "[issuer]");
    let configuration: Value = serde_json::from_str(&text).expect("json");
    insta::assert_json_snapshot!(configuration);
}

fn config_file(dir: &std::path::Path, text: &str) -> String {
    let path = dir.join("sim.toml");
    std::fs::write(&path, text).expect("config written");
    path.to_string_lossy().into_owned()
}

#[test]
fn rate_limit_answers_429_with_retry_after() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let config = config_file(
        tmp.path(),
        "[rate_limit]\nrequests_per_second = 0.5\nburst = 3\n",
    );
    let server = Server::start(&["--patients", "1", "--config", &config]);
    let url = format!("{}/metadata", server.fhir());
    let statuses: Vec<StatusCode> = (0..5).map(|_| get(&url).status()).collect();
    assert_eq!(&statuses[..3], &[StatusCode::OK; 3]);
    let limited = get(&url);
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers().get("retry-after").is_some());
}

#[test]
fn faults_are_injected_on_their_route_only() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let config = config_file(
        tmp.path(),
        "[[faults]]\npath_prefix = \"/sandbox/fhir/Observation\"\nerror_rate = 1.0\nerror_status = 503\n",
    );
    let server = Server::start(&["--patients", "1", "--config", &config]);
    let failed = get(&format!("{}/Observation", server.fhir()));
    assert_eq!(failed.status(), StatusCode::SERVICE_UNAVAILABLE);
    let outcome: Value = failed.json().expect("OperationOutcome");
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    assert_eq!(
        get(&format!("{}/Patient", server.fhir())).status(),
        StatusCode::OK
    );
}
