//! The admin API under `/_sim/`: health (with every environment's FHIR base URL) and reset to
//! the seed state. (The next issue puts it behind an admin token.)

use http::Method;
use serde_json::json;

use crate::Simulator;
use crate::outcome::{FhirError, IssueType};
use crate::request::{SimRequest, SimResponse};

/// Handles `/_sim/<segments>`.
pub fn handle(sim: &Simulator, req: &SimRequest, segments: &[&str]) -> SimResponse {
    match (&req.method, segments) {
        (&Method::GET, ["health"]) => health(sim),
        (&Method::POST, ["reset"]) => reset(sim),
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
    SimResponse::json(
        200,
        &json!({"status": "ok", "environments": environments}),
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
