//! SMART Backend Services for the sync job: the app's ES384 key pair (made at first start),
//! its public JWKS for registration, `private_key_jwt` client assertions and the
//! client_credentials token, cached until shortly before it expires.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::AppError;

/// The key file name in the state folder.
pub const KEY_FILE: &str = "backend-key.pem";
/// How long a client assertion lives (SMART allows at most five minutes).
const ASSERTION_LIFETIME_SECS: i64 = 240;
/// The assertion type of `private_key_jwt`.
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The backend's signing key: a P-384 key pair kept as PKCS#8 PEM.
#[derive(Clone)]
pub(crate) struct BackendKey {
    encoding: EncodingKey,
    kid: String,
    public_jwk: Value,
}

impl std::fmt::Debug for BackendKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl BackendKey {
    /// Reads the PEM key at `path`, or makes a new one there (owner-only permissions).
    pub(crate) fn load_or_generate(path: &Path) -> Result<Self, AppError> {
        let key_error = |m: String| AppError::Key(format!("{}: {m}", path.display()));
        let pem = if path.exists() {
            std::fs::read_to_string(path).map_err(|e| key_error(format!("cannot read: {e}")))?
        } else {
            let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384)
                .map_err(|e| key_error(format!("cannot generate a P-384 key: {e}")))?;
            let pem = pair.serialize_pem();
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| key_error(format!("cannot create its folder: {e}")))?;
            }
            write_private(path, &pem).map_err(|e| key_error(format!("cannot write: {e}")))?;
            pem
        };
        Self::from_pem(&pem).map_err(key_error)
    }

    fn from_pem(pem: &str) -> Result<Self, String> {
        let pair =
            rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(pem, &rcgen::PKCS_ECDSA_P384_SHA384)
                .map_err(|e| format!("not a PKCS#8 P-384 private key: {e}"))?;
        let raw = pair.public_key_raw();
        if raw.len() != 97 || raw[0] != 4 {
            return Err("the public key is not an uncompressed P-384 point".into());
        }
        let x = URL_SAFE_NO_PAD.encode(&raw[1..49]);
        let y = URL_SAFE_NO_PAD.encode(&raw[49..97]);
        // RFC 7638 thumbprint: the required members in lexicographic order, no spaces.
        let canonical = format!(r#"{{"crv":"P-384","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
        let encoding = EncodingKey::from_ec_pem(pem.as_bytes())
            .map_err(|e| format!("cannot use the key for signing: {e}"))?;
        let public_jwk = json!({
            "kty": "EC", "crv": "P-384", "x": x, "y": y,
            "kid": kid, "alg": "ES384", "use": "sig",
        });
        Ok(Self {
            encoding,
            kid,
            public_jwk,
        })
    }

    /// The public JWKS document `{"keys": [...]}`.
    pub(crate) fn public_jwks(&self) -> Value {
        json!({"keys": [self.public_jwk]})
    }

    /// A signed client assertion for `client_id` at `token_url`.
    pub(crate) fn assertion(&self, client_id: &str, token_url: &str) -> Result<String, AppError> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let claims = json!({
            "iss": client_id,
            "sub": client_id,
            "aud": token_url,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_SECS,
            "jti": crate::random::token(24)?,
        });
        let mut header = Header::new(Algorithm::ES384);
        header.kid = Some(self.kid.clone());
        header.typ = Some("JWT".into());
        jsonwebtoken::encode(&header, &claims, &self.encoding)
            .map_err(|e| AppError::Key(format!("cannot sign the client assertion: {e}")))
    }
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

/// The default key path in a state folder.
pub(crate) fn default_key_path(state_dir: &Path) -> PathBuf {
    state_dir.join(KEY_FILE)
}

/// The public JWKS (JSON text) of the backend key kept in `state_dir`, made if missing.
pub fn public_jwks(state_dir: &Path) -> Result<String, AppError> {
    public_jwks_of_key(&default_key_path(state_dir))
}

/// The public JWKS (JSON text) of the backend key file `key_path`, made if missing.
pub fn public_jwks_of_key(key_path: &Path) -> Result<String, AppError> {
    let key = BackendKey::load_or_generate(key_path)?;
    Ok(key.public_jwks().to_string())
}

/// The backend's client_credentials token, fetched when needed and cached.
#[derive(Debug)]
pub(crate) struct BackendTokens {
    key: BackendKey,
    client_id: String,
    scope: String,
    cached: tokio::sync::Mutex<Option<(String, Instant)>>,
}

impl BackendTokens {
    /// Tokens for `client_id` signed with `key`, asking for `scope`.
    pub(crate) fn new(key: BackendKey, client_id: &str, scope: &str) -> Self {
        Self {
            key,
            client_id: client_id.to_string(),
            scope: scope.to_string(),
            cached: tokio::sync::Mutex::new(None),
        }
    }

    /// A valid access token: the cached one, or a new one from `token_url`.
    pub(crate) async fn token(
        &self,
        http: &reqwest::Client,
        token_url: &str,
    ) -> Result<String, AppError> {
        let mut cached = self.cached.lock().await;
        if let Some((token, until)) = cached.as_ref()
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let assertion = self.key.assertion(&self.client_id, token_url)?;
        let form = [
            ("grant_type", "client_credentials"),
            ("scope", self.scope.as_str()),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", assertion.as_str()),
        ];
        let response = http
            .post(token_url)
            .form(&form)
            .send()
            .await
            .map_err(|e| AppError::Upstream(format!("backend token request failed: {e}")))?;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let Some(token) = body["access_token"].as_str().filter(|_| status == 200) else {
            return Err(AppError::Upstream(format!(
                "the EHR refused the backend token request ({status}): {}",
                body["error_description"]
                    .as_str()
                    .unwrap_or("no description")
            )));
        };
        let lifetime = body["expires_in"]
            .as_u64()
            .unwrap_or(300)
            .saturating_sub(30);
        *cached = Some((
            token.to_string(),
            Instant::now() + Duration::from_secs(lifetime),
        ));
        Ok(token.to_string())
    }

    /// Forgets the cached token (after the EHR refused it).
    pub(crate) async fn forget(&self) {
        *self.cached.lock().await = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_made_once_and_signs_es384_assertions() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = public_jwks(dir.path()).expect("generate");
        let second = public_jwks(dir.path()).expect("load");
        assert_eq!(first, second, "the key is kept");
        let jwks: Value = serde_json::from_str(&first).expect("json");
        let jwk = &jwks["keys"][0];
        assert_eq!(jwk["crv"], "P-384");
        assert!(jwk.get("d").is_none(), "no private part");
        let key = BackendKey::load_or_generate(&default_key_path(dir.path())).expect("load");
        let assertion = key.assertion("app", "http://ehr/token").expect("sign");
        let header = jsonwebtoken::decode_header(&assertion).expect("header");
        assert_eq!(header.alg, Algorithm::ES384);
        assert_eq!(header.kid.as_deref(), jwk["kid"].as_str());
        let parsed: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone()).expect("jwk");
        let decoding = jsonwebtoken::DecodingKey::from_jwk(&parsed).expect("decoding key");
        let mut validation = jsonwebtoken::Validation::new(Algorithm::ES384);
        validation.set_audience(&["http://ehr/token"]);
        let data =
            jsonwebtoken::decode::<Value>(&assertion, &decoding, &validation).expect("verifies");
        assert_eq!(data.claims["iss"], "app");
        assert_eq!(data.claims["sub"], "app");
        let exp = data.claims["exp"].as_i64().unwrap_or(0);
        let iat = data.claims["iat"].as_i64().unwrap_or(0);
        assert!(exp - iat <= 300);
    }
}
