//! The harness as a SMART client: authorization code + PKCE with a pre-decided authorization,
//! for the tokens it uses itself (a patient-A token for FHIR attacks, or for an app API that
//! takes bearer tokens). It does not follow the redirect to the app: it takes the code.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::HarnessError;
use crate::simulator::{EnvironmentInfo, SimClient};

/// A token response.
#[derive(Debug, Clone)]
pub struct Tokens {
    /// The access token.
    pub access_token: String,
    /// The granted scopes.
    pub scope: String,
    /// The patient in context.
    pub patient: Option<String>,
}

/// What to ask for.
#[derive(Debug, Clone)]
pub struct AuthRequest<'a> {
    /// A public client registered with one of `redirect_uri`.
    pub client_id: &'a str,
    /// A registered redirect URI of the client.
    pub redirect_uri: &'a str,
    /// The user who signs in.
    pub user: &'a str,
    /// The scopes to request.
    pub scope: &'a str,
    /// The scopes the EHR grants (pre-decided; `None`: what is requested).
    pub grant: Option<&'a str>,
}

/// Runs authorize (pre-decided: no pages) and the code exchange with PKCE S256.
pub fn authorize(
    sim: &SimClient,
    env: &EnvironmentInfo,
    request: &AuthRequest<'_>,
) -> Result<Tokens, HarnessError> {
    sim.predecide(request.client_id, request.user, None, request.grant)?;
    let http = sim.http();
    let verifier = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let state = uuid::Uuid::new_v4().simple().to_string();
    let answer = http
        .get(&env.authorize_url)
        .query(&[
            ("response_type", "code"),
            ("client_id", request.client_id),
            ("redirect_uri", request.redirect_uri),
            ("scope", request.scope),
            ("state", &state),
            ("aud", &env.fhir_base),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .map_err(|e| {
            HarnessError::Setup(format!("the authorize request failed: {}", e.without_url()))
        })?;
    let location = answer
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let code = query_value(&location, "code").ok_or_else(|| {
        HarnessError::Setup(format!(
            "the EHR did not authorize {} for the harness (HTTP {}, error {:?})",
            request.client_id,
            answer.status().as_u16(),
            query_value(&location, "error").unwrap_or_default()
        ))
    })?;
    let response = http
        .post(&env.token_url)
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", request.redirect_uri),
            ("client_id", request.client_id),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .map_err(|e| {
            HarnessError::Setup(format!("the token request failed: {}", e.without_url()))
        })?;
    let status = response.status().as_u16();
    let body: Value = response.json().unwrap_or(Value::Null);
    let access_token = body["access_token"].as_str().ok_or_else(|| {
        HarnessError::Setup(format!(
            "the token request of {} answered HTTP {status} ({})",
            request.client_id,
            body["error"].as_str().unwrap_or("no error code")
        ))
    })?;
    Ok(Tokens {
        access_token: access_token.to_string(),
        scope: body["scope"].as_str().unwrap_or_default().to_string(),
        patient: body["patient"].as_str().map(str::to_string),
    })
}

/// The decoded value of `name` in a URL's query.
fn query_value(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or_default();
    fhirdrill_simulator::request::parse_query(query)
        .into_iter()
        .find_map(|(key, value)| (key == name).then_some(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_read_from_the_redirect() {
        let url = "http://app/cb?code=a%2Bb&state=s#frag";
        assert_eq!(query_value(url, "code").as_deref(), Some("a+b"));
        assert_eq!(query_value(url, "state").as_deref(), Some("s"));
        assert_eq!(query_value(url, "error"), None);
        assert_eq!(query_value("http://app/cb", "code"), None);
    }
}
