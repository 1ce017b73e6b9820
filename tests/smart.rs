//! SMART on FHIR end to end, over real sockets: the login, picker and consent pages, pre-made
//! decisions, EHR launch, PKCE, refresh, backend services (RS384 and ES384), enforcement of the
//! tokens on the FHIR API, the access log and the audit trail.

use reqwest::StatusCode;
use reqwest::blocking::{Client, Response};
use serde_json::{Value, json};

use crate::server::{ADMIN_TOKEN, Server, admin_client};

/// RFC 7636 appendix B: a verifier and its S256 challenge.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const PUBLIC: &str = "fhirdrill-demo-public";
const REDIRECT: &str = "http://127.0.0.1:9999/callback";

/// A browser without JavaScript: no redirects followed, no token.
fn browser() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}

fn registrations(server: &Server) -> Value {
    admin_client()
        .get(format!("{}/_sim/registrations", server.url))
        .send()
        .expect("sent")
        .json::<Value>()
        .expect("json")["environments"][0]
        .clone()
}

fn user<'a>(reg: &'a Value, username: &str) -> &'a Value {
    reg["users"]
        .as_array()
        .and_then(|users| users.iter().find(|u| u["username"] == username))
        .expect("a test user")
}

fn location(response: &Response) -> String {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// The value of a query parameter of a URL.
fn param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The `value` of the first `<input name="…">` in a page.
fn field(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\""))?;
    let rest = &html[at..];
    let value = rest.split("value=\"").nth(1)?;
    Some(value.split('"').next()?.replace("&amp;", "&"))
}

fn authorize_url(server: &Server, scope: &str, extra: &[(&str, &str)]) -> String {
    let aud = server.fhir();
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.extend_pairs([
        ("response_type", "code"),
        ("client_id", PUBLIC),
        ("redirect_uri", REDIRECT),
        ("scope", scope),
        ("state", "st-1"),
        ("aud", aud.as_str()),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ]);
    query.extend_pairs(extra.iter().copied());
    format!("{}/sandbox/auth/authorize?{}", server.url, query.finish())
}

fn post_form(url: &str, form: &[(&str, &str)]) -> Response {
    browser().post(url).form(form).send().expect("sent")
}

fn token(server: &Server, form: &[(&str, &str)]) -> Response {
    post_form(&format!("{}/sandbox/auth/token", server.url), form)
}

fn redeem(server: &Server, code: &str) -> Value {
    let response = token(
        server,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("client_id", PUBLIC),
            ("code_verifier", VERIFIER),
        ],
    );
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    response.json().expect("token response")
}

fn fhir_get(server: &Server, token: &str, path: &str) -> Response {
    browser()
        .get(format!("{}/{path}", server.fhir()))
        .bearer_auth(token)
        .send()
        .expect("sent")
}

fn ids(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            format!(
                "{}/{}",
                e["resource"]["resourceType"].as_str().unwrap_or(""),
                e["resource"]["id"].as_str().unwrap_or("")
            )
        })
        .collect()
}

/// A patient of the environment other than `patient`.
fn another_patient(server: &Server, patient: &str) -> String {
    let all: Value = admin_client()
        .get(format!("{}/Patient?_count=100", server.fhir()))
        .send()
        .expect("sent")
        .json()
        .expect("bundle");
    ids(&all)
        .into_iter()
        .map(|id| id.trim_start_matches("Patient/").to_string())
        .find(|id| id != patient)
        .expect("another patient")
}

/// Pre-decides the next authorization of the public client (the CI path).
fn decide(server: &Server, body: &Value) {
    let r = admin_client()
        .post(format!("{}/_sim/authorizations", server.url))
        .json(body)
        .send()
        .expect("sent");
    assert_eq!(r.status(), StatusCode::OK, "{:?}", r.text());
}

/// A code for a patient token of the first practitioner's first panel patient.
fn patient_token(server: &Server, scope: &str) -> (Value, String) {
    let reg = registrations(server);
    let doctor = user(&reg, "clinician1");
    let patient = doctor["patients"][0].as_str().expect("a panel").to_string();
    decide(
        server,
        &json!({"client_id": PUBLIC, "user": "clinician1", "patient": patient}),
    );
    let response = browser()
        .get(authorize_url(server, scope, &[]))
        .send()
        .expect("sent");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let code = param(&location(&response), "code").expect("a code");
    (redeem(server, &code), patient)
}

