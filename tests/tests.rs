//! End-to-end tests of the `fhirdrill` binary: one test binary, a module per area.

mod fhir_rest;
mod generate;
mod server;
mod util;
