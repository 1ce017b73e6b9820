//! `fhirdrill`: the command-line entry point.
//!
//! Parses arguments, validates them into the libraries' settings, dispatches, and maps errors to
//! exit codes: 0 success, 1 ran and found problems, 2 bad usage or could not run. No domain
//! logic lives here.

mod audit;
mod demo;
mod generate;
mod run;
mod scenarios;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Generation builds and drops millions of small JSON nodes; mimalloc handles that pattern far
/// better than the system allocator (measured: see README, "Performance").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A fire drill for healthcare integrations: a mock EHR, an attack harness and synthetic data.
#[derive(Debug, Parser)]
#[command(name = "fhirdrill", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write deterministic synthetic patients (FHIR R4 NDJSON and/or transaction bundles).
    Generate(generate::GenerateArgs),
    /// Run the simulated EHR: a FHIR R4 server over synthetic patients.
    Serve(serve::ServeArgs),
    /// Check the audit log written by `serve`.
    Audit(audit::AuditArgs),
    /// Start a simulator and the sample clinic app, attack it, and print the report.
    Demo(demo::DemoArgs),
    /// Attack an integration described by a target file; exit 1 on findings.
    Run(run::RunArgs),
    /// The scenario catalog.
    Scenarios(scenarios::ScenariosArgs),
}

/// Logs go to stderr at the level named by `FHIRDRILL_LOG` (error, warn, info, debug, trace;
/// default info). Nothing fhirdrill logs contains PHI: see the simulator's `route_template`.
fn init_logging() {
    let level = std::env::var("FHIRDRILL_LOG")
        .ok()
        .and_then(|v| v.parse::<tracing_subscriber::filter::LevelFilter>().ok())
        .unwrap_or(tracing_subscriber::filter::LevelFilter::INFO);
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_target(false)
        .with_ansi(false)
        .init();
}

/// Exit code when the command could not run (bad usage is also 2, from clap).
const EXIT_COULD_NOT_RUN: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        Command::Generate(args) => generate::run(args).map(|()| ExitCode::SUCCESS),
        Command::Serve(args) => serve::run(args).map(|()| ExitCode::SUCCESS),
        Command::Audit(args) => audit::run(args),
        Command::Run(args) => run::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Scenarios(args) => {
            scenarios::run(args);
            Ok(ExitCode::SUCCESS)
        }
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(EXIT_COULD_NOT_RUN)
        }
    }
}
