//! `fhirdrill demo`: starts a simulator and the sample clinic app (with flaws switched on, as
//! it says), runs the whole catalog against them, prints the report and writes the files.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use clinic_app::{App, AppConfig, Flaws};
use fhirdrill_harness::runner::RunOptions;
use fhirdrill_harness::target::Target;
use fhirdrill_scenarios::Severity;
use fhirdrill_simulator::config::{Overrides, SimConfig};
use fhirdrill_simulator::launch::Embedded;

/// The flaws the demo switches on unless told otherwise.
pub(crate) const DEFAULT_FLAWS: &str =
    "cross-patient-api,service-account-fallback,requests-unused-scopes";

/// The clinic app's target file, with `{app_url}`, `{job_token}` and `{simulator_url}` to fill.
pub(crate) const CLINIC_TARGET: &str = include_str!("../examples/clinic-app/drill.toml");

/// Arguments of `fhirdrill demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// The clinic app's flaws to switch on (comma-separated; "none" for the correct app).
    #[arg(long, value_name = "FLAWS", default_value = DEFAULT_FLAWS)]
    flaws: String,
    /// Patients in the simulated EHR.
    #[arg(long, value_name = "N", default_value_t = 30)]
    patients: u64,
    /// Where to write the report files.
    #[arg(long, value_name = "DIR", default_value = "fhirdrill-demo-report")]
    report_dir: PathBuf,
}

/// A simulator and the clinic app, running, with the target file that describes them.
pub(crate) struct ClinicStage {
    /// The simulator.
    pub(crate) simulator: Embedded,
    /// The app.
    pub(crate) app: clinic_app::RunningApp,
    /// The filled-in target file text.
    pub(crate) target_text: String,
    /// The app's job credential (in the target text).
    pub(crate) job_token: String,
    /// The folder holding state, keys and logs.
    pub(crate) dir: PathBuf,
}

/// Starts a simulator of `patients` patients and the clinic app with `flaws`, in `dir`.
pub(crate) fn stage(flaws: &Flaws, patients: u64, dir: &Path) -> anyhow::Result<ClinicStage> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let app = App::bind("127.0.0.1:0".parse().context("loopback address")?)?;
    let app_state = dir.join("clinic-app");
    let jwks = clinic_app::public_jwks(&app_state)?;
    let registration = clinic_app::registration_toml(
        &app.url(),
        flaws,
        clinic_app::DEFAULT_CLIENT_ID,
        clinic_app::DEFAULT_BACKEND_CLIENT_ID,
        &jwks,
    );
    let admin_token = format!("demo-{}", uuid_like());
    let sim_toml = format!(
        "listen = \"127.0.0.1:0\"\nadmin_token = \"{admin_token}\"\n\n[[environments]]\nname = \"sandbox\"\npatients = {patients}\nseed = 1\n\n{registration}"
    );
    let sim_file = dir.join("sim.toml");
    std::fs::write(&sim_file, &sim_toml)
        .with_context(|| format!("cannot write {}", sim_file.display()))?;
    let config = SimConfig::load(Some(&sim_file), &Overrides::default())?;
    let simulator = Embedded::start(config, &dir.join("simulator"))?;
    let fhir_base = format!("{}/sandbox/fhir", simulator.url());
    let mut app_config = AppConfig::new(&fhir_base, app_state.clone());
    app_config.flaws = flaws.clone();
    app_config.log_file = Some(dir.join("clinic-app.log"));
    let target_text = CLINIC_TARGET
        .replace("{app_url}", &app.url())
        .replace("{job_token}", &app_config.job_token)
        .replace("{simulator_url}", simulator.url());
    let job_token = app_config.job_token.clone();
    let app = app.start(app_config)?;
    Ok(ClinicStage {
        simulator,
        app,
        target_text,
        job_token,
        dir: dir.to_path_buf(),
    })
}

/// A random hex string for the demo's admin token.
fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{:x}{:x}", nanos, std::process::id())
}

/// Runs `fhirdrill demo`.
pub(crate) fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let flaws: Flaws = if args.flaws == "none" {
        Flaws::none()
    } else {
        args.flaws
            .parse()
            .map_err(|e| anyhow::anyhow!("--flaws: {e}"))?
    };
    let dir = std::env::temp_dir().join(format!("fhirdrill-demo-{}", std::process::id()));
    println!(
        "fhirdrill demo: a simulated EHR and the sample clinic app, attacked by the whole catalog"
    );
    println!(
        "clinic app flaws switched on: {}",
        if flaws.is_empty() {
            "none (the correct app)".to_string()
        } else {
            flaws.to_string()
        }
    );
    let stage = stage(&flaws, args.patients, &dir)?;
    println!(
        "simulator: {}   clinic app: {}",
        stage.simulator.url(),
        stage.app.url()
    );
    std::fs::create_dir_all(&args.report_dir)
        .with_context(|| format!("cannot create {}", args.report_dir.display()))?;
    let target_file = args.report_dir.join("drill.toml");
    // A copy for the reports to point into, without the job's credential (the report folder
    // is what CI uploads).
    std::fs::write(
        &target_file,
        stage
            .target_text
            .replace(&stage.job_token, "[SECRET:job-credential]"),
    )
    .with_context(|| format!("cannot write {}", target_file.display()))?;
    let target = Target::parse(&stage.target_text, &target_file.display().to_string())?;
    let options = RunOptions {
        fail_on: Severity::High,
        only: Vec::new(),
        target_file: target_file.display().to_string(),
        target_text: stage.target_text.clone(),
    };
    let report = crate::run::drill(
        target,
        stage.simulator.url(),
        stage.simulator.admin_token(),
        &options,
    )?;
    let code = crate::run::finish(&report, &args.report_dir)?;
    stage.app.stop()?;
    stage.simulator.stop()?;
    let _ = std::fs::remove_dir_all(&stage.dir);
    Ok(code)
}
