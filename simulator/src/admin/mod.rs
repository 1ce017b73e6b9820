//! The admin API under `/_sim/`: health (public: it is the readiness probe, and carries no
//! secret), and behind the admin token (`Authorization: Bearer <admin token>`) everything
//! else: reset to the seed state, the clock, registrations, pre-decided authorizations and
//! the access log.

mod auth;
mod launcher;

use http::Method;
use serde_json::{Value, json};

use crate::Simulator;
use crate::outcome::{FhirError, IssueType};
use crate::request::{SimRequest, SimResponse};

/// Handles `/_sim/<segments>`. Every call but the health probe and reads of the access log
/// itself (a poller would otherwise never see the log go quiet) is recorded in the trail.
pub fn handle(sim: &Simulator, req: &SimRequest, segments: &[&str]) -> SimResponse {
    let admitted = matches!(segments, ["health"] | ["signin"])
        || sim.is_admin(req)
        || launcher::has_admin_cookie(sim, req);
    let response = if admitted {
        dispatch(sim, req, segments)
    } else {
        match segments {
            ["launcher" | "launch"] => launcher::signin_page(None),
            _ => admin_unauthorized(),
        }
    };
    if !matches!(segments, ["health"] | ["access-log"]) {
        record(sim, req, segments, admitted, response.status);
    }
    response
}

/// The admin call in the trail: which endpoint, whether the admin token came with it, and the
/// status (never the body: it may name patients or carry secrets).
fn record(sim: &Simulator, req: &SimRequest, segments: &[&str], admitted: bool, status: u16) {
    let named = req.query_value("environment");
    let environment = sim
        .environments()
        .iter()
        .find(|e| Some(e.name()) == named)
        .or_else(|| sim.environments().first())
        .map_or("", |e| e.name());
    // Only known endpoint names reach the log: an unknown path could carry anything.
    let name = segments.join("/");
    let action = if ENDPOINTS.contains(&name.as_str()) {
        name
    } else {
        "unknown".to_string()
    };
    sim.trail().record(crate::trail::AccessRecord {
        time: crate::clock::fhir_instant(sim.clock().now()),
        environment: environment.to_string(),
        channel: "admin",
        route: format!("/_sim/{action}"),
        action,
        token_kind: if admitted { "admin" } else { "none" },
        status,
        outcome: crate::trail::AccessRecord::outcome_of(status),
        ..crate::trail::AccessRecord::default()
    });
}

/// The admin endpoints, by path under `/_sim/`.
const ENDPOINTS: &[&str] = &[
    "health",
    "signin",
    "launcher",
    "launch",
    "reset",
    "registrations",
    "authorizations",
    "clock",
    "access-log",
    "keys/rotate",
    "tokens/revoke",
];

fn dispatch(sim: &Simulator, req: &SimRequest, segments: &[&str]) -> SimResponse {
    match (&req.method, segments) {
        (&Method::GET, ["health"]) => health(sim),
        (&Method::GET, ["signin"]) => launcher::signin_page(None),
        (&Method::POST, ["signin"]) => launcher::signin(sim, req),
        (&Method::GET, ["launcher"]) => launcher::launcher_page(sim),
        (&Method::GET, ["launch"]) => auth::launch(sim, req),
        (&Method::POST, ["reset"]) => reset(sim),
        (&Method::GET, ["registrations"]) => auth::registrations(sim),
        (&Method::POST, ["authorizations"]) => auth::authorizations(sim, req),
        (&Method::GET, ["clock"]) => clock(sim),
        (&Method::POST, ["clock"]) => set_clock(sim, req),
        (&Method::GET, ["access-log"]) => access_log(sim, req),
        (&Method::POST, ["keys", "rotate"]) => auth::rotate_keys(sim, req),
        (&Method::POST, ["tokens", "revoke"]) => auth::revoke_tokens(sim, req),
        _ => SimResponse::error(
            &FhirError::new(
                404,
                IssueType::NotFound,
                format!(
                    "no admin endpoint {} /_sim/{}",
                    req.method,
                    segments.join("/")
                ),
            ),
            false,
        ),
    }
}

/// A JSON response of the admin API.
fn admin_json(status: u16, value: &Value) -> SimResponse {
    SimResponse::json(status, value, false, "application/json")
}

