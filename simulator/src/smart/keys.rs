//! An environment's signing keys, and the key pairs of the built-in test clients.
//!
//! [`SigningKeys`] holds two keys: ES256 (P-256) for access tokens, because ECDSA signs fast, and
//! RSA-2048 for id tokens (RS256, what OpenID Connect and Inferno expect). Each key's `kid` is
//! its RFC 7638 JWK thumbprint. Rotation keeps old keys in the JWKS, and able to verify, until
//! the tokens they signed have expired.
//!
//! Persisted layout under a state directory (PKCS#8 PEM, mode 0600 on unix):
//!
//! ```text
//! access-es256.pem          current access-token key
//! id-rs256.pem              current id-token key
//! retired/index.json        {"keys":[{"kind":"access","kid":"…","alg":"ES256","until":1795428000}]}
//! retired/<kid>.pem         one file per retired key named in the index
//! ```
//!
//! [`ClientKey`] is a client's RS384 or ES384 key pair, for the clients fhirdrill registers by
//! default so users can try SMART Backend Services: it gives the public JWK to register, the
//! private JWK (RFC 7517/7518) to hand out, and signs client assertions. The private JWK needs
//! the key's private numbers, which rcgen does not expose, so a small DER reader ([`der`]) takes
//! them out of the PKCS#8 document.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::jwt::{self, JwtError, shown};

/// File name of the current access-token key in a state directory.
pub const ACCESS_KEY_FILE: &str = "access-es256.pem";
/// File name of the current id-token key in a state directory.
pub const ID_KEY_FILE: &str = "id-rs256.pem";
/// Sub-directory of a state directory holding retired keys and their index.
pub const RETIRED_DIR: &str = "retired";
/// File name of the retired-key index inside [`RETIRED_DIR`].
pub const RETIRED_INDEX: &str = "index.json";

/// Why a key could not be made, read, written or used to sign.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The crypto library could not generate a key.
    #[error("failed to generate a {alg} key: {reason}")]
    Generate {
        /// The algorithm the key was for.
        alg: &'static str,
        /// The library's reason.
        reason: String,
    },
    /// A PEM document is not a usable PKCS#8 private key of the expected type.
    #[error("{origin}: not a usable {alg} private key in PKCS#8 PEM ({reason})")]
    InvalidKey {
        /// The file it came from, or "key" when given in memory.
        origin: String,
        /// The algorithm the key must serve.
        alg: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Reading or writing a key file failed.
    #[error("failed to {action} {path}: {source}")]
    Io {
        /// What was being done ("read", "write", "create directory", …).
        action: &'static str,
        /// The path.
        path: String,
        /// The I/O error.
        source: io::Error,
    },
    /// The retired-key index is unreadable or names a key that is not there.
    #[error("{path}: retired key index is invalid ({reason})")]
    BadIndex {
        /// The index path.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The claims handed to a signing method are not a JSON object.
    #[error("claims to sign must be a JSON object")]
    ClaimsNotObject,
    /// Signing failed.
    #[error("failed to sign a token with key {kid}: {reason}")]
    Sign {
        /// The key id.
        kid: String,
        /// The library's reason.
        reason: String,
    },
}

impl KeyError {
    fn io(action: &'static str, path: &Path, source: io::Error) -> Self {
        Self::Io {
            action,
            path: path.display().to_string(),
            source,
        }
    }
}

/// The key types this module makes: the environment's two, and the two client kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeySpec {
    Es256,
    Rs256,
    Es384,
    Rs384,
}

impl KeySpec {
    fn name(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Rs256 => "RS256",
            Self::Es384 => "ES384",
            Self::Rs384 => "RS384",
        }
    }

    fn algorithm(self) -> Algorithm {
        match self {
            Self::Es256 => Algorithm::ES256,
            Self::Rs256 => Algorithm::RS256,
            Self::Es384 => Algorithm::ES384,
            Self::Rs384 => Algorithm::RS384,
        }
    }

    fn rcgen(self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            Self::Es256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            Self::Rs256 => &rcgen::PKCS_RSA_SHA256,
            Self::Es384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            Self::Rs384 => &rcgen::PKCS_RSA_SHA384,
        }
    }

    /// The JWK curve name and coordinate length in bytes, for EC keys.
    fn curve(self) -> Option<(&'static str, usize)> {
        match self {
            Self::Es256 => Some(("P-256", 32)),
            Self::Es384 => Some(("P-384", 48)),
            Self::Rs256 | Self::Rs384 => None,
        }
    }
}

/// The smallest RSA modulus accepted, in bytes (2048 bits).
const MIN_RSA_MODULUS_BYTES: usize = 256;

/// A public key's JWK parameters, as unsigned big-endian bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PublicParams {
    Ec {
        crv: &'static str,
        x: Vec<u8>,
        y: Vec<u8>,
    },
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
}

impl PublicParams {
    /// From rcgen's raw public key: the uncompressed point `04‖x‖y` for EC, a PKCS#1
    /// `RSAPublicKey` for RSA.
    fn from_raw(spec: KeySpec, raw: &[u8]) -> Result<Self, String> {
        match spec.curve() {
            Some((crv, len)) => match raw {
                [4, point @ ..] if point.len() == 2 * len => {
                    let (x, y) = point.split_at(len);
                    Ok(Self::Ec {
                        crv,
                        x: x.to_vec(),
                        y: y.to_vec(),
                    })
                }
                _ => Err(format!("the public key is not an uncompressed {crv} point")),
            },
            None => {
                let (n, e) = der::rsa_public_key(raw)?;
                if n.len() < MIN_RSA_MODULUS_BYTES {
                    return Err(format!(
                        "the RSA modulus has {} bits, under 2048",
                        n.len() * 8
                    ));
                }
                Ok(Self::Rsa {
                    n: n.to_vec(),
                    e: e.to_vec(),
                })
            }
        }
    }

    fn kty(&self) -> &'static str {
        match self {
            Self::Ec { .. } => "EC",
            Self::Rsa { .. } => "RSA",
        }
    }

    /// The key-type members of the JWK, in RFC 7518 order.
    fn members(&self) -> Vec<(&'static str, String)> {
        match self {
            Self::Ec { crv, x, y } => {
                vec![("crv", (*crv).to_string()), ("x", b64(x)), ("y", b64(y))]
            }
            Self::Rsa { n, e } => vec![("n", b64(n)), ("e", b64(e))],
        }
    }

    /// The RFC 7638 thumbprint: base64url SHA-256 of the required members, sorted, no spaces.
    fn thumbprint(&self) -> String {
        let canonical = match self {
            Self::Ec { crv, x, y } => format!(
                r#"{{"crv":"{crv}","kty":"EC","x":"{}","y":"{}"}}"#,
                b64(x),
                b64(y)
            ),
            Self::Rsa { n, e } => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, b64(e), b64(n)),
        };
        b64(Sha256::digest(canonical.as_bytes()))
    }

    fn decoding_key(&self) -> DecodingKey {
        match self {
            Self::Ec { x, y, .. } => {
                let mut point = Vec::with_capacity(1 + x.len() + y.len());
                point.push(4);
                point.extend_from_slice(x);
                point.extend_from_slice(y);
                DecodingKey::from_ec_der(&point)
            }
            Self::Rsa { n, e } => DecodingKey::from_rsa_raw_components(n, e),
        }
    }
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// One key pair with everything derived from it.
#[derive(Clone)]
struct KeyMaterial {
    spec: KeySpec,
    kid: String,
    pem: String,
    pkcs8: Vec<u8>,
    public: PublicParams,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl KeyMaterial {
    fn generate(spec: KeySpec) -> Result<Self, KeyError> {
        let pair = rcgen::KeyPair::generate_for(spec.rcgen()).map_err(|e| KeyError::Generate {
            alg: spec.name(),
            reason: e.to_string(),
        })?;
        Self::from_key_pair(spec, &pair, "generated key")
    }

    fn from_pem(spec: KeySpec, pem: &str, origin: &str) -> Result<Self, KeyError> {
        let pair = rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(pem, spec.rcgen())
            .map_err(|e| invalid_key(origin, spec, e.to_string()))?;
        Self::from_key_pair(spec, &pair, origin)
    }

    fn from_key_pair(spec: KeySpec, pair: &rcgen::KeyPair, origin: &str) -> Result<Self, KeyError> {
        let public = PublicParams::from_raw(spec, pair.public_key_raw())
            .map_err(|reason| invalid_key(origin, spec, reason))?;
        let pem = pair.serialize_pem();
        let encoding = match public {
            PublicParams::Ec { .. } => EncodingKey::from_ec_pem(pem.as_bytes()),
            PublicParams::Rsa { .. } => EncodingKey::from_rsa_pem(pem.as_bytes()),
        }
        .map_err(|e| invalid_key(origin, spec, e.to_string()))?;
        Ok(Self {
            spec,
            kid: public.thumbprint(),
            pem,
            pkcs8: pair.serialize_der(),
            decoding: public.decoding_key(),
            public,
            encoding,
        })
    }

    /// Loads the key at `path`, or generates one and writes it there when the file is absent.
    fn load_or_create(path: &Path, spec: KeySpec) -> Result<Self, KeyError> {
        match fs::read_to_string(path) {
            Ok(pem) => Self::from_pem(spec, &pem, &path.display().to_string()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let key = Self::generate(spec)?;
                write_private(path, key.pem.as_bytes())?;
                Ok(key)
            }
            Err(e) => Err(KeyError::io("read", path, e)),
        }
    }

    /// The public JWK: `kty`, `kid`, `use`, `alg`, then the key-type members.
    fn public_jwk(&self) -> Map<String, Value> {
        let mut jwk = Map::new();
        jwk.insert("kty".into(), self.public.kty().into());
        jwk.insert("kid".into(), self.kid.clone().into());
        jwk.insert("use".into(), "sig".into());
        jwk.insert("alg".into(), self.spec.name().into());
        for (name, value) in self.public.members() {
            jwk.insert(name.into(), value.into());
        }
        jwk
    }

    fn sign(&self, typ: &str, claims: &Value) -> Result<String, KeyError> {
        if !claims.is_object() {
            return Err(KeyError::ClaimsNotObject);
        }
        let mut header = Header::new(self.spec.algorithm());
        header.typ = Some(typ.to_string());
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).map_err(|e| KeyError::Sign {
            kid: self.kid.clone(),
            reason: e.to_string(),
        })
    }
}

