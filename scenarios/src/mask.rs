//! Masking: every text a finding carries is a [`Masked`], and only a [`Masker`] (or a fixed
//! string written in this code base) makes one. The masker replaces canary values (a synthetic
//! patient's name, MRN, phone, resource ids…) in their plain, URL-encoded and JSON-escaped
//! forms with typed placeholders (`[PHI:B.mrn]`), and credentials (tokens, codes, secrets,
//! assertions, cookies, anything JWT-shaped) with `[SECRET:…]`. There is no way to unmask.

use std::fmt;

use serde::Serialize;

/// Text that has been through a [`Masker`] (or is fixed text of this code base).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Masked(String);

impl Masked {
    /// Fixed text written in fhirdrill's own code (never input).
    pub fn fixed(text: &'static str) -> Masked {
        Masked(text.to_string())
    }

    /// An excerpt cut from text that was masked whole (crate-internal: cutting masked text
    /// keeps it masked when the cut avoids placeholders).
    pub(crate) fn from_masked_excerpt(text: String) -> Masked {
        Masked(text)
    }

    /// The masked text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Masked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Names whose values are credentials wherever they appear (`name=value`, `"name":"value"`).
const CREDENTIAL_NAMES: &[&str] = &[
    "access_token",
    "accessToken",
    "refresh_token",
    "refreshToken",
    "id_token",
    "idToken",
    "code_verifier",
    "client_assertion",
    "client_secret",
    "clientSecret",
    "password",
    "token",
];

/// OAuth parameters that are credentials in a URL or form (`code=…`), but ordinary words in
/// FHIR JSON (`"code": "not-found"`), so only their `name=value` form is masked.
const CREDENTIAL_PARAMETERS: &[&str] = &["code", "state", "launch"];

/// Replaces canaries and credentials with placeholders.
#[derive(Debug, Clone, Default)]
pub struct Masker {
    /// (value, placeholder), longest value first, with every encoded form listed.
    values: Vec<(String, String)>,
}

impl Masker {
    /// A masker for `canaries` and `secrets`, each `(raw value, placeholder)`. Values shorter
    /// than four characters are ignored (they would mask ordinary text).
    pub fn new(canaries: Vec<(String, String)>, secrets: Vec<(String, String)>) -> Masker {
        let mut masker = Masker::default();
        masker.extend(canaries.into_iter().chain(secrets).collect());
        masker
    }

    /// Adds more values to mask (e.g. a token issued during the run); values shorter than four
    /// characters are ignored. Longest first, so a value inside another is masked after it.
    pub fn extend(&mut self, more: Vec<(String, String)>) {
        for (value, placeholder) in more {
            if value.chars().count() < 4 {
                continue;
            }
            for form in encodings(&value) {
                self.values.push((form, placeholder.clone()));
            }
        }
        self.values
            .sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        self.values.dedup_by(|a, b| a.0 == b.0);
    }

    /// `text` with every known value and every credential replaced.
    pub fn mask(&self, text: &str) -> Masked {
        let mut out = text.to_string();
        for (value, placeholder) in &self.values {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), placeholder);
            }
        }
        Masked(mask_credentials(&out))
    }

    /// The placeholders of the known values found in `text` but not in `sent` (a value the
    /// harness itself sent and the target echoed back is no leak), each once, with the raw
    /// value found (to centre an excerpt on; never to be reported).
    pub fn found_in<'a>(&'a self, text: &str, sent: &str) -> Vec<(&'a str, &'a str)> {
        let mut found: Vec<(&str, &str)> = Vec::new();
        for (value, placeholder) in &self.values {
            if placeholder.starts_with("[SECRET") {
                continue;
            }
            if text.contains(value.as_str())
                && !sent.contains(value.as_str())
                && !found.iter().any(|(p, _)| p == placeholder)
            {
                found.push((placeholder.as_str(), value.as_str()));
            }
        }
        found
    }

    /// Every placeholder it can write (for SARIF `redactionTokens`).
    pub fn placeholders(&self) -> Vec<String> {
        let mut all: Vec<String> = self.values.iter().map(|(_, p)| p.clone()).collect();
        all.push("[SECRET:credential]".to_string());
        all.push("[SECRET:jwt]".to_string());
        all.sort();
        all.dedup();
        all
    }
}

/// The forms a value may take in a URL, a form body or JSON.
fn encodings(value: &str) -> Vec<String> {
    let mut forms = vec![value.to_string()];
    let percent = percent_encode(value);
    forms.push(percent.clone());
    forms.push(percent.replace("%20", "+"));
    let json = serde_json::to_string(value).unwrap_or_default();
    if json.len() >= 2 {
        forms.push(json[1..json.len() - 1].to_string());
    }
    forms.sort();
    forms.dedup();
    forms
}