/// A 400 of the admin API that names the problem.
fn bad_request(message: impl Into<String>) -> SimResponse {
    SimResponse::error(&FhirError::bad_request(message), false)
}

/// The JSON object body of an admin request.
fn json_body(req: &SimRequest) -> Result<Value, SimResponse> {
    if req.body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice::<Value>(&req.body)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| bad_request("the body must be a JSON object"))
}

/// `GET /_sim/clock`.
fn clock(sim: &Simulator) -> SimResponse {
    admin_json(
        200,
        &json!({"now": crate::clock::fhir_instant(sim.clock().now())}),
    )
}

/// `POST /_sim/clock` with `{"advance_seconds": N}` or `{"set": "<RFC 3339 instant>"}`.
fn set_clock(sim: &Simulator, req: &SimRequest) -> SimResponse {
    let body = match json_body(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    match (body.get("advance_seconds"), body.get("set")) {
        (Some(n), None) => match n.as_i64() {
            Some(seconds) => sim.clock().advance(seconds),
            None => return bad_request("advance_seconds must be a whole number of seconds"),
        },
        (None, Some(instant)) => {
            let parsed = instant.as_str().and_then(|t| {
                time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
            });
            match parsed {
                Some(t) => sim.clock().set(t),
                None => {
                    return bad_request(
                        "set must be an RFC 3339 instant such as 2026-03-12T09:00:00Z",
                    );
                }
            }
        }
        _ => {
            return bad_request(
                "send {\"advance_seconds\": N} or {\"set\": \"<RFC 3339 instant>\"}",
            );
        }
    }
    clock(sim)
}

/// Entries per access-log page.
const ACCESS_LOG_PAGE: usize = 50_000;

/// `GET /_sim/access-log?since=SEQ`: NDJSON, one record per line, oldest first.
fn access_log(sim: &Simulator, req: &SimRequest) -> SimResponse {
    let since = match req.query_value("since").map(str::parse::<u64>) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => return bad_request("since must be a sequence number (a whole number)"),
    };
    let entries = sim.trail().since(since, ACCESS_LOG_PAGE);
    let mut body = Vec::new();
    for entry in &entries {
        if serde_json::to_writer(&mut body, entry.as_ref()).is_ok() {
            body.push(b'\n');
        }
    }
    let last = entries.last().map_or(since, |e| e.seq);
    let mut response = SimResponse::empty(200)
        .with_header("content-type", "application/x-ndjson")
        .with_header("x-last-seq", last.to_string());
    response.body = body;
    response
}

/// The 401 for an admin request without the admin token.
fn admin_unauthorized() -> SimResponse {
    let error = FhirError::new(
        401,
        IssueType::Login,
        "the admin API needs the admin token: send Authorization: Bearer <admin token> (printed \
         by fhirdrill serve at start, or set with --admin-token or FHIRDRILL_ADMIN_TOKEN)",
    );
    SimResponse::error(&error, false).with_header("www-authenticate", "Bearer realm=\"_sim\"")
}

fn health(sim: &Simulator) -> SimResponse {
    let environments: Vec<_> = sim
        .environments()
        .iter()
        .map(|e| {
            json!({
                "name": e.name(),
                "fhir_base": format!("{}{}", sim.public_url(), e.base_path()),
                "resources": e.read().len()
            })
        })
        .collect();
    // Still ready if the audit log failed (requests keep working, in memory), but said loudly.
    let audit = match sim.trail().write_error() {
        Some(error) => json!({"status": "failing", "error": error}),
        None => json!({"status": "ok"}),
    };
    SimResponse::json(
        200,
        &json!({
            "status": "ok",
            "environments": environments,
            "audit_log": audit,
            "access_log": {"last_seq": sim.trail().last_seq()},
        }),
        false,
        "application/json",
    )
}

fn reset(sim: &Simulator) -> SimResponse {
    for environment in sim.environments() {
        environment.reset();
    }
    let counts: Vec<_> = sim
        .environments()
        .iter()
        .map(|e| json!({"name": e.name(), "resources": e.seed_len()}))
        .collect();
    SimResponse::json(
        200,
        &json!({"status": "reset", "environments": counts}),
        false,
        "application/json",
    )
}
