//! The token endpoint (authorization code with PKCE, refresh, client credentials), token
//! introspection (RFC 7662) and revocation (RFC 7009).
//!
//! Client authentication: `client_secret_basic` or `client_secret_post` for symmetric
//! clients, `private_key_jwt` (RFC 7523, RS384/ES384) for asymmetric ones, nothing but
//! `client_id` for public ones. A confidential client must authenticate with its own method.
//! Errors are RFC 6749 JSON: `invalid_client` is 401, the others 400.

use std::collections::BTreeSet;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::assertion::{ClientKeys, peek_assertion, validate_client_assertion};
use super::authority::{
    CODE_LIFETIME_SECONDS, oauth_error, oauth_json, random_token, unknown_type,
};
use super::jwks_cache::jwk_set_from_json;
use super::registry::{Client, ClientKind, User, scope_text};
use super::scopes::{Context, Scope, narrow, parse_scopes};
use super::tokens::{TokenKind, TokenRecord};
use super::{Endpoint, form_params};
use crate::access::Grant;
use crate::request::SimResponse;
use crate::trail::AccessRecord;

/// The `client_assertion_type` of RFC 7523 client authentication.
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A failed token request: the OAuth error, its description, and its status.
struct Refusal {
    status: u16,
    error: &'static str,
    description: String,
    /// The user and patient of the grant the request was about, when it named a known one.
    grant_user: Option<String>,
    grant_patient: Option<String>,
}

fn refuse(error: &'static str, description: impl Into<String>) -> Refusal {
    Refusal {
        status: if error == "invalid_client" { 401 } else { 400 },
        error,
        description: description.into(),
        grant_user: None,
        grant_patient: None,
    }
}

impl Refusal {
    /// The refusal of a request about `grant`: the access log names whose grant it was (an app
    /// widening its scope on refresh is then told apart from another's request).
    fn about(mut self, grant: &Grant) -> Refusal {
        self.grant_user.clone_from(&grant.user);
        self.grant_patient.clone_from(&grant.patient);
        self
    }
}

/// The form fields of a request, looked up by name.
struct Form(Vec<(String, String)>);

impl Form {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

/// How the client authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AuthMethod {
    None,
    SecretBasic,
    SecretPost,
    PrivateKeyJwt,
}

/// `POST [env]/auth/token`.
pub(crate) fn token(ep: &Endpoint<'_>) -> SimResponse {
    let form = match form_params(ep.req) {
        Ok(p) => Form(p),
        Err(message) => return oauth_error(400, "invalid_request", &message),
    };
    let action = format!("token-{}", grant_type_name(form.get("grant_type")));
    let mut record = oauth_record(ep, &action, 200);
    record.scope_requested = form.get("scope").map(loggable_scope);
    record.client_id = claimed_client(ep, &form);
    let result = authenticate_client(ep, &form).and_then(|(client, method)| {
        record.client_id = Some(client.client_id.clone());
        match form.get("grant_type") {
            Some("authorization_code") => code_grant(ep, &form, client),
            Some("refresh_token") => refresh_grant(ep, &form, client),
            Some("client_credentials") => client_credentials_grant(ep, &form, client, method),
            Some(other) => Err(refuse(
                "unsupported_grant_type",
                format!("grant_type {other:?} is not supported: use authorization_code, refresh_token or client_credentials"),
            )),
            None => Err(refuse("invalid_request", "grant_type is required")),
        }
    });
    match result {
        Ok(issued) => {
            record.status = 200;
            record.outcome = "allowed";
            record.user.clone_from(&issued.grant.user);
            record.patient_context.clone_from(&issued.grant.patient);
            record.token_id = Some(issued.grant.token_id.clone());
            record.token_kind = "access";
            record.scope_granted = issued.body["scope"].as_str().map(str::to_string);
            record.scope_requested = Some(loggable_scope(&issued.scope_requested));
            ep.sim.trail().record(record);
            oauth_json(&issued.body)
        }
        Err(r) => refused(ep, record, &r),
    }
}