fn invalid_key(origin: &str, spec: KeySpec, reason: String) -> KeyError {
    KeyError::InvalidKey {
        origin: origin.to_string(),
        alg: spec.name(),
        reason,
    }
}

/// What a token of ours is for; each kind has its own key and `typ`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    /// An access token (ES256, `typ: at+jwt`, RFC 9068).
    Access,
    /// An OpenID Connect id token (RS256, `typ: JWT`).
    Id,
}

impl TokenKind {
    /// The `typ` header tokens of this kind carry.
    pub fn typ(self) -> &'static str {
        match self {
            Self::Access => "at+jwt",
            Self::Id => "JWT",
        }
    }

    fn spec(self) -> KeySpec {
        match self {
            Self::Access => KeySpec::Es256,
            Self::Id => KeySpec::Rs256,
        }
    }

    fn described(self) -> &'static str {
        match self {
            Self::Access => "an access token",
            Self::Id => "an id token",
        }
    }

    /// Whether `typ` is acceptable for this kind (case-insensitive; RFC 9068 also allows the
    /// `application/` prefix for access tokens).
    fn accepts_typ(self, typ: &str) -> bool {
        let typ = typ.to_ascii_lowercase();
        match self {
            Self::Access => typ == "at+jwt" || typ == "application/at+jwt",
            Self::Id => typ == "jwt",
        }
    }
}

/// A key taken out of service, kept verifiable until `until` (unix seconds).
#[derive(Clone)]
struct RetiredKey {
    kind: TokenKind,
    key: KeyMaterial,
    until: i64,
}

/// One line of `retired/index.json`.
#[derive(Debug, Serialize, Deserialize)]
struct RetiredEntry {
    kind: TokenKind,
    kid: String,
    alg: String,
    until: i64,
}

/// The whole of `retired/index.json`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct RetiredIndex {
    keys: Vec<RetiredEntry>,
}

/// An environment's signing keys: the current access-token and id-token keys, plus retired
/// ones that still verify (and stay in the JWKS) until their tokens have expired.
///
/// Mutation ([`rotate`](Self::rotate), [`prune`](Self::prune)) takes `&mut self`: the
/// environment holds the keys behind its own lock. Rotation generates an RSA key (tens of
/// milliseconds), so a server should rotate a clone outside the lock and swap it in.
#[derive(Clone)]
pub struct SigningKeys {
    access: KeyMaterial,
    id: KeyMaterial,
    retired: Vec<RetiredKey>,
    dir: Option<PathBuf>,
}

impl fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let retired: Vec<&str> = self.retired.iter().map(|r| r.key.kid.as_str()).collect();
        f.debug_struct("SigningKeys")
            .field("access_kid", &self.access.kid)
            .field("id_kid", &self.id.kid)
            .field("retired_kids", &retired)
            .field("dir", &self.dir)
            .finish()
    }
}

impl SigningKeys {
    /// Fresh keys, kept in memory only.
    pub fn generate() -> Result<Self, KeyError> {
        Ok(Self {
            access: KeyMaterial::generate(KeySpec::Es256)?,
            id: KeyMaterial::generate(KeySpec::Rs256)?,
            retired: Vec::new(),
            dir: None,
        })
    }

    /// The keys persisted in `dir` (see the module docs for the layout), generating and writing
    /// any that are missing. The directory is created (mode 0700) if absent. Later rotations and
    /// prunes are written back there.
    pub fn load_or_generate(dir: &Path) -> Result<Self, KeyError> {
        create_private_dir(dir)?;
        let access = KeyMaterial::load_or_create(&dir.join(ACCESS_KEY_FILE), KeySpec::Es256)?;
        let id = KeyMaterial::load_or_create(&dir.join(ID_KEY_FILE), KeySpec::Rs256)?;
        let mut retired = load_retired(&dir.join(RETIRED_DIR))?;
        // A crash between writing the index and the new current key leaves a key in both.
        retired.retain(|r| r.key.kid != access.kid && r.key.kid != id.kid);
        Ok(Self {
            access,
            id,
            retired,
            dir: Some(dir.to_path_buf()),
        })
    }

    /// The `kid` of the current access-token key.
    pub fn access_kid(&self) -> &str {
        &self.access.kid
    }

    /// The `kid` of the current id-token key.
    pub fn id_kid(&self) -> &str {
        &self.id.kid
    }

    /// Signs `claims` (a JSON object) as an access token: ES256, header `kid` and `typ: at+jwt`.
    pub fn sign_access_token(&self, claims: &Value) -> Result<String, KeyError> {
        self.access.sign(TokenKind::Access.typ(), claims)
    }

    /// Signs `claims` (a JSON object) as an id token: RS256, header `kid` and `typ: JWT`.
    pub fn sign_id_token(&self, claims: &Value) -> Result<String, KeyError> {
        self.id.sign(TokenKind::Id.typ(), claims)
    }

    /// Verifies a token of ours, of either kind, and returns its claims. See
    /// [`verify_access_token`](Self::verify_access_token) for the rules.
    pub fn verify(
        &self,
        token: &str,
        issuer: &str,
        audience: &str,
        now_unix: i64,
    ) -> Result<Value, JwtError> {
        self.verify_as(
            token,
            None,
            &Expected {
                issuer,
                audience,
                now_unix,
            },
        )
    }

    /// Verifies an access token of ours and returns its claims. The `kid` must name a current or
    /// retired access-token key; the algorithm is that key's own (the header's `alg` must agree);
    /// `crit`, `jku`, `jwk`, `x5u` and `x5c` headers are refused; `typ` must be `at+jwt`; `iss`
    /// must be `issuer`, `aud` must be or contain `audience`; `exp` and `iat` are required and,
    /// like `nbf`, checked against `now_unix` (the simulated clock) with no leeway.
    pub fn verify_access_token(
        &self,
        token: &str,
        issuer: &str,
        audience: &str,
        now_unix: i64,
    ) -> Result<Value, JwtError> {
        let expected = Expected {
            issuer,
            audience,
            now_unix,
        };
        self.verify_as(token, Some(TokenKind::Access), &expected)
    }

    /// Verifies an id token of ours (e.g. an `id_token_hint`) and returns its claims; `audience`
    /// is the client id. Same rules as access tokens, with `typ: JWT` and the id-token keys.
    pub fn verify_id_token(
        &self,
        token: &str,
        issuer: &str,
        audience: &str,
        now_unix: i64,
    ) -> Result<Value, JwtError> {
        let expected = Expected {
            issuer,
            audience,
            now_unix,
        };
        self.verify_as(token, Some(TokenKind::Id), &expected)
    }

    fn verify_as(
        &self,
        token: &str,
        want: Option<TokenKind>,
        expected: &Expected<'_>,
    ) -> Result<Value, JwtError> {
        let parsed = jwt::parse_compact(token, jwt::MAX_TOKEN_LEN)?;
        let (kind, key) = self.key_for_header(&parsed.header)?;
        if let Some(want) = want
            && want != kind
        {
            return Err(JwtError::WrongKind {
                found: kind.described(),
                expected: want.described(),
            });
        }
        verify_signature(token, key, &parsed.claims, expected)?;
        check_claims(&parsed.claims, expected)?;
        Ok(Value::Object(parsed.claims))
    }

