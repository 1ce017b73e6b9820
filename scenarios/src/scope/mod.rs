//! The scope family: what an app asks for, is granted, and uses. SMART scopes are the
//! integration's statement of "minimum necessary" (45 CFR 164.502(b)); these scenarios compare
//! the statement with what the app actually does.

use std::collections::BTreeSet;

use crate::cx::AccessEntry;

/// A data scope: `patient/Observation.rs`, `user/*.read`, `system/Patient.r`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataScope {
    /// `patient`, `user` or `system`.
    pub level: String,
    /// A resource type, or `*`.
    pub resource: String,
    /// The SMART v2 permissions it grants, as a set of `c r u d s` (v1 `read` = `rs`,
    /// `write` = `cud`, `*` = all).
    pub permissions: String,
    /// A v2 query restriction (`category=laboratory`), if any.
    pub query: Option<String>,
}

impl DataScope {
    /// The data scope in `text`, if it is one (`openid`, `launch/patient`… are not).
    pub fn parse(text: &str) -> Option<DataScope> {
        let (level, rest) = text.split_once('/')?;
        if !matches!(level, "patient" | "user" | "system") {
            return None;
        }
        let (rest, query) = match rest.split_once('?') {
            Some((scope, query)) => (scope, Some(query.to_string())),
            None => (rest, None),
        };
        let (resource, permissions) = rest.split_once('.')?;
        let permissions: String = match permissions {
            "read" => "rs".to_string(),
            "write" => "cud".to_string(),
            "*" => "cruds".to_string(),
            v2 => "cruds".chars().filter(|c| v2.contains(*c)).collect(),
        };
        Some(DataScope {
            level: level.to_string(),
            resource: resource.to_string(),
            permissions,
            query,
        })
    }

    /// Whether everything this scope grants is also granted by `other` (same level, a type
    /// `other` covers, no permission it lacks, and no looser query restriction).
    pub fn within(&self, other: &DataScope) -> bool {
        self.level == other.level
            && (other.resource == "*" || other.resource == self.resource)
            && self
                .permissions
                .chars()
                .all(|p| other.permissions.contains(p))
            && (other.query.is_none() || other.query == self.query)
    }

    /// Whether it allows reading (v1 `read`/`*`, v2 containing `r` or `s`).
    pub fn reads(&self) -> bool {
        self.permissions.contains('r') || self.permissions.contains('s')
    }

    /// Whether it covers reading `resource_type`.
    pub fn covers(&self, resource_type: &str) -> bool {
        self.reads() && (self.resource == "*" || self.resource == resource_type)
    }
}

/// A FHIR request the app made with this user's token.
pub(crate) fn user_request_of(entry: &AccessEntry, client_id: &str, fhir_user: &str) -> bool {
    entry.channel == "fhir"
        && entry.client_id.as_deref() == Some(client_id)
        && entry.user.as_deref() == Some(fhir_user)
}

/// The data scopes of a space-separated scope string.
pub fn data_scopes(text: &str) -> Vec<(String, DataScope)> {
    text.split_whitespace()
        .filter_map(|s| DataScope::parse(s).map(|d| (s.to_string(), d)))
        .collect()
}

/// The narrowest read scopes at `level` for `types`: `patient/Observation.rs …`.
pub fn narrow_scopes(level: &str, types: &BTreeSet<String>) -> String {
    types
        .iter()
        .map(|t| format!("{level}/{t}.rs"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_scopes_are_recognised_in_v1_and_v2() {
        let v2 = DataScope::parse("patient/Observation.rs").expect("scope");
        assert!(v2.covers("Observation") && !v2.covers("Condition"));
        let v1 = DataScope::parse("user/*.read").expect("scope");
        assert!(v1.covers("Condition"));
        let granular =
            DataScope::parse("patient/Observation.rs?category=laboratory").expect("scope");
        assert!(granular.covers("Observation"));
        assert!(
            !DataScope::parse("system/Observation.c")
                .expect("scope")
                .reads()
        );
        assert!(DataScope::parse("launch/patient").is_none());
        assert!(DataScope::parse("openid").is_none());
        assert_eq!(data_scopes("openid patient/Patient.rs").len(), 1);
    }

    #[test]
    fn a_scope_is_within_another_by_level_type_permissions_and_query() {
        let scope = |s: &str| DataScope::parse(s).expect("scope");
        let granted = scope("patient/Observation.rs");
        assert!(scope("patient/Observation.r").within(&granted));
        assert!(scope("patient/Observation.read").within(&granted));
        assert!(!scope("patient/Observation.cruds").within(&granted));
        assert!(!scope("user/Observation.rs").within(&granted));
        assert!(!scope("patient/Condition.rs").within(&granted));
        assert!(scope("patient/Condition.rs").within(&scope("patient/*.read")));
        let lab = scope("patient/Observation.rs?category=laboratory");
        assert!(lab.within(&granted));
        assert!(!granted.within(&lab), "dropping a query restriction widens");
    }
}
