//! End-to-end tests of the `fhirdrill` binary: one test binary, a module per area.

mod generate;
mod util;
