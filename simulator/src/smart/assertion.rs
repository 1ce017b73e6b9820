//! Client authentication with `private_key_jwt` (RFC 7523), as SMART Backend Services requires.
//!
//! [`validate_client_assertion`] applies, in order: the header rules (`alg` RS384 or ES384
//! only; no `crit`, `jwk`, `x5u` or `x5c`; `jku` only if it is the registered `jwks_uri`; `typ`
//! `JWT` if present; `kid` required), the key rules (the `kid` names exactly one registered key
//! whose type, curve, `use` and `alg` suit the header's `alg`), the signature (jsonwebtoken, with
//! the algorithm pinned to the key), the claims (`iss` = `sub` = client id, `aud` = the token
//! URL, `exp` within 5 minutes, `nbf`/`iat` not in the future, `jti` present), and last the
//! replay check, so that a forged assertion can never use up a `jti`.
//!
//! Every failure has its own [`AssertionError`] variant whose message is fit for an OAuth
//! `error_description`: lower-case, naming the exact claim or header and the expected value.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::{Map, Value};

use super::jwt::{self, FieldError, MalformedJwt, shown};
use super::keys::ClientAlg;

/// The longest client assertion (bytes) read; longer ones are refused unparsed.
pub const MAX_ASSERTION_LEN: usize = 8 * 1024;
/// How far ahead `exp` may be (SMART Backend Services: "no more than five minutes").
pub const MAX_LIFETIME_SECS: i64 = 300;
/// Clock skew allowed on top of [`MAX_LIFETIME_SECS`].
pub const EXP_SKEW_SECS: i64 = 10;
/// How far in the future `nbf` and `iat` may be.
pub const MAX_FUTURE_SECS: i64 = 60;
/// The longest `jti` accepted (characters), so the replay cache stays small.
pub const MAX_JTI_LEN: usize = 256;
/// Default bound on remembered `jti`s, all clients together.
pub const DEFAULT_MAX_JTIS: usize = 100_000;
/// Default bound on remembered `jti`s for one client.
pub const DEFAULT_MAX_JTIS_PER_CLIENT: usize = 10_000;
/// The smallest RSA modulus accepted for a client key, in bytes (2048 bits).
const MIN_RSA_MODULUS_BYTES: usize = 256;
/// The P-384 coordinate length, in bytes.
const P384_COORDINATE_BYTES: usize = 48;

/// A client's registered public keys, and the `jwks_uri` they came from when there is one (the
/// only `jku` an assertion header may carry).
#[derive(Debug, Clone)]
pub struct ClientKeys {
    set: JwkSet,
    jwks_uri: Option<String>,
}

impl ClientKeys {
    /// Keys registered inline (a static JWKS): no `jku` is accepted.
    pub fn new(set: JwkSet) -> Self {
        Self {
            set,
            jwks_uri: None,
        }
    }

    /// Keys fetched from the client's registered `jwks_uri`.
    pub fn from_jwks_uri(set: JwkSet, jwks_uri: &str) -> Self {
        Self {
            set,
            jwks_uri: Some(jwks_uri.to_string()),
        }
    }

    /// The keys.
    pub fn set(&self) -> &JwkSet {
        &self.set
    }

    /// The registered `jwks_uri`, if the keys came from one.
    pub fn jwks_uri(&self) -> Option<&str> {
        self.jwks_uri.as_deref()
    }
}

/// What a valid assertion established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssertionClaims {
    /// The authenticated client (`iss` = `sub`).
    pub client_id: String,
    /// The assertion's `jti`, now used up.
    pub jti: String,
    /// The assertion's `exp` (unix seconds).
    pub exp: i64,
    /// The `kid` of the key that verified it.
    pub kid: String,
    /// Its algorithm.
    pub alg: ClientAlg,
}

