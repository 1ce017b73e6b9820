//! End-to-end tests of the `fhirdrill` binary: one test binary, a module per area.

mod audit;
mod bulk_export;
mod fhir_rest;
mod fhir_search;
mod generate;
mod harness;
mod server;
mod smart;
mod util;
