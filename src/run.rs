//! `fhirdrill run`: runs the scenario catalog against the integration a target file
//! describes, prints the terminal report, writes the report files, and exits 0 (nothing at or
//! above `--fail-on`), 1 (findings) or 2 (the harness could not run).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use fhirdrill_harness::drill::Drill;
use fhirdrill_harness::report::{self, RunReport};
use fhirdrill_harness::runner::{self, RunOptions};
use fhirdrill_harness::simulator::SimClient;
use fhirdrill_harness::target::Target;
use fhirdrill_scenarios::Severity;
use fhirdrill_scenarios::registry::registry;
use fhirdrill_simulator::config::{Overrides, SimConfig};
use fhirdrill_simulator::launch::Embedded;

/// Arguments of `fhirdrill run`.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The target file (drill.toml) describing the integration under test.
    #[arg(long, value_name = "FILE", default_value = "drill.toml")]
    target: PathBuf,
    /// The simulator's URL (else [simulator] url in the target file).
    #[arg(long, value_name = "URL")]
    simulator: Option<String>,
    /// The simulator's admin token (else FHIRDRILL_ADMIN_TOKEN).
    #[arg(long, value_name = "TOKEN")]
    admin_token: Option<String>,
    /// Findings at or above this severity fail the run (exit 1).
    #[arg(long, value_name = "SEVERITY", default_value = "high", value_parser = parse_severity)]
    fail_on: Severity,
    /// Run only these scenarios or families (comma-separated ids or family names).
    #[arg(long, value_name = "IDS", value_delimiter = ',')]
    only: Vec<String>,
    /// Where to write the report files (JSON, JUnit XML, SARIF, Markdown, HTML).
    #[arg(long, value_name = "DIR", default_value = "fhirdrill-report")]
    report_dir: PathBuf,
}

fn parse_severity(text: &str) -> Result<Severity, String> {
    Severity::parse(text)
        .ok_or_else(|| format!("{text:?} is not a severity: use low, medium, high or critical"))
}

/// Runs `fhirdrill run`.
pub(crate) fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let target = Target::load(&args.target)?;
    let text = std::fs::read_to_string(&args.target).unwrap_or_default();
    let options = RunOptions {
        fail_on: args.fail_on,
        only: args.only.clone(),
        target_file: shown_path(&args.target),
        target_text: text,
    };
    let from_env = || {
        std::env::var("FHIRDRILL_ADMIN_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())
    };
    let url = args
        .simulator
        .clone()
        .or_else(|| target.simulator.url.clone());
    let report = match (url, target.simulator.config.clone()) {
        (Some(url), _) => {
            let token = args.admin_token.clone().or_else(from_env).context(
                "no admin token: pass --admin-token or set FHIRDRILL_ADMIN_TOKEN (fhirdrill serve prints it)",
            )?;
            drill(target, &url, &token, &options)?
        }
        (None, Some(config)) => {
            let simulator = embedded(&args.target, &config, target.simulator.state_dir.as_deref())?;
            let report = drill(target, simulator.url(), simulator.admin_token(), &options);
            simulator.stop()?;
            report?
        }
        (None, None) => anyhow::bail!(
            "no simulator: pass --simulator URL, or set [simulator] url (a running one) or config (start one) in the target file"
        ),
    };
    finish(&report, &args.report_dir)
}

/// The target file's path as reports show it: relative to the working folder when it is inside
/// it (code scanning maps SARIF locations to files of the checkout).
fn shown_path(path: &Path) -> String {
    let relative = std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf));
    relative
        .unwrap_or_else(|| path.to_path_buf())
        .display()
        .to_string()
}

/// Starts the simulator a target file's `[simulator] config` describes (paths relative to the
/// target file).
fn embedded(target: &Path, config: &str, state_dir: Option<&str>) -> anyhow::Result<Embedded> {
    let base = target.parent().unwrap_or(Path::new("."));
    let config_path = base.join(config);
    let mut settings = SimConfig::load(Some(&config_path), &Overrides::default())
        .with_context(|| format!("[simulator] config {}", config_path.display()))?;
    if let Ok(token) = std::env::var("FHIRDRILL_ADMIN_TOKEN")
        && !token.is_empty()
    {
        settings.admin_token = Some(token);
    }
    let state = match state_dir {
        Some(dir) => base.join(dir),
        None => std::env::temp_dir().join(format!("fhirdrill-run-{}", std::process::id())),
    };
    std::fs::create_dir_all(&state)
        .with_context(|| format!("cannot create the state folder {}", state.display()))?;
    let simulator = Embedded::start(settings, &state)?;
    eprintln!(
        "simulator: started {} for this drill (state in {})",
        simulator.url(),
        state.display()
    );
    Ok(simulator)
}

/// Connects, runs the catalog and returns the report.
pub(crate) fn drill(
    target: Target,
    simulator_url: &str,
    admin_token: &str,
    options: &RunOptions,
) -> anyhow::Result<RunReport> {
    let (sim, env) = SimClient::connect(
        simulator_url,
        admin_token,
        target.simulator.environment.as_deref(),
    )?;
    let mut drill = Drill::new(target, sim, env)?;
    Ok(runner::run(&mut drill, &registry(), options))
}

/// Prints the terminal report, writes the files, and maps the verdict to the exit code.
pub(crate) fn finish(report: &RunReport, dir: &Path) -> anyhow::Result<ExitCode> {
    print!(
        "{}",
        report::terminal::render(report, std::io::stdout().is_terminal())
    );
    let written = report::write_all(report, dir)?;
    println!(
        "reports: {}",
        written
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(ExitCode::from(report.exit_code()))
}
