//! Random values from the operating system: session ids, OAuth `state`, PKCE verifiers.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::AppError;

/// `bytes` random bytes as base64url without padding.
pub(crate) fn token(bytes: usize) -> Result<String, AppError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf)
        .map_err(|e| AppError::Internal(format!("the system random source failed: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(buf))
}

/// A PKCE pair (RFC 7636, S256).
#[derive(Debug, Clone)]
pub(crate) struct Pkce {
    /// The secret the app keeps until the token request (43 characters, 256 bits).
    pub(crate) verifier: String,
    /// base64url(SHA-256(verifier)), sent on the authorize request.
    pub(crate) challenge: String,
}

impl Pkce {
    /// A new random pair.
    pub(crate) fn new() -> Result<Self, AppError> {
        let verifier = token(32)?;
        let challenge = challenge_of(&verifier);
        Ok(Self {
            verifier,
            challenge,
        })
    }
}

/// The S256 challenge of a verifier.
pub(crate) fn challenge_of(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_and_distinct() {
        let a = token(16).expect("random");
        let b = token(16).expect("random");
        assert_eq!(a.len(), 22, "128 bits in base64url");
        assert_ne!(a, b);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
    }

    #[test]
    fn pkce_uses_s256() {
        // RFC 7636 appendix B.
        assert_eq!(
            challenge_of("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let pair = Pkce::new().expect("random");
        assert_eq!(pair.verifier.len(), 43);
        assert_eq!(pair.challenge, challenge_of(&pair.verifier));
    }
}
