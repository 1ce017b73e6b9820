//! The authorization endpoint (GET and POST) and its HTML flow: login, patient picker, consent.
//!
//! Order of checks (RFC 6749 section 4.1.2.1): until the client and its redirect URI are
//! known to match a registration, errors are shown as a page — redirecting to an unchecked
//! URI would make the server an open redirector. After that, errors go back to the app as
//! `error=` on its redirect URI, with its `state` and this server's `iss` (RFC 9207).

use serde_json::Value;
use time::OffsetDateTime;

use super::authority::{
    AuthRequest, CodeRecord, LaunchContext, PreDecision, Transaction, random_token,
};
use super::pages::{self, PickerPatient};
use super::registry::{Client, ClientKind, Role, User};
use super::scopes::{Scope, narrow, parse_scopes};
use super::{Endpoint, form_params};
use crate::request::SimResponse;

/// An error to send back to the app on its redirect URI.
struct Redirected {
    error: &'static str,
    description: String,
}

fn redirected(error: &'static str, description: impl Into<String>) -> Redirected {
    Redirected {
        error,
        description: description.into(),
    }
}

/// `GET` or `POST [env]/auth/authorize`.
pub(crate) fn authorize(ep: &Endpoint<'_>) -> SimResponse {
    let params = match form_params(ep.req) {
        Ok(p) => p,
        Err(message) => return pages::error(400, "Invalid authorization request", &message),
    };
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let registrations = ep.env.auth().registrations();
    let Some(client) = get("client_id").and_then(|id| registrations.client(id)) else {
        return pages::error(
            400,
            "Unknown app",
            &format!(
                "client_id {:?} is not registered in environment {}: see GET /_sim/registrations",
                get("client_id").unwrap_or(""),
                ep.env.name()
            ),
        );
    };
    let Some(redirect_uri) = get("redirect_uri") else {
        return pages::error(
            400,
            "Invalid authorization request",
            "redirect_uri is required",
        );
    };
    if !client.accepts_redirect(redirect_uri) {
        return pages::error(
            400,
            "Redirect URI not registered",
            &format!(
                "redirect_uri {redirect_uri:?} is not registered for {}: registered URIs must match exactly",
                client.client_id
            ),
        );
    }
    let state = get("state").unwrap_or("");
    match validate(ep, client, redirect_uri, &get) {
        Ok(request) => begin(ep, client, request),
        Err(e) => redirect_error(ep, redirect_uri, state, &e),
    }
}

/// The checks after the redirect URI is trusted; errors go back to the app.
fn validate<'p>(
    ep: &Endpoint<'_>,
    client: &Client,
    redirect_uri: &str,
    get: &dyn Fn(&str) -> Option<&'p str>,
) -> Result<AuthRequest, Redirected> {
    let state = get("state").filter(|s| !s.is_empty()).ok_or_else(|| {
        redirected(
            "invalid_request",
            "state is required (it protects the app against CSRF)",
        )
    })?;
    match get("response_type") {
        Some("code") => {}
        Some(other) => {
            return Err(redirected(
                "unsupported_response_type",
                format!("response_type {other:?} is not supported: use code"),
            ));
        }
        None => {
            return Err(redirected(
                "invalid_request",
                "response_type=code is required",
            ));
        }
    }
    let fhir_base = ep.fhir_base();
    match get("aud") {
        Some(aud) if aud.trim_end_matches('/') == fhir_base => {}
        Some(aud) => {
            return Err(redirected(
                "invalid_request",
                format!(
                    "aud {aud:?} is not this server's FHIR base URL {fhir_base}: tokens are only issued for it"
                ),
            ));
        }
        None => {
            return Err(redirected(
                "invalid_request",
                format!("aud is required: the FHIR base URL the token is for ({fhir_base})"),
            ));
        }
    }
    let code_challenge = pkce(client, get("code_challenge"), get("code_challenge_method"))?;
    let scope_requested = get("scope").unwrap_or("").to_string();
    let requested =
        parse_scopes(&scope_requested).map_err(|e| redirected("invalid_scope", e.to_string()))?;
    if let Some(message) = super::authority::unknown_type(&requested) {
        return Err(redirected("invalid_scope", message));
    }
    let scopes = narrow(&requested, &client.scopes);
    if scopes.is_empty() {
        return Err(redirected(
            "invalid_scope",
            format!(
                "none of the requested scopes is registered for {}; it may ask for: {}",
                client.client_id, client.scope_text
            ),
        ));
    }
    let launch = match get("launch") {
        Some(id) => Some(launch_context(ep, client, id)?),
        None => None,
    };
    Ok(AuthRequest {
        client_id: client.client_id.clone(),
        redirect_uri: redirect_uri.to_string(),
        state: state.to_string(),
        scopes,
        scope_requested,
        code_challenge,
        nonce: get("nonce").map(str::to_string),
        launch,
    })
}

