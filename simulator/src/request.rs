//! Requests and responses as plain data, independent of the HTTP library: handlers are
//! functions from a [`SimRequest`] to a [`SimResponse`], so they are tested without a socket.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, Method};
use serde_json::Value;

use crate::outcome::{FhirError, IssueType};

/// A request as the simulator sees it.
#[derive(Debug, Clone)]
pub struct SimRequest {
    /// The HTTP method.
    pub method: Method,
    /// The path, percent-decoded, without the query.
    pub path: String,
    /// The query parameters, decoded, in request order.
    pub query: Vec<(String, String)>,
    /// The request headers.
    pub headers: HeaderMap,
    /// The body (already bounded by the server's size limit).
    pub body: Bytes,
    /// The peer address, when known.
    pub peer: Option<SocketAddr>,
}

impl SimRequest {
    /// A request with no headers or body (for tests and internal calls).
    pub fn new(method: Method, path_and_query: &str) -> Self {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        Self {
            method,
            path: percent_decode(path),
            query: parse_query(query),
            headers: HeaderMap::new(),
            body: Bytes::new(),
            peer: None,
        }
    }

    /// The same request with `Authorization: Bearer <token>`.
    pub fn bearer(mut self, token: &str) -> Self {
        if let Ok(value) = http::HeaderValue::from_str(&format!("Bearer {token}")) {
            self.headers.insert(http::header::AUTHORIZATION, value);
        }
        self
    }

    /// A header's value as text, if present and valid.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The media type of the body (`Content-Type` without parameters), or "" when absent.
    pub fn media_type(&self) -> String {
        media_type(self.header("content-type").unwrap_or(""))
    }

    /// The first value of a query parameter.
    pub fn query_value(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether `Prefer` contains `token` (e.g. `handling=strict`, `return=minimal`).
    pub fn prefers(&self, token: &str) -> bool {
        self.headers
            .get_all("prefer")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split([',', ';']))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// The body parsed as a JSON object, after checking its media type.
    pub fn json_body(&self) -> Result<Value, FhirError> {
        check_content_type(self.header("content-type"))?;
        let value: Value = serde_json::from_slice(&self.body).map_err(|e| {
            FhirError::new(
                400,
                IssueType::Structure,
                format!("the body is not valid JSON: {e}"),
            )
            .at(format!("line {}, column {}", e.line(), e.column()))
        })?;
        if !value.is_object() {
            return Err(FhirError::new(
                400,
                IssueType::Structure,
                "the body must be a JSON object (a FHIR resource)",
            ));
        }
        Ok(value)
    }
}

/// FHIR accepts `application/fhir+json` and `application/json` (with parameters such as charset).
fn check_content_type(content_type: Option<&str>) -> Result<(), FhirError> {
    let Some(ct) = content_type else {
        return Err(FhirError::new(
            415,
            IssueType::NotSupported,
            "missing Content-Type: send application/fhir+json",
        ));
    };
    let media = media_type(ct);
    if media == "application/fhir+json" || media == "application/json" {
        Ok(())
    } else {
        Err(FhirError::new(
            415,
            IssueType::NotSupported,
            format!("unsupported Content-Type {media}: this server reads application/fhir+json"),
        ))
    }
}

/// The media type of a `Content-Type` value, lower-cased, without parameters.
pub fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// A response as plain data.
#[derive(Debug, Clone, PartialEq)]
pub struct SimResponse {
    /// HTTP status.
    pub status: u16,
    /// Headers, in order.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl SimResponse {
    /// A JSON response with the given media type (any serializable value: a `Value`, or a
    /// struct that borrows stored resources instead of cloning them).
    pub fn json(
        status: u16,
        value: &(impl serde::Serialize + ?Sized),
        pretty: bool,
        media_type: &str,
    ) -> Self {
        let body = if pretty {
            serde_json::to_vec_pretty(value)
        } else {
            serde_json::to_vec(value)
        }
        .unwrap_or_default();
        Self {
            status,
            headers: vec![(
                "content-type".into(),
                format!("{media_type}; charset=utf-8"),
            )],
            body,
        }
    }

    /// A FHIR JSON response.
    pub fn fhir(status: u16, value: &(impl serde::Serialize + ?Sized), pretty: bool) -> Self {
        Self::json(status, value, pretty, "application/fhir+json")
    }

    /// A response with no body.
    pub fn empty(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// The OperationOutcome response of an error.
    pub fn error(error: &FhirError, pretty: bool) -> Self {
        Self::fhir(error.status, &error.to_outcome(), pretty)
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// A header's value, if set.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Decodes `application/x-www-form-urlencoded` pairs (a URL query or a `_search` body).
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Percent-decodes a path (invalid UTF-8 is replaced, and then matches no route).
pub fn percent_decode(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).and_then(|b| hex(*b)),
            bytes.get(i + 2).and_then(|b| hex(*b)),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_path_are_decoded() {
        let r = SimRequest::new(
            Method::GET,
            "/a%20b/Patient?name=J%C3%B6rg&x=1+2&code=a%7Cb",
        );
        assert_eq!(r.path, "/a b/Patient");
        assert_eq!(r.query_value("name"), Some("Jörg"));
        assert_eq!(r.query_value("x"), Some("1 2"));
        assert_eq!(r.query_value("code"), Some("a|b"));
    }

    #[test]
    fn content_types() {
        assert!(check_content_type(Some("application/fhir+json; charset=utf-8")).is_ok());
        assert!(check_content_type(Some("application/json")).is_ok());
        assert_eq!(
            check_content_type(Some("application/xml")).map_err(|e| e.status),
            Err(415)
        );
        assert_eq!(check_content_type(None).map_err(|e| e.status), Err(415));
    }
}