/// Records a refused OAuth request and answers it with the RFC 6749 error (401s carry the
/// Basic challenge of RFC 6749 section 5.2).
fn refused(ep: &Endpoint<'_>, mut record: AccessRecord, r: &Refusal) -> SimResponse {
    if r.grant_user.is_some() || r.grant_patient.is_some() {
        record.user.clone_from(&r.grant_user);
        record.patient_context.clone_from(&r.grant_patient);
    }
    record.status = r.status;
    record.outcome = "denied";
    record.reason = Some(format!("{}: {}", r.error, r.description));
    ep.sim.trail().record(record);
    let response = oauth_error(r.status, r.error, &r.description);
    if r.status == 401 {
        response.with_header("www-authenticate", "Basic realm=\"token\"")
    } else {
        response
    }
}

/// The grant type as the access log names it: only known names (a client may send anything).
fn grant_type_name(grant_type: Option<&str>) -> &'static str {
    match grant_type {
        Some("authorization_code") => "authorization_code",
        Some("refresh_token") => "refresh_token",
        Some("client_credentials") => "client_credentials",
        Some(_) => "unsupported",
        None => "none",
    }
}

/// A requested scope as the access log keeps it: canonical when it parses, else a placeholder
/// (a client may send anything in `scope`, and the log never echoes free text).
fn loggable_scope(text: &str) -> String {
    match parse_scopes(text) {
        Ok(scopes) => scope_text(&scopes),
        Err(_) => "(invalid scope)".to_string(),
    }
}

/// Who is calling the token endpoint, checked by the client's registered method.
fn authenticate_client<'a>(
    ep: &'a Endpoint<'_>,
    form: &Form,
) -> Result<(&'a Client, AuthMethod), Refusal> {
    let registrations = ep.env.auth().registrations();
    let lookup = |id: &str| {
        registrations.client(id).ok_or_else(|| {
            refuse(
                "invalid_client",
                format!(
                    "client_id {id:?} is not registered in environment {}",
                    ep.env.name()
                ),
            )
        })
    };
    if let Some((id, secret)) = basic_credentials(ep)? {
        if form.get("client_id").is_some_and(|body_id| body_id != id) {
            return Err(refuse(
                "invalid_client",
                "client_id in the body differs from the Basic credentials",
            ));
        }
        let client = lookup(&id)?;
        check_secret(client, &secret)?;
        return Ok((client, AuthMethod::SecretBasic));
    }
    if let Some(kind) = form.get("client_assertion_type") {
        if kind != JWT_BEARER {
            return Err(refuse(
                "invalid_client",
                format!("client_assertion_type must be {JWT_BEARER}"),
            ));
        }
        let assertion = form
            .get("client_assertion")
            .ok_or_else(|| refuse("invalid_client", "client_assertion is missing"))?;
        let claimed = peek_assertion(assertion)
            .map_err(|e| refuse("invalid_client", e.to_string()))?
            .client_id
            .or_else(|| form.get("client_id").map(str::to_string))
            .ok_or_else(|| {
                refuse(
                    "invalid_client",
                    "the client assertion has no iss (the client id)",
                )
            })?;
        let client = lookup(&claimed)?;
        let keys = client_keys(ep, client)?;
        let now = OffsetDateTime::now_utc().unix_timestamp();
        validate_client_assertion(
            assertion,
            form.get("client_id"),
            &keys,
            &ep.auth_url("token"),
            now,
            ep.env.auth().jti_cache(),
        )
        .map_err(|e| refuse("invalid_client", e.to_string()))?;
        return Ok((client, AuthMethod::PrivateKeyJwt));
    }
    let id = form
        .get("client_id")
        .ok_or_else(|| refuse("invalid_client", "no client authentication: send client_id (public clients), Basic credentials, client_secret or a client_assertion"))?;
    let client = lookup(id)?;
    match (form.get("client_secret"), &client.kind) {
        (Some(secret), _) => {
            check_secret(client, secret)?;
            Ok((client, AuthMethod::SecretPost))
        }
        (None, ClientKind::Public) => Ok((client, AuthMethod::None)),
        (None, ClientKind::Symmetric { .. }) => Err(refuse(
            "invalid_client",
            format!(
                "{id} is a confidential client: authenticate with client_secret_basic or client_secret_post"
            ),
        )),
        (None, ClientKind::Asymmetric { .. }) => Err(refuse(
            "invalid_client",
            format!(
                "{id} is a confidential client: authenticate with a private_key_jwt client_assertion"
            ),
        )),
    }
}

