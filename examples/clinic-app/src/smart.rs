//! The SMART App Launch client side: discovery, the authorize URL, the code exchange, refresh
//! and id-token verification against the issuer's JWKS.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use crate::AppError;

/// What `<fhir base>/.well-known/smart-configuration` says.
#[derive(Debug, Clone)]
pub(crate) struct Discovery {
    /// The issuer (id tokens carry it in `iss`).
    pub(crate) issuer: String,
    /// The authorize endpoint.
    pub(crate) authorize: String,
    /// The token endpoint.
    pub(crate) token: String,
    /// The issuer's JWKS URL.
    pub(crate) jwks_uri: Option<String>,
    /// The token introspection endpoint (RFC 7662), if the EHR has one.
    pub(crate) introspection: Option<String>,
}

/// Fetches and reads the SMART configuration of `fhir_base`.
pub(crate) async fn discover(
    http: &reqwest::Client,
    fhir_base: &str,
) -> Result<Discovery, AppError> {
    let url = format!("{fhir_base}/.well-known/smart-configuration");
    let response = http
        .get(&url)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| {
            AppError::Upstream(format!("cannot reach the EHR's SMART configuration: {e}"))
        })?;
    if !response.status().is_success() {
        return Err(AppError::Upstream(format!(
            "the EHR's SMART configuration answered {}",
            response.status().as_u16()
        )));
    }
    let doc: Value = response
        .json()
        .await
        .map_err(|e| AppError::Upstream(format!("the SMART configuration is not JSON: {e}")))?;
    let field = |name: &str| doc[name].as_str().map(str::to_string);
    let missing = |name: &str| AppError::Upstream(format!("the SMART configuration has no {name}"));
    Ok(Discovery {
        issuer: field("issuer").unwrap_or_default(),
        authorize: field("authorization_endpoint")
            .ok_or_else(|| missing("authorization_endpoint"))?,
        token: field("token_endpoint").ok_or_else(|| missing("token_endpoint"))?,
        jwks_uri: field("jwks_uri"),
        introspection: field("introspection_endpoint"),
    })
}

/// The authorize request's parameters.
#[derive(Debug)]
pub(crate) struct AuthorizeParams<'a> {
    pub(crate) client_id: &'a str,
    pub(crate) redirect_uri: &'a str,
    pub(crate) scope: &'a str,
    pub(crate) state: &'a str,
    pub(crate) aud: &'a str,
    pub(crate) code_challenge: &'a str,
    pub(crate) launch: Option<&'a str>,
}

/// The URL the browser is sent to.
pub(crate) fn authorize_url(endpoint: &str, p: &AuthorizeParams<'_>) -> Result<String, AppError> {
    let mut url = url::Url::parse(endpoint)
        .map_err(|e| AppError::Upstream(format!("the authorize endpoint is not a URL: {e}")))?;
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", p.client_id)
            .append_pair("redirect_uri", p.redirect_uri)
            .append_pair("scope", p.scope)
            .append_pair("state", p.state)
            .append_pair("aud", p.aud)
            .append_pair("code_challenge", p.code_challenge)
            .append_pair("code_challenge_method", "S256");
        if let Some(launch) = p.launch {
            query.append_pair("launch", launch);
        }
    }
    Ok(url.into())
}

/// A successful token response.
#[derive(Debug, Clone)]
pub(crate) struct Tokens {
    pub(crate) access_token: String,
    pub(crate) refresh_token: Option<String>,
    pub(crate) expires_in: Option<i64>,
    /// The granted scope, if the response named it.
    pub(crate) scope: Option<String>,
    pub(crate) patient: Option<String>,
    pub(crate) id_token: Option<String>,
}

/// Posts `form` to the token endpoint; a refusal is an error that names the OAuth error code.
pub(crate) async fn token_request(
    http: &reqwest::Client,
    token_url: &str,
    form: &[(&str, &str)],
) -> Result<Tokens, AppError> {
    let response = http
        .post(token_url)
        .form(form)
        .send()
        .await
        .map_err(|e| AppError::Upstream(format!("the token request failed: {e}")))?;
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let text = |name: &str| body[name].as_str().map(str::to_string);
    match text("access_token") {
        Some(access_token) if status == 200 => Ok(Tokens {
            access_token,
            refresh_token: text("refresh_token"),
            expires_in: body["expires_in"].as_i64(),
            scope: text("scope"),
            patient: text("patient"),
            id_token: text("id_token"),
        }),
        _ => Err(AppError::Upstream(format!(
            "the token endpoint refused ({status}): {}",
            text("error").unwrap_or_else(|| "no error code".into())
        ))),
    }
}

/// The `fhirUser` claim of an id token whose signature (RS256, against the issuer's JWKS),
/// issuer, audience and expiry check out; `None` when it does not verify.
pub(crate) async fn verified_fhir_user(
    http: &reqwest::Client,
    discovery: &Discovery,
    client_id: &str,
    id_token: &str,
) -> Option<String> {
    let header = jsonwebtoken::decode_header(id_token).ok()?;
    if header.alg != Algorithm::RS256 && header.alg != Algorithm::ES256 {
        return None;
    }
    let jwks: JwkSet = http
        .get(discovery.jwks_uri.as_deref()?)
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    let jwk = match &header.kid {
        Some(kid) => jwks.find(kid)?,
        None => jwks.keys.first()?,
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[client_id]);
    validation.set_issuer(&[discovery.issuer.as_str()]);
    let data = jsonwebtoken::decode::<Value>(id_token, &key, &validation).ok()?;
    data.claims["fhirUser"].as_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorize_url_carries_every_parameter() {
        let url = authorize_url(
            "http://ehr/auth/authorize",
            &AuthorizeParams {
                client_id: "app",
                redirect_uri: "http://127.0.0.1:3000/callback",
                scope: "launch openid",
                state: "s1",
                aud: "http://ehr/fhir",
                code_challenge: "c1",
                launch: Some("L1"),
            },
        )
        .expect("url");
        let parsed = url::Url::parse(&url).expect("parses");
        let get = |k: &str| {
            parsed
                .query_pairs()
                .find(|(name, _)| name == k)
                .map(|(_, v)| v.into_owned())
        };
        assert_eq!(get("response_type").as_deref(), Some("code"));
        assert_eq!(get("scope").as_deref(), Some("launch openid"));
        assert_eq!(get("code_challenge_method").as_deref(), Some("S256"));
        assert_eq!(get("launch").as_deref(), Some("L1"));
        assert_eq!(get("aud").as_deref(), Some("http://ehr/fhir"));
    }
}
