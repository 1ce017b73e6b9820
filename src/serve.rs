//! `fhirdrill serve`: loads the environments, binds, prints where to reach them, serves until
//! Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use fhirdrill_simulator::config::{Overrides, SimConfig};
use fhirdrill_simulator::smart::registry::{
    BACKEND_ES384, BACKEND_RS384, DEMO_CONFIDENTIAL, DEMO_PUBLIC,
};
use fhirdrill_simulator::{Simulator, launch, server};

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
    /// A TOML configuration file (environments, clients, users, limits, rate limit, faults);
    /// flags override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The admin token guarding /_sim/ (also a full-access bearer token on FHIR APIs). Else
    /// FHIRDRILL_ADMIN_TOKEN, else the config file, else a random one, printed.
    #[arg(long, value_name = "TOKEN")]
    admin_token: Option<String>,
    /// Where the audit log and keys are kept (default: a new temporary folder, printed).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
}

/// The environment variable that may hold the admin token.
const ADMIN_TOKEN_VAR: &str = "FHIRDRILL_ADMIN_TOKEN";

/// Runs `fhirdrill serve`.
pub(crate) fn run(args: ServeArgs) -> anyhow::Result<()> {
    let overrides = Overrides {
        listen: args.listen,
        patients: args.patients,
        seed: args.seed,
        data: args.data,
    };
    let mut config = SimConfig::load(args.config.as_deref(), &overrides)?;
    let from_env = std::env::var(ADMIN_TOKEN_VAR)
        .ok()
        .filter(|t| !t.is_empty());
    if let Some(token) = args.admin_token.or(from_env) {
        anyhow::ensure!(
            token.len() >= 16,
            "the admin token must be at least 16 characters (from --admin-token or {ADMIN_TOKEN_VAR})"
        );
        config.admin_token = Some(token);
    }
    if let Some(dir) = args.state_dir {
        config.state_dir = Some(dir);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config))
}

/// The state folder: the configured one, or a new temporary one.
fn state_dir(configured: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let dir = match configured {
        Some(dir) => dir,
        None => std::env::temp_dir().join(format!(
            "fhirdrill-{}-{}",
            std::process::id(),
            time::OffsetDateTime::now_utc().unix_timestamp()
        )),
    };
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the state folder {}", dir.display()))?;
    Ok(dir)
}

async fn serve(config: SimConfig) -> anyhow::Result<()> {
    let started = Instant::now();
    let state = state_dir(config.state_dir.clone())?;
    let built = launch::build(&config, &state).await?;
    let sim = Arc::clone(&built.sim);
    let public_url = sim.public_url().to_string();
    let shutdown = server::shutdown_signal();
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
    print_access(&sim, &public_url, config.admin_token.is_some(), &state);
    println!("Ctrl-C stops the server.");
    launch::serve_until(built, launch::limits(&config), shutdown).await?;
    if let Some(log) = sim.trail().file() {
        let (entries, head) = log.head();
        println!(
            "audit log: {entries} entries, head {head} ({})",
            log.path().display()
        );
    }
    println!("stopped");
    Ok(())
}

/// Prints how to get in: the admin token, the test users and the built-in clients (test-only
/// credentials, as `/_sim/registrations` also lists them).
fn print_access(
    sim: &Simulator,
    public_url: &str,
    configured_token: bool,
    state: &std::path::Path,
) {
    if configured_token {
        println!("admin:   token as configured (Authorization: Bearer <token> on /_sim/…)");
    } else {
        println!(
            "admin:   token {} (Authorization: Bearer <token> on /_sim/…)",
            sim.admin_token()
        );
    }
    println!("state:   {} (audit log, keys)", state.display());
    println!(
        "launch:  {public_url}/_sim/launcher    registrations: GET {public_url}/_sim/registrations"
    );
    let Some(env) = sim.environments().first() else {
        return;
    };
    let registrations = env.auth().registrations();
    println!(
        "smart:   {public_url}{}/.well-known/smart-configuration",
        env.base_path()
    );
    for user in registrations.users() {
        println!(
            "user:    {:<12} password {}  ({} {})",
            user.username,
            user.password,
            user.role.name(),
            user.fhir_user
        );
    }
    for id in [DEMO_PUBLIC, DEMO_CONFIDENTIAL, BACKEND_RS384, BACKEND_ES384] {
        if let Some(client) = registrations.client(id) {
            println!("client:  {:<28} {}", client.client_id, client.kind.name());
        }
    }
    if registrations.client(DEMO_PUBLIC).is_some() {
        println!(
            "         (secrets and private keys of the test clients: GET /_sim/registrations)"
        );
    }
}