/// `Authorization: Basic` credentials, decoded (RFC 6749 section 2.3.1 form-encodes each part
/// before base64; parts without `%` or `+` read the same either way).
fn basic_credentials(ep: &Endpoint<'_>) -> Result<Option<(String, String)>, Refusal> {
    let Some(value) = ep.req.header("authorization") else {
        return Ok(None);
    };
    let Some((scheme, encoded)) = value.trim().split_once(' ') else {
        return Err(refuse(
            "invalid_client",
            "the Authorization header is not Basic credentials",
        ));
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(refuse(
            "invalid_client",
            "the token endpoint takes Basic client credentials, not a bearer token",
        ));
    }
    let decoded = STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            refuse(
                "invalid_client",
                "the Basic credentials are not valid base64 of id:secret",
            )
        })?;
    let (id, secret) = decoded.split_once(':').ok_or_else(|| {
        refuse(
            "invalid_client",
            "the Basic credentials have no ':' between id and secret",
        )
    })?;
    let form_decode = |s: &str| {
        form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Ok(Some((form_decode(id), form_decode(secret))))
}

fn check_secret(client: &Client, secret: &str) -> Result<(), Refusal> {
    match &client.kind {
        ClientKind::Symmetric { secret: registered }
            if crate::constant_time_eq(secret.as_bytes(), registered.as_bytes()) =>
        {
            Ok(())
        }
        ClientKind::Symmetric { .. } => Err(refuse("invalid_client", "the client secret is wrong")),
        _ => Err(refuse(
            "invalid_client",
            format!(
                "{} has no secret: it is a {} client",
                client.client_id,
                client.kind.name()
            ),
        )),
    }
}

/// The registered public keys of an asymmetric client (inline, or fetched from its `jwks_uri`
/// by the server layer before this request was handled).
fn client_keys(ep: &Endpoint<'_>, client: &Client) -> Result<ClientKeys, Refusal> {
    let ClientKind::Asymmetric { jwks, jwks_uri } = &client.kind else {
        return Err(refuse(
            "invalid_client",
            format!(
                "{} is a {} client: it cannot authenticate with a client assertion",
                client.client_id,
                client.kind.name()
            ),
        ));
    };
    if let Some(uri) = jwks_uri {
        let set = ep.sim.jwks_cache().cached(uri).ok_or_else(|| {
            refuse(
                "invalid_client",
                format!("the keys at the registered jwks_uri {uri} could not be fetched"),
            )
        })?;
        return Ok(ClientKeys::from_jwks_uri(set, uri));
    }
    let set = jwks
        .as_ref()
        .and_then(jwk_set_from_json)
        .map(|(set, _)| set)
        .ok_or_else(|| {
            refuse(
                "invalid_client",
                "the client's registered JWKS has no usable key",
            )
        })?;
    Ok(ClientKeys::new(set))
}

/// A successful token response and the grant behind its access token.
struct Issued {
    body: Value,
    grant: Arc<Grant>,
    scope_requested: String,
}

/// What a new access token is issued for.
struct Subject<'a> {
    client: &'a Client,
    user: Option<&'a User>,
    patient: Option<String>,
    encounter: Option<String>,
    scopes: Vec<Scope>,
    scope_requested: String,
    family: String,
    nonce: Option<String>,
    ehr_launch: bool,
}

