//! `clinic-app`: serve the sample clinic app, or print its simulator registration.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use clinic_app::{App, AppConfig, Flaws};

/// The sample SMART on FHIR clinic app fhirdrill's harness attacks.
#[derive(Debug, Parser)]
#[command(name = "clinic-app", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// What both commands need to name the app at the EHR and find its backend key.
#[derive(Debug, Args)]
struct Identity {
    /// Flaws to switch on (serve) or allow in the registration, comma-separated (none: the
    /// correct app).
    #[arg(long, default_value = "")]
    flaws: Flaws,
    /// Folder for the backend key and the log.
    #[arg(long, default_value = "clinic-app-state")]
    state_dir: PathBuf,
    /// The backend's private key (PKCS#8 PEM; made if missing; default: in the state folder).
    #[arg(long)]
    backend_key: Option<PathBuf>,
    /// The user-facing client id.
    #[arg(long, default_value = "clinic-app")]
    client_id: String,
    /// The backend client id.
    #[arg(long, default_value = "clinic-app-backend")]
    backend_client_id: String,
}

impl Identity {
    /// The backend key's path.
    fn key(&self) -> PathBuf {
        self.backend_key
            .clone()
            .unwrap_or_else(|| self.state_dir.join(clinic_app::KEY_FILE))
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the app.
    Serve {
        /// Address to listen on (loopback by default).
        #[arg(long, default_value = "127.0.0.1:3000")]
        listen: SocketAddr,
        /// The EHR's FHIR base URL (the only `iss` accepted).
        #[arg(long)]
        fhir_base: String,
        #[command(flatten)]
        identity: Identity,
        /// The secret for `POST /internal/jobs/sync` (default: random, printed).
        #[arg(long)]
        job_token: Option<String>,
        /// The JSON-lines request log (default: app.log in the state folder).
        #[arg(long)]
        log_file: Option<PathBuf>,
        /// Where to post analytics events.
        #[arg(long)]
        analytics_url: Option<String>,
        /// Run the sync job every this many seconds.
        #[arg(long)]
        sync_every: Option<u64>,
    },
    /// Print the simulator registration (TOML) of the app's two clients.
    Registration {
        /// The app's public URL, e.g. http://127.0.0.1:3000.
        #[arg(long)]
        app_url: String,
        #[command(flatten)]
        identity: Identity,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<(), clinic_app::AppError> {
    match cli.command {
        Command::Serve {
            listen,
            fhir_base,
            identity,
            job_token,
            log_file,
            analytics_url,
            sync_every,
        } => {
            let key = identity.key();
            let mut config = AppConfig::new(&fhir_base, identity.state_dir);
            config.flaws = identity.flaws;
            config.client_id = identity.client_id;
            config.backend_client_id = identity.backend_client_id;
            config.log_file = log_file;
            config.analytics_url = analytics_url;
            config.sync_every = sync_every.filter(|s| *s > 0).map(Duration::from_secs);
            match job_token {
                Some(token) if token.len() >= 16 => config.job_token = token,
                Some(_) => {
                    return Err(clinic_app::AppError::Config(
                        "--job-token must be at least 16 characters".into(),
                    ));
                }
                None => println!("job token: {}", config.job_token),
            }
            let app = App::bind(listen)?;
            let running = app.start_with_backend_key(config, key)?;
            println!("clinic-app listening on {}", running.url());
            running.wait()
        }
        Command::Registration { app_url, identity } => {
            let jwks = clinic_app::public_jwks_of_key(&identity.key())?;
            print!(
                "{}",
                clinic_app::registration_toml(
                    &app_url,
                    &identity.flaws,
                    &identity.client_id,
                    &identity.backend_client_id,
                    &jwks
                )
            );
            Ok(())
        }
    }
}