#[test]
fn standalone_launch_through_login_picker_and_consent_grants_what_the_user_ticked() {
    let server = Server::start(&["--patients", "30"]);
    let reg = registrations(&server);
    let doctor = user(&reg, "clinician1");
    let scope =
        "launch/patient openid fhirUser offline_access patient/Patient.rs patient/Observation.rs";
    let login = browser()
        .get(authorize_url(&server, scope, &[]))
        .send()
        .expect("sent");
    assert_eq!(login.status(), StatusCode::OK);
    assert_eq!(
        login
            .headers()
            .get("x-frame-options")
            .and_then(|v| v.to_str().ok()),
        Some("DENY")
    );
    let txn = field(&login.text().expect("page"), "txn").expect("a transaction");
    let base = format!("{}/sandbox/auth", server.url);
    let wrong = post_form(
        &format!("{base}/login"),
        &[
            ("txn", &txn),
            ("username", "clinician1"),
            ("password", "nope"),
        ],
    );
    assert!(wrong.text().expect("page").contains("wrong password"));
    let password = doctor["password"].as_str().expect("password");
    let picker = post_form(
        &format!("{base}/login"),
        &[
            ("txn", &txn),
            ("username", "clinician1"),
            ("password", password),
        ],
    );
    let page = picker.text().expect("page");
    assert!(page.contains("Select a patient"), "{page}");
    let panel_patient = doctor["patients"][1].as_str().expect("a panel of two");
    let consent = post_form(
        &format!("{base}/pick"),
        &[("txn", &txn), ("patient", panel_patient)],
    );
    assert!(consent.text().expect("page").contains("Allow access?"));
    // The user unticks patient/Observation.rs (and tries to slip in a scope never asked for).
    let granted = post_form(
        &format!("{base}/consent"),
        &[
            ("txn", &txn),
            ("scope", "launch/patient"),
            ("scope", "openid"),
            ("scope", "fhirUser"),
            ("scope", "patient/Patient.rs"),
            ("scope", "user/*.cruds"),
            ("decision", "allow"),
        ],
    );
    assert_eq!(granted.status(), StatusCode::SEE_OTHER);
    let back = location(&granted);
    assert!(back.starts_with(REDIRECT), "{back}");
    assert_eq!(param(&back, "state").as_deref(), Some("st-1"));
    assert_eq!(param(&back, "iss").as_deref(), Some(base.as_str()));
    let tokens = redeem(&server, &param(&back, "code").expect("code"));
    assert_eq!(
        tokens["scope"],
        "launch/patient openid fhirUser patient/Patient.rs"
    );
    assert_eq!(tokens["patient"], panel_patient);
    assert!(tokens["id_token"].is_string());
    assert!(
        tokens.get("refresh_token").is_none(),
        "offline_access was not granted"
    );
    let access = tokens["access_token"].as_str().expect("token");
    assert_eq!(
        fhir_get(&server, access, &format!("Patient/{panel_patient}")).status(),
        StatusCode::OK
    );
    let observations = fhir_get(
        &server,
        access,
        &format!("Observation?patient={panel_patient}"),
    );
    assert_eq!(
        observations.status(),
        StatusCode::FORBIDDEN,
        "Observation was unticked"
    );
    let outcome: Value = observations.json().expect("outcome");
    assert!(
        outcome["issue"][0]["diagnostics"]
            .as_str()
            .unwrap_or("")
            .contains("patient/Observation.s")
    );
}