fn code_grant(ep: &Endpoint<'_>, form: &Form, client: &Client) -> Result<Issued, Refusal> {
    let code = form
        .get("code")
        .ok_or_else(|| refuse("invalid_request", "code is required"))?;
    let now = ep.now();
    let record = {
        let mut flows = ep.env.auth().flows();
        let Some(record) = flows.codes.get_mut(code) else {
            return Err(refuse(
                "invalid_grant",
                "the authorization code is not known (never issued, or expired)",
            ));
        };
        if record.used {
            let family = record.family.clone();
            drop(flows);
            let revoked = ep.env.auth().tokens().revoke_family(&family);
            return Err(refuse(
                "invalid_grant",
                format!(
                    "the authorization code was already used; the {revoked} token(s) issued from it are revoked"
                ),
            ));
        }
        record.used = true;
        record.clone()
    };
    if now - record.issued_at > time::Duration::seconds(CODE_LIFETIME_SECONDS) {
        return Err(refuse(
            "invalid_grant",
            format!(
                "the authorization code expired ({CODE_LIFETIME_SECONDS} s after it was issued)"
            ),
        ));
    }
    if record.client_id != client.client_id {
        return Err(refuse(
            "invalid_grant",
            "the authorization code was issued to another client",
        ));
    }
    if form.get("redirect_uri") != Some(record.redirect_uri.as_str()) {
        return Err(refuse(
            "invalid_grant",
            "redirect_uri must be the one the authorization request used",
        ));
    }
    check_pkce(record.code_challenge.as_deref(), form.get("code_verifier"))?;
    let registrations = ep.env.auth().registrations();
    let user = record
        .username
        .as_deref()
        .and_then(|u| registrations.user(u));
    issue(
        ep,
        Subject {
            client,
            user,
            patient: record.patient.clone(),
            encounter: record.encounter.clone(),
            scopes: record.scopes.clone(),
            scope_requested: record.scope_requested.clone(),
            family: record.family.clone(),
            nonce: record.nonce.clone(),
            ehr_launch: record.encounter.is_some() || record.scopes.contains(&Scope::Launch),
        },
        true,
    )
}

/// PKCE (RFC 7636 section 4.6): the verifier must hash to the challenge; a verifier without a
/// challenge is refused too (it would hide a downgrade).
fn check_pkce(challenge: Option<&str>, verifier: Option<&str>) -> Result<(), Refusal> {
    match (challenge, verifier) {
        (None, None) => Ok(()),
        (None, Some(_)) => Err(refuse(
            "invalid_grant",
            "code_verifier sent, but the authorization request had no code_challenge",
        )),
        (Some(_), None) => Err(refuse(
            "invalid_grant",
            "code_verifier is required: the authorization request used PKCE",
        )),
        (Some(challenge), Some(verifier)) => {
            let valid_form = (43..=128).contains(&verifier.len())
                && verifier
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
            if !valid_form {
                return Err(refuse(
                    "invalid_grant",
                    "code_verifier must be 43 to 128 characters of [A-Za-z0-9-._~]",
                ));
            }
            let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
            if crate::constant_time_eq(computed.as_bytes(), challenge.as_bytes()) {
                Ok(())
            } else {
                Err(refuse(
                    "invalid_grant",
                    "code_verifier does not match the code_challenge (S256)",
                ))
            }
        }
    }
}

fn refresh_grant(ep: &Endpoint<'_>, form: &Form, client: &Client) -> Result<Issued, Refusal> {
    let text = form
        .get("refresh_token")
        .ok_or_else(|| refuse("invalid_request", "refresh_token is required"))?;
    let tokens = ep.env.auth().tokens();
    let record = tokens
        .get(text)
        .filter(|r| r.kind == TokenKind::Refresh)
        .ok_or_else(|| refuse("invalid_grant", "the refresh token is not known here"))?;
    refresh_known(ep, form, client, text, &record).map_err(|r| r.about(&record.grant))
}

