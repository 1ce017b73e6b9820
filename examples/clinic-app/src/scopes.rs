//! Which scopes the app asks for, and whether a granted scope string lets it read a type.

use crate::flaws::{Flaw, Flaws};

/// How the user arrived: standalone (a patient signs in) or EHR launch (a clinician).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaunchKind {
    /// `GET /login`: patient-facing standalone launch.
    Standalone,
    /// `GET /launch?iss&launch`: the EHR launched the app for a clinician.
    Ehr,
}

/// The resource types the app reads for its users.
pub(crate) const USER_TYPES: &[&str] = &["Patient", "Observation", "MedicationRequest"];

/// The scope string of the authorize request.
pub(crate) fn requested(kind: LaunchKind, flaws: &Flaws) -> String {
    let (launch, level) = match kind {
        LaunchKind::Standalone => ("launch/patient", "patient"),
        LaunchKind::Ehr => ("launch", "user"),
    };
    let mut scopes = vec![
        launch.to_string(),
        "openid".into(),
        "fhirUser".into(),
        "offline_access".into(),
    ];
    if flaws.has(Flaw::RequestsUnusedScopes) {
        scopes.push(format!("{level}/*.read"));
    } else {
        scopes.extend(USER_TYPES.iter().map(|t| format!("{level}/{t}.rs")));
    }
    scopes.join(" ")
}

/// The scope a refresh with the `widens-on-refresh` flaw sends: the requested scopes plus
/// Condition.
pub(crate) fn widened(kind: LaunchKind, flaws: &Flaws) -> String {
    let level = match kind {
        LaunchKind::Standalone => "patient",
        LaunchKind::Ehr => "user",
    };
    format!("{} {level}/Condition.rs", requested(kind, flaws))
}

/// The scope string of the backend's client_credentials request.
pub(crate) fn backend(flaws: &Flaws) -> &'static str {
    if flaws.has(Flaw::BroadSystemScope) {
        "system/*.read"
    } else {
        "system/Patient.rs system/Observation.rs"
    }
}

/// Whether `granted` (space-separated) lets a user read `resource_type`: a `patient/` or
/// `user/` scope on that type or `*`, with SMART v2 permissions that include `r` or `s`, or
/// v1 `read`/`*`. A v2 scope with a `?` restriction counts (the EHR enforces the restriction).
pub fn covers_read(granted: &str, resource_type: &str) -> bool {
    granted
        .split_whitespace()
        .any(|scope| scope_covers_read(scope, resource_type))
}

fn scope_covers_read(scope: &str, resource_type: &str) -> bool {
    let Some((context, rest)) = scope.split_once('/') else {
        return false;
    };
    if context != "patient" && context != "user" {
        return false;
    }
    let Some((ty, permission)) = rest.split_once('.') else {
        return false;
    };
    if ty != "*" && ty != resource_type {
        return false;
    }
    let permission = permission.split_once('?').map_or(permission, |(p, _)| p);
    match permission {
        "read" | "*" => true,
        v2 => is_v2_permission(v2) && (v2.contains('r') || v2.contains('s')),
    }
}

/// `c`, `r`, `u`, `d`, `s`, each at most once and in that order, at least one.
fn is_v2_permission(text: &str) -> bool {
    let mut last = None;
    for c in text.chars() {
        let Some(position) = "cruds".find(c) else {
            return false;
        };
        if last.is_some_and(|l| position <= l) {
            return false;
        }
        last = Some(position);
    }
    last.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_and_v1_read_permissions_cover() {
        assert!(covers_read("patient/Observation.rs", "Observation"));
        assert!(covers_read("patient/Observation.r", "Observation"));
        assert!(covers_read("user/Observation.s", "Observation"));
        assert!(covers_read("user/Observation.cruds", "Observation"));
        assert!(covers_read("patient/Observation.read", "Observation"));
        assert!(covers_read("patient/Observation.*", "Observation"));
        assert!(covers_read(
            "patient/Observation.rs?category=laboratory",
            "Observation"
        ));
        assert!(!covers_read("patient/Observation.cud", "Observation"));
        assert!(!covers_read("patient/Observation.write", "Observation"));
        assert!(!covers_read("patient/Observation.sr", "Observation"));
        assert!(!covers_read("patient/Observation.", "Observation"));
    }

    #[test]
    fn wildcards_levels_and_types() {
        assert!(covers_read("openid patient/*.read", "MedicationRequest"));
        assert!(covers_read("user/*.rs", "Patient"));
        assert!(covers_read("user/*.*", "Patient"));
        assert!(!covers_read("system/*.read", "Patient"), "not a user scope");
        assert!(!covers_read("patient/Patient.rs", "Observation"));
        assert!(!covers_read("patient/Observations.rs", "Observation"));
        assert!(!covers_read("", "Patient"));
        assert!(!covers_read("launch openid fhirUser", "Patient"));
    }

    #[test]
    fn requested_scopes_follow_the_launch_and_flaws() {
        let none = Flaws::none();
        assert_eq!(
            requested(LaunchKind::Standalone, &none),
            "launch/patient openid fhirUser offline_access patient/Patient.rs patient/Observation.rs patient/MedicationRequest.rs"
        );
        assert_eq!(
            requested(LaunchKind::Ehr, &none),
            "launch openid fhirUser offline_access user/Patient.rs user/Observation.rs user/MedicationRequest.rs"
        );
        let broad = Flaws::only(Flaw::RequestsUnusedScopes);
        assert!(requested(LaunchKind::Ehr, &broad).ends_with("offline_access user/*.read"));
        assert!(widened(LaunchKind::Standalone, &none).ends_with(" patient/Condition.rs"));
        assert_eq!(backend(&none), "system/Patient.rs system/Observation.rs");
        assert_eq!(
            backend(&Flaws::only(Flaw::BroadSystemScope)),
            "system/*.read"
        );
    }
}
