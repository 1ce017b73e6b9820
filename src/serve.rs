//! `fhirdrill serve`: loads the environments, binds, prints where to reach them, serves until
//! Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use fhirdrill_simulator::behaviour::Behaviour;
use fhirdrill_simulator::config::{Overrides, SimConfig};
use fhirdrill_simulator::environment::Environment;
use fhirdrill_simulator::{Simulator, clock, loader, server};

/// Arguments of `fhirdrill serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on (loopback by default; port 0 picks a free port).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Patients to generate in the first environment (default 100).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    patients: Option<u64>,
    /// Seed of the generated patients (default 1).
    #[arg(long, value_name = "S")]
    seed: Option<u64>,
    /// Load the first environment from a folder of NDJSON or FHIR Bundles (ours or Synthea's)
    /// instead of generating it.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["patients", "seed"])]
    data: Option<PathBuf>,
    /// A TOML configuration file (environments, limits, rate limit, faults); flags override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// Runs `fhirdrill serve`.
pub(crate) fn run(args: ServeArgs) -> anyhow::Result<()> {
    let overrides = Overrides {
        listen: args.listen,
        patients: args.patients,
        seed: args.seed,
        data: args.data,
    };
    let config = SimConfig::load(args.config.as_deref(), &overrides)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config))
}

async fn serve(config: SimConfig) -> anyhow::Result<()> {
    let started = Instant::now();
    let loaded_at = clock::fhir_instant(time::OffsetDateTime::now_utc());
    let mut environments = Vec::new();
    for env in &config.environments {
        let store = loader::load_environment(env, &loaded_at)
            .with_context(|| format!("cannot load environment {:?}", env.name))?;
        environments.push(Environment::new(&env.name, store));
    }
    let listener = server::bind(config.listen).await?;
    let address = listener
        .local_addr()
        .context("cannot read the bound address")?;
    let public_url = format!("http://{address}");
    let behaviour = Behaviour::new(config.rate_limit, config.faults.clone(), 0);
    let sim = Arc::new(Simulator::new(environments, &public_url, behaviour));
    println!(
        "fhirdrill simulator listening on {public_url} (ready in {:.1} s)",
        started.elapsed().as_secs_f64()
    );
    for env in sim.environments() {
        println!(
            "  environment {:<10} FHIR base {public_url}{}  ({} resources)",
            env.name(),
            env.base_path(),
            env.seed_len()
        );
    }
    if let Some(first) = sim.environments().first() {
        println!(
            "try:     curl {public_url}{}/Patient?_count=5",
            first.base_path()
        );
    }
    println!("health:  {public_url}/_sim/health    reset: POST {public_url}/_sim/reset");
    println!("Ctrl-C stops the server.");
    let limits = server::Limits {
        max_body_bytes: config.max_body_bytes,
        ..server::Limits::default()
    };
    server::serve(listener, sim, limits, server::shutdown_signal()).await?;
    println!("stopped");
    Ok(())
}