/// Why a client assertion was refused. Messages go into OAuth `error_description`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssertionError {
    /// Not a compact JWT.
    #[error("client assertion is malformed: {0}")]
    Malformed(#[from] MalformedJwt),
    /// A header parameter has the wrong JSON type.
    #[error("client assertion header {name:?} must be {expected}")]
    HeaderType {
        /// The parameter.
        name: &'static str,
        /// The type it must have.
        expected: &'static str,
    },
    /// No `alg` header.
    #[error("client assertion header has no algorithm (alg); expected RS384 or ES384")]
    MissingAlgorithm,
    /// `alg` is not RS384 or ES384 (this includes `none`, HS*, RS256 and ES256).
    #[error("client assertion algorithm {alg} is not allowed; expected RS384 or ES384")]
    UnsupportedAlgorithm {
        /// The header's `alg`, as shown.
        alg: String,
    },
    /// `crit`, `jwk`, `x5u` or `x5c` in the header.
    #[error("client assertion header {name:?} is not allowed")]
    ForbiddenHeader {
        /// The parameter.
        name: &'static str,
    },
    /// A `jku` header, and the client has no registered `jwks_uri`.
    #[error(
        "client assertion header jku {jku} is not allowed: the client has no registered jwks_uri"
    )]
    JkuNotRegistered {
        /// The header's `jku`, as shown.
        jku: String,
    },
    /// A `jku` header that is not the registered `jwks_uri`.
    #[error(
        "client assertion header jku {jku} is not the client's registered jwks_uri {registered}"
    )]
    JkuMismatch {
        /// The header's `jku`, as shown.
        jku: String,
        /// The registered `jwks_uri`, as shown.
        registered: String,
    },
    /// A `typ` header other than `JWT`.
    #[error("client assertion type {typ} is not \"JWT\"")]
    WrongType {
        /// The header's `typ`, as shown.
        typ: String,
    },
    /// No `kid` header.
    #[error("client assertion header has no key id (kid)")]
    MissingKeyId,
    /// The `kid` is not in the client's JWKS.
    #[error("client assertion key id {kid} is not in the client's registered JWKS")]
    UnknownKeyId {
        /// The `kid`, as shown.
        kid: String,
    },
    /// The `kid` names several keys of the client's JWKS.
    #[error(
        "client assertion key id {kid} names {count} keys in the client's JWKS; it must name one"
    )]
    AmbiguousKeyId {
        /// The `kid`, as shown.
        kid: String,
        /// How many keys carry it.
        count: usize,
    },
    /// The key's `kty` cannot verify the header's `alg`.
    #[error("client assertion key {kid} has kty {kty:?}, which cannot verify {alg}")]
    KeyTypeMismatch {
        /// The `kid`, as shown.
        kid: String,
        /// The key's `kty`.
        kty: &'static str,
        /// The header's `alg`.
        alg: ClientAlg,
    },
    /// The key's registered `alg` is not the header's.
    #[error("client assertion key {kid} is registered for {key_alg}, not {alg}")]
    KeyAlgorithmMismatch {
        /// The `kid`, as shown.
        kid: String,
        /// The key's `alg`.
        key_alg: String,
        /// The header's `alg`.
        alg: ClientAlg,
    },
    /// An EC key on another curve than P-384.
    #[error("client assertion key {kid} is on curve {crv}; ES384 needs P-384")]
    KeyCurveMismatch {
        /// The `kid`, as shown.
        kid: String,
        /// The key's curve.
        crv: &'static str,
    },
    /// A key registered for encryption.
    #[error("client assertion key {kid} is registered for use {key_use:?}, not \"sig\"")]
    KeyNotForSigning {
        /// The `kid`, as shown.
        kid: String,
        /// The key's `use`.
        key_use: String,
    },
    /// The registered key cannot be used at all (bad encoding, too short).
    #[error("client assertion key {kid} cannot be used: {reason}")]
    UnusableKey {
        /// The `kid`, as shown.
        kid: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The signature does not verify with the key.
    #[error("client assertion signature is invalid for key {kid}")]
    BadSignature {
        /// The `kid`, as shown.
        kid: String,
    },
    /// A required claim is absent.
    #[error("client assertion has no {claim:?} claim")]
    MissingClaim {
        /// The claim.
        claim: &'static str,
    },
    /// A claim has the wrong JSON type.
    #[error("client assertion claim {claim:?} must be {expected}")]
    ClaimType {
        /// The claim.
        claim: &'static str,
        /// The type it must have.
        expected: &'static str,
    },
    /// `iss` and `sub` differ.
    #[error("client assertion iss {iss} and sub {sub} differ; both must be the client id")]
    IssSubMismatch {
        /// `iss`, as shown.
        iss: String,
        /// `sub`, as shown.
        sub: String,
    },
    /// The assertion is for another client than the one the request names.
    #[error("client assertion is for client {found}, but the request names client {expected}")]
    WrongClient {
        /// `iss`, as shown.
        found: String,
        /// The request's `client_id`, as shown.
        expected: String,
    },
    /// `aud` is not the token endpoint.
    #[error("client assertion aud {found} is not the token endpoint {expected}")]
    WrongAudience {
        /// `aud`, as shown.
        found: String,
        /// The token URL, as shown.
        expected: String,
    },
    /// `aud` is an array of several values (refused, as FAPI does).
    #[error(
        "client assertion aud is an array of {count} values; it must be the token endpoint {expected} alone"
    )]
    AudienceArray {
        /// How many values.
        count: usize,
        /// The token URL, as shown.
        expected: String,
    },
    /// `exp` is not after now.
    #[error("client assertion expired at {at}")]
    Expired {
        /// `exp` as an RFC 3339 instant.
        at: String,
    },
    /// `exp` is more than 5 minutes ahead.
    #[error("client assertion exp {at} is more than 5 minutes (300 s) in the future")]
    ExpTooFar {
        /// `exp` as an RFC 3339 instant.
        at: String,
    },
    /// `nbf` or `iat` is more than 60 s ahead.
    #[error("client assertion {claim} {at} is more than 60 s in the future")]
    NotYetValid {
        /// `nbf` or `iat`.
        claim: &'static str,
        /// Its value as an RFC 3339 instant.
        at: String,
    },
    /// `jti` is the empty string.
    #[error("client assertion jti is empty")]
    EmptyJti,
    /// `jti` is longer than [`MAX_JTI_LEN`].
    #[error("client assertion jti is {len} characters long, more than the {max} allowed")]
    JtiTooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The `jti` was already used by this client, and that assertion has not expired.
    #[error("client assertion jti {jti} was already used")]
    Replayed {
        /// The `jti`, as shown.
        jti: String,
    },
    /// The replay cache is full; the assertion cannot be checked for replay.
    #[error(
        "client assertion cannot be checked for replay: {0}; try again when earlier assertions have expired"
    )]
    ReplayCacheFull(String),
    /// jsonwebtoken refused the assertion for a reason the checks above did not name.
    #[error("client assertion was rejected: {0}")]
    Rejected(String),
}

impl AssertionError {
    fn from_header_field(e: FieldError) -> Self {
        match e {
            FieldError::Missing("kid") => Self::MissingKeyId,
            FieldError::Missing(_) => Self::MissingAlgorithm,
            FieldError::WrongType(name, expected) => Self::HeaderType { name, expected },
        }
    }

    fn from_claim_field(e: FieldError) -> Self {
        match e {
            FieldError::Missing(claim) => Self::MissingClaim { claim },
            FieldError::WrongType(claim, expected) => Self::ClaimType { claim, expected },
        }
    }
}

/// Header parameters refused outright (`jku` has its own rule).
const FORBIDDEN_ASSERTION_HEADERS: [&str; 4] = ["crit", "jwk", "x5u", "x5c"];

/// Validates a `client_assertion` for the token endpoint at `token_url`, against the client's
/// registered `keys`, at simulated time `now_unix`, and uses up its `jti` in `replay`. When the
/// request also carries a `client_id`, pass it as `expected_client_id`. See the module docs for
/// the rules, applied in that order.
pub fn validate_client_assertion(
    assertion: &str,
    expected_client_id: Option<&str>,
    keys: &ClientKeys,
    token_url: &str,
    now_unix: i64,
    replay: &JtiCache,
) -> Result<AssertionClaims, AssertionError> {
    let parsed = jwt::parse_compact(assertion, MAX_ASSERTION_LEN)?;
    let header = check_header(&parsed.header, keys.jwks_uri())?;
    let jwk = select_key(&keys.set, &header)?;
    verify_signature(assertion, jwk, &header, token_url)?;
    let claims = check_claims(&parsed.claims, expected_client_id, token_url, now_unix)?;
    replay
        .check_and_remember(&claims.client_id, &claims.jti, claims.exp, now_unix)
        .map_err(|e| match e {
            ReplayError::Reused => AssertionError::Replayed {
                jti: shown(&claims.jti),
            },
            full => AssertionError::ReplayCacheFull(full.to_string()),
        })?;
    Ok(AssertionClaims {
        client_id: claims.client_id,
        jti: claims.jti,
        exp: claims.exp,
        kid: header.kid,
        alg: header.alg,
    })
}

/// What an assertion claims about itself, read without verifying anything: for finding the
/// client registration (`iss`) and the key to fetch (`kid`) before validating.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AssertionPeek {
    /// The unverified `iss` (the client id it claims), when a string.
    pub client_id: Option<String>,
    /// The unverified `kid` header, when a string.
    pub kid: Option<String>,
    /// The unverified `jku` header, when a string.
    pub jku: Option<String>,
}

