//! The catalog: every scenario, in a fixed order (the order of `scenarios list`, of SARIF
//! rules and of reports). Adding a scenario is its file under the family's folder plus one
//! line in `catalog!` below; the family's `mod.rs` holds what its scenarios share.

use crate::api::Scenario;

/// Declares each scenario's module (its file, under its family's folder) and lists the
/// scenario in the catalog, in one line per scenario.
macro_rules! catalog {
    ($($module:ident in $file:literal => $scenario:ident,)*) => {
        $(
            #[path = $file]
            pub mod $module;
        )*

        /// Every scenario of the catalog.
        pub fn registry() -> Vec<Box<dyn Scenario>> {
            vec![$(Box::new($module::$scenario)),*]
        }

        /// The file of each scenario, in catalog order.
        #[cfg(test)]
        const FILES: &[&str] = &[$($file),*];
    };
}

catalog! {
    app_api in "cross_patient/app_api.rs" => AppApi,
    fhir_vectors in "cross_patient/fhir_vectors.rs" => FhirVectors,
    broad_system_scope in "scope/broad_system_scope.rs" => BroadSystemScope,
    unused_grants in "scope/unused_grants.rs" => UnusedGrants,
    downscoped_grant in "scope/downscoped_grant.rs" => DownscopedGrant,
    widen_on_refresh in "scope/widen_on_refresh.rs" => WidenOnRefresh,
    confused_deputy in "service_account/confused_deputy.rs" => ConfusedDeputy,
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
        for (scenario, file) in registry().into_iter().zip(FILES) {
            let meta = scenario.meta();
            assert!(seen.insert(meta.id), "duplicate id {}", meta.id);
            let (family, name) = meta.id.split_once('.').expect("family.name");
            let expected = format!("{}/{}.rs", family.replace('-', "_"), name.replace('-', "_"));
            assert_eq!(
                *file, expected,
                "the file of {} is named after its id",
                meta.id
            );
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
