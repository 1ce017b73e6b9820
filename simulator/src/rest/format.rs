//! Content negotiation: this server speaks FHIR JSON only, and says so (406) when asked for
//! anything else through `_format` or `Accept`.

use crate::outcome::{FhirError, IssueType};
use crate::request::SimRequest;

/// Media types and `_format` values that mean FHIR JSON.
const JSON_FORMATS: &[&str] = &[
    "json",
    "application/json",
    "application/fhir+json",
    "application/json+fhir",
];

/// Checks `_format` and `Accept`; XML or other formats get 406.
pub(crate) fn negotiate(req: &SimRequest) -> Result<(), FhirError> {
    if let Some(format) = req.query_value("_format") {
        let media = format
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if !JSON_FORMATS.contains(&media.as_str()) {
            return Err(not_acceptable(&media));
        }
    }
    if let Some(accept) = req.header("accept") {
        let acceptable = accept.split(',').any(|part| {
            let media = part
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            media.is_empty()
                || media == "*/*"
                || media == "application/*"
                || JSON_FORMATS.contains(&media.as_str())
        });
        if !acceptable {
            return Err(not_acceptable(accept));
        }
    }
    Ok(())
}

fn not_acceptable(asked: &str) -> FhirError {
    FhirError::new(
        406,
        IssueType::NotSupported,
        format!(
            "format {asked:?} is not supported: this server returns application/fhir+json only"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderValue, Method};

    #[track_caller]
    fn check(query: &str, accept: Option<&'static str>, ok: bool) {
        let mut req = SimRequest::new(Method::GET, &format!("/x?{query}"));
        if let Some(a) = accept {
            req.headers.insert("accept", HeaderValue::from_static(a));
        }
        assert_eq!(negotiate(&req).is_ok(), ok, "{query} {accept:?}");
    }

    #[test]
    fn json_is_accepted_and_xml_refused() {
        check("", None, true);
        check("_format=json", None, true);
        check("_format=application/fhir%2Bjson", None, true);
        check("_format=xml", None, false);
        check("", Some("application/fhir+xml"), false);
        check(
            "",
            Some("application/fhir+xml, application/fhir+json;q=0.9"),
            true,
        );
        check("", Some("*/*"), true);
        check(
            "",
            Some("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
            true,
        );
    }
}