/// Reads an assertion's claimed client id, `kid` and `jku` without verifying it. Only a token
/// that is not a compact JWT at all is an error.
pub fn peek_assertion(assertion: &str) -> Result<AssertionPeek, AssertionError> {
    let parsed = jwt::parse_compact(assertion, MAX_ASSERTION_LEN)?;
    let text = |map: &Map<String, Value>, name: &str| map.get(name)?.as_str().map(str::to_string);
    Ok(AssertionPeek {
        client_id: text(&parsed.claims, "iss"),
        kid: text(&parsed.header, "kid"),
        jku: text(&parsed.header, "jku"),
    })
}

/// The header values that passed the header rules.
struct CheckedHeader {
    alg: ClientAlg,
    kid: String,
}

fn check_header(
    header: &Map<String, Value>,
    registered_jku: Option<&str>,
) -> Result<CheckedHeader, AssertionError> {
    let field = AssertionError::from_header_field;
    let alg_name = jwt::required_string(header, "alg").map_err(field)?;
    let alg =
        ClientAlg::from_name(alg_name).ok_or_else(|| AssertionError::UnsupportedAlgorithm {
            alg: shown(alg_name),
        })?;
    if let Some(name) = jwt::first_present(header, &FORBIDDEN_ASSERTION_HEADERS) {
        return Err(AssertionError::ForbiddenHeader { name });
    }
    check_jku(
        jwt::string_field(header, "jku").map_err(field)?,
        registered_jku,
    )?;
    if let Some(typ) = jwt::string_field(header, "typ").map_err(field)?
        && !typ.eq_ignore_ascii_case("JWT")
    {
        return Err(AssertionError::WrongType { typ: shown(typ) });
    }
    let kid = jwt::required_string(header, "kid").map_err(field)?;
    Ok(CheckedHeader {
        alg,
        kid: kid.to_string(),
    })
}

fn check_jku(jku: Option<&str>, registered: Option<&str>) -> Result<(), AssertionError> {
    match (jku, registered) {
        (None, _) => Ok(()),
        (Some(jku), Some(registered)) if jku == registered => Ok(()),
        (Some(jku), Some(registered)) => Err(AssertionError::JkuMismatch {
            jku: shown(jku),
            registered: shown(registered),
        }),
        (Some(jku), None) => Err(AssertionError::JkuNotRegistered { jku: shown(jku) }),
    }
}

/// The one registered key the header's `kid` names, if it suits the header's `alg`.
fn select_key<'k>(set: &'k JwkSet, header: &CheckedHeader) -> Result<&'k Jwk, AssertionError> {
    let kid = || shown(&header.kid);
    let matching: Vec<&Jwk> = set
        .keys
        .iter()
        .filter(|jwk| jwk.common.key_id.as_deref() == Some(header.kid.as_str()))
        .collect();
    let jwk = match matching[..] {
        [] => return Err(AssertionError::UnknownKeyId { kid: kid() }),
        [one] => one,
        _ => {
            return Err(AssertionError::AmbiguousKeyId {
                kid: kid(),
                count: matching.len(),
            });
        }
    };
    check_key_suits(jwk, header.alg).map_err(|e| e.into_error(kid(), header.alg))?;
    Ok(jwk)
}

/// Why a registered key does not suit an algorithm, before the `kid` is attached.
enum KeyProblem {
    Type(&'static str),
    Alg(String),
    Curve(&'static str),
    Use(String),
    Unusable(String),
}

impl KeyProblem {
    fn into_error(self, kid: String, alg: ClientAlg) -> AssertionError {
        match self {
            Self::Type(kty) => AssertionError::KeyTypeMismatch { kid, kty, alg },
            Self::Alg(key_alg) => AssertionError::KeyAlgorithmMismatch { kid, key_alg, alg },
            Self::Curve(crv) => AssertionError::KeyCurveMismatch { kid, crv },
            Self::Use(key_use) => AssertionError::KeyNotForSigning { kid, key_use },
            Self::Unusable(reason) => AssertionError::UnusableKey { kid, reason },
        }
    }
}

fn check_key_suits(jwk: &Jwk, alg: ClientAlg) -> Result<(), KeyProblem> {
    let kty = kty_name(&jwk.algorithm);
    if kty != alg.kty() {
        return Err(KeyProblem::Type(kty));
    }
    if let Some(key_alg) = jwk.common.key_algorithm
        && key_alg.to_string() != alg.name()
    {
        return Err(KeyProblem::Alg(key_alg.to_string()));
    }
    match &jwk.common.public_key_use {
        None | Some(PublicKeyUse::Signature) => {}
        Some(PublicKeyUse::Encryption) => return Err(KeyProblem::Use("enc".into())),
        Some(PublicKeyUse::Other(other)) => return Err(KeyProblem::Use(shown(other))),
    }
    check_key_material(&jwk.algorithm)
}

fn kty_name(params: &AlgorithmParameters) -> &'static str {
    match params {
        AlgorithmParameters::EllipticCurve(_) => "EC",
        AlgorithmParameters::RSA(_) => "RSA",
        AlgorithmParameters::OctetKey(_) => "oct",
        AlgorithmParameters::OctetKeyPair(_) => "OKP",
    }
}

/// Checks what jsonwebtoken would otherwise only report as a bad signature: the curve, the
/// coordinate lengths, the modulus size.
fn check_key_material(params: &AlgorithmParameters) -> Result<(), KeyProblem> {
    let decoded = |name: &str, text: &str| {
        jwt_b64(text).ok_or_else(|| KeyProblem::Unusable(format!("{name} is not base64url")))
    };
    match params {
        AlgorithmParameters::EllipticCurve(ec) => {
            if ec.curve != EllipticCurve::P384 {
                return Err(KeyProblem::Curve(curve_name(&ec.curve)));
            }
            let (x, y) = (decoded("x", &ec.x)?, decoded("y", &ec.y)?);
            if x.len() != P384_COORDINATE_BYTES || y.len() != P384_COORDINATE_BYTES {
                return Err(KeyProblem::Unusable("x and y must be 48 bytes each".into()));
            }
            Ok(())
        }
        AlgorithmParameters::RSA(rsa) => {
            let n = decoded("n", &rsa.n)?;
            decoded("e", &rsa.e)?;
            let bits = n.iter().skip_while(|b| **b == 0).count() * 8;
            if bits < MIN_RSA_MODULUS_BYTES * 8 {
                return Err(KeyProblem::Unusable(format!(
                    "the RSA modulus has about {bits} bits; at least 2048 are required"
                )));
            }
            Ok(())
        }
        AlgorithmParameters::OctetKey(_) | AlgorithmParameters::OctetKeyPair(_) => Ok(()),
    }
}

fn jwt_b64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()
}

