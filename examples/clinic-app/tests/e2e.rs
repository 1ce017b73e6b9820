//! End to end: a real simulator in-process, the correct app and one flawed app registered
//! side by side, driven by browser-like HTTP clients (cookie store, redirects followed).

use std::path::Path;

use clinic_app::{App, AppConfig, Flaw, Flaws, RunningApp, public_jwks, registration_toml};
use fhirdrill_simulator::config::{Overrides, SimConfig};
use fhirdrill_simulator::launch::Embedded;
use reqwest::blocking::Client;
use serde_json::{Value, json};

const ADMIN: &str = "e2e-admin-token-0123456789";
const JOB: &str = "e2e-job-token-0123456789";
const CORRECT: &str = "clinic-app";
const FLAWED: &str = "flawed-app";

/// A simulator with the correct app and an app with `flaws`, both running.
struct World {
    dir: tempfile::TempDir,
    sim: Embedded,
    correct: RunningApp,
    flawed: RunningApp,
    users: Vec<Value>,
}

fn start_app(app: App, fhir_base: &str, state: &Path, client_id: &str, flaws: Flaws) -> RunningApp {
    let mut config = AppConfig::new(fhir_base, state.to_path_buf());
    config.client_id = client_id.to_string();
    config.backend_client_id = format!("{client_id}-backend");
    config.flaws = flaws;
    config.job_token = JOB.to_string();
    app.start(config).expect("app starts")
}

impl World {
    fn new(flaws: &str) -> World {
        let flaws: Flaws = flaws.parse().expect("flaws");
        let dir = tempfile::tempdir().expect("temp dir");
        let correct_app = App::bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
        let flawed_app = App::bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
        let correct_state = dir.path().join("correct");
        let flawed_state = dir.path().join("flawed");
        let mut toml = format!(
            "listen = \"127.0.0.1:0\"\nadmin_token = \"{ADMIN}\"\n\n[[environments]]\nname = \"sandbox\"\npatients = 20\nseed = 7\n\n"
        );
        toml.push_str(&registration_toml(
            &correct_app.url(),
            &Flaws::none(),
            CORRECT,
            &format!("{CORRECT}-backend"),
            &public_jwks(&correct_state).expect("jwks"),
        ));
        toml.push('\n');
        toml.push_str(&registration_toml(
            &flawed_app.url(),
            &flaws,
            FLAWED,
            &format!("{FLAWED}-backend"),
            &public_jwks(&flawed_state).expect("jwks"),
        ));
        let file = dir.path().join("sim.toml");
        std::fs::write(&file, toml).expect("write config");
        let config = SimConfig::load(Some(&file), &Overrides::default()).expect("config");
        let sim = Embedded::start(config, &dir.path().join("sim")).expect("simulator starts");
        let fhir_base = format!("{}/sandbox/fhir", sim.url());
        let correct = start_app(
            correct_app,
            &fhir_base,
            &correct_state,
            CORRECT,
            Flaws::none(),
        );
        let flawed = start_app(flawed_app, &fhir_base, &flawed_state, FLAWED, flaws);
        let mut world = World {
            dir,
            sim,
            correct,
            flawed,
            users: Vec::new(),
        };
        let registrations = world.admin_get("/_sim/registrations");
        world.users = registrations["environments"][0]["users"]
            .as_array()
            .expect("users")
            .clone();
        world
    }

    fn app(&self, client_id: &str) -> &RunningApp {
        if client_id == CORRECT {
            &self.correct
        } else {
            &self.flawed
        }
    }

    fn user(&self, name: &str) -> &Value {
        self.users
            .iter()
            .find(|u| u["username"] == name)
            .expect("built-in user")
    }

    fn patient_of(&self, name: &str) -> String {
        self.user(name)["patient"]
            .as_str()
            .expect("patient")
            .to_string()
    }

    fn admin_get(&self, path: &str) -> Value {
        let response = Client::new()
            .get(format!("{}{path}", self.sim.url()))
            .bearer_auth(ADMIN)
            .send()
            .expect("admin call");
        assert_eq!(response.status().as_u16(), 200, "{path}");
        response.json().expect("json")
    }