/// A refresh with a refresh token this environment issued.
fn refresh_known(
    ep: &Endpoint<'_>,
    form: &Form,
    client: &Client,
    text: &str,
    record: &TokenRecord,
) -> Result<Issued, Refusal> {
    let tokens = ep.env.auth().tokens();
    if record.grant.client_id != client.client_id {
        return Err(refuse(
            "invalid_grant",
            "the refresh token was issued to another client",
        ));
    }
    if record.is_revoked() {
        tokens.revoke_family(&record.family);
        return Err(refuse(
            "invalid_grant",
            "the refresh token was revoked or already used; every token of its grant is now revoked",
        ));
    }
    if record.is_expired(ep.now()) {
        return Err(refuse("invalid_grant", "the refresh token expired"));
    }
    let original = parse_scopes(&record.grant.scope_text).unwrap_or_default();
    let scopes = match form.get("scope") {
        None => original.clone(),
        Some(text) => {
            let asked = parse_scopes(text).map_err(|e| refuse("invalid_scope", e.to_string()))?;
            let narrowed = narrow(&asked, &original);
            if narrowed.len() != asked.len() || narrowed != asked {
                return Err(refuse(
                    "invalid_scope",
                    format!(
                        "a refresh can narrow the grant, never widen it: granted was {:?}",
                        record.grant.scope_text
                    ),
                ));
            }
            narrowed
        }
    };
    if ep.env.auth().settings().rotate_refresh_tokens {
        record.revoke();
    }
    let registrations = ep.env.auth().registrations();
    let user = record
        .grant
        .user
        .as_deref()
        .and_then(|u| registrations.find_user(u));
    issue(
        ep,
        Subject {
            client,
            user,
            patient: record.grant.patient.clone(),
            encounter: record.grant.encounter.clone(),
            scopes,
            scope_requested: form
                .get("scope")
                .unwrap_or(&record.grant.scope_text)
                .to_string(),
            family: record.family.clone(),
            nonce: None,
            ehr_launch: false,
        },
        ep.env.auth().settings().rotate_refresh_tokens,
    )
    .map(|mut issued| {
        if !ep.env.auth().settings().rotate_refresh_tokens {
            issued.body["refresh_token"] = json!(text);
        }
        issued
    })
}

fn client_credentials_grant(
    ep: &Endpoint<'_>,
    form: &Form,
    client: &Client,
    method: AuthMethod,
) -> Result<Issued, Refusal> {
    if method == AuthMethod::None {
        return Err(refuse(
            "unauthorized_client",
            format!(
                "{} is a public client: client_credentials needs a confidential one",
                client.client_id
            ),
        ));
    }
    let text = form
        .get("scope")
        .ok_or_else(|| refuse("invalid_scope", "scope is required, e.g. system/Patient.rs"))?;
    let asked = parse_scopes(text).map_err(|e| refuse("invalid_scope", e.to_string()))?;
    if let Some(message) = unknown_type(&asked) {
        return Err(refuse("invalid_scope", message));
    }
    let system_only: Vec<Scope> = asked
        .into_iter()
        .filter(|s| matches!(s, Scope::Clinical(c) if c.context == Context::System))
        .collect();
    let scopes = narrow(&system_only, &client.scopes);
    if scopes.is_empty() {
        return Err(refuse(
            "invalid_scope",
            format!(
                "no requested system/ scope is registered for {}; it may ask for: {}",
                client.client_id, client.scope_text
            ),
        ));
    }
    issue(
        ep,
        Subject {
            client,
            user: None,
            patient: None,
            encounter: None,
            scopes,
            scope_requested: text.to_string(),
            family: random_token(),
            nonce: None,
            ehr_launch: false,
        },
        false,
    )
}