fn curve_name(curve: &EllipticCurve) -> &'static str {
    match curve {
        EllipticCurve::P256 => "P-256",
        EllipticCurve::P384 => "P-384",
        EllipticCurve::P521 => "P-521",
        EllipticCurve::Ed25519 => "Ed25519",
    }
}

/// Verifies the signature with jsonwebtoken, the algorithm pinned to the key (which
/// [`select_key`] matched to the header). Claims are checked afterwards by [`check_claims`];
/// jsonwebtoken's own time checks read the system clock, so they are off.
fn verify_signature(
    assertion: &str,
    jwk: &Jwk,
    header: &CheckedHeader,
    token_url: &str,
) -> Result<(), AssertionError> {
    let key = DecodingKey::from_jwk(jwk).map_err(|e| AssertionError::UnusableKey {
        kid: shown(&header.kid),
        reason: e.to_string(),
    })?;
    let mut validation = Validation::new(header.alg.algorithm());
    validation.leeway = 0;
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.set_audience(&[token_url]);
    validation.required_spec_claims.clear();
    match jsonwebtoken::decode::<Value>(assertion, &key, &validation) {
        Ok(_) => Ok(()),
        Err(e) if *e.kind() == ErrorKind::InvalidSignature => Err(AssertionError::BadSignature {
            kid: shown(&header.kid),
        }),
        Err(e) => Err(AssertionError::Rejected(e.to_string())),
    }
}

/// The claims that passed the claim rules.
struct CheckedClaims {
    client_id: String,
    jti: String,
    exp: i64,
}

fn check_claims(
    claims: &Map<String, Value>,
    expected_client_id: Option<&str>,
    token_url: &str,
    now: i64,
) -> Result<CheckedClaims, AssertionError> {
    let client_id = check_client(claims, expected_client_id)?;
    check_audience(claims, token_url)?;
    let exp = check_times(claims, now)?;
    let jti = check_jti(claims)?;
    Ok(CheckedClaims {
        client_id,
        jti,
        exp,
    })
}

fn check_client(
    claims: &Map<String, Value>,
    expected_client_id: Option<&str>,
) -> Result<String, AssertionError> {
    let field = AssertionError::from_claim_field;
    let iss = jwt::required_string(claims, "iss").map_err(field)?;
    let sub = jwt::required_string(claims, "sub").map_err(field)?;
    if iss != sub {
        return Err(AssertionError::IssSubMismatch {
            iss: shown(iss),
            sub: shown(sub),
        });
    }
    if let Some(expected) = expected_client_id
        && iss != expected
    {
        return Err(AssertionError::WrongClient {
            found: shown(iss),
            expected: shown(expected),
        });
    }
    Ok(iss.to_string())
}

fn check_audience(claims: &Map<String, Value>, token_url: &str) -> Result<(), AssertionError> {
    let audiences = jwt::audiences(claims).map_err(AssertionError::from_claim_field)?;
    match audiences[..] {
        [one] if one == token_url => Ok(()),
        [one] => Err(AssertionError::WrongAudience {
            found: shown(one),
            expected: shown(token_url),
        }),
        _ if audiences.contains(&token_url) => Err(AssertionError::AudienceArray {
            count: audiences.len(),
            expected: shown(token_url),
        }),
        _ => Err(AssertionError::WrongAudience {
            found: format!("{:?}", audiences.iter().take(4).collect::<Vec<_>>()),
            expected: shown(token_url),
        }),
    }
}

/// Checks `exp` (required, after now, at most 5 minutes ahead), `nbf` and `iat` (not more than
/// 60 s ahead); returns `exp`.
fn check_times(claims: &Map<String, Value>, now: i64) -> Result<i64, AssertionError> {
    let field = AssertionError::from_claim_field;
    let exp = jwt::required_date(claims, "exp").map_err(field)?;
    if exp <= now {
        return Err(AssertionError::Expired {
            at: jwt::format_instant(exp),
        });
    }
    if exp > now.saturating_add(MAX_LIFETIME_SECS + EXP_SKEW_SECS) {
        return Err(AssertionError::ExpTooFar {
            at: jwt::format_instant(exp),
        });
    }
    for claim in ["nbf", "iat"] {
        if let Some(at) = jwt::numeric_date(claims, claim).map_err(field)?
            && at > now.saturating_add(MAX_FUTURE_SECS)
        {
            return Err(AssertionError::NotYetValid {
                claim,
                at: jwt::format_instant(at),
            });
        }
    }
    Ok(exp)
}

fn check_jti(claims: &Map<String, Value>) -> Result<String, AssertionError> {
    let jti = jwt::required_string(claims, "jti").map_err(AssertionError::from_claim_field)?;
    let len = jti.chars().count();
    if len == 0 {
        return Err(AssertionError::EmptyJti);
    }
    if len > MAX_JTI_LEN {
        return Err(AssertionError::JtiTooLong {
            len,
            max: MAX_JTI_LEN,
        });
    }
    Ok(jti.to_string())
}

/// Why [`JtiCache::check_and_remember`] refused a `jti`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// Already used by the same client, and that assertion has not expired.
    #[error("the jti was already used")]
    Reused,
    /// The cache holds its maximum of unexpired `jti`s, all clients together.
    #[error("the replay cache holds its limit of {limit} unexpired assertions")]
    Full {
        /// The limit.
        limit: usize,
    },
    /// The cache holds this client's maximum of unexpired `jti`s.
    #[error("the replay cache holds this client's limit of {limit} unexpired assertions")]
    ClientFull {
        /// The limit.
        limit: usize,
    },
}

/// How often (simulated seconds) the cache sweeps out expired entries on its own.
const PRUNE_EVERY_SECS: i64 = 10;

/// The `jti`s of accepted assertions, per client, each kept until its assertion's `exp`.
///
/// Thread-safe (one mutex). Bounded: when full, even after dropping expired entries, a new
/// `jti` is refused ([`ReplayError::Full`], or [`ReplayError::ClientFull`] when one client holds
/// its own share) rather than evicting one, since an evicted `jti` could be replayed. Entries
/// are swept by the simulated clock; moving that clock back past a sweep can forget a `jti`
/// whose assertion then looks unexpired again.
#[derive(Debug)]
pub struct JtiCache {
    state: Mutex<JtiState>,
    max_total: usize,
    max_per_client: usize,
}

#[derive(Debug, Default)]
struct JtiState {
    by_client: HashMap<String, HashMap<String, i64>>,
    total: usize,
    last_sweep: i64,
}

impl JtiState {
    fn sweep(&mut self, now: i64) {
        for jtis in self.by_client.values_mut() {
            jtis.retain(|_, exp| *exp > now);
        }
        self.by_client.retain(|_, jtis| !jtis.is_empty());
        self.total = self.by_client.values().map(HashMap::len).sum();
        self.last_sweep = now;
    }

