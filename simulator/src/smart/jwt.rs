//! Compact JWTs: reading the three segments ourselves, and the checks every verifier in the
//! simulator shares — our own access and id tokens ([`super::keys`]) and client assertions
//! ([`super::assertion`]).
//!
//! jsonwebtoken verifies signatures, but its errors are too coarse for an `error_description`
//! ("InvalidAudience") and it does not enforce `crit`. So verifiers first read the token with
//! [`parse_compact`], check the header and name exactly what is wrong, and only then hand the
//! token to jsonwebtoken with an explicit `Validation`. Every value echoed back in a message goes
//! through [`shown`], so a 16 KiB `kid` cannot flood a log line.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The longest token (bytes) a verifier reads; anything longer is refused unparsed.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Header parameters no verifier here accepts: `crit` extensions we do not understand (RFC 7515
/// §4.1.11), and keys or key locations carried by the token itself (CVE-2018-0114).
pub const FORBIDDEN_HEADERS: [&str; 5] = ["crit", "jku", "jwk", "x5u", "x5c"];

/// The longest attacker-supplied value (in characters) echoed back in an error message.
const SHOWN_MAX_CHARS: usize = 64;

/// One of the three segments of a compact JWT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment {
    /// The JOSE header.
    Header,
    /// The claims set.
    Claims,
    /// The signature.
    Signature,
}

impl std::fmt::Display for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Header => "header",
            Self::Claims => "claims",
            Self::Signature => "signature",
        })
    }
}

/// Why a string is not a compact JWT at all. Messages complete "… is malformed: ".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MalformedJwt {
    /// Longer than the verifier reads.
    #[error("it is {len} bytes long, more than the {max} allowed")]
    TooLong {
        /// The token's length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not three dot-separated segments.
    #[error("it has {0} segments separated by '.', expected 3")]
    SegmentCount(usize),
    /// A segment is not unpadded base64url.
    #[error("its {0} segment is not base64url without padding")]
    BadBase64(Segment),
    /// The header or claims segment does not decode to JSON.
    #[error("its {0} segment is not JSON ({1})")]
    BadJson(Segment, String),
    /// The header or claims segment is JSON but not an object.
    #[error("its {0} segment is JSON but not an object")]
    NotAnObject(Segment),
    /// The signature segment is empty (an unsigned token).
    #[error("its signature segment is empty")]
    EmptySignature,
}

/// A compact JWT split and decoded, signature not yet checked.
#[derive(Debug, Clone)]
pub struct CompactJwt<'a> {
    /// The decoded JOSE header.
    pub header: Map<String, Value>,
    /// The decoded claims set.
    pub claims: Map<String, Value>,
    /// `header.claims`, the bytes the signature covers.
    pub signing_input: &'a str,
    /// The decoded signature.
    pub signature: Vec<u8>,
}

/// Splits `token` into its three segments and decodes header, claims and signature, refusing
/// tokens longer than `max_len`, padded or non-url base64, non-JSON and non-object segments.
pub fn parse_compact(token: &str, max_len: usize) -> Result<CompactJwt<'_>, MalformedJwt> {
    if token.len() > max_len {
        return Err(MalformedJwt::TooLong {
            len: token.len(),
            max: max_len,
        });
    }
    let parts: Vec<&str> = token.split('.').collect();
    let [header, claims, signature] = parts[..] else {
        return Err(MalformedJwt::SegmentCount(parts.len()));
    };
    let header = decode_object(header, Segment::Header)?;
    let claims = decode_object(claims, Segment::Claims)?;
    if signature.is_empty() {
        return Err(MalformedJwt::EmptySignature);
    }
    let signature = decode_segment(signature, Segment::Signature)?;
    let signing_input = &token[..token.len() - parts[2].len() - 1];
    Ok(CompactJwt {
        header,
        claims,
        signing_input,
        signature,
    })
}

fn decode_segment(text: &str, segment: Segment) -> Result<Vec<u8>, MalformedJwt> {
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| MalformedJwt::BadBase64(segment))
}

