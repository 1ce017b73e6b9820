//! The fhirdrill mock EHR: a FHIR R4 server over synthetic patients that behaves like
//! production — versioned resources, real search, history, batch and transaction Bundles,
//! OperationOutcome errors with the right status, rate limits and injected faults.
//!
//! [`Simulator::handle`] maps a [`SimRequest`] to a [`SimResponse`] with no HTTP library in
//! sight; [`server`] puts it on a socket (warp filters behind our own hyper accept loop, with
//! header timeouts, a connection cap and a body cap). [`loader`] fills environments from the
//! generator or from a folder of NDJSON or transaction bundles (ours or Synthea's).
//!
//! What it is not (yet): it does not authorize — SMART on FHIR and scope enforcement come next,
//! between routing and the store (see [`rest`]). It speaks JSON only, not XML.

pub mod admin;
pub mod behaviour;
pub mod clock;
pub mod compartment;
pub mod config;
pub mod environment;
pub mod loader;
pub mod outcome;
pub mod request;
pub mod rest;
pub mod search;
pub mod server;
pub mod smart;
pub mod store;
pub mod stored;

use clock::Clock;
use environment::Environment;
use outcome::FhirError;
pub use request::{SimRequest, SimResponse};

/// The whole simulator: its environments, clock and behaviour settings.
#[derive(Debug)]
pub struct Simulator {
    environments: Vec<Environment>,
    clock: Clock,
    public_url: String,
    behaviour: behaviour::Behaviour,
}

impl Simulator {
    /// A simulator serving `environments` at `public_url` (e.g. `http://127.0.0.1:8080`).
    pub fn new(
        environments: Vec<Environment>,
        public_url: &str,
        behaviour: behaviour::Behaviour,
    ) -> Self {
        Self {
            environments,
            clock: Clock::default(),
            public_url: public_url.trim_end_matches('/').to_string(),
            behaviour,
        }
    }

    /// The simulated clock.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The URL clients use to reach this simulator.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// Every environment, in configuration order.
    pub fn environments(&self) -> &[Environment] {
        &self.environments
    }

    /// Production-like behaviour settings (rate limit, faults).
    pub fn behaviour(&self) -> &behaviour::Behaviour {
        &self.behaviour
    }

    /// Handles one request: the admin API under `/_sim/`, and each environment's FHIR API
    /// under `/<environment>/fhir/`.
    pub fn handle(&self, req: &SimRequest) -> SimResponse {
        let segments: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
        match segments.as_slice() {
            ["_sim", rest @ ..] => admin::handle(self, req, rest),
            [env, "fhir", rest @ ..] => match self.environments.iter().find(|e| e.name() == *env) {
                Some(environment) => rest::handle(self, environment, req, rest),
                None => not_found(&format!(
                    "no environment named {env:?}: see GET /_sim/health for the FHIR base URLs"
                )),
            },
            _ => not_found(&format!(
                "nothing at {}: FHIR APIs are under /<environment>/fhir (see GET /_sim/health)",
                req.path
            )),
        }
    }
}

fn not_found(message: &str) -> SimResponse {
    SimResponse::error(&FhirError::not_found(message), false)
}