#[test]
fn a_patient_token_reaches_only_its_patient_by_every_vector() {
    let server = Server::start(&["--patients", "30"]);
    let (tokens, patient) = patient_token(&server, "launch/patient patient/*.rs openid fhirUser");
    let access = tokens["access_token"].as_str().expect("token");
    let other = another_patient(&server, &patient);
    // Another patient's record is answered exactly as a record that does not exist: a 403
    // would tell the caller it exists.
    for template in [
        "Patient/{}",
        "Patient/{}/_history/1",
        "Patient/{}/_history",
        "Patient/{}/$everything",
        "Patient/{}/Observation",
    ] {
        let hidden = fhir_get(&server, access, &template.replace("{}", &other));
        assert_eq!(hidden.status(), StatusCode::NOT_FOUND, "{template}");
        let hidden = hidden.text().expect("body").replace(&other, "ID");
        let unknown = fhir_get(&server, access, &template.replace("{}", "no-such-id"))
            .text()
            .expect("body")
            .replace("no-such-id", "ID");
        assert_eq!(hidden, unknown, "{template} tells hidden from unknown");
    }
    let vectors = [
        format!("Observation?patient={other}"),
        format!("Observation?subject=Patient/{other}&_include=Observation:subject"),
        "Patient?_count=100".to_string(),
        format!("Patient?_id={other}&_revinclude=Observation:subject"),
        format!("Observation?subject:Patient._id={other}"),
        format!("Patient?_has:Observation:subject:_id=x&_id={other}"),
        "Observation?_count=500&_include=Observation:subject".to_string(),
        "Encounter/_history?_count=500".to_string(),
    ];
    for path in vectors {
        let response = fhir_get(&server, access, &path);
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let bundle: Value = response.json().expect("bundle");
        let entries = bundle["entry"].to_string();
        assert!(!entries.contains(&other), "{path} leaked Patient/{other}");
    }
    let own: Value = fhir_get(&server, access, &format!("Patient/{patient}/$everything"))
        .json()
        .expect("bundle");
    assert!(ids(&own).len() > 1, "the own record is readable");
    let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": format!("Patient/{patient}")}},
        {"request": {"method": "GET", "url": format!("Patient/{other}")}}
    ]});
    let response: Value = browser()
        .post(server.fhir())
        .bearer_auth(access)
        .header("content-type", "application/fhir+json")
        .body(batch.to_string())
        .send()
        .expect("sent")
        .json()
        .expect("bundle");
    assert_eq!(response["entry"][0]["response"]["status"], "200");
    assert_eq!(response["entry"][1]["response"]["status"], "404");
    let export = browser()
        .get(format!("{}/$export", server.fhir()))
        .bearer_auth(access)
        .header("prefer", "respond-async")
        .send()
        .expect("sent");
    assert_eq!(
        export.status(),
        StatusCode::FORBIDDEN,
        "patient scopes cannot export"
    );
    let write = browser()
        .post(format!("{}/Observation", server.fhir()))
        .bearer_auth(access)
        .header("content-type", "application/fhir+json")
        .body(json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": format!("Patient/{patient}")}}).to_string())
        .send()
        .expect("sent");
    assert_eq!(
        write.status(),
        StatusCode::FORBIDDEN,
        "read scopes cannot create"
    );
}

#[test]
fn tokens_are_refused_when_missing_expired_revoked_reused_or_from_elsewhere() {
    let server = Server::start(&["--patients", "10"]);
    let no_token = browser()
        .get(format!("{}/Patient", server.fhir()))
        .send()
        .expect("sent");
    assert_eq!(no_token.status(), StatusCode::UNAUTHORIZED);
    assert!(no_token.headers().get("www-authenticate").is_some());
    let forged = fhir_get(&server, "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "Patient");
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    let challenge = forged
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert_eq!(
        browser()
            .get(format!("{}/metadata", server.fhir()))
            .send()
            .expect("sent")
            .status(),
        StatusCode::OK,
        "the CapabilityStatement is public"
    );
    let (tokens, patient) = patient_token(&server, "launch/patient patient/*.rs offline_access");
    let access = tokens["access_token"].as_str().expect("token").to_string();
    assert_eq!(
        fhir_get(&server, &access, &format!("Patient/{patient}")).status(),
        StatusCode::OK
    );
    // Refresh: narrowing works, widening is refused, a rotated refresh token cannot be reused.
    let refresh = tokens["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_string();
    let widened = token(
        &server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", PUBLIC),
            ("scope", "patient/*.cruds"),
        ],
    );
    assert_eq!(widened.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        widened.json::<Value>().expect("error")["error"],
        "invalid_scope"
    );
    let narrowed: Value = token(
        &server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", PUBLIC),
            ("scope", "patient/Patient.rs"),
        ],
    )
    .json()
    .expect("tokens");
    assert_eq!(narrowed["scope"], "patient/Patient.rs");
    let reused = token(
        &server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", PUBLIC),
        ],
    );
    assert_eq!(
        reused.json::<Value>().expect("error")["error"],
        "invalid_grant"
    );
    assert_eq!(
        fhir_get(&server, &access, "Patient").status(),
        StatusCode::UNAUTHORIZED,
        "reuse revoked the grant"
    );
    // Expiry on the simulated clock.
    let (tokens, _) = patient_token(&server, "launch/patient patient/*.rs");
    let access = tokens["access_token"].as_str().expect("token").to_string();
    let clock = admin_client()
        .post(format!("{}/_sim/clock", server.url))
        .json(&json!({"advance_seconds": 3601}))
        .send()
        .expect("sent");
    assert_eq!(clock.status(), StatusCode::OK);
    let expired = fhir_get(&server, &access, "Patient");
    assert_eq!(expired.status(), StatusCode::UNAUTHORIZED);
    let challenge = expired
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(challenge.contains("expired"), "{challenge}");
}