fn decode_object(text: &str, segment: Segment) -> Result<Map<String, Value>, MalformedJwt> {
    let bytes = decode_segment(text, segment)?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(MalformedJwt::NotAnObject(segment)),
        Err(e) => Err(MalformedJwt::BadJson(segment, json_error_summary(&e))),
    }
}

/// serde_json's message without the attacker-controlled parts: only the category and position.
fn json_error_summary(e: &serde_json::Error) -> String {
    let what = match e.classify() {
        serde_json::error::Category::Io => "read error",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "unexpected data",
        serde_json::error::Category::Eof => "unexpected end",
    };
    format!("{what} at column {}", e.column())
}

/// The first of `names` present in `header`, if any.
pub fn first_present<'n>(header: &Map<String, Value>, names: &[&'n str]) -> Option<&'n str> {
    names
        .iter()
        .copied()
        .find(|name| header.contains_key(*name))
}

/// Why a header parameter or claim cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldError {
    /// Absent.
    Missing(&'static str),
    /// Present with the wrong JSON type; the second field says what was expected.
    WrongType(&'static str, &'static str),
}

/// The string member `name` of `map`: `Ok(None)` when absent, an error when not a string.
pub fn string_field<'m>(
    map: &'m Map<String, Value>,
    name: &'static str,
) -> Result<Option<&'m str>, FieldError> {
    match map.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(FieldError::WrongType(name, "a string")),
    }
}

/// The string member `name` of `map`, which must be present.
pub fn required_string<'m>(
    map: &'m Map<String, Value>,
    name: &'static str,
) -> Result<&'m str, FieldError> {
    string_field(map, name)?.ok_or(FieldError::Missing(name))
}

