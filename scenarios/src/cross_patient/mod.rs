//! The cross-patient family: one patient's (or one clinician's) credentials reaching another
//! patient's data (OWASP API1:2023, broken object-level authorization).

use crate::cx::{AccessEntry, Exchange};
use crate::mask::Masker;

/// The victim's placeholders found in an answer (values the request itself carried excluded),
/// each with the raw value (to centre an excerpt on).
pub(crate) fn victim_values<'a>(
    masker: &'a Masker,
    exchange: &Exchange,
) -> Vec<(&'a str, &'a str)> {
    masker
        .found_in(&exchange.body, &exchange.sent)
        .into_iter()
        .filter(|(placeholder, _)| placeholder.starts_with("[PHI:victim."))
        .collect()
}

/// Access-log entries in which the EHR returned data of any patient but `own`.
pub(crate) fn other_patient_fetches<'a>(
    entries: &'a [AccessEntry],
    own: &str,
) -> Vec<&'a AccessEntry> {
    entries
        .iter()
        .filter(|e| e.is_fhir_data() && e.patients.iter().any(|p| p != own))
        .collect()
}

/// Access-log entries in which the EHR returned the victim's data.
pub(crate) fn victim_fetches<'a>(entries: &'a [AccessEntry], victim: &str) -> Vec<&'a AccessEntry> {
    entries
        .iter()
        .filter(|e| e.is_fhir_data() && e.patients.iter().any(|p| p == victim))
        .collect()
}