#[test]
fn authorization_errors_are_pages_until_the_redirect_is_trusted_then_redirects() {
    let server = Server::start(&["--patients", "5"]);
    let page = browser()
        .get(authorize_url(&server, "patient/*.rs", &[]).replace("9999%2Fcallback", "9999%2Fevil"))
        .send()
        .expect("sent");
    assert_eq!(
        page.status(),
        StatusCode::BAD_REQUEST,
        "an unregistered redirect is never followed"
    );
    assert!(page.text().expect("page").contains("not registered"));
    // (case, parameter overridden, value, expected error)
    let cases = [
        (
            "aud",
            vec![("aud", "https://rogue.example/fhir")],
            "invalid_request",
        ),
        (
            "plain",
            vec![("code_challenge_method", "plain")],
            "invalid_request",
        ),
        (
            "scope",
            vec![("scope", "patient/Observation.bogus")],
            "invalid_scope",
        ),
        (
            "type",
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
    ];
    for (name, overrides, error) in cases {
        let mut url = authorize_url(&server, "patient/*.rs", &[]);
        for (k, v) in &overrides {
            let encoded: String = form_urlencoded::byte_serialize(v.as_bytes()).collect();
            let start = url.find(&format!("{k}=")).expect("param present");
            let end = url[start..].find('&').map_or(url.len(), |e| start + e);
            url.replace_range(start..end, &format!("{k}={encoded}"));
        }
        let response = browser().get(url).send().expect("sent");
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{name}");
        let back = location(&response);
        assert_eq!(
            param(&back, "error").as_deref(),
            Some(error),
            "{name}: {back}"
        );
        assert_eq!(param(&back, "state").as_deref(), Some("st-1"), "{name}");
    }
    // A code is bound to its PKCE verifier, and a second use revokes its tokens.
    decide(&server, &json!({"client_id": PUBLIC, "user": "patient1"}));
    let response = browser()
        .get(authorize_url(&server, "patient/*.rs", &[]))
        .send()
        .expect("sent");
    let code = param(&location(&response), "code").expect("code");
    let wrong = token(
        &server,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", PUBLIC),
            ("code_verifier", &"a".repeat(43)),
        ],
    );
    assert_eq!(
        wrong.json::<Value>().expect("error")["error"],
        "invalid_grant"
    );
}

#[test]
fn ehr_launch_hands_the_app_iss_and_launch_then_carries_the_context() {
    let server = Server::start(&["--patients", "20"]);
    let reg = registrations(&server);
    let patient = user(&reg, "clinician2")["patients"][0]
        .as_str()
        .expect("panel")
        .to_string();
    let launched = admin_client()
        .get(format!(
            "{}/_sim/launch?client_id={PUBLIC}&patient={patient}&user=clinician2",
            server.url
        ))
        .send()
        .expect("sent");
    assert_eq!(launched.status(), StatusCode::SEE_OTHER);
    let at_app = location(&launched);
    assert!(
        at_app.starts_with("http://localhost:3000/launch?"),
        "{at_app}"
    );
    assert_eq!(param(&at_app, "iss"), Some(server.fhir()));
    let launch = param(&at_app, "launch").expect("launch");
    decide(&server, &json!({"client_id": PUBLIC, "user": "clinician2"}));
    let response = browser()
        .get(authorize_url(
            &server,
            "launch patient/*.rs",
            &[("launch", &launch)],
        ))
        .send()
        .expect("sent");
    let code = param(&location(&response), "code").expect("code");
    let tokens = redeem(&server, &code);
    assert_eq!(tokens["patient"], patient.as_str());
    assert_eq!(tokens["need_patient_banner"], false);
}