/// The NumericDate claim `name` (seconds since the epoch; fractions are truncated), `Ok(None)`
/// when absent.
pub fn numeric_date(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<i64>, FieldError> {
    let Some(value) = claims.get(name) else {
        return Ok(None);
    };
    let wrong = FieldError::WrongType(name, "a number of seconds since 1970");
    if let Some(n) = value.as_i64() {
        return Ok(Some(n));
    }
    match value.as_f64() {
        Some(f) if f.is_finite() && f.abs() < 1e15 => Ok(Some(f.trunc() as i64)),
        _ => Err(wrong),
    }
}

/// The NumericDate claim `name`, which must be present.
pub fn required_date(claims: &Map<String, Value>, name: &'static str) -> Result<i64, FieldError> {
    numeric_date(claims, name)?.ok_or(FieldError::Missing(name))
}

/// The `aud` claim as a list: a string is a list of one. Present but of another type, or an
/// array holding a non-string, is an error; absent is `Missing`.
pub fn audiences(claims: &Map<String, Value>) -> Result<Vec<&str>, FieldError> {
    let wrong = FieldError::WrongType("aud", "a string or an array of strings");
    match claims.get("aud") {
        None => Err(FieldError::Missing("aud")),
        Some(Value::String(s)) => Ok(vec![s.as_str()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().ok_or(wrong.clone()))
            .collect(),
        Some(_) => Err(wrong),
    }
}

/// `unix` as an RFC 3339 UTC instant ("2026-11-23T10:00:00Z"), or the raw number when it is out
/// of range.
pub fn format_instant(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| format!("{unix} seconds since 1970"))
}

/// `value` quoted as a Rust debug string (control characters escaped), cut to a readable
/// length: the way every attacker-supplied value appears in an error message.
pub fn shown(value: &str) -> String {
    if value.chars().count() <= SHOWN_MAX_CHARS {
        return format!("{value:?}");
    }
    let cut: String = value.chars().take(SHOWN_MAX_CHARS).collect();
    format!("{cut:?}…")
}

/// Why a token we issued was refused. Messages are lower-case and say exactly what is wrong;
/// they are meant for `WWW-Authenticate` `error_description` and the access log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Not a compact JWT.
    #[error("token is malformed: {0}")]
    Malformed(#[from] MalformedJwt),
    /// A header parameter has the wrong JSON type.
    #[error("token header {name:?} must be {expected}")]
    HeaderType {
        /// The parameter.
        name: &'static str,
        /// The type it must have.
        expected: &'static str,
    },
    /// No `alg` header.
    #[error("token header has no algorithm (alg)")]
    MissingAlgorithm,
    /// No `kid` header.
    #[error("token header has no key id (kid)")]
    MissingKeyId,
    /// `crit`, `jku`, `jwk`, `x5u` or `x5c` in the header.
    #[error("token header {name:?} is not allowed")]
    ForbiddenHeader {
        /// The parameter.
        name: &'static str,
    },
    /// The `kid` names no current or retired key of this environment.
    #[error("token signed by unknown key id {kid}")]
    UnknownKeyId {
        /// The `kid`, as shown.
        kid: String,
    },
    /// The header's `alg` is not the algorithm of the key its `kid` names.
    #[error("token algorithm {alg} does not match key {kid}, which signs {expected}")]
    AlgorithmMismatch {
        /// The header's `alg`, as shown.
        alg: String,
        /// The key id, as shown.
        kid: String,
        /// The key's algorithm.
        expected: &'static str,
    },
    /// The `typ` header is absent or not the one this kind of token carries.
    #[error("token type {typ} is not {expected:?}")]
    WrongType {
        /// The header's `typ`, as shown, or "(none)".
        typ: String,
        /// The expected `typ`.
        expected: &'static str,
    },
    /// A token of another kind (an id token where an access token was expected, or back).
    #[error("token is {found}, not {expected}")]
    WrongKind {
        /// What the token is.
        found: &'static str,
        /// What was expected.
        expected: &'static str,
    },
    /// The signature does not verify with the key.
    #[error("token signature is invalid")]
    BadSignature,
    /// A required claim is absent.
    #[error("token has no {claim:?} claim")]
    MissingClaim {
        /// The claim.
        claim: &'static str,
    },
    /// A claim has the wrong JSON type.
    #[error("token claim {claim:?} must be {expected}")]
    ClaimType {
        /// The claim.
        claim: &'static str,
        /// The type it must have.
        expected: &'static str,
    },
    /// `iss` is not this environment's issuer.
    #[error("token issuer {found} is not this environment's issuer {expected}")]
    WrongIssuer {
        /// The token's `iss`, as shown.
        found: String,
        /// The environment's issuer, as shown.
        expected: String,
    },
    /// `aud` does not name this audience.
    #[error("token audience {found} does not include {expected}")]
    WrongAudience {
        /// The token's `aud`, as shown.
        found: String,
        /// The expected audience, as shown.
        expected: String,
    },
    /// `exp` is not after the simulated now.
    #[error("token expired at {at}")]
    Expired {
        /// `exp` as an RFC 3339 instant.
        at: String,
    },
    /// `nbf` is after the simulated now.
    #[error("token is not valid before {at}")]
    NotYetValid {
        /// `nbf` as an RFC 3339 instant.
        at: String,
    },
    /// `iat` is after the simulated now.
    #[error("token was issued in the future, at {at}")]
    IssuedInFuture {
        /// `iat` as an RFC 3339 instant.
        at: String,
    },
    /// jsonwebtoken refused the token for a reason the checks above did not name.
    #[error("token was rejected: {0}")]
    Rejected(String),
}

impl JwtError {
    /// The error for a bad header parameter.
    pub fn from_header_field(e: FieldError) -> Self {
        match e {
            FieldError::Missing("kid") => Self::MissingKeyId,
            FieldError::Missing(_) => Self::MissingAlgorithm,
            FieldError::WrongType(name, expected) => Self::HeaderType { name, expected },
        }
    }

    /// The error for a bad claim.
    pub fn from_claim_field(e: FieldError) -> Self {
        match e {
            FieldError::Missing(claim) => Self::MissingClaim { claim },
            FieldError::WrongType(claim, expected) => Self::ClaimType { claim, expected },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn token(header: &Value, claims: &Value) -> String {
        format!(
            "{}.{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes()),
            b64(b"sig")
        )
    }

    #[test]
    fn a_well_formed_token_splits_and_decodes() {
        let t = token(&json!({"alg": "ES256"}), &json!({"iss": "x"}));
        let jwt = parse_compact(&t, MAX_TOKEN_LEN).unwrap();
        assert_eq!(jwt.header["alg"], "ES256");
        assert_eq!(jwt.claims["iss"], "x");
        assert_eq!(jwt.signature, b"sig");
        assert_eq!(jwt.signing_input, &t[..t.rfind('.').unwrap()]);
    }

    #[test]
    fn malformed_tokens_say_why() {
        let claims = b64(b"{}");
        let cases = [
            ("a.b".to_string(), MalformedJwt::SegmentCount(2)),
            ("a.b.c.d".to_string(), MalformedJwt::SegmentCount(4)),
            (
                format!("e30=.{claims}.c2ln"),
                MalformedJwt::BadBase64(Segment::Header),
            ),
            (
                format!("{}.{claims}.c2ln", b64(b"[1]")),
                MalformedJwt::NotAnObject(Segment::Header),
            ),
            (
                format!("{claims}.{}.c2ln", b64(b"\"s\"")),
                MalformedJwt::NotAnObject(Segment::Claims),
            ),
            (format!("{claims}.{claims}."), MalformedJwt::EmptySignature),
            (
                format!("{claims}.{claims}.c2l+"),
                MalformedJwt::BadBase64(Segment::Signature),
            ),
        ];
        for (t, want) in cases {
            assert_eq!(parse_compact(&t, MAX_TOKEN_LEN).unwrap_err(), want, "{t}");
        }
        let bad_json = format!("{}.{claims}.c2ln", b64(b"{\"a\":"));
        let err = parse_compact(&bad_json, MAX_TOKEN_LEN).unwrap_err();
        assert!(matches!(err, MalformedJwt::BadJson(Segment::Header, _)));
        assert_eq!(
            err.to_string(),
            "its header segment is not JSON (unexpected end at column 5)"
        );
    }

    #[test]
    fn long_tokens_are_refused_before_parsing() {
        let t = "a".repeat(100);
        assert_eq!(
            parse_compact(&t, 99).unwrap_err(),
            MalformedJwt::TooLong { len: 100, max: 99 }
        );
    }

    #[test]
    fn numeric_dates_accept_integers_and_fractions_only() {
        let claims = json!({"a": 5, "b": 5.9, "c": "5", "d": 1e300});
        let claims = claims.as_object().unwrap();
        assert_eq!(numeric_date(claims, "a"), Ok(Some(5)));
        assert_eq!(numeric_date(claims, "b"), Ok(Some(5)));
        assert!(numeric_date(claims, "c").is_err());
        assert!(numeric_date(claims, "d").is_err());
        assert_eq!(numeric_date(claims, "e"), Ok(None));
        assert_eq!(required_date(claims, "e"), Err(FieldError::Missing("e")));
    }

    #[test]
    fn audiences_are_strings_or_arrays_of_strings() {
        let one = json!({"aud": "x"});
        assert_eq!(audiences(one.as_object().unwrap()), Ok(vec!["x"]));
        let two = json!({"aud": ["x", "y"]});
        assert_eq!(audiences(two.as_object().unwrap()), Ok(vec!["x", "y"]));
        let bad = json!({"aud": ["x", 1]});
        assert!(audiences(bad.as_object().unwrap()).is_err());
        assert_eq!(audiences(&Map::new()), Err(FieldError::Missing("aud")));
    }

    #[test]
    fn instants_and_shown_values_are_readable() {
        assert_eq!(format_instant(1_795_428_000), "2026-11-23T10:00:00Z");
        assert_eq!(shown("abc"), "\"abc\"");
        assert_eq!(shown("a\nb"), "\"a\\nb\"");
        let long = shown(&"k".repeat(1000));
        assert!(long.len() < 80 && long.ends_with('…'), "{long}");
    }
}
