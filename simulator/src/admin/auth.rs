//! Admin endpoints of the authorization side: what is registered (with the test credentials
//! a script needs to get any kind of token), decisions made ahead of an app's next
//! authorization, EHR launches, key rotation and revocation of chosen tokens.

use serde_json::{Value, json};

use super::{admin_json, bad_request, json_body};
use crate::Simulator;
use crate::environment::Environment;
use crate::request::{SimRequest, SimResponse};
use crate::smart::authority::PreDecision;
use crate::smart::registry::{Client, User};
use crate::smart::scopes::parse_scopes;
use crate::smart::tokens::TokenKind;

/// The environment a request names (`environment` in the query or body), else the first.
fn environment<'a>(sim: &'a Simulator, name: Option<&str>) -> Result<&'a Environment, SimResponse> {
    match name {
        None => sim
            .environments()
            .first()
            .ok_or_else(|| bad_request("there is no environment")),
        Some(name) => sim
            .environments()
            .iter()
            .find(|e| e.name() == name)
            .ok_or_else(|| {
                bad_request(format!(
                    "no environment named {name:?}: see GET /_sim/health"
                ))
            }),
    }
}

/// `GET /_sim/registrations`: per environment, its endpoints, clients and users.
pub(super) fn registrations(sim: &Simulator) -> SimResponse {
    let environments: Vec<Value> = sim
        .environments()
        .iter()
        .map(|e| describe(sim, e))
        .collect();
    admin_json(200, &json!({"environments": environments}))
}

fn describe(sim: &Simulator, env: &Environment) -> Value {
    let issuer = crate::smart::issuer(sim, env);
    let fhir_base = format!("{}{}", sim.public_url(), env.base_path());
    let registrations = env.auth().registrations();
    let clients: Vec<Value> = registrations.clients().map(describe_client).collect();
    let users: Vec<Value> = registrations.users().iter().map(describe_user).collect();
    json!({
        "name": env.name(),
        "issuer": issuer,
        "fhir_base": fhir_base,
        "smart_configuration": format!("{fhir_base}/.well-known/smart-configuration"),
        "authorize_url": format!("{issuer}/authorize"),
        "token_url": format!("{issuer}/token"),
        "introspect_url": format!("{issuer}/introspect"),
        "revoke_url": format!("{issuer}/revoke"),
        "jwks_url": format!("{issuer}/jwks"),
        "access_token_lifetime_seconds": env.auth().settings().access_lifetime_seconds,
        "clients": clients,
        "users": users,
    })
}

fn describe_client(client: &Client) -> Value {
    let mut out = json!({
        "client_id": client.client_id,
        "kind": client.kind.name(),
        "redirect_uris": client.redirect_uris,
        "launch_url": client.launch_url,
        "scopes": client.scope_text,
    });
    if let Some(group) = &client.group {
        out["group"] = json!(group);
    }
    if let Some(date) = &client.key_issued {
        out["key_issued"] = json!(date);
    }
    if let crate::smart::registry::ClientKind::Asymmetric {
        jwks_uri: Some(uri),
        ..
    } = &client.kind
    {
        out["jwks_uri"] = json!(uri);
    }
    if let Some(Value::Object(credentials)) = &client.test_credentials {
        for (k, v) in credentials {
            out[k] = v.clone();
        }
    }
    out
}

fn describe_user(user: &User) -> Value {
    let mut out = json!({
        "username": user.username,
        "password": user.password,
        "role": user.role.name(),
        "fhirUser": user.fhir_user,
    });
    match user.patient_id() {
        Some(id) => out["patient"] = json!(id),
        None => out["patients"] = json!(user.patients.iter().collect::<Vec<_>>()),
    }
    out
}