    fn admin_post(&self, path: &str, body: &Value) {
        let response = Client::new()
            .post(format!("{}{path}", self.sim.url()))
            .bearer_auth(ADMIN)
            .json(body)
            .send()
            .expect("admin call");
        let status = response.status().as_u16();
        assert_eq!(
            status,
            200,
            "{path}: {}",
            response.text().unwrap_or_default()
        );
    }

    /// The access log after `since`, and its last sequence number.
    fn access_log(&self, since: u64) -> (Vec<Value>, u64) {
        let response = Client::new()
            .get(format!("{}/_sim/access-log?since={since}", self.sim.url()))
            .bearer_auth(ADMIN)
            .send()
            .expect("access log");
        let text = response.text().expect("text");
        let lines: Vec<Value> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("ndjson"))
            .collect();
        let last = lines
            .last()
            .and_then(|l| l["seq"].as_u64())
            .unwrap_or(since);
        (lines, last)
    }

    fn last_seq(&self) -> u64 {
        self.access_log(0).1
    }

    /// A browser signed in to `client_id`'s app as patient `user` (standalone launch).
    fn patient_login(&self, client_id: &str, user: &str, scope: Option<&str>) -> Browser {
        let mut decision = json!({"client_id": client_id, "user": user});
        if let Some(scope) = scope {
            decision["scope"] = json!(scope);
        }
        self.admin_post("/_sim/authorizations", &decision);
        let browser = Browser::new(self.app(client_id).url());
        let response = browser
            .client
            .get(browser.url("/login"))
            .send()
            .expect("login");
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(
            response.url().as_str(),
            browser.url("/"),
            "signed in and back home"
        );
        browser
    }

    /// A browser the EHR launched into `client_id`'s app for clinician `user` and `patient`.
    fn ehr_launch(&self, client_id: &str, user: &str, patient: &str) -> Browser {
        self.admin_post(
            "/_sim/authorizations",
            &json!({"client_id": client_id, "user": user, "patient": patient}),
        );
        let browser = Browser::new(self.app(client_id).url());
        let response = browser
            .client
            .get(format!(
                "{}/_sim/launch?client_id={client_id}&user={user}&patient={patient}",
                self.sim.url()
            ))
            .bearer_auth(ADMIN)
            .send()
            .expect("launch");
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(response.url().as_str(), browser.url("/"));
        browser
    }

    fn sync(&self, client_id: &str) -> Value {
        let response = Client::new()
            .post(format!("{}/internal/jobs/sync", self.app(client_id).url()))
            .header("x-job-token", JOB)
            .send()
            .expect("sync");
        assert_eq!(response.status().as_u16(), 200);
        response.json().expect("json")
    }

    fn revoke_access_tokens(&self, client_id: &str) {
        self.admin_post(
            "/_sim/tokens/revoke",
            &json!({"client_id": client_id, "kind": "access"}),
        );
    }
}

/// A browser: cookies kept, redirects followed.
struct Browser {
    client: Client,
    base: String,
}