/// Issues the access token (and refresh and id tokens when granted) and records them.
fn issue(ep: &Endpoint<'_>, subject: Subject<'_>, with_refresh: bool) -> Result<Issued, Refusal> {
    let auth = ep.env.auth();
    let keys = auth
        .keys()
        .map_err(|e| refuse("server_error", format!("signing keys are unavailable: {e}")))?;
    let lifetime = auth.settings().access_lifetime_seconds;
    let sim_now = ep.now();
    // Claims carry wall-clock times: the app keeps its own clock, and moving the simulator's
    // clock (to expire tokens) must not push new tokens into the app's future. Expiry is
    // enforced on the simulated clock, from the token's record.
    let wall_now = OffsetDateTime::now_utc().unix_timestamp();
    let jti = random_token();
    let granted = scope_text(&subject.scopes);
    let grant = Arc::new(build_grant(ep, &subject, &jti, &granted));
    let mut claims = json!({
        "iss": ep.issuer(),
        "sub": subject.user.map_or(subject.client.client_id.clone(), |u| u.fhir_user.clone()),
        "aud": ep.fhir_base(),
        "client_id": subject.client.client_id,
        "scope": granted,
        "iat": wall_now,
        "exp": wall_now + lifetime,
        "jti": jti,
    });
    if let Some(p) = &subject.patient {
        claims["patient"] = json!(p);
    }
    if let Some(u) = subject.user {
        claims["fhirUser"] = json!(format!("{}/{}", ep.fhir_base(), u.fhir_user));
    }
    let access = keys
        .sign_access_token(&claims)
        .map_err(|e| refuse("server_error", format!("cannot sign the access token: {e}")))?;
    let tokens = auth.tokens();
    tokens.insert(
        access.clone(),
        TokenRecord::new(
            TokenKind::Access,
            jti.clone(),
            Arc::clone(&grant),
            sim_now,
            Some(sim_now + time::Duration::seconds(lifetime)),
            subject.family.clone(),
            subject.scope_requested.clone(),
        ),
        sim_now,
    );
    let mut body = json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": lifetime,
        "scope": granted,
    });
    if let Some(p) = &subject.patient {
        body["patient"] = json!(p);
        body["need_patient_banner"] = json!(!subject.ehr_launch);
        body["smart_style_url"] = json!(ep.auth_url("smart-style.json"));
    }
    if let Some(e) = &subject.encounter {
        body["encounter"] = json!(e);
    }
    let wants_refresh = subject
        .scopes
        .iter()
        .any(|s| matches!(s, Scope::OfflineAccess | Scope::OnlineAccess));
    if with_refresh && wants_refresh {
        let refresh = random_token();
        tokens.insert(
            refresh.clone(),
            TokenRecord::new(
                TokenKind::Refresh,
                random_token(),
                Arc::clone(&grant),
                sim_now,
                None,
                subject.family.clone(),
                subject.scope_requested.clone(),
            ),
            sim_now,
        );
        body["refresh_token"] = json!(refresh);
    }
    if let Some(id_token) = id_token(ep, &subject, &keys, wall_now, lifetime)? {
        body["id_token"] = json!(id_token);
    }
    Ok(Issued {
        body,
        grant,
        scope_requested: subject.scope_requested,
    })
}

/// The id token, when `openid` and `fhirUser` (or 1.0 `profile`) were granted to a user.
fn id_token(
    ep: &Endpoint<'_>,
    subject: &Subject<'_>,
    keys: &super::keys::SigningKeys,
    wall_now: i64,
    lifetime: i64,
) -> Result<Option<String>, Refusal> {
    let has = |s: &Scope| subject.scopes.contains(s);
    let Some(user) = subject.user else {
        return Ok(None);
    };
    if !has(&Scope::OpenId) || !(has(&Scope::FhirUser) || has(&Scope::Profile)) {
        return Ok(None);
    }
    let fhir_user = format!("{}/{}", ep.fhir_base(), user.fhir_user);
    let mut claims = json!({
        "iss": ep.issuer(),
        "sub": user.fhir_user,
        "aud": subject.client.client_id,
        "iat": wall_now,
        "exp": wall_now + lifetime,
        "fhirUser": fhir_user,
    });
    if has(&Scope::Profile) {
        claims["profile"] = json!(fhir_user);
    }
    if let Some(nonce) = &subject.nonce {
        claims["nonce"] = json!(nonce);
    }
    keys.sign_id_token(&claims)
        .map(Some)
        .map_err(|e| refuse("server_error", format!("cannot sign the id token: {e}")))
}