/// Percent-encodes everything but RFC 3986 unreserved characters (how a value appears in a
/// URL's path or query).
pub fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Masks credential values by name, bearer and cookie values, and JWT-shaped strings.
fn mask_credentials(text: &str) -> String {
    let mut out = mask_jwts(text);
    let url_stops = ['&', ' ', '"', '\'', '\n', '\r', '#'];
    for name in CREDENTIAL_NAMES.iter().chain(CREDENTIAL_PARAMETERS) {
        out = mask_after(&out, &format!("{name}="), &url_stops);
    }
    for name in CREDENTIAL_NAMES {
        out = mask_after(&out, &format!("\"{name}\":\""), &['"']);
        out = mask_after(&out, &format!("\"{name}\": \""), &['"']);
    }
    for prefix in [
        "Bearer ",
        "bearer ",
        "Basic ",
        "Cookie: ",
        "cookie: ",
        "Set-Cookie: ",
    ] {
        out = mask_after(&out, prefix, &['"', '\n', '\r', ' ', ',']);
    }
    out
}

/// Replaces the value after each `prefix` (up to a stop character) with a placeholder; a
/// prefix that is part of a longer name (`xcode=`) is left alone.
fn mask_after(text: &str, prefix: &str, stops: &[char]) -> String {
    const PLACEHOLDER: &str = "[SECRET:credential]";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(prefix) {
        let before = &rest[..at];
        let preceded_by_name_char = before
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        out.push_str(before);
        out.push_str(prefix);
        let value_start = at + prefix.len();
        let value_len = rest[value_start..]
            .find(|c| stops.contains(&c))
            .unwrap_or(rest.len() - value_start);
        let value = &rest[value_start..value_start + value_len];
        let already_masked = value.starts_with("[SECRET:") || value.starts_with("[PHI:");
        if preceded_by_name_char || value.is_empty() || already_masked {
            out.push_str(value);
        } else {
            out.push_str(PLACEHOLDER);
        }
        rest = &rest[value_start + value_len..];
    }
    out.push_str(rest);
    out
}

/// Replaces `eyJ…​.…​.…` (a JWT or JWS) with `[SECRET:jwt]`.
fn mask_jwts(text: &str) -> String {
    let is_b64 = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '=';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("eyJ") {
        out.push_str(&rest[..at]);
        let candidate = &rest[at..];
        let len = candidate
            .find(|c: char| !(is_b64(c) || c == '.'))
            .unwrap_or(candidate.len());
        let token = &candidate[..len];
        if token.matches('.').count() >= 1 && token.len() >= 12 {
            out.push_str("[SECRET:jwt]");
        } else {
            out.push_str(token);
        }
        rest = &candidate[len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn masker() -> Masker {
        Masker::new(
            vec![
                ("Jane Q Roe".into(), "[PHI:B.name]".into()),
                ("MRN-000123".into(), "[PHI:B.mrn]".into()),
            ],
            vec![("s3cr3t-value".into(), "[SECRET:client_secret]".into())],
        )
    }

    #[test]
    fn canaries_are_masked_in_every_encoding() {
        let m = masker();
        for text in [
            "name Jane Q Roe",
            "q=Jane%20Q%20Roe",
            "q=Jane+Q+Roe",
            "id MRN-000123 and s3cr3t-value",
        ] {
            let masked = m.mask(text);
            for raw in ["Jane", "MRN-000123", "s3cr3t"] {
                assert!(!masked.as_str().contains(raw), "{masked} still has {raw}");
            }
        }
    }

    #[test]
    fn credentials_are_masked_by_name_and_shape() {
        let m = Masker::default();
        let text = "GET /cb?code=abc123&state=xyz {\"access_token\":\"tok\"} Authorization: Bearer qqq eyJhbGciOi.eyJzdWIi.sig";
        assert!(
            m.mask("{\"code\":\"not-found\"}")
                .as_str()
                .contains("not-found")
        );
        let masked = m.mask(text);
        for raw in ["abc123", "xyz", "\"tok\"", "qqq", "eyJhbGciOi"] {
            assert!(!masked.as_str().contains(raw), "{masked} still has {raw}");
        }
        assert_eq!(m.mask("barcode=12").as_str(), "barcode=12");
    }

    #[test]
    fn values_the_request_carried_are_not_leaks() {
        let m = masker();
        let found = m.found_in("{\"mrn\":\"MRN-000123\"}", "/api?mrn=MRN-000123");
        assert!(found.is_empty());
        let found = m.found_in("{\"name\":\"Jane Q Roe\"}", "/api/patients/x");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, "[PHI:B.name]");
    }

    proptest! {
        /// No canary survives masking, whatever surrounds it and however it is encoded.
        #[test]
        fn no_canary_survives(
            canary in "[A-Za-z0-9][A-Za-z0-9 .'-]{3,20}[A-Za-z0-9]",
            before in "[ -~]{0,40}",
            after in "[ -~]{0,40}",
            form in 0usize..4,
        ) {
            let m = Masker::new(vec![(canary.clone(), "[PHI:x]".into())], vec![]);
            let encoded = match form {
                0 => canary.clone(),
                1 => percent_encode(&canary),
                2 => percent_encode(&canary).replace("%20", "+"),
                _ => serde_json::to_string(&canary).unwrap_or_default(),
            };
            let masked = m.mask(&format!("{before}{encoded}{after}"));
            prop_assert!(!masked.as_str().contains(&canary));
        }
    }
}
