//! `clinic-app`: a small SMART on FHIR clinic app, the sample integration fhirdrill's harness
//! attacks.
//!
//! Clinicians launch it from the EHR (`GET /launch?iss&launch`), patients sign in directly
//! (`GET /login`); both use the authorization code flow with PKCE as a public client, and the
//! tokens stay in a server-side session. A JSON API serves demographics, labs, medications and
//! vital signs; a backend sync job (SMART Backend Services, `private_key_jwt`) fills a local
//! cache of demographics and labs. The app is correct by default; each [`Flaw`] switches on
//! one mistake seen in the field, so the harness can show what it catches.
//!
//! ```no_run
//! # fn main() -> Result<(), clinic_app::AppError> {
//! use clinic_app::{App, AppConfig, Flaws};
//! let app = App::bind("127.0.0.1:0".parse().expect("address"))?;
//! // … register app.redirect_uri() and app.launch_url() in the EHR, then:
//! let config = AppConfig::new("http://127.0.0.1:8080/sandbox/fhir", "state".into());
//! let running = app.start(config)?;
//! println!("{}", running.url());
//! running.stop()
//! # }
//! ```

mod api;
mod backend_auth;
mod bearer;
mod cache;
mod config;
mod fhir;
mod flaws;
mod log;
mod page;
mod random;
mod registration;
mod scopes;
mod server;
mod session;
mod smart;
mod sync;

pub use backend_auth::{KEY_FILE, public_jwks, public_jwks_of_key};
pub use config::{AppConfig, AppError, DEFAULT_BACKEND_CLIENT_ID, DEFAULT_CLIENT_ID};
pub use flaws::{ALL_FLAWS, Flaw, Flaws, UnknownFlaw};
pub use log::route_template;
pub use registration::registration_toml;
pub use scopes::{LaunchKind, covers_read};
pub use server::{App, RunningApp};