/// PKCE: S256 only; required for public clients (RFC 7636, RFC 9700 section 2.1.1).
fn pkce(
    client: &Client,
    challenge: Option<&str>,
    method: Option<&str>,
) -> Result<Option<String>, Redirected> {
    match (challenge, method) {
        (None, _) if client.kind == ClientKind::Public => Err(redirected(
            "invalid_request",
            "PKCE is required for public clients: send code_challenge and code_challenge_method=S256",
        )),
        (None, Some(_)) => Err(redirected(
            "invalid_request",
            "code_challenge_method was sent without code_challenge",
        )),
        (None, None) => Ok(None),
        (Some(_), Some("S256")) => {
            let c = challenge.unwrap_or_default();
            if (43..=128).contains(&c.len())
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                Ok(Some(c.to_string()))
            } else {
                Err(redirected(
                    "invalid_request",
                    "code_challenge must be the base64url SHA-256 of the verifier (43 characters)",
                ))
            }
        }
        (Some(_), Some("plain")) => Err(redirected(
            "invalid_request",
            "code_challenge_method=plain is refused: use S256",
        )),
        (Some(_), other) => Err(redirected(
            "invalid_request",
            format!(
                "code_challenge_method {:?} is not supported: use S256",
                other.unwrap_or("")
            ),
        )),
    }
}

/// The EHR launch context named by `launch`, if it was made for this client.
fn launch_context(
    ep: &Endpoint<'_>,
    client: &Client,
    id: &str,
) -> Result<LaunchContext, Redirected> {
    let flows = ep.env.auth().flows();
    match flows.launches.get(id) {
        Some(l) if l.client_id == client.client_id => Ok(l.clone()),
        _ => Err(redirected(
            "invalid_request",
            "launch is not a launch this EHR made for this app (expired, or made for another app)",
        )),
    }
}

/// After validation: a pre-made decision, or the login page.
fn begin(ep: &Endpoint<'_>, client: &Client, request: AuthRequest) -> SimResponse {
    let now = ep.now();
    let decision = ep.env.auth().flows().decisions.remove(&client.client_id);
    if let Some(decision) = decision {
        return decide_ahead(ep, request, &decision);
    }
    let txn = random_token();
    let mut flows = ep.env.auth().flows();
    flows.prune(now);
    flows.transactions.insert(
        txn.clone(),
        Transaction {
            request,
            username: None,
            patient: None,
            created: now,
        },
    );
    drop(flows);
    pages::login(&ep.auth_path("login"), &txn, &client.client_id, None)
}

/// Applies a decision made ahead through the admin API, with the same checks as the pages.
fn decide_ahead(ep: &Endpoint<'_>, request: AuthRequest, decision: &PreDecision) -> SimResponse {
    let redirect = request.redirect_uri.clone();
    let state = request.state.clone();
    if decision.deny {
        let e = redirected("access_denied", "the user denied the authorization");
        return redirect_error(ep, &redirect, &state, &e);
    }
    let registrations = ep.env.auth().registrations();
    let user = match decision.user.as_deref() {
        Some(name) => match registrations.find_user(name) {
            Some(u) => Some(u.clone()),
            None => {
                let e = redirected(
                    "access_denied",
                    format!("the pre-decided user {name:?} is not registered"),
                );
                return redirect_error(ep, &redirect, &state, &e);
            }
        },
        None => None,
    };
    let granted = match &decision.scope {
        Some(text) => match parse_scopes(text) {
            Ok(chosen) => narrow(&chosen, &request.scopes),
            Err(e) => {
                return redirect_error(
                    ep,
                    &redirect,
                    &state,
                    &redirected("invalid_scope", e.to_string()),
                );
            }
        },
        None => request.scopes.clone(),
    };
    let patient = decision
        .patient
        .clone()
        .or_else(|| default_patient(&request, user.as_ref()));
    finish(ep, request, user.as_ref(), patient, granted)
}