    /// Applies the header rules and finds the key the header names.
    fn key_for_header(
        &self,
        header: &Map<String, Value>,
    ) -> Result<(TokenKind, &KeyMaterial), JwtError> {
        if let Some(name) = jwt::first_present(header, &jwt::FORBIDDEN_HEADERS) {
            return Err(JwtError::ForbiddenHeader { name });
        }
        let alg = jwt::required_string(header, "alg").map_err(JwtError::from_header_field)?;
        let kid = jwt::required_string(header, "kid").map_err(JwtError::from_header_field)?;
        let (kind, key) = self
            .find(kid)
            .ok_or_else(|| JwtError::UnknownKeyId { kid: shown(kid) })?;
        if alg != key.spec.name() {
            return Err(JwtError::AlgorithmMismatch {
                alg: shown(alg),
                kid: shown(kid),
                expected: key.spec.name(),
            });
        }
        let typ = jwt::string_field(header, "typ").map_err(JwtError::from_header_field)?;
        if !typ.is_some_and(|typ| kind.accepts_typ(typ)) {
            return Err(JwtError::WrongType {
                typ: typ.map_or_else(|| "(none)".to_string(), shown),
                expected: kind.typ(),
            });
        }
        Ok((kind, key))
    }

    fn find(&self, kid: &str) -> Option<(TokenKind, &KeyMaterial)> {
        let current = [(TokenKind::Access, &self.access), (TokenKind::Id, &self.id)];
        let retired = self.retired.iter().map(|r| (r.kind, &r.key));
        current
            .into_iter()
            .chain(retired)
            .find(|(_, key)| key.kid == kid)
    }

    /// Replaces both keys with new ones. The old keys stay in the JWKS and keep verifying for
    /// `retire_for_secs` (pass the longest token lifetime), then [`prune`](Self::prune) drops
    /// them; retired keys already past their time are pruned here. Persisted when loaded from a
    /// directory: the old keys are written to `retired/` before the new ones replace them.
    pub fn rotate(&mut self, now_unix: i64, retire_for_secs: i64) -> Result<(), KeyError> {
        let access = KeyMaterial::generate(TokenKind::Access.spec())?;
        let id = KeyMaterial::generate(TokenKind::Id.spec())?;
        let until = now_unix.saturating_add(retire_for_secs.max(0));
        let old_access = std::mem::replace(&mut self.access, access);
        let old_id = std::mem::replace(&mut self.id, id);
        self.retired.retain(|r| r.until > now_unix);
        self.retired.push(RetiredKey {
            kind: TokenKind::Access,
            key: old_access,
            until,
        });
        self.retired.push(RetiredKey {
            kind: TokenKind::Id,
            key: old_id,
            until,
        });
        self.persist()
    }

    /// Drops retired keys whose time has come (`until <= now_unix`) and returns how many were
    /// dropped. Until then a retired key verifies, whatever the clock says: the tokens it signed
    /// carry their own `exp`.
    pub fn prune(&mut self, now_unix: i64) -> Result<usize, KeyError> {
        let before = self.retired.len();
        self.retired.retain(|r| r.until > now_unix);
        let dropped = before - self.retired.len();
        if dropped > 0 {
            self.persist()?;
        }
        Ok(dropped)
    }

    /// The JWKS to publish: `{"keys":[…]}` with the current and retired public keys, each with
    /// `kty`, `kid`, `use: sig`, `alg` and its public parameters.
    pub fn jwks(&self) -> Value {
        let current = [&self.access, &self.id];
        let retired = self.retired.iter().map(|r| &r.key);
        let keys: Vec<Value> = current
            .into_iter()
            .chain(retired)
            .map(|key| Value::Object(key.public_jwk()))
            .collect();
        serde_json::json!({ "keys": keys })
    }

    /// Writes the keys to the directory they were loaded from, if any.
    fn persist(&self) -> Result<(), KeyError> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        let retired_dir = dir.join(RETIRED_DIR);
        create_private_dir(&retired_dir)?;
        for retired in &self.retired {
            let path = retired_dir.join(format!("{}.pem", retired.key.kid));
            if !path.exists() {
                write_private(&path, retired.key.pem.as_bytes())?;
            }
        }
        write_private(&retired_dir.join(RETIRED_INDEX), &self.retired_index()?)?;
        write_private(&dir.join(ACCESS_KEY_FILE), self.access.pem.as_bytes())?;
        write_private(&dir.join(ID_KEY_FILE), self.id.pem.as_bytes())?;
        remove_unlisted_pems(&retired_dir, &self.retired)
    }

    fn retired_index(&self) -> Result<Vec<u8>, KeyError> {
        let keys = self
            .retired
            .iter()
            .map(|r| RetiredEntry {
                kind: r.kind,
                kid: r.key.kid.clone(),
                alg: r.key.spec.name().to_string(),
                until: r.until,
            })
            .collect();
        serde_json::to_vec_pretty(&RetiredIndex { keys }).map_err(|e| KeyError::BadIndex {
            path: RETIRED_INDEX.to_string(),
            reason: e.to_string(),
        })
    }
}

/// What a verified token must say, and when "now" is.
struct Expected<'a> {
    issuer: &'a str,
    audience: &'a str,
    now_unix: i64,
}

/// Checks the signature with jsonwebtoken, under a `Validation` pinned to the key's algorithm
/// that also requires and checks `iss` and `aud`. Its time checks read the system clock, so they
/// are off here: [`check_claims`] does them against the simulated clock.
fn verify_signature(
    token: &str,
    key: &KeyMaterial,
    claims: &Map<String, Value>,
    expected: &Expected<'_>,
) -> Result<(), JwtError> {
    let mut validation = Validation::new(key.spec.algorithm());
    validation.leeway = 0;
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    validation.set_issuer(&[expected.issuer]);
    validation.set_audience(&[expected.audience]);
    match jsonwebtoken::decode::<Value>(token, &key.decoding, &validation) {
        Ok(_) => Ok(()),
        Err(e) => Err(explain_rejection(&e, claims, expected)),
    }
}

/// Turns a jsonwebtoken error into ours, naming the exact claim when it was a claim check.
fn explain_rejection(
    e: &jsonwebtoken::errors::Error,
    claims: &Map<String, Value>,
    expected: &Expected<'_>,
) -> JwtError {
    match e.kind() {
        ErrorKind::InvalidSignature => JwtError::BadSignature,
        ErrorKind::InvalidIssuer
        | ErrorKind::InvalidAudience
        | ErrorKind::MissingRequiredClaim(_)
        | ErrorKind::InvalidClaimFormat(_) => check_claims(claims, expected)
            .err()
            .unwrap_or_else(|| JwtError::Rejected(e.to_string())),
        _ => JwtError::Rejected(e.to_string()),
    }
}

/// The claim rules for tokens we issued: `iss`, `aud`, `exp` and `iat` required; `exp`, `nbf`
/// and `iat` against the simulated clock with no leeway.
fn check_claims(claims: &Map<String, Value>, expected: &Expected<'_>) -> Result<(), JwtError> {
    let field = JwtError::from_claim_field;
    let iss = jwt::required_string(claims, "iss").map_err(field)?;
    if iss != expected.issuer {
        return Err(JwtError::WrongIssuer {
            found: shown(iss),
            expected: shown(expected.issuer),
        });
    }
    let audiences = jwt::audiences(claims).map_err(field)?;
    if !audiences.contains(&expected.audience) {
        return Err(JwtError::WrongAudience {
            found: shown_list(&audiences),
            expected: shown(expected.audience),
        });
    }
    let now = expected.now_unix;
    let exp = jwt::required_date(claims, "exp").map_err(field)?;
    if now >= exp {
        return Err(JwtError::Expired {
            at: jwt::format_instant(exp),
        });
    }
    if let Some(nbf) = jwt::numeric_date(claims, "nbf").map_err(field)?
        && now < nbf
    {
        return Err(JwtError::NotYetValid {
            at: jwt::format_instant(nbf),
        });
    }
    let iat = jwt::required_date(claims, "iat").map_err(field)?;
    if iat > now {
        return Err(JwtError::IssuedInFuture {
            at: jwt::format_instant(iat),
        });
    }
    Ok(())
}

/// A list of audiences for a message: one shown value, or `[a, b]`.
fn shown_list(values: &[&str]) -> String {
    match values {
        [one] => shown(one),
        many => {
            let items: Vec<String> = many.iter().take(4).map(|v| shown(v)).collect();
            let more = if many.len() > 4 { ", …" } else { "" };
            format!("[{}{more}]", items.join(", "))
        }
    }
}

