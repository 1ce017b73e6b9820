//! FHIR R4 search: parameter registry, request parsing, evaluation, sorting, includes and
//! result shaping (`_elements` / `_summary`). See <https://hl7.org/fhir/R4/search.html>.
//!
//! Typical use by the server:
//! 1. [`SearchQuery::parse`] with the URL-decoded query pairs in request order (all of them,
//!    `_format` and `_pretty` included) and `strict` from `Prefer: handling=strict`; an error
//!    becomes an OperationOutcome with HTTP 400.
//! 2. [`search`] over the store (a [`ResourceSource`]) gives every match, sorted.
//! 3. [`ParsedSearch::page_range`] picks the page; [`ParsedSearch::query_string`] and
//!    [`ParsedSearch::query_string_for_page`] build the `self` / `next` links.
//! 4. [`included`] adds `_include` / `_revinclude` resources (search mode `include`).
//! 5. [`apply_elements`] / [`apply_summary`] shape each returned resource.
#![forbid(unsafe_code)]

pub mod error;
pub mod evaluate;
pub mod include;
mod path;
pub mod query;
pub mod registry;
pub mod shape;
pub mod sort;
pub mod value;

#[cfg(test)]
mod evaluate_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod us_core_tests;

pub use error::SearchError;
pub use evaluate::{ResourceSource, matches, patient_compartment_of, search};
pub use include::{included, references_of};
pub use query::{
    ChainCriterion, Criterion, HasCriterion, IncludeSpec, ParamCriterion, ParsedSearch,
    QuantityValue, RefValue, SearchQuery, SortKey, StringValue, SummaryMode, Test, TotalMode,
    percent_encode,
};
pub use registry::{
    ParamType, SearchParamDef, compartment_params, is_supported, lookup, params_for,
    supported_types,
};
pub use shape::{apply_elements, apply_summary};
pub use sort::sort_resources;
pub use value::{DateRange, Decimal, Prefix, StringMode, TokenValue};