/// A backend services token with a key from the registrations, signed by the test client.
fn backend_token(server: &Server, client_id: &str, alg: &str, scope: &str) -> Response {
    use fhirdrill_simulator::smart::keys::{ClientAlg, ClientKey};
    let reg = registrations(server);
    let client = reg["clients"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["client_id"] == client_id))
        .expect("a backend client");
    let pem = client["private_key_pem"].as_str().expect("pem");
    let key = ClientKey::from_pem(ClientAlg::from_name(alg).expect("alg"), pem).expect("key");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let token_url = format!("{}/sandbox/auth/token", server.url);
    let assertion = key
        .sign_assertion(&json!({"iss": client_id, "sub": client_id, "aud": token_url, "exp": now + 240, "jti": format!("{client_id}-{now}-{scope}")}))
        .expect("signed");
    post_form(
        &token_url,
        &[
            ("grant_type", "client_credentials"),
            ("scope", scope),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &assertion),
        ],
    )
}

#[test]
fn backend_services_get_system_tokens_with_rs384_and_es384_assertions() {
    let server = Server::start(&["--patients", "5"]);
    for (client, alg) in [
        ("fhirdrill-backend-rs384", "RS384"),
        ("fhirdrill-backend-es384", "ES384"),
    ] {
        let response = backend_token(
            &server,
            client,
            alg,
            "system/Patient.rs system/Observation.rs patient/*.rs",
        );
        assert_eq!(response.status(), StatusCode::OK, "{client}");
        let tokens: Value = response.json().expect("tokens");
        assert_eq!(
            tokens["scope"], "system/Patient.rs system/Observation.rs",
            "patient/ scopes are not for backends"
        );
        assert!(tokens.get("refresh_token").is_none());
        let access = tokens["access_token"].as_str().expect("token");
        let bundle: Value = fhir_get(&server, access, "Patient").json().expect("bundle");
        assert_eq!(ids(&bundle).len(), 5);
        assert_eq!(
            fhir_get(&server, access, "Encounter").status(),
            StatusCode::FORBIDDEN
        );
        let introspected: Value = admin_client()
            .post(format!("{}/sandbox/auth/introspect", server.url))
            .form(&[("token", access)])
            .send()
            .expect("sent")
            .json()
            .expect("json");
        assert_eq!(introspected["active"], true);
        assert_eq!(introspected["client_id"], client);
    }
    let unregistered = backend_token(
        &server,
        "fhirdrill-backend-rs384",
        "RS384",
        "system/Nope.rs",
    );
    assert_eq!(unregistered.status(), StatusCode::BAD_REQUEST);
}

