//! SMART on FHIR: the authorization side of the simulator. So far, the scope grammar; the
//! authorization server, tokens and enforcement build on it (issue 4).

pub mod scopes;
