//! The API for clients that hold the SMART access token themselves (a mobile app, a partner's
//! service): a bearer token is accepted only when the EHR says, by introspection (RFC 7662),
//! that it is active, issued to this app, and meant for this FHIR server. Its scopes, patient
//! and user come from the EHR's answer, never from the request.

use serde_json::Value;

use crate::scopes::LaunchKind;
use crate::server::{Shared, persona_of};
use crate::session::Session;
use crate::smart::{self, Tokens};

/// A session for `token`, if the EHR vouches for it; else why not (not shown to the caller).
pub(crate) async fn session(shared: &Shared, token: &str) -> Result<Session, String> {
    let config = &shared.config;
    let discovery = smart::discover(&shared.http, &config.fhir_base)
        .await
        .map_err(|e| e.to_string())?;
    let endpoint = discovery
        .introspection
        .clone()
        .ok_or("the EHR has no introspection endpoint")?;
    let answer: Value = shared
        .http
        .post(&endpoint)
        .bearer_auth(token)
        .form(&[("token", token)])
        .send()
        .await
        .map_err(|e| format!("introspection failed: {e}"))?
        .json()
        .await
        .map_err(|e| format!("introspection answered no JSON: {e}"))?;
    let text = |name: &str| answer[name].as_str().map(str::to_string);
    if answer["active"] != Value::Bool(true) {
        return Err("the token is not active".into());
    }
    if text("client_id").as_deref() != Some(config.client_id.as_str()) {
        return Err("the token was issued to another app".into());
    }
    if text("aud").as_deref() != Some(config.fhir_base.as_str()) {
        return Err("the token is meant for another FHIR server".into());
    }
    let fhir_user = text("fhirUser").map(|u| relative_reference(&u));
    let kind = match fhir_user.as_deref() {
        Some(u) if u.starts_with("Patient/") => LaunchKind::Standalone,
        _ => LaunchKind::Ehr,
    };
    let tokens = Tokens {
        access_token: token.to_string(),
        refresh_token: None,
        expires_in: None,
        scope: text("scope"),
        patient: text("patient"),
        id_token: None,
    };
    Ok(Session::new(
        kind,
        persona_of(fhir_user.as_deref(), kind),
        &tokens,
        text("scope").unwrap_or_default(),
        fhir_user,
        discovery.token,
    ))
}

/// `Patient/x` from `https://ehr/fhir/Patient/x` (or `Patient/x` itself).
fn relative_reference(reference: &str) -> String {
    let mut parts = reference.rsplit('/');
    match (parts.next(), parts.next()) {
        (Some(id), Some(kind)) => format!("{kind}/{id}"),
        _ => reference.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_made_relative() {
        assert_eq!(
            relative_reference("http://ehr/fhir/Patient/p1"),
            "Patient/p1"
        );
        assert_eq!(relative_reference("Practitioner/x"), "Practitioner/x");
        assert_eq!(relative_reference("odd"), "odd");
    }
}
