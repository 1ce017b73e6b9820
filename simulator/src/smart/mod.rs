//! SMART on FHIR: the authorization server of each environment (App Launch 2.x with 1.0
//! scopes, Backend Services), under `/<env>/auth/`:
//! `authorize` (plus the `login`, `pick` and `consent` pages), `token`, `introspect`, `revoke`,
//! `jwks`; and `/<env>/fhir/.well-known/smart-configuration`.
//!
//! What it is not: enforcement of the tokens it issues lives in [`crate::access`]; it only
//! records who was granted what ([`tokens`]).

pub mod assertion;
pub mod authority;
mod authorize;
mod discovery;
pub mod jwks_cache;
pub mod jwt;
pub mod keys;
pub(crate) mod pages;
pub mod registry;
pub mod scopes;
mod token;
pub mod tokens;

use http::Method;

pub(crate) use authorize::{new_launch, redirect_to};
pub use discovery::smart_configuration;

use crate::Simulator;
use crate::environment::Environment;
use crate::request::{SimRequest, SimResponse, parse_query};

/// What every OAuth endpoint needs: the simulator, the environment and the request.
pub(crate) struct Endpoint<'a> {
    pub(crate) sim: &'a Simulator,
    pub(crate) env: &'a Environment,
    pub(crate) req: &'a SimRequest,
}

impl Endpoint<'_> {
    /// The simulated time.
    pub(crate) fn now(&self) -> time::OffsetDateTime {
        self.sim.clock().now()
    }

    /// This environment's FHIR base URL (what `aud` must equal).
    pub(crate) fn fhir_base(&self) -> String {
        format!("{}{}", self.sim.public_url(), self.env.base_path())
    }

    /// This environment's issuer.
    pub(crate) fn issuer(&self) -> String {
        issuer(self.sim, self.env)
    }

    /// The path of an endpoint of this authorization server (for forms).
    pub(crate) fn auth_path(&self, name: &str) -> String {
        format!("/{}/auth/{name}", self.env.name())
    }

    /// The absolute URL of an endpoint of this authorization server.
    pub(crate) fn auth_url(&self, name: &str) -> String {
        format!("{}{}", self.sim.public_url(), self.auth_path(name))
    }

    /// Records an OAuth decision in the access log and the audit trail.
    pub(crate) fn record_oauth(
        &self,
        action: &str,
        client_id: &str,
        user: Option<&str>,
        status: u16,
        reason: Option<&str>,
    ) {
        self.sim.trail().record_oauth(
            self.env.name(),
            action,
            client_id,
            user,
            status,
            reason,
            self.now(),
        );
    }
}

/// The issuer of an environment's tokens: `<public url>/<env>/auth`.
pub fn issuer(sim: &Simulator, env: &Environment) -> String {
    format!("{}/{}/auth", sim.public_url(), env.name())
}

/// Handles `/<env>/auth/<segments>`.
pub fn handle(
    sim: &Simulator,
    env: &Environment,
    req: &SimRequest,
    segments: &[&str],
) -> SimResponse {
    let ep = Endpoint { sim, env, req };
    match (req.method.as_str(), segments) {
        ("GET" | "POST", ["authorize"]) => authorize::authorize(&ep),
        ("POST", ["login"]) => authorize::login(&ep),
        ("POST", ["pick"]) => authorize::pick(&ep),
        ("POST", ["consent"]) => authorize::consent(&ep),
        ("POST", ["token"]) => token::token(&ep),
        ("POST", ["introspect"]) => token::introspect(&ep),
        ("POST", ["revoke"]) => token::revoke(&ep),
        ("GET", ["jwks"]) => discovery::jwks(&ep),
        ("GET", [".well-known", "openid-configuration"]) => discovery::openid_configuration(&ep),
        ("GET", ["smart-style.json"]) => discovery::style(),
        (_, [name])
            if [
                "authorize",
                "login",
                "pick",
                "consent",
                "token",
                "introspect",
                "revoke",
                "jwks",
            ]
            .contains(name) =>
        {
            let allowed = if *name == "authorize" {
                "GET, POST"
            } else if *name == "jwks" {
                "GET"
            } else {
                "POST"
            };
            authority::oauth_error(
                405,
                "invalid_request",
                &format!("{} is not allowed here: use {allowed}", req.method),
            )
            .with_header("allow", allowed)
        }
        _ => authority::oauth_error(
            404,
            "invalid_request",
            &format!(
                "no authorization endpoint at {}: see {}/.well-known/smart-configuration",
                req.path,
                ep.fhir_base()
            ),
        ),
    }
}

/// The parameters of a form request: the URL query, then (for POST) the
/// `application/x-www-form-urlencoded` body. Errors name the problem.
pub(crate) fn form_params(req: &SimRequest) -> Result<Vec<(String, String)>, String> {
    let mut params = req.query.clone();
    if req.method == Method::POST && !req.body.is_empty() {
        let media = req.media_type();
        if media != "application/x-www-form-urlencoded" {
            return Err(format!(
                "the body must be application/x-www-form-urlencoded, not {:?}",
                if media.is_empty() {
                    "(none)"
                } else {
                    media.as_str()
                }
            ));
        }
        let body =
            std::str::from_utf8(&req.body).map_err(|_| "the form body is not UTF-8".to_string())?;
        params.extend(parse_query(body));
    }
    Ok(params)
}
