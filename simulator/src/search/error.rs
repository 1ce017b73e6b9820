//! Errors raised while parsing a search request; each becomes an OperationOutcome (HTTP 400).

use thiserror::Error;

/// Why a search request was rejected. Messages are lower-case, name the parameter and say what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SearchError {
    /// The resource type is not searchable on this server.
    #[error("resource type '{0}' is not supported for search")]
    UnsupportedType(String),
    /// A parameter name is not defined for the resource type (strict handling only).
    #[error("parameter '{param}': unknown search parameter for {resource_type}")]
    UnknownParameter {
        /// The parameter as written in the request.
        param: String,
        /// The resource type being searched.
        resource_type: String,
    },
    /// A modifier is not defined or not allowed for the parameter's type.
    #[error("parameter '{param}': modifier ':{modifier}' is not supported{detail}")]
    UnsupportedModifier {
        /// The parameter as written in the request.
        param: String,
        /// The modifier without its colon.
        modifier: String,
        /// Optional extra explanation, starting with a separator such as " (...)".
        detail: String,
    },
    /// A value could not be parsed or is not allowed.
    #[error("parameter '{param}': {message}")]
    InvalidValue {
        /// The parameter as written in the request.
        param: String,
        /// What is wrong with the value.
        message: String,
    },
    /// A feature the engine deliberately does not implement.
    #[error("parameter '{param}': {message}")]
    NotSupported {
        /// The parameter as written in the request.
        param: String,
        /// What is not supported and, where useful, what to use instead.
        message: String,
    },
    /// A control parameter that may appear only once was repeated.
    #[error("parameter '{0}': given more than once")]
    Repeated(String),
}

impl SearchError {
    /// Builds an [`SearchError::InvalidValue`].
    pub(crate) fn invalid(param: &str, message: impl Into<String>) -> Self {
        Self::InvalidValue {
            param: param.to_owned(),
            message: message.into(),
        }
    }

    /// Builds a [`SearchError::NotSupported`].
    pub(crate) fn unsupported(param: &str, message: impl Into<String>) -> Self {
        Self::NotSupported {
            param: param.to_owned(),
            message: message.into(),
        }
    }
}
