//! Starting a simulator from a [`SimConfig`]: the one way `fhirdrill serve`, the harness's
//! embedded simulator and tests build and run it.
//!
//! [`build`] opens the audit log, loads the environments and binds the listener; [`Embedded`]
//! runs the result on its own runtime thread and stops it cleanly (audit log closed).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::net::TcpListener;

use crate::audit::{AuditLog, FsyncPolicy};
use crate::behaviour::Behaviour;
use crate::config::SimConfig;
use crate::trail::Trail;
use crate::{Simulator, clock, environment, loader, server};

/// Why a simulator could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The audit log could not be opened.
    #[error(
        "cannot open the audit log in {dir} (pass another state folder to start a new one): {source}"
    )]
    Audit {
        /// The folder.
        dir: PathBuf,
        /// The cause.
        source: crate::audit::AuditError,
    },
    /// An environment could not be loaded.
    #[error("cannot load environment {name:?}: {reason}")]
    Environment {
        /// Its name.
        name: String,
        /// Why.
        reason: String,
    },
    /// The listener could not be bound.
    #[error(transparent)]
    Bind(#[from] server::ServeError),
    /// Anything else at start or stop (runtime, thread, audit log close).
    #[error("{0}")]
    Other(String),
}

/// A built simulator and its bound listener, not yet serving.
pub struct Built {
    /// The simulator.
    pub sim: Arc<Simulator>,
    /// The listener (its address is in `sim.public_url()`).
    pub listener: TcpListener,
}

/// Opens the audit log in `state/audit`, loads every environment (keys in `state/keys`),
/// binds `config.listen` and builds the simulator.
pub async fn build(config: &SimConfig, state: &Path) -> Result<Built, LaunchError> {
    let loaded_at = clock::fhir_instant(time::OffsetDateTime::now_utc());
    let audit_dir = state.join("audit");
    let audit = AuditLog::open(&audit_dir, FsyncPolicy::default()).map_err(|source| {
        LaunchError::Audit {
            dir: audit_dir,
            source,
        }
    })?;
    let mut environments = Vec::new();
    for env in &config.environments {
        let failed = |reason: String| LaunchError::Environment {
            name: env.name.clone(),
            reason,
        };
        let store = loader::load_environment(env, &loaded_at).map_err(|e| failed(e.to_string()))?;
        let key_dir = state.join("keys").join(&env.name);
        let environment = environment::from_config(env, store, Some(&key_dir))
            .map_err(|e| failed(e.to_string()))?;
        environments.push(environment);
    }
    let listener = server::bind(config.listen).await?;
    let address = listener
        .local_addr()
        .map_err(|e| LaunchError::Other(format!("cannot read the bound address: {e}")))?;
    let public_url = format!("http://{address}");
    let behaviour = Behaviour::new(config.rate_limit, config.faults.clone(), 0);
    let mut sim =
        Simulator::new(environments, &public_url, behaviour).with_trail(Trail::with_file(audit));
    if let Some(token) = &config.admin_token {
        sim = sim.with_admin_token(token);
    }
    Ok(Built {
        sim: Arc::new(sim),
        listener,
    })
}

/// The server limits a config asks for.
pub fn limits(config: &SimConfig) -> server::Limits {
    server::Limits {
        max_body_bytes: config.max_body_bytes,
        ..server::Limits::default()
    }
}

/// Serves until `shutdown`, then closes the audit log; an audit log that failed while serving
/// is an error.
pub async fn serve_until(
    built: Built,
    limits: server::Limits,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<Arc<Simulator>, LaunchError> {
    let Built { sim, listener } = built;
    server::serve(listener, Arc::clone(&sim), limits, shutdown).await?;
    sim.trail()
        .close()
        .map_err(|e| LaunchError::Other(format!("cannot close the audit log: {e}")))?;
    if let Some(error) = sim.trail().write_error() {
        return Err(LaunchError::Other(format!(
            "the audit log stopped accepting entries while serving: {error}"
        )));
    }
    Ok(sim)
}

/// A simulator running in this process on its own runtime thread.
pub struct Embedded {
    url: String,
    admin_token: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<Result<(), LaunchError>>>,
}

impl Embedded {
    /// Builds and starts a simulator; returns once it is listening.
    pub fn start(config: SimConfig, state: &Path) -> Result<Embedded, LaunchError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| LaunchError::Other(format!("cannot start a runtime: {e}")))?;
        let built = runtime.block_on(build(&config, state))?;
        let url = built.sim.public_url().to_string();
        let admin_token = built.sim.admin_token().to_string();
        let limits = limits(&config);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("fhirdrill-simulator".into())
            .spawn(move || {
                runtime
                    .block_on(serve_until(built, limits, async {
                        let _ = stopped.await;
                    }))
                    .map(|_| ())
            })
            .map_err(|e| LaunchError::Other(format!("cannot start the simulator thread: {e}")))?;
        Ok(Embedded {
            url,
            admin_token,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The admin token.
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// Stops serving, lets open requests finish and closes the audit log.
    pub fn stop(mut self) -> Result<(), LaunchError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), LaunchError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(LaunchError::Other("the simulator thread panicked".into())),
            None => Ok(()),
        }
    }
}

impl Drop for Embedded {
    fn drop(&mut self) {
        if let Err(error) = self.shutdown() {
            tracing::error!(%error, "the embedded simulator did not stop cleanly");
        }
    }
}