/// The patient context without a picker: the launch's, or a patient user's own.
fn default_patient(request: &AuthRequest, user: Option<&User>) -> Option<String> {
    request
        .launch
        .as_ref()
        .and_then(|l| l.patient.clone())
        .or_else(|| user.and_then(User::patient_id).map(str::to_string))
}

/// `POST [env]/auth/login`.
pub(crate) fn login(ep: &Endpoint<'_>) -> SimResponse {
    let Some((txn_id, txn, params)) = transaction(ep) else {
        return expired_page();
    };
    let field = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let registrations = ep.env.auth().registrations();
    let user = field("username")
        .and_then(|u| registrations.user(u))
        .filter(|u| {
            field("password")
                .is_some_and(|p| crate::constant_time_eq(p.as_bytes(), u.password.as_bytes()))
        });
    let Some(user) = user else {
        return pages::login(
            &ep.auth_path("login"),
            &txn_id,
            &txn.request.client_id,
            Some("Unknown username or wrong password."),
        );
    };
    if let Some(launch_user) = txn
        .request
        .launch
        .as_ref()
        .and_then(|l| l.username.as_deref())
        && launch_user != user.username
    {
        return pages::login(
            &ep.auth_path("login"),
            &txn_id,
            &txn.request.client_id,
            Some(&format!(
                "This launch was made for user {launch_user}: sign in as that user."
            )),
        );
    }
    let patient = default_patient(&txn.request, Some(user));
    update_transaction(ep, &txn_id, |t| {
        t.username = Some(user.username.clone());
        t.patient = patient.clone();
    });
    let wants_patient = txn.request.scopes.contains(&Scope::LaunchPatient);
    if patient.is_none() && wants_patient && user.role == Role::Practitioner {
        return pages::picker(&ep.auth_path("pick"), &txn_id, &picker_patients(ep, user));
    }
    consent_page(ep, &txn_id, &txn.request, user, patient.as_deref())
}

/// `POST [env]/auth/pick`.
pub(crate) fn pick(ep: &Endpoint<'_>) -> SimResponse {
    let Some((txn_id, txn, params)) = transaction(ep) else {
        return expired_page();
    };
    let Some(user) = signed_in(ep, &txn) else {
        return expired_page();
    };
    let chosen = params
        .iter()
        .find(|(k, _)| k == "patient")
        .map(|(_, v)| v.clone());
    let Some(patient) = chosen.filter(|p| user.patients.contains(p)) else {
        return pages::picker(&ep.auth_path("pick"), &txn_id, &picker_patients(ep, &user));
    };
    update_transaction(ep, &txn_id, |t| t.patient = Some(patient.clone()));
    consent_page(ep, &txn_id, &txn.request, &user, Some(&patient))
}

/// `POST [env]/auth/consent`: grants the ticked scopes (never more than were asked).
pub(crate) fn consent(ep: &Endpoint<'_>) -> SimResponse {
    let Some((txn_id, txn, params)) = transaction(ep) else {
        return expired_page();
    };
    let Some(user) = signed_in(ep, &txn) else {
        return expired_page();
    };
    ep.env.auth().flows().transactions.remove(&txn_id);
    let request = txn.request;
    if params.iter().any(|(k, v)| k == "decision" && v == "deny") {
        let e = redirected("access_denied", "the user denied the authorization");
        return redirect_error(ep, &request.redirect_uri, &request.state, &e);
    }
    let ticked: Vec<Scope> = params
        .iter()
        .filter(|(k, _)| k == "scope")
        .filter_map(|(_, v)| parse_scopes(v).ok())
        .flatten()
        .collect();
    let granted = narrow(&ticked, &request.scopes);
    finish(ep, request, Some(&user), txn.patient, granted)
}