#[test]
fn every_decision_reaches_the_access_log_and_the_verified_audit_trail() {
    let server = Server::start(&["--patients", "10"]);
    let (tokens, patient) = patient_token(&server, "launch/patient patient/*.rs");
    let access = tokens["access_token"].as_str().expect("token");
    assert_eq!(
        fhir_get(&server, access, &format!("Patient/{patient}")).status(),
        StatusCode::OK
    );
    let revoked = admin_client()
        .post(format!("{}/_sim/tokens/revoke", server.url))
        .json(&json!({"token": access}))
        .send()
        .expect("sent")
        .json::<Value>()
        .expect("json");
    assert_eq!(revoked["revoked"], 1);
    let refused = fhir_get(&server, access, &format!("Patient/{patient}"));
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let denied = browser()
        .get(format!("{}/Patient", server.fhir()))
        .send()
        .expect("sent");
    assert_eq!(denied.status(), StatusCode::UNAUTHORIZED);
    let unauthorized_admin = browser()
        .get(format!("{}/_sim/access-log", server.url))
        .send()
        .expect("sent");
    assert_eq!(unauthorized_admin.status(), StatusCode::UNAUTHORIZED);
    let log = admin_client()
        .get(format!("{}/_sim/access-log?since=0", server.url))
        .send()
        .expect("sent")
        .text()
        .expect("ndjson");
    let entries: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    let seqs: Vec<u64> = entries.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert!(seqs.windows(2).all(|w| w[1] > w[0]), "seq increases");
    let read = entries
        .iter()
        .find(|e| e["action"] == "read" && e["client_id"] == PUBLIC)
        .expect("the read is logged");
    assert_eq!(read["patients"], json!([patient]));
    assert_eq!(read["token_kind"], "access");
    assert!(
        read["user"]
            .as_str()
            .unwrap_or("")
            .starts_with("Practitioner/")
    );
    assert!(
        entries
            .iter()
            .any(|e| e["status"] == 401 && e["outcome"] == "denied")
    );
    let refused = entries
        .iter()
        .find(|e| e["status"] == 401 && e["token_kind"] == "access")
        .expect("the revoked token's use is logged");
    assert_eq!(
        refused["client_id"], PUBLIC,
        "a refused token is still attributed"
    );
    assert_eq!(refused["action"], "read");
    assert_eq!(refused["token_id"], read["token_id"]);
    let token_entry = entries
        .iter()
        .find(|e| e["action"] == "token-authorization_code")
        .expect("token request logged");
    assert_eq!(
        token_entry["scope_requested"],
        "launch/patient patient/*.rs"
    );
    let events: Value = admin_client()
        .get(format!("{}/AuditEvent?patient={patient}", server.fhir()))
        .send()
        .expect("sent")
        .json()
        .expect("bundle");
    assert!(
        !ids(&events).is_empty(),
        "AuditEvent search answers who read the patient"
    );
    let (tokens, _) = patient_token(&server, "launch/patient patient/*.rs");
    let other_access = tokens["access_token"].as_str().expect("token");
    let no_audit_scope = fhir_get(
        &server,
        other_access,
        &format!("AuditEvent?patient={patient}"),
    );
    assert_eq!(no_audit_scope.status(), StatusCode::FORBIDDEN);
    let (output, state) = server.stop_keeping_state();
    assert!(
        !output.contains(ADMIN_TOKEN),
        "a configured admin token is never printed"
    );
    let state = state.path().join("audit").join("audit.ndjson");
    let verify = crate::util::fhirdrill(&["audit", "verify", state.to_str().expect("utf-8 path")]);
    assert_eq!(
        verify.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

/// Serves `body` as JSON at every path of a loopback port, forever (a client's `jwks_uri`).
fn serve_json(body: String) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let url = format!(
        "http://{}/jwks.json",
        listener.local_addr().expect("address")
    );
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes());
        }
    });
    url
}

#[test]
fn a_client_registered_with_a_jwks_uri_is_verified_against_the_fetched_keys() {
    use fhirdrill_simulator::smart::keys::{ClientAlg, ClientKey};
    let key = ClientKey::generate(ClientAlg::Es384).expect("a key");
    let jwks_uri = serve_json(key.public_jwks().to_string());
    let tmp = tempfile::tempdir().expect("tmp");
    let config = tmp.path().join("sim.toml");
    std::fs::write(
        &config,
        format!(
            "[[environments]]\nname = \"sandbox\"\npatients = 3\n[[environments.clients]]\nclient_id = \"uri-app\"\nkind = \"confidential-asymmetric\"\njwks_uri = \"{jwks_uri}\"\nscopes = \"system/*.rs\"\n"
        ),
    )
    .expect("config");
    let server = Server::start(&["--config", config.to_str().expect("utf-8")]);
    let token_url = format!("{}/sandbox/auth/token", server.url);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let send = |key: &ClientKey, jti: &str| {
        let assertion = key
            .sign_assertion(&json!({"iss": "uri-app", "sub": "uri-app", "aud": token_url, "exp": now + 120, "jti": jti}))
            .expect("signed");
        post_form(
            &token_url,
            &[
                ("grant_type", "client_credentials"),
                ("scope", "system/Patient.rs"),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", &assertion),
            ],
        )
    };
    assert_eq!(send(&key, "a-1").status(), StatusCode::OK);
    let stranger = ClientKey::generate(ClientAlg::Es384).expect("another key");
    let refused = send(&stranger, "a-2");
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        refused.json::<Value>().expect("error")["error"],
        "invalid_client"
    );
}