fn load_retired(retired_dir: &Path) -> Result<Vec<RetiredKey>, KeyError> {
    let index_path = retired_dir.join(RETIRED_INDEX);
    let text = match fs::read_to_string(&index_path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(KeyError::io("read", &index_path, e)),
    };
    let bad = |reason: String| KeyError::BadIndex {
        path: index_path.display().to_string(),
        reason,
    };
    let index: RetiredIndex = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    index
        .keys
        .into_iter()
        .map(|entry| load_retired_key(retired_dir, entry).map_err(&bad))
        .collect()
}

fn load_retired_key(retired_dir: &Path, entry: RetiredEntry) -> Result<RetiredKey, String> {
    let spec = entry.kind.spec();
    if entry.alg != spec.name() {
        return Err(format!(
            "key {} is {}, not {}",
            entry.kid,
            entry.alg,
            spec.name()
        ));
    }
    // The kid names the file: keep it to the base64url alphabet so it cannot leave the folder.
    let safe = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if entry.kid.is_empty() || !entry.kid.chars().all(safe) {
        return Err(format!("kid {} is not base64url", shown(&entry.kid)));
    }
    let path = retired_dir.join(format!("{}.pem", entry.kid));
    let pem = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let key = KeyMaterial::from_pem(spec, &pem, &path.display().to_string())
        .map_err(|e| e.to_string())?;
    if key.kid != entry.kid {
        return Err(format!(
            "{} holds key {}, not {}",
            path.display(),
            key.kid,
            entry.kid
        ));
    }
    Ok(RetiredKey {
        kind: entry.kind,
        key,
        until: entry.until,
    })
}

/// Deletes `retired/*.pem` files of keys no longer retired (pruned).
fn remove_unlisted_pems(retired_dir: &Path, retired: &[RetiredKey]) -> Result<(), KeyError> {
    let entries = fs::read_dir(retired_dir).map_err(|e| KeyError::io("list", retired_dir, e))?;
    for entry in entries {
        let path = entry
            .map_err(|e| KeyError::io("list", retired_dir, e))?
            .path();
        let is_pem = path.extension().is_some_and(|ext| ext == "pem");
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        if is_pem && !retired.iter().any(|r| r.key.kid == stem) {
            fs::remove_file(&path).map_err(|e| KeyError::io("remove", &path, e))?;
        }
    }
    Ok(())
}

/// Creates `dir` (and parents) if absent, mode 0700 on unix. An existing directory is left as
/// it is.
fn create_private_dir(dir: &Path) -> Result<(), KeyError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| KeyError::io("create directory", dir, e))
}

/// Writes `contents` to `path` atomically (a temporary file, synced, then renamed), readable by
/// the owner only on unix.
fn write_private(path: &Path, contents: &[u8]) -> Result<(), KeyError> {
    let tmp = path.with_extension("tmp");
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(KeyError::io("remove", &tmp, e)),
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&tmp)
        .map_err(|e| KeyError::io("create", &tmp, e))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|e| KeyError::io("write", &tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| KeyError::io("rename into", path, e))
}

/// The algorithm of a built-in test client's key: the two SMART Backend Services requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-384, RSA-2048.
    Rs384,
    /// ECDSA P-384 with SHA-384.
    Es384,
}

impl ClientAlg {
    /// The JOSE name: `RS384` or `ES384`.
    pub fn name(self) -> &'static str {
        self.spec().name()
    }

    /// The algorithm named by a JOSE `alg` value, if it is one of the two.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "RS384" => Some(Self::Rs384),
            "ES384" => Some(Self::Es384),
            _ => None,
        }
    }

    /// The jsonwebtoken algorithm.
    pub fn algorithm(self) -> Algorithm {
        self.spec().algorithm()
    }

    /// The JWK `kty` of keys for this algorithm: `RSA` or `EC`.
    pub fn kty(self) -> &'static str {
        match self {
            Self::Rs384 => "RSA",
            Self::Es384 => "EC",
        }
    }

    fn spec(self) -> KeySpec {
        match self {
            Self::Rs384 => KeySpec::Rs384,
            Self::Es384 => KeySpec::Es384,
        }
    }
}

impl fmt::Display for ClientAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A test client's key pair (RS384 or ES384) with its public and private JWKs.
#[derive(Clone)]
pub struct ClientKey {
    alg: ClientAlg,
    key: KeyMaterial,
    private_jwk: Map<String, Value>,
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientKey")
            .field("alg", &self.alg)
            .field("kid", &self.key.kid)
            .finish_non_exhaustive()
    }
}

impl ClientKey {
    /// A new key pair: RSA-2048 for RS384, P-384 for ES384.
    pub fn generate(alg: ClientAlg) -> Result<Self, KeyError> {
        Self::from_material(alg, KeyMaterial::generate(alg.spec())?, "generated key")
    }

    /// The key in a PKCS#8 PEM document, which must suit `alg`.
    pub fn from_pem(alg: ClientAlg, pem: &str) -> Result<Self, KeyError> {
        Self::from_material(alg, KeyMaterial::from_pem(alg.spec(), pem, "key")?, "key")
    }

    /// The key at `path` (PKCS#8 PEM), or a new one written there (mode 0600 on unix, parent
    /// directories created) when the file is absent.
    pub fn load_or_generate(path: &Path, alg: ClientAlg) -> Result<Self, KeyError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            create_private_dir(parent)?;
        }
        let key = KeyMaterial::load_or_create(path, alg.spec())?;
        Self::from_material(alg, key, &path.display().to_string())
    }

    fn from_material(alg: ClientAlg, key: KeyMaterial, origin: &str) -> Result<Self, KeyError> {
        let private_jwk =
            private_jwk(&key).map_err(|reason| invalid_key(origin, alg.spec(), reason))?;
        Ok(Self {
            alg,
            key,
            private_jwk,
        })
    }

    /// The key's algorithm.
    pub fn alg(&self) -> ClientAlg {
        self.alg
    }

    /// The key id: the RFC 7638 thumbprint of the public key.
    pub fn kid(&self) -> &str {
        &self.key.kid
    }

    /// The public JWK to register: `kty`, `kid`, `use: sig`, `alg`, and `n`/`e` or `crv`/`x`/`y`.
    pub fn public_jwk(&self) -> Value {
        Value::Object(self.key.public_jwk())
    }

    /// A JWKS holding only the public key: `{"keys":[public_jwk]}`.
    pub fn public_jwks(&self) -> Value {
        serde_json::json!({ "keys": [self.public_jwk()] })
    }

    /// The private JWK (RFC 7517/7518): the public JWK plus `d`, `p`, `q`, `dp`, `dq`, `qi`
    /// for RSA, or `d` for EC. Test-only credentials: never for a real system.
    pub fn private_jwk(&self) -> Value {
        Value::Object(self.private_jwk.clone())
    }

    /// The private key as PKCS#8 PEM.
    pub fn private_key_pem(&self) -> &str {
        &self.key.pem
    }

    /// Signs `claims` (a JSON object) as a client assertion: header `alg`, `kid`, `typ: JWT`.
    pub fn sign_assertion(&self, claims: &Value) -> Result<String, KeyError> {
        self.key.sign("JWT", claims)
    }
}

/// The private JWK of `key`, from the private numbers in its PKCS#8 document.
fn private_jwk(key: &KeyMaterial) -> Result<Map<String, Value>, String> {
    let mut jwk = key.public_jwk();
    let inner = der::pkcs8_private_key(&key.pkcs8)?;
    let private_members = match &key.public {
        PublicParams::Rsa { n, e } => rsa_private_members(inner, n, e)?,
        PublicParams::Ec { x, y, .. } => ec_private_members(inner, x, y)?,
    };
    for (name, value) in private_members {
        jwk.insert(name.into(), b64(value).into());
    }
    Ok(jwk)
}

fn rsa_private_members(
    der_key: &[u8],
    n: &[u8],
    e: &[u8],
) -> Result<Vec<(&'static str, Vec<u8>)>, String> {
    let rsa = der::rsa_private_key(der_key)?;
    if rsa.n != n || rsa.e != e {
        return Err("the private key does not match its public key".into());
    }
    Ok(vec![
        ("d", rsa.d.to_vec()),
        ("p", rsa.p.to_vec()),
        ("q", rsa.q.to_vec()),
        ("dp", rsa.dp.to_vec()),
        ("dq", rsa.dq.to_vec()),
        ("qi", rsa.qi.to_vec()),
    ])
}