/// Issues the code (after the last checks) and sends the browser back to the app.
fn finish(
    ep: &Endpoint<'_>,
    request: AuthRequest,
    user: Option<&User>,
    patient: Option<String>,
    granted: Vec<Scope>,
) -> SimResponse {
    let redirect = request.redirect_uri.clone();
    let state = request.state.clone();
    if let (Some(user), Some(patient)) = (user, patient.as_deref())
        && !user.patients.contains(patient)
    {
        let e = redirected(
            "access_denied",
            format!(
                "Patient/{patient} is not a patient {} may see",
                user.username
            ),
        );
        return redirect_error(ep, &redirect, &state, &e);
    }
    if patient
        .as_deref()
        .is_some_and(|p| ep.env.read().get("Patient", p).is_none())
    {
        let e = redirected(
            "invalid_request",
            "the patient in context is not in this environment's data",
        );
        return redirect_error(ep, &redirect, &state, &e);
    }
    if granted.is_empty() {
        let e = redirected("access_denied", "no scope was granted");
        return redirect_error(ep, &redirect, &state, &e);
    }
    let code = random_token();
    let now = ep.now();
    let record = CodeRecord {
        client_id: request.client_id.clone(),
        redirect_uri: request.redirect_uri.clone(),
        code_challenge: request.code_challenge.clone(),
        username: user.map(|u| u.username.clone()),
        patient,
        encounter: request.launch.as_ref().and_then(|l| l.encounter.clone()),
        scopes: granted,
        scope_requested: request.scope_requested.clone(),
        nonce: request.nonce.clone(),
        issued_at: now,
        used: false,
        family: random_token(),
    };
    let mut flows = ep.env.auth().flows();
    flows.prune(now);
    flows.codes.insert(code.clone(), record);
    drop(flows);
    ep.record_oauth(
        "authorize",
        &request.client_id,
        user.map(|u| u.fhir_user.as_str()),
        303,
        None,
    );
    redirect_to(
        &redirect,
        &[("code", &code), ("state", &state), ("iss", &ep.issuer())],
    )
}

fn consent_page(
    ep: &Endpoint<'_>,
    txn_id: &str,
    request: &AuthRequest,
    user: &User,
    patient: Option<&str>,
) -> SimResponse {
    let who = match patient {
        Some(p) if user.role == Role::Practitioner => format!("{} for Patient/{p}", user.fhir_user),
        _ => user.fhir_user.clone(),
    };
    let scopes: Vec<String> = request.scopes.iter().map(ToString::to_string).collect();
    pages::consent(
        &ep.auth_path("consent"),
        txn_id,
        &request.client_id,
        &who,
        &scopes,
    )
}

/// The transaction named by the form's `txn`, with the form's fields.
/// A login transaction found by the form's `txn`: its id, its state, and the form's fields.
type FoundTransaction = (String, Transaction, Vec<(String, String)>);

fn transaction(ep: &Endpoint<'_>) -> Option<FoundTransaction> {
    let params = form_params(ep.req).ok()?;
    let id = params
        .iter()
        .find(|(k, _)| k == "txn")
        .map(|(_, v)| v.clone())?;
    let now = ep.now();
    let mut flows = ep.env.auth().flows();
    flows.prune(now);
    let txn = flows.transactions.get(&id)?.clone();
    Some((id, txn, params))
}

fn update_transaction(ep: &Endpoint<'_>, id: &str, change: impl FnOnce(&mut Transaction)) {
    if let Some(t) = ep.env.auth().flows().transactions.get_mut(id) {
        change(t);
    }
}

fn signed_in(ep: &Endpoint<'_>, txn: &Transaction) -> Option<User> {
    let name = txn.username.as_deref()?;
    ep.env.auth().registrations().user(name).cloned()
}