#[test]
fn rotated_keys_sign_new_tokens_while_old_tokens_stay_valid() {
    let server = Server::start(&["--patients", "3"]);
    let jwks = |server: &Server| -> Value {
        browser()
            .get(format!("{}/sandbox/auth/jwks", server.url))
            .send()
            .expect("sent")
            .json()
            .expect("jwks")
    };
    let kid_of = |token: &str| -> String {
        use base64::Engine;
        let header = token.split('.').next().unwrap_or_default();
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .expect("base64url header");
        serde_json::from_slice::<Value>(&bytes).expect("json")["kid"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let before = jwks(&server)["keys"].as_array().map_or(0, Vec::len);
    let old = backend_token(
        &server,
        "fhirdrill-backend-es384",
        "ES384",
        "system/Patient.rs",
    )
    .json::<Value>()
    .expect("tokens")["access_token"]
        .as_str()
        .expect("token")
        .to_string();
    let rotated = admin_client()
        .post(format!("{}/_sim/keys/rotate", server.url))
        .json(&json!({}))
        .send()
        .expect("sent");
    assert_eq!(rotated.status(), StatusCode::OK);
    let new_kid = rotated.json::<Value>().expect("json")["access_token_kid"]
        .as_str()
        .expect("kid")
        .to_string();
    assert_ne!(new_kid, kid_of(&old));
    assert_eq!(
        jwks(&server)["keys"].as_array().map_or(0, Vec::len),
        before * 2,
        "old keys stay published"
    );
    assert_eq!(
        fhir_get(&server, &old, "Patient").status(),
        StatusCode::OK,
        "old tokens stay valid"
    );
    let new = backend_token(
        &server,
        "fhirdrill-backend-es384",
        "ES384",
        "system/Observation.rs",
    )
    .json::<Value>()
    .expect("tokens")["access_token"]
        .as_str()
        .expect("token")
        .to_string();
    assert_eq!(kid_of(&new), new_kid);
}

#[test]
fn a_token_from_another_environment_is_refused_and_says_so() {
    use fhirdrill_simulator::smart::keys::{ClientAlg, ClientKey};
    let tmp = tempfile::tempdir().expect("tmp");
    let config = tmp.path().join("sim.toml");
    std::fs::write(
        &config,
        "[[environments]]\nname = \"sandbox\"\npatients = 2\n[[environments]]\nname = \"staging\"\npatients = 2\n",
    )
    .expect("config");
    let server = Server::start(&["--config", config.to_str().expect("utf-8")]);
    let all: Value = admin_client()
        .get(format!("{}/_sim/registrations", server.url))
        .send()
        .expect("sent")
        .json()
        .expect("json");
    let staging = &all["environments"][1];
    assert_eq!(staging["name"], "staging");
    let client = staging["clients"]
        .as_array()
        .and_then(|cs| {
            cs.iter()
                .find(|c| c["client_id"] == "fhirdrill-backend-es384")
        })
        .expect("the same client id in staging");
    let key = ClientKey::from_pem(
        ClientAlg::Es384,
        client["private_key_pem"].as_str().expect("pem"),
    )
    .expect("key");
    let token_url = staging["token_url"].as_str().expect("token url");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let assertion = key
        .sign_assertion(&json!({"iss": "fhirdrill-backend-es384", "sub": "fhirdrill-backend-es384", "aud": token_url, "exp": now + 120, "jti": "cross-env"}))
        .expect("signed");
    let tokens: Value = post_form(
        token_url,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "system/Patient.rs"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &assertion),
        ],
    )
    .json()
    .expect("tokens");
    let access = tokens["access_token"].as_str().expect("a staging token");
    let at_staging = browser()
        .get(format!("{}/staging/fhir/Patient", server.url))
        .bearer_auth(access)
        .send()
        .expect("sent");
    assert_eq!(at_staging.status(), StatusCode::OK);
    let at_sandbox = fhir_get(&server, access, "Patient");
    assert_eq!(at_sandbox.status(), StatusCode::UNAUTHORIZED);
    let challenge = at_sandbox
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(challenge.contains("/staging/auth"), "{challenge}");
}