fn ec_private_members(
    der_key: &[u8],
    x: &[u8],
    y: &[u8],
) -> Result<Vec<(&'static str, Vec<u8>)>, String> {
    let (d, point) = der::ec_private_key(der_key)?;
    if let Some(point) = point {
        let matches = point.len() == 1 + x.len() + y.len()
            && point[0] == 4
            && &point[1..=x.len()] == x
            && &point[1 + x.len()..] == y;
        if !matches {
            return Err("the private key does not match its public key".into());
        }
    }
    // RFC 7518 §6.2.2.1: `d` has the full length of a coordinate.
    let d = left_pad(der::strip_leading_zeros(d), x.len())?;
    Ok(vec![("d", d)])
}

fn left_pad(value: &[u8], len: usize) -> Result<Vec<u8>, String> {
    if value.len() > len {
        return Err(format!(
            "a {}-byte value does not fit {len} bytes",
            value.len()
        ));
    }
    let mut padded = vec![0; len - value.len()];
    padded.extend_from_slice(value);
    Ok(padded)
}

/// Just enough DER to read PKCS#8, PKCS#1 `RSAPrivateKey`/`RSAPublicKey` and SEC1
/// `ECPrivateKey`: definite lengths, single-byte tags. Integers come back unsigned with their
/// leading zero bytes stripped (at least one byte stays), as JWK Base64urlUInt wants.
mod der {
    const INTEGER: u8 = 0x02;
    const BIT_STRING: u8 = 0x03;
    const OCTET_STRING: u8 = 0x04;
    const SEQUENCE: u8 = 0x30;
    const CONTEXT_0: u8 = 0xa0;
    const CONTEXT_1: u8 = 0xa1;