/// `POST /_sim/authorizations`: `{"client_id", "user", "patient"?, "scope"?, "deny"?,
/// "environment"?}` decides the next authorization of that client.
pub(super) fn authorizations(sim: &Simulator, req: &SimRequest) -> SimResponse {
    let body = match json_body(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let text = |name: &str| body.get(name).and_then(Value::as_str);
    let env = match environment(sim, text("environment")) {
        Ok(e) => e,
        Err(r) => return r,
    };
    let registrations = env.auth().registrations();
    let Some(client) = text("client_id").and_then(|id| registrations.client(id)) else {
        return bad_request(format!(
            "client_id {:?} is not registered in {}: see GET /_sim/registrations",
            text("client_id").unwrap_or(""),
            env.name()
        ));
    };
    let deny = body.get("deny").and_then(Value::as_bool).unwrap_or(false);
    let user = match text("user") {
        Some(name) => match registrations.find_user(name) {
            Some(u) => Some(u),
            None => {
                return bad_request(format!(
                    "user {name:?} is not registered in {} (give a username or a fhirUser reference)",
                    env.name()
                ));
            }
        },
        None if deny => None,
        None => {
            return bad_request(
                "user is required (a username or a fhirUser reference such as Practitioner/…)",
            );
        }
    };
    let patient = text("patient").map(|p| p.trim_start_matches("Patient/").to_string());
    if let (Some(user), Some(p)) = (user, &patient)
        && !user.patients.contains(p)
    {
        return bad_request(format!(
            "Patient/{p} is not a patient {} may see",
            user.username
        ));
    }
    if let Some(scope) = text("scope")
        && let Err(e) = parse_scopes(scope)
    {
        return bad_request(format!("scope: {e}"));
    }
    let decision = PreDecision {
        user: user.map(|u| u.username.clone()),
        patient: patient.clone(),
        scope: text("scope").map(str::to_string),
        deny,
    };
    env.auth()
        .flows()
        .decisions
        .insert(client.client_id.clone(), decision);
    admin_json(
        200,
        &json!({
            "status": "pending",
            "environment": env.name(),
            "client_id": client.client_id,
            "user": user.map(|u| u.username.clone()),
            "patient": patient,
            "scope": text("scope"),
            "deny": deny,
            "applies_to": "the next authorization request of this client"
        }),
    )
}

/// `GET /_sim/launch?client_id=…&patient=…&user=…&encounter=…&environment=…`: makes an EHR
/// launch context and sends the browser to the app's launch URL with `iss` and `launch`.
pub(super) fn launch(sim: &Simulator, req: &SimRequest) -> SimResponse {
    let env = match environment(sim, req.query_value("environment")) {
        Ok(e) => e,
        Err(r) => return r,
    };
    let registrations = env.auth().registrations();
    let Some(client) = req
        .query_value("client_id")
        .and_then(|id| registrations.client(id))
    else {
        return bad_request("client_id must name a registered app: see GET /_sim/registrations");
    };
    let Some(launch_url) = &client.launch_url else {
        return bad_request(format!(
            "{} has no launch URL registered, so it cannot be launched",
            client.client_id
        ));
    };
    let user = match req.query_value("user") {
        Some(name) => match registrations.find_user(name) {
            Some(u) => Some(u),
            None => return bad_request(format!("user {name:?} is not registered")),
        },
        None => None,
    };
    let patient = req
        .query_value("patient")
        .map(|p| p.trim_start_matches("Patient/").to_string());
    if let Some(p) = &patient {
        if env.read().get("Patient", p).is_none() {
            return bad_request(format!("Patient/{p} is not in environment {}", env.name()));
        }
        if let Some(u) = user
            && !u.patients.contains(p)
        {
            return bad_request(format!(
                "Patient/{p} is not a patient {} may see",
                u.username
            ));
        }
    }
    let context = crate::smart::new_launch(
        &client.client_id,
        patient,
        user.map(|u| u.username.clone()),
        req.query_value("encounter").map(str::to_string),
        sim.clock().now(),
    );
    let id = context.id.clone();
    {
        let mut flows = env.auth().flows();
        flows.prune(sim.clock().now());
        flows.launches.insert(id.clone(), context);
    }
    let iss = format!("{}{}", sim.public_url(), env.base_path());
    crate::smart::redirect_to(launch_url, &[("iss", &iss), ("launch", &id)])
}

/// `POST /_sim/keys/rotate` (`{"environment"?}`): new signing keys; old tokens stay valid.
pub(super) fn rotate_keys(sim: &Simulator, req: &SimRequest) -> SimResponse {
    let body = match json_body(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let env = match environment(sim, body.get("environment").and_then(Value::as_str)) {
        Ok(e) => e,
        Err(r) => return r,
    };
    match env.auth().rotate_keys(sim.clock().now().unix_timestamp()) {
        Ok(kid) => admin_json(
            200,
            &json!({"environment": env.name(), "access_token_kid": kid}),
        ),
        Err(e) => bad_request(format!("cannot rotate the keys: {e}")),
    }
}

/// `POST /_sim/tokens/revoke` with `{"token"?, "client_id"?, "user"?, "kind"?,
/// "environment"?}`: revokes the tokens matching every given field (at least one of token,
/// client_id, user), so a test can end one grant without moving the clock for everyone.
/// `kind` (`access` or `refresh`) narrows it: revoking only access tokens makes an app refresh.
pub(super) fn revoke_tokens(sim: &Simulator, req: &SimRequest) -> SimResponse {
    let body = match json_body(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let text = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_string);
    let env = match environment(sim, text("environment").as_deref()) {
        Ok(e) => e,
        Err(r) => return r,
    };
    let (token, client, user) = (text("token"), text("client_id"), text("user"));
    if token.is_none() && client.is_none() && user.is_none() {
        return bad_request("name what to revoke: token, client_id and/or user");
    }
    let kind = match text("kind").as_deref() {
        None => None,
        Some("access") => Some(TokenKind::Access),
        Some("refresh") => Some(TokenKind::Refresh),
        Some(other) => {
            return bad_request(format!(
                "kind {other:?} is not a token kind: use access or refresh"
            ));
        }
    };
    let user_ref = user.as_deref().map(|u| {
        env.auth()
            .registrations()
            .find_user(u)
            .map_or(u.to_string(), |found| found.fhir_user.clone())
    });
    let tokens = env.tokens();
    let by_text = token.as_deref().and_then(|t| tokens.get(t));
    if token.is_some() && by_text.is_none() {
        return admin_json(200, &json!({"environment": env.name(), "revoked": 0}));
    }
    let revoked = tokens.revoke_where(|r| {
        by_text.as_ref().is_none_or(|t| std::ptr::eq(t.as_ref(), r))
            && kind.is_none_or(|k| r.kind == k)
            && client.as_deref().is_none_or(|c| r.grant.client_id == c)
            && user_ref
                .as_deref()
                .is_none_or(|u| r.grant.user.as_deref() == Some(u))
    });
    admin_json(200, &json!({"environment": env.name(), "revoked": revoked}))
}