#[test]
fn codes_expire_belong_to_one_client_and_confidential_clients_must_authenticate() {
    let server = Server::start(&["--patients", "5"]);
    let reg = registrations(&server);
    let secret = reg["clients"]
        .as_array()
        .and_then(|cs| {
            cs.iter()
                .find(|c| c["client_id"] == "fhirdrill-demo-confidential")
        })
        .and_then(|c| c["client_secret"].as_str())
        .expect("the test secret")
        .to_string();
    let code_for = |client: &str| {
        decide(
            &server,
            &json!({"client_id": client, "user": "patient1", "scope": "patient/*.rs offline_access"}),
        );
        let url =
            authorize_url(&server, "patient/*.rs offline_access", &[]).replace(PUBLIC, client);
        let response = browser().get(url).send().expect("sent");
        param(&location(&response), "code").expect("a code")
    };
    // A code issued to the public client, redeemed by the confidential one.
    let code = code_for(PUBLIC);
    let stolen = token(
        &server,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", "fhirdrill-demo-confidential"),
            ("client_secret", &secret),
            ("code_verifier", VERIFIER),
        ],
    );
    assert_eq!(
        stolen.json::<Value>().expect("error")["error"],
        "invalid_grant"
    );
    // A code older than 60 s.
    let code = code_for(PUBLIC);
    admin_client()
        .post(format!("{}/_sim/clock", server.url))
        .json(&json!({"advance_seconds": 61}))
        .send()
        .expect("sent");
    let late = token(
        &server,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", PUBLIC),
            ("code_verifier", VERIFIER),
        ],
    );
    let error: Value = late.json().expect("error");
    assert_eq!(error["error"], "invalid_grant");
    assert!(
        error["error_description"]
            .as_str()
            .unwrap_or("")
            .contains("expired")
    );
    // The confidential client: no secret, a wrong one, then Basic and POST credentials.
    let code = code_for("fhirdrill-demo-confidential");
    let base = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    let unauthenticated = token(
        &server,
        &[&base[..], &[("client_id", "fhirdrill-demo-confidential")]].concat(),
    );
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
    let wrong = browser()
        .post(format!("{}/sandbox/auth/token", server.url))
        .basic_auth("fhirdrill-demo-confidential", Some("not-the-secret"))
        .form(&base)
        .send()
        .expect("sent");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        wrong.json::<Value>().expect("error")["error"],
        "invalid_client"
    );
    let basic: Value = browser()
        .post(format!("{}/sandbox/auth/token", server.url))
        .basic_auth("fhirdrill-demo-confidential", Some(&secret))
        .form(&base)
        .send()
        .expect("sent")
        .json()
        .expect("tokens");
    let refresh = basic["refresh_token"].as_str().expect("a refresh token");
    let as_bearer = fhir_get(&server, refresh, "Patient");
    assert_eq!(
        as_bearer.status(),
        StatusCode::UNAUTHORIZED,
        "a refresh token is not an access token"
    );
    let refreshed: Value = token(
        &server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", "fhirdrill-demo-confidential"),
            ("client_secret", &secret),
        ],
    )
    .json()
    .expect("tokens");
    assert!(
        refreshed["access_token"].is_string(),
        "client_secret_post: {refreshed}"
    );
}

#[test]
fn writes_must_reach_every_patient_and_everything_follows_only_visible_links() {
    let server = Server::start(&["--patients", "10"]);
    let (tokens, patient) = patient_token(
        &server,
        "launch/patient patient/Observation.cruds patient/Patient.r patient/Practitioner.rs",
    );
    let access = tokens["access_token"].as_str().expect("token");
    let other = another_patient(&server, &patient);
    let post = |body: Value| {
        browser()
            .post(format!("{}/Observation", server.fhir()))
            .bearer_auth(access)
            .header("content-type", "application/fhir+json")
            .body(body.to_string())
            .send()
            .expect("sent")
            .status()
    };
    let own = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": format!("Patient/{patient}")}});
    assert_eq!(post(own), StatusCode::CREATED);
    let smuggled = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
        "subject": {"reference": format!("Patient/{other}")}, "focus": [{"reference": format!("Patient/{patient}")}]});
    assert_eq!(
        post(smuggled),
        StatusCode::FORBIDDEN,
        "one reference to the own patient does not open another's compartment"
    );
    // $everything with only Patient and Practitioner scopes: no practitioner that only hidden
    // resources (encounters, observations…) point to.
    let everything: Value = fhir_get(&server, access, &format!("Patient/{patient}/$everything"))
        .json()
        .expect("bundle");
    let returned = ids(&everything);
    let text = everything["entry"].to_string();
    let others: String = everything["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["resource"]["resourceType"] != "Practitioner")
        .map(|e| e["resource"].to_string())
        .collect();
    for practitioner in returned.iter().filter(|r| r.starts_with("Practitioner/")) {
        assert!(
            others.contains(practitioner.as_str()),
            "{practitioner} came from a hidden resource: {text}"
        );
    }
}
