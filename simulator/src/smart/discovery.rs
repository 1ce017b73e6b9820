//! Discovery: `/.well-known/smart-configuration` (SMART App Launch 2.x), the OpenID
//! configuration of the issuer, the JWKS, and the style document `smart_style_url` names.

use serde_json::{Value, json};

use super::Endpoint;
use super::authority::oauth_error;
use crate::Simulator;
use crate::environment::Environment;
use crate::request::SimResponse;

/// The capabilities this server really has (SMART App Launch 2.x, section "Capabilities").
pub(crate) const CAPABILITIES: &[&str] = &[
    "launch-ehr",
    "launch-standalone",
    "authorize-post",
    "client-public",
    "client-confidential-symmetric",
    "client-confidential-asymmetric",
    "context-ehr-patient",
    "context-ehr-encounter",
    "context-standalone-patient",
    "context-banner",
    "context-style",
    "permission-offline",
    "permission-online",
    "permission-patient",
    "permission-user",
    "permission-v1",
    "permission-v2",
    "sso-openid-connect",
];

/// The scopes this server understands, as advertised.
const SCOPES_SUPPORTED: &[&str] = &[
    "openid",
    "fhirUser",
    "profile",
    "launch",
    "launch/patient",
    "launch/encounter",
    "offline_access",
    "online_access",
    "patient/*.cruds",
    "user/*.cruds",
    "system/*.cruds",
    "patient/*.*",
    "user/*.*",
    "system/*.*",
    "patient/*.read",
    "user/*.read",
    "system/*.read",
];

/// The SMART configuration document of an environment.
pub(crate) fn smart_configuration_document(sim: &Simulator, env: &Environment) -> Value {
    let issuer = super::issuer(sim, env);
    let url = |name: &str| format!("{issuer}/{name}");
    json!({
        "issuer": issuer,
        "jwks_uri": url("jwks"),
        "authorization_endpoint": url("authorize"),
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "token_endpoint": url("token"),
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
        "introspection_endpoint": url("introspect"),
        "revocation_endpoint": url("revoke"),
        "scopes_supported": SCOPES_SUPPORTED,
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "capabilities": CAPABILITIES,
    })
}

/// `GET [base]/.well-known/smart-configuration`.
pub fn smart_configuration(sim: &Simulator, env: &Environment) -> SimResponse {
    SimResponse::json(
        200,
        &smart_configuration_document(sim, env),
        false,
        "application/json",
    )
}

/// `GET [env]/auth/.well-known/openid-configuration`: what OpenID Connect libraries read to
/// verify id tokens.
pub(crate) fn openid_configuration(ep: &Endpoint<'_>) -> SimResponse {
    let issuer = ep.issuer();
    let body = json!({
        "issuer": issuer,
        "authorization_endpoint": ep.auth_url("authorize"),
        "token_endpoint": ep.auth_url("token"),
        "jwks_uri": ep.auth_url("jwks"),
        "introspection_endpoint": ep.auth_url("introspect"),
        "revocation_endpoint": ep.auth_url("revoke"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "fhirUser", "profile"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nonce", "fhirUser"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "code_challenge_methods_supported": ["S256"],
    });
    SimResponse::json(200, &body, false, "application/json")
}

/// `GET [env]/auth/jwks`: the public keys that sign this environment's tokens.
pub(crate) fn jwks(ep: &Endpoint<'_>) -> SimResponse {
    match ep.env.auth().keys() {
        Ok(keys) => SimResponse::json(200, &keys.jwks(), false, "application/json")
            .with_header("cache-control", "max-age=300"),
        Err(e) => oauth_error(
            500,
            "server_error",
            &format!("signing keys are unavailable: {e}"),
        ),
    }
}

/// `GET [env]/auth/smart-style.json`: the style `smart_style_url` points apps to.
pub(crate) fn style() -> SimResponse {
    let body = json!({
        "color_background": "#f4f6f8",
        "color_error": "#aa0000",
        "color_highlight": "#2c6fbb",
        "color_modal_backdrop": "",
        "color_success": "#2e7d32",
        "color_text": "#1f2328",
        "dim_border_radius": "8px",
        "dim_font_size": "16px",
        "dim_spacing_size": "16px",
        "font_family_body": "system-ui, sans-serif",
        "font_family_heading": "system-ui, sans-serif"
    });
    SimResponse::json(200, &body, false, "application/json")
}