fn expired_page() -> SimResponse {
    pages::error(
        400,
        "Sign-in expired",
        "This sign-in is unknown or took longer than 10 minutes: start again from the app.",
    )
}

/// The practitioner's panel, with names for the picker.
fn picker_patients(ep: &Endpoint<'_>, user: &User) -> Vec<PickerPatient> {
    let store = ep.env.read();
    user.patients
        .iter()
        .take(200)
        .filter_map(|id| {
            let p = store.get("Patient", id)?;
            Some(PickerPatient {
                id: id.clone(),
                name: display_name(&p),
                birth_date: p["birthDate"].as_str().unwrap_or("?").to_string(),
            })
        })
        .collect()
}

fn display_name(patient: &Value) -> String {
    let name = &patient["name"][0];
    let given: Vec<&str> = name["given"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let family = name["family"].as_str().unwrap_or("");
    let full = format!("{} {family}", given.join(" "));
    if full.trim().is_empty() {
        "(no name)".to_string()
    } else {
        full.trim().to_string()
    }
}

/// A 303 to `uri` with `params` added to its query.
pub(crate) fn redirect_to(uri: &str, params: &[(&str, &str)]) -> SimResponse {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params.iter().filter(|(_, v)| !v.is_empty()) {
        query.append_pair(k, v);
    }
    let separator = if uri.contains('?') { '&' } else { '?' };
    let location = format!("{uri}{separator}{}", query.finish());
    SimResponse::empty(303)
        .with_header("location", location)
        .with_header("cache-control", "no-store")
}

fn redirect_error(
    ep: &Endpoint<'_>,
    redirect_uri: &str,
    state: &str,
    e: &Redirected,
) -> SimResponse {
    let client = ep
        .req
        .query_value("client_id")
        .filter(|id| ep.env.auth().registrations().client(id).is_some())
        .unwrap_or("");
    ep.record_oauth(
        "authorize",
        client,
        None,
        303,
        Some(&format!("{}: {}", e.error, e.description)),
    );
    redirect_to(
        redirect_uri,
        &[
            ("error", e.error),
            ("error_description", &e.description),
            ("state", state),
            ("iss", &ep.issuer()),
        ],
    )
}

/// A new EHR launch context for `client` (made by `/_sim/launch`).
pub(crate) fn new_launch(
    client_id: &str,
    patient: Option<String>,
    username: Option<String>,
    encounter: Option<String>,
    now: OffsetDateTime,
) -> LaunchContext {
    LaunchContext {
        id: random_token(),
        client_id: client_id.to_string(),
        patient,
        username,
        encounter,
        created: now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smart::registry::ClientKind;

    fn client(kind: ClientKind) -> Client {
        Client {
            client_id: "app".into(),
            kind,
            redirect_uris: vec!["https://app/cb".into()],
            launch_url: None,
            scopes: Vec::new(),
            scope_text: String::new(),
            group: None,
            key_issued: None,
            test_credentials: None,
        }
    }

    #[test]
    fn pkce_is_s256_and_required_for_public_clients() {
        let public = client(ClientKind::Public);
        let good = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce(&public, None, None).is_err());
        assert!(pkce(&public, Some(good), Some("plain")).is_err());
        assert!(pkce(&public, Some(good), None).is_err());
        assert!(pkce(&public, Some("short"), Some("S256")).is_err());
        assert_eq!(
            pkce(&public, Some(good), Some("S256"))
                .ok()
                .flatten()
                .as_deref(),
            Some(good)
        );
        let confidential = client(ClientKind::Symmetric {
            secret: "s".repeat(20),
        });
        assert!(matches!(pkce(&confidential, None, None), Ok(None)));
    }

    #[test]
    fn redirects_keep_the_apps_query() {
        let r = redirect_to("https://app/cb?x=1", &[("code", "c d"), ("state", "s")]);
        assert_eq!(r.status, 303);
        assert_eq!(
            r.header("location"),
            Some("https://app/cb?x=1&code=c+d&state=s")
        );
    }
}
