//! The catalog: every scenario, in a fixed order (the order of `scenarios list`, of SARIF
//! rules and of reports). Adding a scenario is one line here.

use crate::api::Scenario;
use crate::{cross_patient, scope, service_account};

/// Every scenario of the catalog.
pub fn registry() -> Vec<Box<dyn Scenario>> {
    vec![
        Box::new(cross_patient::app_api::AppApi),
        Box::new(cross_patient::fhir_vectors::FhirVectors),
        Box::new(scope::broad_system_scope::BroadSystemScope),
        Box::new(scope::unused_grants::UnusedGrants),
        Box::new(scope::downscoped_grant::DownscopedGrant),
        Box::new(scope::widen_on_refresh::WidenOnRefresh),
        Box::new(service_account::confused_deputy::ConfusedDeputy),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// Ids are unique `family.name` slugs whose family is their module's; every entry has
    /// controls, references, a fix and a summary.
    #[test]
    fn the_catalog_is_well_formed() {
        let mut seen = HashSet::new();
        for scenario in registry() {
            let meta = scenario.meta();
            assert!(seen.insert(meta.id), "duplicate id {}", meta.id);
            let (family, name) = meta.id.split_once('.').expect("family.name");
            assert_eq!(family, meta.family, "{}", meta.id);
            assert!(
                name.chars().all(|c| c.is_ascii_lowercase() || c == '-'),
                "{} is not a slug",
                meta.id
            );
            assert!(!meta.controls.is_empty(), "{} has no control", meta.id);
            assert!(!meta.references.is_empty(), "{} has no reference", meta.id);
            assert!(
                meta.fix.len() > 20 && meta.summary.len() > 40,
                "{}",
                meta.id
            );
            for old in meta.deprecated_ids {
                assert!(seen.insert(old), "deprecated id {old} reused");
            }
        }
    }
}