    /// Reads consecutive elements from a byte slice.
    pub(super) struct Reader<'a> {
        rest: &'a [u8],
    }

    impl<'a> Reader<'a> {
        pub(super) fn new(data: &'a [u8]) -> Self {
            Self { rest: data }
        }

        pub(super) fn is_empty(&self) -> bool {
            self.rest.is_empty()
        }

        /// The next element's tag and contents.
        pub(super) fn next_element(&mut self) -> Result<(u8, &'a [u8]), String> {
            let [tag, first, after @ ..] = self.rest else {
                return Err("truncated element".into());
            };
            if tag & 0x1f == 0x1f {
                return Err("multi-byte tags are not supported".into());
            }
            let (len, body) = read_length(*first, after)?;
            if body.len() < len {
                return Err("element longer than its input".into());
            }
            let (value, rest) = body.split_at(len);
            self.rest = rest;
            Ok((*tag, value))
        }

        /// The next element, which must have `tag`; `what` names it in the error.
        pub(super) fn expect(&mut self, tag: u8, what: &str) -> Result<&'a [u8], String> {
            let (found, value) = self.next_element()?;
            if found != tag {
                return Err(format!("expected {what}, found tag 0x{found:02x}"));
            }
            Ok(value)
        }

        /// The next element as a non-negative INTEGER, leading zeros stripped.
        pub(super) fn unsigned(&mut self, what: &str) -> Result<&'a [u8], String> {
            let value = self.expect(INTEGER, what)?;
            match value.first() {
                None => Err(format!("{what} is an empty INTEGER")),
                Some(b) if b & 0x80 != 0 => Err(format!("{what} is negative")),
                Some(_) => Ok(strip_leading_zeros(value)),
            }
        }
    }

    fn read_length(first: u8, after: &[u8]) -> Result<(usize, &[u8]), String> {
        match first {
            short if short < 0x80 => Ok((usize::from(short), after)),
            0x80 => Err("indefinite lengths are not DER".into()),
            long => {
                let count = usize::from(long & 0x7f);
                if count > 4 || after.len() < count {
                    return Err("bad length".into());
                }
                let (bytes, rest) = after.split_at(count);
                let len = bytes
                    .iter()
                    .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
                Ok((len, rest))
            }
        }
    }

    /// `value` without leading zero bytes, keeping one byte for zero itself.
    pub(super) fn strip_leading_zeros(value: &[u8]) -> &[u8] {
        let zeros = value.iter().take_while(|b| **b == 0).count();
        &value[zeros.min(value.len().saturating_sub(1))..]
    }

    /// The contents of the single SEQUENCE that makes up `data`.
    fn sequence<'a>(data: &'a [u8], what: &str) -> Result<Reader<'a>, String> {
        let mut outer = Reader::new(data);
        let body = outer.expect(SEQUENCE, what)?;
        if !outer.is_empty() {
            return Err(format!("trailing bytes after {what}"));
        }
        Ok(Reader::new(body))
    }

    /// PKCS#1 `RSAPublicKey ::= SEQUENCE { modulus, publicExponent }`: `(n, e)`.
    pub(super) fn rsa_public_key(data: &[u8]) -> Result<(&[u8], &[u8]), String> {
        let mut seq = sequence(data, "an RSAPublicKey")?;
        let n = seq.unsigned("the modulus")?;
        let e = seq.unsigned("the public exponent")?;
        Ok((n, e))
    }

    /// PKCS#8 `PrivateKeyInfo`: the contents of its `privateKey` OCTET STRING.
    pub(super) fn pkcs8_private_key(data: &[u8]) -> Result<&[u8], String> {
        let mut seq = sequence(data, "a PKCS#8 PrivateKeyInfo")?;
        seq.unsigned("the PKCS#8 version")?;
        seq.expect(SEQUENCE, "the algorithm identifier")?;
        seq.expect(OCTET_STRING, "the private key")
    }

    /// The numbers of a two-prime PKCS#1 `RSAPrivateKey`.
    #[derive(Debug)]
    pub(super) struct RsaPrivateKey<'a> {
        pub(super) n: &'a [u8],
        pub(super) e: &'a [u8],
        pub(super) d: &'a [u8],
        pub(super) p: &'a [u8],
        pub(super) q: &'a [u8],
        pub(super) dp: &'a [u8],
        pub(super) dq: &'a [u8],
        pub(super) qi: &'a [u8],
    }

    /// PKCS#1 `RSAPrivateKey` (version 0, two primes).
    pub(super) fn rsa_private_key(data: &[u8]) -> Result<RsaPrivateKey<'_>, String> {
        let mut seq = sequence(data, "an RSAPrivateKey")?;
        if seq.unsigned("the RSAPrivateKey version")? != [0] {
            return Err("only two-prime RSA keys (version 0) are supported".into());
        }
        Ok(RsaPrivateKey {
            n: seq.unsigned("n")?,
            e: seq.unsigned("e")?,
            d: seq.unsigned("d")?,
            p: seq.unsigned("p")?,
            q: seq.unsigned("q")?,
            dp: seq.unsigned("dp")?,
            dq: seq.unsigned("dq")?,
            qi: seq.unsigned("qi")?,
        })
    }

    /// SEC1 `ECPrivateKey` (RFC 5915): the private scalar as stored, and the public point
    /// (`04‖x‖y`) when present.
    pub(super) fn ec_private_key(data: &[u8]) -> Result<(&[u8], Option<&[u8]>), String> {
        let mut seq = sequence(data, "an ECPrivateKey")?;
        if seq.unsigned("the ECPrivateKey version")? != [1] {
            return Err("the ECPrivateKey version is not 1".into());
        }
        let d = seq.expect(OCTET_STRING, "the private scalar")?;
        let mut point = None;
        while !seq.is_empty() {
            let (tag, value) = seq.next_element()?;
            match tag {
                CONTEXT_0 => {}
                CONTEXT_1 => point = Some(public_point(value)?),
                other => return Err(format!("unexpected tag 0x{other:02x} in an ECPrivateKey")),
            }
        }
        Ok((d, point))
    }

    /// The `[1] BIT STRING` holding the public point; its first byte counts unused bits (0).
    fn public_point(explicit: &[u8]) -> Result<&[u8], String> {
        let bits = sequence_free_single(explicit, BIT_STRING, "the public key BIT STRING")?;
        match bits {
            [0, point @ ..] => Ok(point),
            _ => Err("the public key BIT STRING has unused bits".into()),
        }
    }

    /// The single element of `data`, which must have `tag`.
    fn sequence_free_single<'a>(data: &'a [u8], tag: u8, what: &str) -> Result<&'a [u8], String> {
        let mut reader = Reader::new(data);
        let value = reader.expect(tag, what)?;
        if !reader.is_empty() {
            return Err(format!("trailing bytes after {what}"));
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use jsonwebtoken::crypto;
    use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
    use serde_json::json;

    use super::*;

    const ISS: &str = "http://127.0.0.1:8080/sandbox/auth";
    const AUD: &str = "http://127.0.0.1:8080/sandbox/fhir";
    /// 2026-11-23T10:00:00Z.
    const NOW: i64 = 1_795_428_000;

    fn keys() -> &'static SigningKeys {
        static KEYS: OnceLock<SigningKeys> = OnceLock::new();
        KEYS.get_or_init(|| SigningKeys::generate().unwrap())
    }

    fn client_key(alg: ClientAlg) -> &'static ClientKey {
        static RS: OnceLock<ClientKey> = OnceLock::new();
        static ES: OnceLock<ClientKey> = OnceLock::new();
        let cell = match alg {
            ClientAlg::Rs384 => &RS,
            ClientAlg::Es384 => &ES,
        };
        cell.get_or_init(|| ClientKey::generate(alg).unwrap())
    }

    fn claims() -> Value {
        json!({"iss": ISS, "aud": AUD, "sub": "u1", "exp": NOW + 300, "iat": NOW - 1})
    }

    fn access_header() -> Value {
        json!({"typ": "at+jwt", "alg": "ES256", "kid": keys().access_kid()})
    }

    /// A token with exactly this header and these claims, signed with `key` under `alg`.
    fn forge(header: &Value, claims: &Value, key: &EncodingKey, alg: Algorithm) -> String {
        let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
        let signature = crypto::sign(input.as_bytes(), key, alg).unwrap();
        format!("{input}.{signature}")
    }

    fn verify(token: &str) -> Result<Value, JwtError> {
        keys().verify(token, ISS, AUD, NOW)
    }

    fn decoded_header(token: &str) -> Value {
        let segment = token.split('.').next().unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).unwrap()).unwrap()
    }

    fn jwk_bytes(jwk: &Value, name: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(jwk[name].as_str().unwrap()).unwrap()
    }

    /// A folder under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            static COUNT: AtomicUsize = AtomicUsize::new(0);
            let n = COUNT.fetch_add(1, Ordering::Relaxed);
            let path =
                std::env::temp_dir().join(format!("fhirdrill-{name}-{}-{n}", std::process::id()));
            let _ = fs::remove_dir_all(&path);
            Self(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn thumbprints_follow_rfc7638() {
        // The example of RFC 7638 section 3.1.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let params = PublicParams::Rsa {
            n: URL_SAFE_NO_PAD.decode(n).unwrap(),
            e: URL_SAFE_NO_PAD.decode("AQAB").unwrap(),
        };
        assert_eq!(
            params.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn the_jwks_is_standard_and_kids_are_thumbprints() {
        let jwks = keys().jwks();
        let published = jwks["keys"].as_array().unwrap();
        assert_eq!(published.len(), 2);
        let access = &published[0];
        let members: Vec<&str> = access
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(members, ["kty", "kid", "use", "alg", "crv", "x", "y"]);
        assert_eq!(
            (
                &access["kty"],
                &access["use"],
                &access["alg"],
                &access["crv"]
            ),
            (
                &json!("EC"),
                &json!("sig"),
                &json!("ES256"),
                &json!("P-256")
            )
        );
        assert_eq!(
            (jwk_bytes(access, "x").len(), jwk_bytes(access, "y").len()),
            (32, 32)
        );
        let id = &published[1];
        let members: Vec<&str> = id.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(members, ["kty", "kid", "use", "alg", "n", "e"]);
        assert_eq!((&id["alg"], &id["e"]), (&json!("RS256"), &json!("AQAB")));
        assert_eq!(jwk_bytes(id, "n").len(), 256);
        for (published, kid) in published.iter().zip([keys().access_kid(), keys().id_kid()]) {
            let jwk: Jwk = serde_json::from_value(published.clone()).unwrap();
            assert_eq!(jwk.thumbprint(ThumbprintHash::SHA256), kid);
            assert_eq!(published["kid"], kid);
        }
    }

    #[test]
    fn access_tokens_round_trip() {
        let token = keys().sign_access_token(&claims()).unwrap();
        assert_eq!(decoded_header(&token), access_header());
        assert_eq!(verify(&token).unwrap(), claims());
        assert_eq!(
            keys().verify_access_token(&token, ISS, AUD, NOW).unwrap(),
            claims()
        );
        assert_eq!(
            keys()
                .verify_id_token(&token, ISS, AUD, NOW)
                .unwrap_err()
                .to_string(),
            "token is an access token, not an id token"
        );
    }

    #[test]
    fn id_tokens_round_trip() {
        let token = keys().sign_id_token(&claims()).unwrap();
        assert_eq!(
            decoded_header(&token),
            json!({"typ": "JWT", "alg": "RS256", "kid": keys().id_kid()})
        );
        assert_eq!(
            keys().verify_id_token(&token, ISS, AUD, NOW).unwrap(),
            claims()
        );
        assert_eq!(
            keys()
                .verify_access_token(&token, ISS, AUD, NOW)
                .unwrap_err(),
            JwtError::WrongKind {
                found: "an id token",
                expected: "an access token"
            }
        );
    }

    #[test]
    fn the_algorithm_is_the_keys_own() {
        let k = keys();
        let (access_kid, id_kid) = (k.access_kid(), k.id_kid());
        let public_pem = |jwk: &Value| jwk.to_string().into_bytes();
        let jwks = k.jwks();
        let cases = [
            // An ES256 token presented as signed by the RS256 key.
            (
                forge(
                    &json!({"typ": "JWT", "alg": "ES256", "kid": id_kid}),
                    &claims(),
                    &k.access.encoding,
                    Algorithm::ES256,
                ),
                "token algorithm \"ES256\" does not match key",
            ),
            // An RS256 token presented as signed by the ES256 key.
            (
                forge(
                    &json!({"typ": "at+jwt", "alg": "RS256", "kid": access_kid}),
                    &claims(),
                    &k.id.encoding,
                    Algorithm::RS256,
                ),
                "token algorithm \"RS256\" does not match key",
            ),
            // HMAC keyed with the public key (key confusion).
            (
                forge(
                    &json!({"typ": "at+jwt", "alg": "HS256", "kid": access_kid}),
                    &claims(),
                    &EncodingKey::from_secret(&public_pem(&jwks["keys"][0])),
                    Algorithm::HS256,
                ),
                "token algorithm \"HS256\" does not match key",
            ),
            (
                forge(
                    &json!({"typ": "JWT", "alg": "HS256", "kid": id_kid}),
                    &claims(),
                    &EncodingKey::from_secret(&jwk_bytes(&jwks["keys"][1], "n")),
                    Algorithm::HS256,
                ),
                "token algorithm \"HS256\" does not match key",
            ),
            (
                format!(
                    "{}.{}.c2ln",
                    b64(json!({"typ": "at+jwt", "alg": "none", "kid": access_kid}).to_string()),
                    b64(claims().to_string())
                ),
                "token algorithm \"none\" does not match key",
            ),
            (
                format!(
                    "{}.{}.",
                    b64(json!({"alg": "none"}).to_string()),
                    b64(claims().to_string())
                ),
                "token is malformed: its signature segment is empty",
            ),
        ];
        for (token, want) in cases {
            let err = verify(&token).unwrap_err().to_string();
            assert!(err.starts_with(want), "{err}");
        }
    }

    #[test]
    fn forbidden_headers_are_refused() {
        let extras = [
            ("crit", json!(["exp"])),
            ("jku", json!("https://evil.example/jwks")),
            ("jwk", keys().jwks()["keys"][0].clone()),
            ("x5u", json!("https://evil.example/cert")),
            ("x5c", json!(["MIIB"])),
        ];
        for (name, value) in extras {
            let mut header = access_header();
            header[name] = value;
            let token = forge(
                &header,
                &claims(),
                &keys().access.encoding,
                Algorithm::ES256,
            );
            let err = verify(&token).unwrap_err();
            assert_eq!(err, JwtError::ForbiddenHeader { name });
            assert_eq!(
                err.to_string(),
                format!("token header \"{name}\" is not allowed")
            );
        }
    }

    #[test]
    fn header_problems_are_named() {
        let sign = |header: Value| {
            forge(
                &header,
                &claims(),
                &keys().access.encoding,
                Algorithm::ES256,
            )
        };
        let kid = keys().access_kid();
        let cases = [
            (
                json!({"typ": "at+jwt", "alg": "ES256"}),
                "token header has no key id (kid)".to_string(),
            ),
            (
                json!({"typ": "at+jwt", "kid": kid}),
                "token header has no algorithm (alg)".into(),
            ),
            (
                json!({"typ": "at+jwt", "alg": 7, "kid": kid}),
                "token header \"alg\" must be a string".into(),
            ),
            (
                json!({"typ": "at+jwt", "alg": "ES256", "kid": "abc"}),
                "token signed by unknown key id \"abc\"".into(),
            ),
            (
                json!({"alg": "ES256", "kid": kid}),
                "token type (none) is not \"at+jwt\"".into(),
            ),
            (
                json!({"typ": "JWT", "alg": "ES256", "kid": kid}),
                "token type \"JWT\" is not \"at+jwt\"".into(),
            ),
        ];
        for (header, want) in cases {
            assert_eq!(verify(&sign(header)).unwrap_err().to_string(), want);
        }
        let accepted = json!({"typ": "application/AT+JWT", "alg": "ES256", "kid": kid});
        assert!(verify(&sign(accepted)).is_ok());
    }

    #[test]
    fn signatures_are_checked() {
        let other = KeyMaterial::generate(KeySpec::Es256).unwrap();
        let forged = forge(
            &access_header(),
            &claims(),
            &other.encoding,
            Algorithm::ES256,
        );
        assert_eq!(verify(&forged).unwrap_err(), JwtError::BadSignature);

        let token = keys().sign_access_token(&claims()).unwrap();
        let (input, signature) = token.rsplit_once('.').unwrap();
        let flipped = if signature.starts_with('A') { 'B' } else { 'A' };
        let tampered = format!("{input}.{flipped}{}", &signature[1..]);
        assert_eq!(verify(&tampered).unwrap_err(), JwtError::BadSignature);
        let short = format!("{input}.{}", &signature[..8]);
        assert_eq!(verify(&short).unwrap_err(), JwtError::BadSignature);
        let mut other_claims = claims();
        other_claims["sub"] = json!("someone-else");
        let swapped = format!(
            "{}.{}.{signature}",
            b64(access_header().to_string()),
            b64(other_claims.to_string())
        );
        assert_eq!(verify(&swapped).unwrap_err(), JwtError::BadSignature);
    }

    #[test]
    fn claims_are_checked_against_the_simulated_clock() {
        let cases: [(&str, Value, Option<&str>); 13] = [
            (
                "iss",
                json!("x"),
                Some(
                    "token issuer \"x\" is not this environment's issuer \"http://127.0.0.1:8080/sandbox/auth\"",
                ),
            ),
            (
                "aud",
                json!("other"),
                Some(
                    "token audience \"other\" does not include \"http://127.0.0.1:8080/sandbox/fhir\"",
                ),
            ),
            (
                "aud",
                json!(["a", "b"]),
                Some(
                    "token audience [\"a\", \"b\"] does not include \"http://127.0.0.1:8080/sandbox/fhir\"",
                ),
            ),
            ("aud", json!(["other", AUD]), None),
            (
                "exp",
                json!(NOW),
                Some("token expired at 2026-11-23T10:00:00Z"),
            ),
            ("exp", json!(NOW + 1), None),
            (
                "exp",
                json!("soon"),
                Some("token claim \"exp\" must be a number of seconds since 1970"),
            ),
            (
                "nbf",
                json!(NOW + 1),
                Some("token is not valid before 2026-11-23T10:00:01Z"),
            ),
            ("nbf", json!(NOW), None),
            (
                "iat",
                json!(NOW + 1),
                Some("token was issued in the future, at 2026-11-23T10:00:01Z"),
            ),
            ("iat", json!(NOW), None),
            ("iss", Value::Null, Some("token has no \"iss\" claim")),
            ("iat", Value::Null, Some("token has no \"iat\" claim")),
        ];
        for (claim, value, want) in cases {
            let mut c = claims();
            if value.is_null() {
                c.as_object_mut().unwrap().remove(claim);
            } else {
                c[claim] = value;
            }
            let token = keys().sign_access_token(&c).unwrap();
            let got = verify(&token).map_err(|e| e.to_string()).err();
            assert_eq!(got.as_deref(), want, "{claim} = {}", c[claim]);
        }
        let mut no_exp = claims();
        no_exp.as_object_mut().unwrap().remove("exp");
        let token = keys().sign_access_token(&no_exp).unwrap();
        assert_eq!(
            verify(&token).unwrap_err(),
            JwtError::MissingClaim { claim: "exp" }
        );
    }

    #[test]
    fn signing_needs_an_object() {
        let err = keys().sign_access_token(&json!("claims")).unwrap_err();
        assert_eq!(err.to_string(), "claims to sign must be a JSON object");
    }

    #[test]
    fn rotation_keeps_old_tokens_verifiable_until_pruned() {
        let mut k = SigningKeys::generate().unwrap();
        let old_token = k.sign_access_token(&claims()).unwrap();
        let old_id_token = k.sign_id_token(&claims()).unwrap();
        let (old_access, old_id) = (k.access_kid().to_string(), k.id_kid().to_string());
        k.rotate(NOW, 3600).unwrap();
        assert_ne!(k.access_kid(), old_access);
        assert_ne!(k.id_kid(), old_id);
        assert_eq!(k.jwks()["keys"].as_array().unwrap().len(), 4);
        assert!(k.verify(&old_token, ISS, AUD, NOW).is_ok());
        assert!(k.verify(&old_id_token, ISS, AUD, NOW).is_ok());
        let new_token = k.sign_access_token(&claims()).unwrap();
        assert_eq!(decoded_header(&new_token)["kid"], k.access_kid());
        assert_eq!(k.prune(NOW + 3599).unwrap(), 0);
        assert_eq!(k.prune(NOW + 3600).unwrap(), 2);
        assert_eq!(k.jwks()["keys"].as_array().unwrap().len(), 2);
        assert_eq!(
            k.verify(&old_token, ISS, AUD, NOW).unwrap_err(),
            JwtError::UnknownKeyId {
                kid: shown(&old_access)
            }
        );
        assert!(k.verify(&new_token, ISS, AUD, NOW).is_ok());
    }

    #[test]
    fn keys_persist_across_restarts() {
        let dir = TempDir::new("keys");
        let first = SigningKeys::load_or_generate(&dir.0).unwrap();
        let again = SigningKeys::load_or_generate(&dir.0).unwrap();
        assert_eq!(
            (first.access_kid(), first.id_kid()),
            (again.access_kid(), again.id_kid())
        );
        #[cfg(unix)]
        for file in [ACCESS_KEY_FILE, ID_KEY_FILE] {
            assert_eq!(mode(&dir.0.join(file)), 0o600, "{file}");
        }
        let old_token = first.sign_access_token(&claims()).unwrap();

        let mut rotated = again;
        rotated.rotate(NOW, 600).unwrap();
        let reloaded = SigningKeys::load_or_generate(&dir.0).unwrap();
        assert_eq!(reloaded.access_kid(), rotated.access_kid());
        assert_eq!(reloaded.jwks(), rotated.jwks());
        assert!(reloaded.verify(&old_token, ISS, AUD, NOW).is_ok());
        let retired_pem = dir
            .0
            .join(RETIRED_DIR)
            .join(format!("{}.pem", first.access_kid()));
        assert!(retired_pem.exists());
        #[cfg(unix)]
        assert_eq!(mode(&retired_pem), 0o600);

        rotated.prune(NOW + 600).unwrap();
        let reloaded = SigningKeys::load_or_generate(&dir.0).unwrap();
        assert_eq!(reloaded.jwks()["keys"].as_array().unwrap().len(), 2);
        assert!(!retired_pem.exists());
    }

    #[test]
    fn unusable_key_files_are_reported() {
        let dir = TempDir::new("bad-keys");
        fs::create_dir_all(&dir.0).unwrap();
        let path = dir.0.join(ACCESS_KEY_FILE);
        fs::write(&path, "not a key").unwrap();
        let err = SigningKeys::load_or_generate(&dir.0)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!(
                "{}: not a usable ES256 private key",
                path.display()
            )),
            "{err}"
        );
        fs::write(&path, client_key(ClientAlg::Rs384).private_key_pem()).unwrap();
        assert!(matches!(
            SigningKeys::load_or_generate(&dir.0),
            Err(KeyError::InvalidKey { alg: "ES256", .. })
        ));
        fs::write(&path, client_key(ClientAlg::Es384).private_key_pem()).unwrap();
        assert!(
            SigningKeys::load_or_generate(&dir.0).is_err(),
            "a P-384 key is not ES256"
        );
    }

    #[test]
    fn retired_index_problems_are_reported() {
        let dir = TempDir::new("bad-index");
        let mut k = SigningKeys::load_or_generate(&dir.0).unwrap();
        k.rotate(NOW, 600).unwrap();
        let index = dir.0.join(RETIRED_DIR).join(RETIRED_INDEX);
        let text = fs::read_to_string(&index).unwrap();
        fs::write(
            &index,
            text.replace(k.retired[0].key.kid.as_str(), "../../etc/passwd"),
        )
        .unwrap();
        let err = SigningKeys::load_or_generate(&dir.0)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "retired key index is invalid (kid \"../../etc/passwd\" is not base64url)"
            ),
            "{err}"
        );
    }

    #[test]
    fn debug_output_shows_no_private_key() {
        let text = format!("{:?} {:?}", keys(), client_key(ClientAlg::Rs384));
        assert!(
            !text.contains("PRIVATE") && text.contains(keys().access_kid()),
            "{text}"
        );
    }

    #[test]
    fn client_public_jwks_are_standard() {
        for (alg, kty, members) in [
            (
                ClientAlg::Rs384,
                "RSA",
                &["kty", "kid", "use", "alg", "n", "e"][..],
            ),
            (
                ClientAlg::Es384,
                "EC",
                &["kty", "kid", "use", "alg", "crv", "x", "y"][..],
            ),
        ] {
            let key = client_key(alg);
            let jwk = key.public_jwk();
            let names: Vec<&str> = jwk
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(names, members);
            assert_eq!(
                (&jwk["kty"], &jwk["alg"], &jwk["use"]),
                (&json!(kty), &json!(alg.name()), &json!("sig"))
            );
            let parsed: Jwk = serde_json::from_value(jwk.clone()).unwrap();
            assert_eq!(parsed.thumbprint(ThumbprintHash::SHA256), key.kid());
            assert_eq!(key.public_jwks(), json!({"keys": [jwk]}));
        }
    }

    #[test]
    fn private_jwks_extend_the_public_ones() {
        for (alg, private_members) in [
            (ClientAlg::Rs384, &["d", "p", "q", "dp", "dq", "qi"][..]),
            (ClientAlg::Es384, &["d"][..]),
        ] {
            let key = client_key(alg);
            let (public, private) = (key.public_jwk(), key.private_jwk());
            let private = private.as_object().unwrap();
            for (name, value) in public.as_object().unwrap() {
                assert_eq!(&private[name], value, "{alg} {name}");
            }
            let extra: Vec<&str> = private
                .keys()
                .map(String::as_str)
                .filter(|name| !public.as_object().unwrap().contains_key(*name))
                .collect();
            assert_eq!(extra, private_members);
        }
        let rsa = client_key(ClientAlg::Rs384).private_jwk();
        let len = |name| jwk_bytes(&rsa, name).len();
        assert!((250..=256).contains(&len("d")), "d: {}", len("d"));
        for name in ["p", "q"] {
            assert_eq!(len(name), 128, "{name}");
        }
        for name in ["dp", "dq", "qi"] {
            assert!((120..=128).contains(&len(name)), "{name}: {}", len(name));
            assert_ne!(jwk_bytes(&rsa, name)[0], 0, "{name} keeps a leading zero");
        }
        let ec = client_key(ClientAlg::Es384).private_jwk();
        assert_eq!(jwk_bytes(&ec, "d").len(), 48);
        assert_eq!(ec["crv"], "P-384");
    }

    fn der_element(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        if body.len() < 0x80 {
            out.push(body.len() as u8);
        } else {
            let bytes = body.len().to_be_bytes();
            let skip = bytes.iter().take_while(|b| **b == 0).count();
            out.push(0x80 | (bytes.len() - skip) as u8);
            out.extend_from_slice(&bytes[skip..]);
        }
        out.extend_from_slice(body);
        out
    }

    fn der_uint(value: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        if value[0] & 0x80 != 0 {
            body.push(0);
        }
        body.extend_from_slice(value);
        der_element(0x02, &body)
    }

    fn verifies_with_public_jwk(key: &ClientKey, encoding: &EncodingKey) {
        let token = forge(
            &json!({"alg": key.alg().name()}),
            &claims(),
            encoding,
            key.alg().algorithm(),
        );
        let public: Jwk = serde_json::from_value(key.public_jwk()).unwrap();
        let mut validation = Validation::new(key.alg().algorithm());
        validation.validate_exp = false;
        validation.validate_aud = false;
        jsonwebtoken::decode::<Value>(
            &token,
            &DecodingKey::from_jwk(&public).unwrap(),
            &validation,
        )
        .unwrap();
    }

    #[test]
    fn the_private_rsa_jwk_is_a_working_key() {
        // Rebuild a PKCS#1 RSAPrivateKey from the JWK alone; aws-lc checks the numbers agree
        // (RSA_check_key) and the signature must verify with the public JWK.
        let key = client_key(ClientAlg::Rs384);
        let jwk = key.private_jwk();
        let mut body = der_uint(&[0]);
        for name in ["n", "e", "d", "p", "q", "dp", "dq", "qi"] {
            body.extend(der_uint(&jwk_bytes(&jwk, name)));
        }
        let pkcs1 = der_element(0x30, &body);
        verifies_with_public_jwk(key, &EncodingKey::from_rsa_der(&pkcs1));
    }

    #[test]
    fn the_private_ec_jwk_is_a_working_key() {
        // Rebuild a PKCS#8 document from `d` alone (no public point): signatures made with it
        // must verify with the public JWK.
        let key = client_key(ClientAlg::Es384);
        let d = jwk_bytes(&key.private_jwk(), "d");
        let ec_private = der_element(0x30, &[der_uint(&[1]), der_element(0x04, &d)].concat());
        let algorithm = der_element(
            0x30,
            &[
                &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01][..],
                &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22][..],
            ]
            .concat(),
        );
        let pkcs8 = der_element(
            0x30,
            &[der_uint(&[0]), algorithm, der_element(0x04, &ec_private)].concat(),
        );
        verifies_with_public_jwk(key, &EncodingKey::from_ec_der(&pkcs8));
    }

    #[test]
    fn assertions_verify_with_the_registered_key() {
        for alg in [ClientAlg::Rs384, ClientAlg::Es384] {
            let key = client_key(alg);
            let token = key.sign_assertion(&claims()).unwrap();
            assert_eq!(
                decoded_header(&token),
                json!({"typ": "JWT", "alg": alg.name(), "kid": key.kid()})
            );
            let public: Jwk = serde_json::from_value(key.public_jwk()).unwrap();
            let mut validation = Validation::new(alg.algorithm());
            validation.validate_exp = false;
            validation.validate_aud = false;
            let decoded = jsonwebtoken::decode::<Value>(
                &token,
                &DecodingKey::from_jwk(&public).unwrap(),
                &validation,
            );
            assert_eq!(decoded.unwrap().claims, claims());
        }
    }

    #[test]
    fn client_keys_persist() {
        let dir = TempDir::new("client-key");
        let path = dir.0.join("clients").join("backend-es384.pem");
        let first = ClientKey::load_or_generate(&path, ClientAlg::Es384).unwrap();
        let again = ClientKey::load_or_generate(&path, ClientAlg::Es384).unwrap();
        assert_eq!(first.kid(), again.kid());
        assert_eq!(first.private_jwk(), again.private_jwk());
        #[cfg(unix)]
        assert_eq!(mode(&path), 0o600);
        assert!(ClientKey::load_or_generate(&path, ClientAlg::Rs384).is_err());
        let pem = client_key(ClientAlg::Rs384).private_key_pem();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert_eq!(
            ClientKey::from_pem(ClientAlg::Rs384, pem).unwrap().kid(),
            client_key(ClientAlg::Rs384).kid()
        );
        assert!(ClientKey::from_pem(ClientAlg::Es384, pem).is_err());
    }

    #[test]
    fn client_alg_names_round_trip() {
        for alg in [ClientAlg::Rs384, ClientAlg::Es384] {
            assert_eq!(ClientAlg::from_name(alg.name()), Some(alg));
            assert_eq!(alg.to_string(), alg.name());
        }
        assert_eq!(ClientAlg::from_name("RS256"), None);
    }

    #[test]
    fn the_der_reader_reads_lengths_and_refuses_bad_input() {
        let long_body = vec![7u8; 300];
        let element = der_element(0x04, &long_body);
        assert_eq!(&element[..4], &[0x04, 0x82, 0x01, 0x2c]);
        let mut reader = der::Reader::new(&element);
        assert_eq!(reader.next_element().unwrap(), (0x04, &long_body[..]));
        assert!(reader.is_empty());

        let bad: [(&[u8], &str); 5] = [
            (&[0x04], "truncated element"),
            (&[0x04, 0x05, 1, 2], "element longer than its input"),
            (&[0x30, 0x80, 0, 0], "indefinite lengths are not DER"),
            (&[0x04, 0x85, 1, 1, 1, 1, 1], "bad length"),
            (&[0x1f, 0x01, 0x00], "multi-byte tags are not supported"),
        ];
        for (input, want) in bad {
            assert_eq!(der::Reader::new(input).next_element().unwrap_err(), want);
        }
        let mut negative = der::Reader::new(&[0x02, 0x01, 0x80]);
        assert_eq!(negative.unsigned("n").unwrap_err(), "n is negative");
        assert_eq!(
            der::Reader::new(&[0x02, 0x03, 0, 0, 5])
                .unsigned("n")
                .unwrap(),
            &[5]
        );
        assert_eq!(der::strip_leading_zeros(&[0, 0]), &[0]);
        let trailing = [der_element(0x30, &der_uint(&[1])), vec![0]].concat();
        assert!(der::rsa_public_key(&trailing).is_err());
    }
}
