//! FHIR errors: every failure the server reports is an OperationOutcome with an HTTP status.

use serde_json::{Value, json};

/// The FHIR `IssueType` codes the server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueType {
    /// Content invalid against the specification or a profile.
    Invalid,
    /// A structural problem (malformed JSON, wrong shape).
    Structure,
    /// The resource or type was not found.
    NotFound,
    /// The resource was deleted.
    Deleted,
    /// The operation or format is not supported.
    NotSupported,
    /// A version conflict.
    Conflict,
    /// The request was too large, or too many requests were made.
    TooCostly,
    /// Business rules forbid it (e.g. a failed precondition).
    BusinessRule,
    /// Throttled by the rate limiter.
    Throttled,
    /// An injected or unexpected server failure.
    Exception,
    /// The request is not allowed.
    Forbidden,
    /// Authentication is missing or failed.
    Login,
    /// Information, not an error.
    Informational,
}

impl IssueType {
    fn code(self) -> &'static str {
        match self {
            Self::Invalid => "invalid",
            Self::Structure => "structure",
            Self::NotFound => "not-found",
            Self::Deleted => "deleted",
            Self::NotSupported => "not-supported",
            Self::Conflict => "conflict",
            Self::TooCostly => "too-costly",
            Self::BusinessRule => "business-rule",
            Self::Throttled => "throttled",
            Self::Exception => "exception",
            Self::Forbidden => "forbidden",
            Self::Login => "login",
            Self::Informational => "informational",
        }
    }
}

/// A failed FHIR interaction: the HTTP status and the issue to report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {diagnostics}")]
pub struct FhirError {
    /// The HTTP status code.
    pub status: u16,
    /// The issue type.
    pub issue: IssueType,
    /// What went wrong and what to do, for a person.
    pub diagnostics: String,
    /// Where in the request the problem is (a FHIRPath-like expression or a parameter name).
    pub expression: Option<String>,
}

impl FhirError {
    /// An error with the given status, issue type and message.
    pub fn new(status: u16, issue: IssueType, diagnostics: impl Into<String>) -> Self {
        Self {
            status,
            issue,
            diagnostics: diagnostics.into(),
            expression: None,
        }
    }

    /// Names where the problem is.
    pub fn at(mut self, expression: impl Into<String>) -> Self {
        self.expression = Some(expression.into());
        self
    }

    /// 400 Bad Request with issue `invalid`.
    pub fn bad_request(diagnostics: impl Into<String>) -> Self {
        Self::new(400, IssueType::Invalid, diagnostics)
    }

    /// 404 Not Found.
    pub fn not_found(diagnostics: impl Into<String>) -> Self {
        Self::new(404, IssueType::NotFound, diagnostics)
    }

    /// The OperationOutcome resource for this error.
    pub fn to_outcome(&self) -> Value {
        operation_outcome(
            "error",
            self.issue,
            &self.diagnostics,
            self.expression.as_deref(),
        )
    }
}

/// An OperationOutcome with one issue.
pub fn operation_outcome(
    severity: &str,
    issue: IssueType,
    diagnostics: &str,
    expression: Option<&str>,
) -> Value {
    let mut issue_json = json!({
        "severity": severity,
        "code": issue.code(),
        "diagnostics": diagnostics,
    });
    if let (Some(e), Value::Object(map)) = (expression, &mut issue_json) {
        map.insert("expression".into(), json!([e]));
    }
    json!({"resourceType": "OperationOutcome", "issue": [issue_json]})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_carries_code_message_and_location() {
        let e = FhirError::bad_request("bad date").at("birthdate");
        let o = e.to_outcome();
        assert_eq!(o["resourceType"], "OperationOutcome");
        assert_eq!(o["issue"][0]["code"], "invalid");
        assert_eq!(o["issue"][0]["diagnostics"], "bad date");
        assert_eq!(o["issue"][0]["expression"][0], "birthdate");
    }
}