/// The grant an access token carries into enforcement.
fn build_grant(ep: &Endpoint<'_>, subject: &Subject<'_>, jti: &str, granted: &str) -> Grant {
    let clinical: Vec<super::scopes::ClinicalScope> = subject
        .scopes
        .iter()
        .filter_map(|s| match s {
            Scope::Clinical(c) => Some(c.clone()),
            _ => None,
        })
        .collect();
    Grant {
        token_id: jti.to_string(),
        client_id: subject.client.client_id.clone(),
        user: subject.user.map(|u| u.fhir_user.clone()),
        patient: subject.patient.clone(),
        encounter: subject.encounter.clone(),
        scope_names: clinical
            .iter()
            .map(|c: &super::scopes::ClinicalScope| Arc::from(c.to_string()))
            .collect(),
        scopes: clinical,
        scope_text: granted.to_string(),
        user_patients: subject.user.map(|u| Arc::clone(&u.patients)),
        group_patients: subject
            .client
            .group
            .as_deref()
            .map(|g| Arc::new(group_members(ep, g))),
    }
}

/// The patient ids of a Group's members (none if the Group does not exist: a bound client
/// then reaches nobody, never everybody).
fn group_members(ep: &Endpoint<'_>, group_id: &str) -> BTreeSet<String> {
    let id = group_id.strip_prefix("Group/").unwrap_or(group_id);
    let store = ep.env.read();
    store
        .get("Group", id)
        .map(|g| {
            g["member"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|m| m["entity"]["reference"].as_str()?.strip_prefix("Patient/"))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// A new access-log record of an OAuth endpoint.
fn oauth_record(ep: &Endpoint<'_>, action: &str, status: u16) -> AccessRecord {
    AccessRecord {
        time: crate::clock::fhir_instant(ep.now()),
        environment: ep.env.name().to_string(),
        channel: "oauth",
        action: action.to_string(),
        token_kind: "none",
        status,
        outcome: AccessRecord::outcome_of(status),
        ..AccessRecord::default()
    }
}

/// The client a request claims to be (not yet authenticated): from Basic credentials, the
/// assertion's `iss`, or `client_id`, when registered; for the access log of refused requests.
fn claimed_client(ep: &Endpoint<'_>, form: &Form) -> Option<String> {
    if let Ok(Some((id, _))) = basic_credentials(ep) {
        return Some(id).filter(|id| ep.env.auth().registrations().client(id).is_some());
    }
    form.get("client_assertion")
        .and_then(|a| peek_assertion(a).ok()?.client_id)
        .or_else(|| form.get("client_id").map(str::to_string))
        .filter(|id| ep.env.auth().registrations().client(id).is_some())
}

/// Who may call introspection: the admin, an authenticated client, or a bearer of an active
/// access token of this environment.
fn introspection_caller(ep: &Endpoint<'_>, form: &Form) -> Result<(), Refusal> {
    if ep.sim.is_admin(ep.req) {
        return Ok(());
    }
    if let Some(token) = crate::bearer_token(ep.req) {
        return match ep.env.tokens().get(token) {
            Some(r) if r.kind == TokenKind::Access && r.is_active(ep.now()) => Ok(()),
            _ => Err(refuse(
                "invalid_client",
                "the bearer token of the introspection request is not active",
            )),
        };
    }
    match authenticate_client(ep, form)? {
        (_, AuthMethod::None) => Err(refuse(
            "invalid_client",
            "introspection needs a confidential client, the admin token or an active access token",
        )),
        _ => Ok(()),
    }
}

/// `POST [env]/auth/introspect` (RFC 7662).
pub(crate) fn introspect(ep: &Endpoint<'_>) -> SimResponse {
    let form = match form_params(ep.req) {
        Ok(p) => Form(p),
        Err(message) => return oauth_error(400, "invalid_request", &message),
    };
    let mut entry = oauth_record(ep, "introspect", 200);
    entry.client_id = claimed_client(ep, &form);
    if let Err(r) = introspection_caller(ep, &form) {
        return refused(ep, entry, &r);
    }
    let Some(text) = form.get("token") else {
        return oauth_error(400, "invalid_request", "token is required");
    };
    let now = ep.now();
    let found = ep.env.tokens().get(text);
    let body = match &found {
        Some(record) if record.is_active(now) => active_description(ep, record),
        _ => json!({"active": false}),
    };
    if let Some(record) = &found {
        entry.token_id = Some(record.id.clone());
        entry.token_kind = record.kind.as_str();
        entry.patient_context.clone_from(&record.grant.patient);
    }
    ep.sim.trail().record(entry);
    oauth_json(&body)
}

fn active_description(ep: &Endpoint<'_>, record: &TokenRecord) -> Value {
    let grant = &record.grant;
    let to_unix = |t: OffsetDateTime| t.unix_timestamp();
    let mut body = json!({
        "active": true,
        "scope": grant.scope_text,
        "client_id": grant.client_id,
        "token_type": if record.kind == TokenKind::Access { "Bearer" } else { "refresh_token" },
        "iat": to_unix(record.issued_at),
        "iss": ep.issuer(),
        "aud": ep.fhir_base(),
        "sub": grant.user.clone().unwrap_or_else(|| grant.client_id.clone()),
        "jti": record.id,
    });
    if let Some(exp) = record.expires_at {
        body["exp"] = json!(to_unix(exp));
    }
    if let Some(p) = &grant.patient {
        body["patient"] = json!(p);
    }
    if let Some(u) = &grant.user {
        body["fhirUser"] = json!(format!("{}/{u}", ep.fhir_base()));
    }
    body
}

/// `POST [env]/auth/revoke` (RFC 7009): the client revokes one of its tokens; revoking a
/// refresh token revokes its grant's access tokens too. Unknown tokens are not an error.
pub(crate) fn revoke(ep: &Endpoint<'_>) -> SimResponse {
    let form = match form_params(ep.req) {
        Ok(p) => Form(p),
        Err(message) => return oauth_error(400, "invalid_request", &message),
    };
    let mut entry = oauth_record(ep, "revoke", 200);
    entry.client_id = claimed_client(ep, &form);
    let client = match authenticate_client(ep, &form) {
        Ok((client, _)) => client,
        Err(r) => return refused(ep, entry, &r),
    };
    let Some(text) = form.get("token") else {
        return oauth_error(400, "invalid_request", "token is required");
    };
    let tokens = ep.env.tokens();
    match tokens
        .get(text)
        .filter(|r| r.grant.client_id == client.client_id)
    {
        Some(record) => {
            match record.kind {
                TokenKind::Refresh => {
                    tokens.revoke_family(&record.family);
                }
                TokenKind::Access => record.revoke(),
            }
            entry.token_id = Some(record.id.clone());
            entry.token_kind = record.kind.as_str();
            entry.user.clone_from(&record.grant.user);
        }
        None => entry.reason = Some("not a token of this client: nothing was revoked".into()),
    }
    ep.sim.trail().record(entry);
    oauth_json(&json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_verifiers() {
        // RFC 7636 appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(check_pkce(Some(challenge), Some(verifier)).is_ok());
        assert!(check_pkce(Some(challenge), Some(&verifier.replace('d', "e"))).is_err());
        assert!(check_pkce(Some(challenge), None).is_err());
        assert!(check_pkce(None, Some(verifier)).is_err());
        assert!(check_pkce(Some(challenge), Some("short")).is_err());
        assert!(check_pkce(None, None).is_ok());
    }
}