impl Browser {
    fn new(base: &str) -> Self {
        Self {
            client: Client::builder()
                .cookie_store(true)
                .build()
                .expect("client"),
            base: base.to_string(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn get(&self, path: &str) -> (u16, Value) {
        let response = self.client.get(self.url(path)).send().expect("api call");
        let status = response.status().as_u16();
        (status, response.json().unwrap_or(Value::Null))
    }
}

fn fhir_reads_by(log: &[Value], client_id: &str) -> Vec<Value> {
    log.iter()
        .filter(|l| l["channel"] == "fhir" && l["client_id"] == client_id)
        .cloned()
        .collect()
}

#[test]
fn patient_signs_in_and_sees_only_their_record() {
    let world = World::new("");
    let unsigned = Browser::new(world.correct.url());
    let (status, body) = unsigned.get("/api/me");
    assert_eq!((status, body["error"].is_string()), (401, true));

    let own = world.patient_of("patient1");
    let other = world.patient_of("patient2");
    let browser = world.patient_login(CORRECT, "patient1", None);
    let (status, me) = browser.get("/api/me");
    assert_eq!(status, 200);
    assert_eq!(me["patient"], own.as_str());
    assert!(
        me["fhirUser"]
            .as_str()
            .is_some_and(|u| u.ends_with(&format!("Patient/{own}")))
    );
    assert!(
        me["scope"]
            .as_str()
            .is_some_and(|s| s.contains("patient/MedicationRequest.rs"))
    );

    let (status, patient) = browser.get(&format!("/api/patients/{own}"));
    assert_eq!(status, 200, "{patient}");
    assert_eq!(patient["id"], own.as_str());
    assert!(patient["mrn"].is_string() && patient["name"].is_string());
    for path in [
        format!("/api/patients/{own}/labs"),
        format!("/api/patients/{own}/medications"),
        format!("/api/observations?patient={own}"),
    ] {
        let (status, rows) = browser.get(&path);
        assert_eq!(status, 200, "{path}: {rows}");
        assert!(rows.is_array(), "{path}");
    }
    let (_, labs) = browser.get(&format!("/api/patients/{own}/labs"));
    assert!(
        !labs.as_array().expect("rows").is_empty(),
        "synthetic patients have labs"
    );

    let before = world.last_seq();
    for path in [
        format!("/api/patients/{other}"),
        format!("/api/patients/{other}/labs"),
        format!("/api/patients/{other}/medications"),
        format!("/api/observations?patient={other}"),
    ] {
        let (status, body) = browser.get(&path);
        assert_eq!(
            (status, body["error"].as_str()),
            (403, Some("not your record")),
            "{path}"
        );
    }
    let (log, _) = world.access_log(before);
    assert!(
        fhir_reads_by(&log, CORRECT).is_empty(),
        "refused without asking the EHR"
    );

    // The app's own log has route templates and personas, never ids.
    let app_log = std::fs::read_to_string(world.dir.path().join("correct/app.log")).expect("log");
    assert!(
        app_log.contains(r#""route":"/api/patients/{id}/labs""#),
        "{app_log}"
    );
    assert!(app_log.contains(r#""persona":"patient""#));
    assert!(!app_log.contains(&own) && !app_log.contains(&other));
}

#[test]
fn sync_job_needs_its_token_and_fills_the_cache() {
    let world = World::new("");
    let url = format!("{}/internal/jobs/sync", world.correct.url());
    let missing = Client::new().post(&url).send().expect("sync");
    assert_eq!(missing.status().as_u16(), 401);
    let wrong = Client::new()
        .post(&url)
        .header("x-job-token", "wrong-token-0123456789")
        .send()
        .expect("sync");
    assert_eq!(wrong.status().as_u16(), 401);

    let before = world.last_seq();
    let counts = world.sync(CORRECT);
    assert_eq!(counts["patients"], 20);
    assert!(counts["observations"].as_u64().unwrap_or(0) > 0, "{counts}");
    let (log, after_sync) = world.access_log(before);
    let token = log
        .iter()
        .find(|l| l["action"] == "token-client_credentials")
        .expect("backend token request");
    assert_eq!(
        token["scope_granted"],
        "system/Patient.rs system/Observation.rs"
    );
    assert!(!fhir_reads_by(&log, "clinic-app-backend").is_empty());

    // The cache holds data fetched with the backend token: the correct app still answers a
    // user with that user's token (the EHR checks and audits it), never from the cache.
    let own = world.patient_of("patient1");
    let browser = world.patient_login(CORRECT, "patient1", None);
    let (_, marker) = world.access_log(after_sync);
    let marker = marker.max(after_sync);
    assert_eq!(browser.get(&format!("/api/patients/{own}")).0, 200);
    assert_eq!(browser.get(&format!("/api/patients/{own}/labs")).0, 200);
    let (log, _) = world.access_log(marker);
    assert_eq!(fhir_reads_by(&log, CORRECT).len(), 2, "{log:?}");
}

#[test]
fn ehr_launch_signs_in_a_clinician() {
    let world = World::new("");
    let clinician = world.user("clinician1");
    let panel: Vec<String> = clinician["patients"]
        .as_array()
        .expect("panel")
        .iter()
        .filter_map(|p| p.as_str().map(str::to_string))
        .collect();
    let in_panel = panel.first().expect("a panel patient").clone();
    let all = world.admin_get("/sandbox/fhir/Patient?_count=100");
    let outside = all["entry"]
        .as_array()
        .expect("patients")
        .iter()
        .filter_map(|e| e["resource"]["id"].as_str())
        .find(|id| !panel.iter().any(|p| p == id))
        .expect("a patient outside the panel")
        .to_string();

    let browser = world.ehr_launch(CORRECT, "clinician1", &in_panel);
    let (status, me) = browser.get("/api/me");
    assert_eq!(status, 200);
    assert_eq!(me["patient"], in_panel.as_str());
    assert_eq!(me["persona"], "clinician");
    assert!(
        me["fhirUser"]
            .as_str()
            .is_some_and(|u| u.contains("/Practitioner/"))
    );
    assert!(
        me["scope"]
            .as_str()
            .is_some_and(|s| s.contains("user/Patient.rs"))
    );
    assert_eq!(browser.get(&format!("/api/patients/{in_panel}")).0, 200);
    assert_eq!(
        browser
            .get(&format!("/api/patients/{in_panel}/medications"))
            .0,
        200
    );
    let (status, body) = browser.get(&format!("/api/patients/{outside}"));
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("patient not found"))
    );

    // An EHR launch naming another FHIR server is refused.
    let stranger = Browser::new(world.correct.url());
    let (status, _) = stranger.get("/launch?iss=http://evil.example/fhir&launch=x");
    assert_eq!(status, 400);
}

#[test]
fn flaw_cross_patient_api_leaks_cached_demographics() {
    let world = World::new("cross-patient-api");
    let other = world.patient_of("patient2");
    world.sync(CORRECT);
    world.sync(FLAWED);
    let correct = world.patient_login(CORRECT, "patient1", None);
    let flawed = world.patient_login(FLAWED, "patient1", None);
    assert_eq!(correct.get(&format!("/api/patients/{other}")).0, 403);
    let before = world.last_seq();
    let (status, leaked) = flawed.get(&format!("/api/patients/{other}"));
    assert_eq!(status, 200);
    assert_eq!(leaked["id"], other.as_str());
    assert!(leaked["mrn"].is_string());
    let (status, labs) = flawed.get(&format!("/api/patients/{other}/labs"));
    assert_eq!(status, 200);
    assert!(!labs.as_array().expect("rows").is_empty());
    let (log, _) = world.access_log(before);
    assert!(
        fhir_reads_by(&log, FLAWED).is_empty(),
        "served from the cache, no FHIR traffic"
    );
}

#[test]
fn flaw_service_account_fallback_uses_the_backend_token() {
    let world = World::new("service-account-fallback");
    let panel: Vec<String> = world.user("clinician1")["patients"]
        .as_array()
        .expect("panel")
        .iter()
        .filter_map(|p| p.as_str().map(str::to_string))
        .collect();
    let in_panel = panel[0].clone();
    let all = world.admin_get("/sandbox/fhir/Patient?_count=100");
    let outside = all["entry"]
        .as_array()
        .expect("patients")
        .iter()
        .filter_map(|e| e["resource"]["id"].as_str())
        .find(|id| !panel.iter().any(|p| p == id))
        .expect("outside")
        .to_string();
    let correct = world.ehr_launch(CORRECT, "clinician1", &in_panel);
    let flawed = world.ehr_launch(FLAWED, "clinician1", &in_panel);
    assert_eq!(correct.get(&format!("/api/patients/{outside}")).0, 404);
    let before = world.last_seq();
    let (status, body) = flawed.get(&format!("/api/patients/{outside}"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], outside.as_str());
    let (log, _) = world.access_log(before);
    let user_refused = log
        .iter()
        .any(|l| l["client_id"] == FLAWED && l["action"] == "read" && l["status"] == 404);
    let backend_read = log.iter().any(|l| {
        l["client_id"] == "flawed-app-backend" && l["action"] == "read" && l["status"] == 200
    });
    assert!(user_refused && backend_read, "{log:?}");
}

#[test]
fn flaw_broad_system_scope_asks_for_everything() {
    let world = World::new("broad-system-scope");
    let before = world.last_seq();
    world.sync(CORRECT);
    world.sync(FLAWED);
    let (log, _) = world.access_log(before);
    let requested = |client: &str| {
        log.iter()
            .find(|l| l["action"] == "token-client_credentials" && l["client_id"] == client)
            .map(|l| l["scope_requested"].clone())
    };
    assert_eq!(
        requested("clinic-app-backend"),
        Some(json!("system/Patient.rs system/Observation.rs"))
    );
    assert_eq!(
        requested("flawed-app-backend"),
        Some(json!("system/*.read"))
    );
}

#[test]
fn flaw_requests_unused_scopes_asks_for_every_type() {
    let world = World::new("requests-unused-scopes");
    let before = world.last_seq();
    let correct = world.patient_login(CORRECT, "patient1", None);
    let flawed = world.patient_login(FLAWED, "patient1", None);
    assert!(
        !correct.get("/api/me").1["scope"]
            .as_str()
            .unwrap_or("")
            .contains('*')
    );
    assert!(
        flawed.get("/api/me").1["scope"]
            .as_str()
            .unwrap_or("")
            .contains("patient/*.read")
    );
    let (log, _) = world.access_log(before);
    let granted = log
        .iter()
        .find(|l| l["action"] == "token-authorization_code" && l["client_id"] == FLAWED)
        .expect("code exchange");
    assert!(
        granted["scope_requested"]
            .as_str()
            .unwrap_or("")
            .contains("patient/*.read")
    );
}

#[test]
fn flaw_ignores_downscoped_grant_calls_the_ehr_anyway() {
    let world = World::new("ignores-downscoped-grant");
    let own = world.patient_of("patient1");
    let narrow =
        "launch/patient openid fhirUser offline_access patient/Patient.rs patient/Observation.rs";
    let correct = world.patient_login(CORRECT, "patient1", Some(narrow));
    let flawed = world.patient_login(FLAWED, "patient1", Some(narrow));
    let before = world.last_seq();
    let (status, body) = correct.get(&format!("/api/patients/{own}/medications"));
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("not granted: MedicationRequest"))
    );
    let (log, _) = world.access_log(before);
    assert!(fhir_reads_by(&log, CORRECT).is_empty(), "no EHR call");
    let (status, body) = flawed.get(&format!("/api/patients/{own}/medications"));
    assert_eq!(status, 502, "{body}");
    let (log, _) = world.access_log(before);
    assert!(
        fhir_reads_by(&log, FLAWED)
            .iter()
            .any(|l| l["status"] == 403),
        "the EHR refused the ungranted type"
    );
}

#[test]
fn flaw_widens_on_refresh_asks_for_more_than_granted() {
    let world = World::new("widens-on-refresh");
    let own = world.patient_of("patient1");
    let correct = world.patient_login(CORRECT, "patient1", None);
    let flawed = world.patient_login(FLAWED, "patient1", None);
    world.revoke_access_tokens(CORRECT);
    world.revoke_access_tokens(FLAWED);
    let before = world.last_seq();
    assert_eq!(
        correct.get(&format!("/api/patients/{own}/medications")).0,
        200,
        "refreshed"
    );
    let (status, body) = flawed.get(&format!("/api/patients/{own}/medications"));
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("session expired, sign in again"))
    );
    let (log, _) = world.access_log(before);
    let refresh = |client: &str| {
        log.iter()
            .find(|l| l["action"] == "token-refresh_token" && l["client_id"] == client)
            .cloned()
            .expect("a refresh")
    };
    let good = refresh(CORRECT);
    assert_eq!(good["status"], 200);
    assert!(
        !good["scope_requested"]
            .as_str()
            .unwrap_or("")
            .contains("Condition")
    );
    let bad = refresh(FLAWED);
    assert!(
        bad["scope_requested"]
            .as_str()
            .unwrap_or("")
            .contains("patient/Condition.rs"),
        "{bad}"
    );
    assert_eq!(bad["status"], 400);
    // The correct app keeps working after its refresh (rotation kept the new token).
    world.revoke_access_tokens(CORRECT);
    assert_eq!(
        correct.get(&format!("/api/observations?patient={own}")).0,
        200
    );
}

#[test]
fn all_six_flaws_are_listed() {
    let names: Vec<&str> = clinic_app::ALL_FLAWS.iter().map(|f| f.as_str()).collect();
    assert_eq!(names.len(), 6);
    assert!(Flaws::only(Flaw::WidensOnRefresh).has(Flaw::WidensOnRefresh));
}