    fn client_len(&self, client_id: &str) -> usize {
        self.by_client.get(client_id).map_or(0, HashMap::len)
    }
}

impl Default for JtiCache {
    fn default() -> Self {
        Self::new()
    }
}

impl JtiCache {
    /// A cache with the default bounds ([`DEFAULT_MAX_JTIS`], [`DEFAULT_MAX_JTIS_PER_CLIENT`]).
    pub fn new() -> Self {
        Self::with_limits(DEFAULT_MAX_JTIS, DEFAULT_MAX_JTIS_PER_CLIENT)
    }

    /// A cache holding at most `max_total` unexpired `jti`s, and `max_per_client` per client.
    pub fn with_limits(max_total: usize, max_per_client: usize) -> Self {
        Self {
            state: Mutex::new(JtiState::default()),
            max_total,
            max_per_client,
        }
    }

    /// Remembers `jti` of `client_id` until `exp`, or refuses it: already used by that client
    /// and not expired at `now_unix`, or no room.
    pub fn check_and_remember(
        &self,
        client_id: &str,
        jti: &str,
        exp: i64,
        now_unix: i64,
    ) -> Result<(), ReplayError> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if now_unix - state.last_sweep >= PRUNE_EVERY_SECS || now_unix < state.last_sweep {
            state.sweep(now_unix);
        }
        let seen = state
            .by_client
            .get(client_id)
            .and_then(|jtis| jtis.get(jti));
        match seen {
            Some(seen_exp) if *seen_exp > now_unix => return Err(ReplayError::Reused),
            Some(_) => {}
            None => self.make_room(&mut state, client_id, now_unix)?,
        }
        let jtis = state.by_client.entry(client_id.to_string()).or_default();
        if jtis.insert(jti.to_string(), exp).is_none() {
            state.total += 1;
        }
        Ok(())
    }

    fn make_room(
        &self,
        state: &mut JtiState,
        client_id: &str,
        now: i64,
    ) -> Result<(), ReplayError> {
        let full = |s: &JtiState| {
            s.total >= self.max_total || s.client_len(client_id) >= self.max_per_client
        };
        if full(state) {
            state.sweep(now);
        }
        if state.total >= self.max_total {
            return Err(ReplayError::Full {
                limit: self.max_total,
            });
        }
        if state.client_len(client_id) >= self.max_per_client {
            return Err(ReplayError::ClientFull {
                limit: self.max_per_client,
            });
        }
        Ok(())
    }

    /// How many `jti`s are remembered (expired ones included until the next sweep).
    pub fn len(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .total
    }

    /// Whether no `jti` is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, OnceLock};

    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::{Algorithm, EncodingKey, crypto};
    use proptest::prelude::*;
    use serde_json::json;

    use super::super::keys::{ClientKey, SigningKeys};
    use super::*;

    const TOKEN_URL: &str = "http://127.0.0.1:8080/sandbox/auth/token";
    const CLIENT: &str = "backend-service";
    const JWKS_URI: &str = "https://client.example/jwks.json";
    /// 2026-11-23T10:00:00Z.
    const NOW: i64 = 1_795_428_000;

    fn key(alg: ClientAlg) -> &'static ClientKey {
        static RS: OnceLock<ClientKey> = OnceLock::new();
        static ES: OnceLock<ClientKey> = OnceLock::new();
        let cell = match alg {
            ClientAlg::Rs384 => &RS,
            ClientAlg::Es384 => &ES,
        };
        cell.get_or_init(|| ClientKey::generate(alg).unwrap())
    }

    /// Another RSA key, to sign under the registered key's `kid`.
    fn impostor() -> &'static ClientKey {
        static KEY: OnceLock<ClientKey> = OnceLock::new();
        KEY.get_or_init(|| ClientKey::generate(ClientAlg::Rs384).unwrap())
    }

    fn jwk(value: Value) -> Jwk {
        serde_json::from_value(value).unwrap()
    }

    fn registered() -> ClientKeys {
        ClientKeys::new(JwkSet {
            keys: vec![
                jwk(key(ClientAlg::Rs384).public_jwk()),
                jwk(key(ClientAlg::Es384).public_jwk()),
            ],
        })
    }

    fn claims() -> Value {
        json!({"iss": CLIENT, "sub": CLIENT, "aud": TOKEN_URL, "exp": NOW + 240, "iat": NOW, "jti": "j-1"})
    }

    fn header(alg: ClientAlg) -> Value {
        json!({"alg": alg.name(), "kid": key(alg).kid(), "typ": "JWT"})
    }

    fn encoding_key(key: &ClientKey) -> EncodingKey {
        let pem = key.private_key_pem().as_bytes();
        match key.alg() {
            ClientAlg::Rs384 => EncodingKey::from_rsa_pem(pem).unwrap(),
            ClientAlg::Es384 => EncodingKey::from_ec_pem(pem).unwrap(),
        }
    }

    /// Exactly this header and these claims, signed with `key` under `alg`.
    fn forge(header: &Value, claims: &Value, key: &EncodingKey, alg: Algorithm) -> String {
        let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let input = format!("{}.{}", b64(header), b64(claims));
        let signature = crypto::sign(input.as_bytes(), key, alg).unwrap();
        format!("{input}.{signature}")
    }

    /// Signed with the registered key of `alg`, with this header and these claims.
    fn signed(alg: ClientAlg, header: &Value, claims: &Value) -> String {
        forge(header, claims, &encoding_key(key(alg)), alg.algorithm())
    }

    fn validate_with(
        assertion: &str,
        keys: &ClientKeys,
    ) -> Result<AssertionClaims, AssertionError> {
        validate_client_assertion(
            assertion,
            Some(CLIENT),
            keys,
            TOKEN_URL,
            NOW,
            &JtiCache::new(),
        )
    }

    fn error(assertion: &str) -> String {
        validate_with(assertion, &registered())
            .unwrap_err()
            .to_string()
    }

    /// The error for a good RS384 assertion whose claims `edit` changed.
    fn claims_error(edit: impl FnOnce(&mut Map<String, Value>)) -> String {
        let mut c = claims();
        edit(c.as_object_mut().unwrap());
        error(&signed(ClientAlg::Rs384, &header(ClientAlg::Rs384), &c))
    }

    /// The error for a good RS384 assertion whose header `edit` changed.
    fn header_error(edit: impl FnOnce(&mut Map<String, Value>)) -> String {
        let mut h = header(ClientAlg::Rs384);
        edit(h.as_object_mut().unwrap());
        error(&signed(ClientAlg::Rs384, &h, &claims()))
    }

    #[test]
    fn good_rs384_and_es384_assertions_pass() {
        for alg in [ClientAlg::Rs384, ClientAlg::Es384] {
            let assertion = key(alg).sign_assertion(&claims()).unwrap();
            let got = validate_with(&assertion, &registered()).unwrap();
            assert_eq!(
                got,
                AssertionClaims {
                    client_id: CLIENT.into(),
                    jti: "j-1".into(),
                    exp: NOW + 240,
                    kid: key(alg).kid().into(),
                    alg,
                }
            );
            let without_client_id = validate_client_assertion(
                &assertion,
                None,
                &registered(),
                TOKEN_URL,
                NOW,
                &JtiCache::new(),
            );
            assert!(without_client_id.is_ok());
        }
    }

    #[test]
    fn only_rs384_and_es384_are_accepted() {
        let rs = encoding_key(key(ClientAlg::Rs384));
        let kid = key(ClientAlg::Rs384).kid();
        let public_bytes = key(ClientAlg::Rs384).public_jwk().to_string();
        let cases = [
            (
                "RS256",
                forge(
                    &json!({"alg": "RS256", "kid": kid}),
                    &claims(),
                    &rs,
                    Algorithm::RS256,
                ),
            ),
            (
                "PS384",
                forge(
                    &json!({"alg": "PS384", "kid": kid}),
                    &claims(),
                    &rs,
                    Algorithm::PS384,
                ),
            ),
            (
                "HS384",
                forge(
                    &json!({"alg": "HS384", "kid": kid}),
                    &claims(),
                    &EncodingKey::from_secret(public_bytes.as_bytes()),
                    Algorithm::HS384,
                ),
            ),
            (
                "none",
                format!(
                    "{}.{}.c2ln",
                    URL_SAFE_NO_PAD.encode(json!({"alg": "none", "kid": kid}).to_string()),
                    URL_SAFE_NO_PAD.encode(claims().to_string())
                ),
            ),
        ];
        for (alg, assertion) in cases {
            assert_eq!(
                error(&assertion),
                format!(
                    "client assertion algorithm \"{alg}\" is not allowed; expected RS384 or ES384"
                )
            );
        }
        assert_eq!(
            header_error(|h| {
                h.remove("alg");
            }),
            "client assertion header has no algorithm (alg); expected RS384 or ES384"
        );
    }

    #[test]
    fn the_kid_must_name_one_suitable_registered_key() {
        assert_eq!(
            header_error(|h| {
                h.remove("kid");
            }),
            "client assertion header has no key id (kid)"
        );
        assert_eq!(
            header_error(|h| {
                h.insert("kid".into(), json!("nope"));
            }),
            "client assertion key id \"nope\" is not in the client's registered JWKS"
        );
        // An ES384 header naming the RSA key.
        let rs_kid = key(ClientAlg::Rs384).kid();
        let mut h = header(ClientAlg::Es384);
        h["kid"] = json!(rs_kid);
        assert_eq!(
            error(&signed(ClientAlg::Es384, &h, &claims())),
            format!("client assertion key \"{rs_kid}\" has kty \"RSA\", which cannot verify ES384")
        );
    }

    #[test]
    fn registered_key_properties_must_suit_the_algorithm() {
        let assertion = key(ClientAlg::Rs384).sign_assertion(&claims()).unwrap();
        let kid = key(ClientAlg::Rs384).kid();
        let with = |edit: fn(&mut Value)| {
            let mut public = key(ClientAlg::Rs384).public_jwk();
            edit(&mut public);
            validate_with(
                &assertion,
                &ClientKeys::new(JwkSet {
                    keys: vec![jwk(public)],
                }),
            )
            .unwrap_err()
            .to_string()
        };
        assert_eq!(
            with(|jwk| jwk["alg"] = json!("RS256")),
            format!("client assertion key \"{kid}\" is registered for RS256, not RS384")
        );
        assert_eq!(
            with(|jwk| jwk["use"] = json!("enc")),
            format!("client assertion key \"{kid}\" is registered for use \"enc\", not \"sig\"")
        );
        assert_eq!(
            with(|jwk| jwk["n"] = json!("AQAB")),
            format!(
                "client assertion key \"{kid}\" cannot be used: the RSA modulus has about 24 bits; at least 2048 are required"
            )
        );
        let mut no_alg = key(ClientAlg::Rs384).public_jwk();
        no_alg.as_object_mut().unwrap().remove("alg");
        no_alg.as_object_mut().unwrap().remove("use");
        let keys = ClientKeys::new(JwkSet {
            keys: vec![jwk(no_alg)],
        });
        assert!(
            validate_with(&assertion, &keys).is_ok(),
            "alg and use are optional"
        );

        let twice = ClientKeys::new(JwkSet {
            keys: vec![
                jwk(key(ClientAlg::Rs384).public_jwk()),
                jwk(key(ClientAlg::Rs384).public_jwk()),
            ],
        });
        assert_eq!(
            validate_with(&assertion, &twice).unwrap_err().to_string(),
            format!(
                "client assertion key id \"{kid}\" names 2 keys in the client's JWKS; it must name one"
            )
        );
    }

    #[test]
    fn an_es384_assertion_needs_a_p384_key() {
        // A P-256 key registered under the kid an ES384 assertion names.
        let p256 = SigningKeys::generate().unwrap().jwks()["keys"][0].clone();
        let kid = p256["kid"].as_str().unwrap().to_string();
        let mut h = header(ClientAlg::Es384);
        h["kid"] = json!(kid);
        let mut registered = p256;
        registered.as_object_mut().unwrap().remove("alg");
        let keys = ClientKeys::new(JwkSet {
            keys: vec![jwk(registered)],
        });
        let assertion = signed(ClientAlg::Es384, &h, &claims());
        assert_eq!(
            validate_with(&assertion, &keys).unwrap_err().to_string(),
            format!("client assertion key \"{kid}\" is on curve P-256; ES384 needs P-384")
        );
    }

    #[test]
    fn the_signature_must_verify() {
        let h = header(ClientAlg::Rs384);
        let assertion = forge(&h, &claims(), &encoding_key(impostor()), Algorithm::RS384);
        assert_eq!(
            error(&assertion),
            format!(
                "client assertion signature is invalid for key \"{}\"",
                key(ClientAlg::Rs384).kid()
            )
        );
        // A good signature moved onto other claims.
        let good = key(ClientAlg::Es384).sign_assertion(&claims()).unwrap();
        let signature = good.rsplit_once('.').unwrap().1;
        let mut other = claims();
        other["jti"] = json!("j-2");
        let moved = format!(
            "{}.{}.{signature}",
            URL_SAFE_NO_PAD.encode(header(ClientAlg::Es384).to_string()),
            URL_SAFE_NO_PAD.encode(other.to_string())
        );
        assert!(error(&moved).starts_with("client assertion signature is invalid"));
    }

    #[test]
    fn keys_and_key_locations_in_the_header_are_refused() {
        let attacker = impostor().public_jwk();
        for (name, value) in [
            ("jwk", attacker),
            ("crit", json!(["exp"])),
            ("x5u", json!("https://evil.example/cert.pem")),
            ("x5c", json!(["MIIB"])),
        ] {
            assert_eq!(
                header_error(|h| {
                    h.insert(name.into(), value);
                }),
                format!("client assertion header \"{name}\" is not allowed")
            );
        }
        assert_eq!(
            header_error(|h| {
                h.insert("jku".into(), json!("https://evil.example/jwks"));
            }),
            "client assertion header jku \"https://evil.example/jwks\" is not allowed: the client has no registered jwks_uri"
        );
        let by_uri = ClientKeys::from_jwks_uri(registered().set().clone(), JWKS_URI);
        let with_jku = |jku: &str| {
            let mut h = header(ClientAlg::Rs384);
            h["jku"] = json!(jku);
            validate_with(&signed(ClientAlg::Rs384, &h, &claims()), &by_uri)
        };
        assert_eq!(
            with_jku("https://evil.example/jwks")
                .unwrap_err()
                .to_string(),
            format!(
                "client assertion header jku \"https://evil.example/jwks\" is not the client's registered jwks_uri \"{JWKS_URI}\""
            )
        );
        assert!(with_jku(JWKS_URI).is_ok());
    }

    #[test]
    fn typ_if_present_is_jwt() {
        for typ in ["JWT", "jwt"] {
            let mut h = header(ClientAlg::Rs384);
            h["typ"] = json!(typ);
            assert!(validate_with(&signed(ClientAlg::Rs384, &h, &claims()), &registered()).is_ok());
        }
        let mut h = header(ClientAlg::Rs384);
        h.as_object_mut().unwrap().remove("typ");
        assert!(validate_with(&signed(ClientAlg::Rs384, &h, &claims()), &registered()).is_ok());
        assert_eq!(
            header_error(|h| {
                h.insert("typ".into(), json!("at+jwt"));
            }),
            "client assertion type \"at+jwt\" is not \"JWT\""
        );
    }

    #[test]
    fn iss_and_sub_are_the_client() {
        assert_eq!(
            claims_error(|c| {
                c.insert("sub".into(), json!("someone"));
            }),
            "client assertion iss \"backend-service\" and sub \"someone\" differ; both must be the client id"
        );
        assert_eq!(
            claims_error(|c| {
                c.remove("sub");
            }),
            "client assertion has no \"sub\" claim"
        );
        assert_eq!(
            claims_error(|c| {
                c.insert("iss".into(), json!(7));
            }),
            "client assertion claim \"iss\" must be a string"
        );
        let assertion = key(ClientAlg::Rs384).sign_assertion(&claims()).unwrap();
        let err = validate_client_assertion(
            &assertion,
            Some("other"),
            &registered(),
            TOKEN_URL,
            NOW,
            &JtiCache::new(),
        );
        assert_eq!(
            err.unwrap_err().to_string(),
            "client assertion is for client \"backend-service\", but the request names client \"other\""
        );
    }

    #[test]
    fn aud_is_the_token_endpoint_alone() {
        let with_aud = |aud: Value| {
            claims_error(|c| {
                c.insert("aud".into(), aud);
            })
        };
        assert_eq!(
            with_aud(json!("http://127.0.0.1:8080/sandbox/fhir")),
            format!(
                "client assertion aud \"http://127.0.0.1:8080/sandbox/fhir\" is not the token endpoint \"{TOKEN_URL}\""
            )
        );
        assert_eq!(
            with_aud(json!([TOKEN_URL, "https://other.example/token"])),
            format!(
                "client assertion aud is an array of 2 values; it must be the token endpoint \"{TOKEN_URL}\" alone"
            )
        );
        assert!(
            with_aud(json!(["a", "b"]))
                .starts_with("client assertion aud [\"a\", \"b\"] is not the token endpoint")
        );
        let mut one = claims();
        one["aud"] = json!([TOKEN_URL]);
        assert!(
            validate_with(
                &key(ClientAlg::Rs384).sign_assertion(&one).unwrap(),
                &registered()
            )
            .is_ok()
        );
        assert_eq!(
            claims_error(|c| {
                c.remove("aud");
            }),
            "client assertion has no \"aud\" claim"
        );
    }

    #[test]
    fn exp_is_required_and_at_most_five_minutes_ahead() {
        let with_exp = |exp: i64| {
            let mut c = claims();
            c["exp"] = json!(exp);
            validate_with(
                &key(ClientAlg::Es384).sign_assertion(&c).unwrap(),
                &registered(),
            )
            .map_err(|e| e.to_string())
        };
        assert_eq!(
            with_exp(NOW - 300).unwrap_err(),
            "client assertion expired at 2026-11-23T09:55:00Z"
        );
        assert_eq!(
            with_exp(NOW).unwrap_err(),
            "client assertion expired at 2026-11-23T10:00:00Z"
        );
        assert!(with_exp(NOW + 1).is_ok());
        assert!(
            with_exp(NOW + 310).is_ok(),
            "five minutes plus the skew allowance"
        );
        assert_eq!(
            with_exp(NOW + 311).unwrap_err(),
            "client assertion exp 2026-11-23T10:05:11Z is more than 5 minutes (300 s) in the future"
        );
        assert!(
            with_exp(NOW + 360)
                .unwrap_err()
                .contains("more than 5 minutes")
        );
        assert_eq!(
            claims_error(|c| {
                c.remove("exp");
            }),
            "client assertion has no \"exp\" claim"
        );
        assert_eq!(
            claims_error(|c| {
                c.insert("exp".into(), json!("later"));
            }),
            "client assertion claim \"exp\" must be a number of seconds since 1970"
        );
    }

    #[test]
    fn nbf_and_iat_are_not_in_the_future() {
        for claim in ["nbf", "iat"] {
            assert_eq!(
                claims_error(|c| {
                    c.insert(claim.into(), json!(NOW + 61));
                }),
                format!(
                    "client assertion {claim} 2026-11-23T10:01:01Z is more than 60 s in the future"
                )
            );
            let mut c = claims();
            c[claim] = json!(NOW + 60);
            assert!(
                validate_with(
                    &key(ClientAlg::Rs384).sign_assertion(&c).unwrap(),
                    &registered()
                )
                .is_ok()
            );
        }
    }

    #[test]
    fn jti_is_required_and_bounded() {
        assert_eq!(
            claims_error(|c| {
                c.remove("jti");
            }),
            "client assertion has no \"jti\" claim"
        );
        assert_eq!(
            claims_error(|c| {
                c.insert("jti".into(), json!(""));
            }),
            "client assertion jti is empty"
        );
        assert_eq!(
            claims_error(|c| {
                c.insert("jti".into(), json!("x".repeat(257)));
            }),
            "client assertion jti is 257 characters long, more than the 256 allowed"
        );
    }

    #[test]
    fn a_jti_is_used_once_per_client() {
        let cache = JtiCache::new();
        let keys = registered();
        let run = |assertion: &str, client: &str| {
            validate_client_assertion(assertion, Some(client), &keys, TOKEN_URL, NOW, &cache)
        };
        // A forged assertion does not use up the jti.
        let forged = forge(
            &header(ClientAlg::Rs384),
            &claims(),
            &encoding_key(impostor()),
            Algorithm::RS384,
        );
        assert!(run(&forged, CLIENT).is_err());
        let assertion = key(ClientAlg::Rs384).sign_assertion(&claims()).unwrap();
        assert!(run(&assertion, CLIENT).is_ok());
        assert_eq!(
            run(&assertion, CLIENT).unwrap_err().to_string(),
            "client assertion jti \"j-1\" was already used"
        );
        let fresh_signature = key(ClientAlg::Es384).sign_assertion(&claims()).unwrap();
        assert!(matches!(
            run(&fresh_signature, CLIENT),
            Err(AssertionError::Replayed { .. })
        ));
        let mut other_client = claims();
        other_client["iss"] = json!("client-b");
        other_client["sub"] = json!("client-b");
        let assertion_b = key(ClientAlg::Rs384).sign_assertion(&other_client).unwrap();
        assert!(run(&assertion_b, "client-b").is_ok());
    }

    #[test]
    fn malformed_assertions_say_why() {
        let good = key(ClientAlg::Rs384).sign_assertion(&claims()).unwrap();
        let (head, rest) = good.split_once('.').unwrap();
        let not_object = URL_SAFE_NO_PAD.encode("[1,2]");
        let cases = [
            (
                format!("{head}.{rest}").replacen('.', "", 1),
                "it has 2 segments separated by '.', expected 3".to_string(),
            ),
            (
                format!("{head}=.{rest}"),
                "its header segment is not base64url without padding".into(),
            ),
            (
                format!("{head}.{not_object}.c2ln"),
                "its claims segment is JSON but not an object".into(),
            ),
            (
                "a".repeat(100 * 1024),
                "it is 102400 bytes long, more than the 8192 allowed".into(),
            ),
        ];
        for (assertion, want) in cases {
            assert_eq!(
                error(&assertion),
                format!("client assertion is malformed: {want}")
            );
        }
        assert_eq!(
            error(&format!("{}.{rest}", URL_SAFE_NO_PAD.encode("{\"alg\":"))),
            "client assertion is malformed: its header segment is not JSON (unexpected end at column 7)"
        );
    }

    #[test]
    fn peeking_reads_claimed_identity_without_verifying() {
        let mut h = header(ClientAlg::Rs384);
        h["jku"] = json!(JWKS_URI);
        let forged = forge(&h, &claims(), &encoding_key(impostor()), Algorithm::RS384);
        assert_eq!(
            peek_assertion(&forged).unwrap(),
            AssertionPeek {
                client_id: Some(CLIENT.into()),
                kid: Some(key(ClientAlg::Rs384).kid().into()),
                jku: Some(JWKS_URI.into()),
            }
        );
        assert!(peek_assertion("a.b").is_err());
    }

    #[test]
    fn the_jti_cache_is_bounded_and_forgets_expired_entries() {
        let cache = JtiCache::with_limits(3, 2);
        assert_eq!(cache.check_and_remember("a", "1", NOW + 10, NOW), Ok(()));
        assert_eq!(cache.check_and_remember("a", "2", NOW + 20, NOW), Ok(()));
        assert_eq!(
            cache.check_and_remember("a", "3", NOW + 20, NOW),
            Err(ReplayError::ClientFull { limit: 2 })
        );
        assert_eq!(cache.check_and_remember("b", "1", NOW + 20, NOW), Ok(()));
        assert_eq!(
            cache.check_and_remember("c", "1", NOW + 20, NOW),
            Err(ReplayError::Full { limit: 3 })
        );
        assert_eq!(
            cache.check_and_remember("a", "1", NOW + 10, NOW + 9),
            Err(ReplayError::Reused)
        );
        // Once a's first assertion has expired its jti is forgotten, which makes room for one.
        assert_eq!(
            cache.check_and_remember("a", "1", NOW + 40, NOW + 10),
            Ok(())
        );
        assert_eq!(
            cache.check_and_remember("c", "1", NOW + 30, NOW + 10),
            Err(ReplayError::Full { limit: 3 })
        );
        assert_eq!(cache.len(), 3);
        assert_eq!(
            cache.check_and_remember("a", "1", NOW + 40, NOW + 11),
            Err(ReplayError::Reused)
        );
    }

    #[test]
    fn concurrent_replays_succeed_once() {
        let cache = Arc::new(JtiCache::new());
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let cache = Arc::clone(&cache);
                std::thread::spawn(move || {
                    cache.check_and_remember("a", "same", NOW + 60, NOW).is_ok()
                })
            })
            .collect();
        let successes = handles
            .into_iter()
            .map(|handle| handle.join().unwrap())
            .filter(|accepted| *accepted)
            .count();
        assert_eq!(successes, 1);
    }

    fn good_assertion() -> &'static str {
        static ASSERTION: OnceLock<String> = OnceLock::new();
        ASSERTION.get_or_init(|| key(ClientAlg::Es384).sign_assertion(&claims()).unwrap())
    }

    const ALPHABET: &[u8] =
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ";

    proptest! {
        #[test]
        fn random_bytes_never_validate(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let text = String::from_utf8_lossy(&bytes);
            prop_assert!(validate_with(&text, &registered()).is_err());
        }

        #[test]
        fn mutated_assertions_never_validate(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), 0..ALPHABET.len(), 0..3u8), 1..4),
        ) {
            let mut bytes = good_assertion().as_bytes().to_vec();
            for (at, letter, kind) in edits {
                let at = at.index(bytes.len().max(1));
                match kind {
                    0 if !bytes.is_empty() => bytes[at] = ALPHABET[letter],
                    1 => bytes.insert(at.min(bytes.len()), ALPHABET[letter]),
                    _ if !bytes.is_empty() => { bytes.remove(at); }
                    _ => {}
                }
            }
            let mutated = String::from_utf8(bytes).unwrap();
            let result = validate_with(&mutated, &registered());
            if mutated == good_assertion() {
                prop_assert!(result.is_ok());
            } else {
                prop_assert!(result.is_err(), "{mutated} validated");
            }
        }
    }
}
