//! The HTTP side: binding, the runtime thread, one warp filter that hands every request to
//! [`route`], cookies and responses, and the login flow's three endpoints.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

use http::{HeaderMap, Method, Response, StatusCode};
use serde_json::{Value, json};
use warp::Filter;

use crate::backend_auth::{BackendKey, BackendTokens};
use crate::cache::Cache;
use crate::config::{AppConfig, AppError};
use crate::flaws::Flaw;
use crate::log::RequestLog;
use crate::random::{self, Pkce};
use crate::scopes::{self, LaunchKind};
use crate::session::{PRELOGIN_COOKIE, PendingLogin, Persona, SESSION_COOKIE, Session, Sessions};
use crate::smart::{self, Discovery};

/// Requests announcing a larger body are refused (no endpoint reads a body).
const MAX_BODY_BYTES: u64 = 64 * 1024;

/// The app, bound to its address but not yet told where the EHR is.
#[derive(Debug)]
pub struct App {
    listener: std::net::TcpListener,
    url: String,
}

impl App {
    /// Binds `addr` (port 0 picks a free port).
    pub fn bind(addr: SocketAddr) -> Result<App, AppError> {
        let bind_error = |source| AppError::Bind {
            addr: addr.to_string(),
            source,
        };
        let listener = std::net::TcpListener::bind(addr).map_err(bind_error)?;
        listener.set_nonblocking(true).map_err(bind_error)?;
        let local = listener.local_addr().map_err(bind_error)?;
        Ok(App {
            listener,
            url: format!("http://{local}"),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// `<url>/callback`, the redirect URI to register.
    pub fn redirect_uri(&self) -> String {
        format!("{}/callback", self.url)
    }

    /// `<url>/launch`, the EHR launch URL to register.
    pub fn launch_url(&self) -> String {
        format!("{}/launch", self.url)
    }

    /// Starts serving on its own thread and runtime, with the backend key in the state folder.
    pub fn start(self, config: AppConfig) -> Result<RunningApp, AppError> {
        let key = crate::backend_auth::default_key_path(&config.state_dir);
        self.start_with_backend_key(config, key)
    }

    /// Starts serving with the backend key at `key_path` (made there if missing).
    pub fn start_with_backend_key(
        self,
        config: AppConfig,
        key_path: PathBuf,
    ) -> Result<RunningApp, AppError> {
        if !config.fhir_base.starts_with("http://") && !config.fhir_base.starts_with("https://") {
            return Err(AppError::Config(format!(
                "fhir_base {:?} must be an http(s) URL",
                config.fhir_base
            )));
        }
        std::fs::create_dir_all(&config.state_dir).map_err(|e| {
            AppError::Config(format!(
                "cannot create the state folder {}: {e}",
                config.state_dir.display()
            ))
        })?;
        let key = BackendKey::load_or_generate(&key_path)?;
        let log_path = config
            .log_file
            .clone()
            .unwrap_or_else(|| config.state_dir.join("app.log"));
        let log = RequestLog::open(Some(&log_path))?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| AppError::Internal(format!("cannot build the HTTP client: {e}")))?;
        let mut config = config;
        config.fhir_base = config.fhir_base.trim_end_matches('/').to_string();
        let backend = BackendTokens::new(
            key,
            &config.backend_client_id,
            scopes::backend(&config.flaws),
        );
        let shared = Arc::new(Shared {
            app_url: self.url.clone(),
            http,
            sessions: Sessions::default(),
            cache: Cache::default(),
            backend,
            log,
            discovery: tokio::sync::Mutex::new(None),
            sync_running: tokio::sync::Mutex::new(()),
            config,
        });
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| AppError::Internal(format!("cannot start a runtime: {e}")))?;
        let listener = {
            let _guard = runtime.enter();
            tokio::net::TcpListener::from_std(self.listener)
                .map_err(|e| AppError::Internal(format!("cannot use the listener: {e}")))?
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let url = self.url.clone();
        let thread = std::thread::Builder::new()
            .name("clinic-app".into())
            .spawn(move || {
                runtime.block_on(async move {
                    if let Some(every) = shared.config.sync_every {
                        let periodic = Arc::clone(&shared);
                        tokio::spawn(async move {
                            let mut ticks = tokio::time::interval(every);
                            ticks.tick().await;
                            loop {
                                ticks.tick().await;
                                let _ = crate::sync::run(&periodic).await;
                            }
                        });
                    }
                    serve(listener, shared, async {
                        let _ = stopped.await;
                    })
                    .await;
                });
            })
            .map_err(|e| AppError::Internal(format!("cannot start the app thread: {e}")))?;
        Ok(RunningApp {
            url,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

/// The app serving on its own thread; dropping it stops it.
#[derive(Debug)]
pub struct RunningApp {
    url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl RunningApp {
    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Stops serving and waits for the thread.
    pub fn stop(mut self) -> Result<(), AppError> {
        self.shutdown()
    }

    /// Serves until the process is stopped (for the binary).
    pub fn wait(mut self) -> Result<(), AppError> {
        match self.thread.take().map(JoinHandle::join) {
            Some(Err(_)) => Err(AppError::Internal("the app thread panicked".into())),
            _ => Ok(()),
        }
    }

    fn shutdown(&mut self) -> Result<(), AppError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take().map(JoinHandle::join) {
            Some(Err(_)) => Err(AppError::Internal("the app thread panicked".into())),
            _ => Ok(()),
        }
    }
}

impl Drop for RunningApp {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// What every request handler shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: AppConfig,
    pub(crate) app_url: String,
    pub(crate) http: reqwest::Client,
    pub(crate) sessions: Sessions,
    pub(crate) cache: Cache,
    pub(crate) backend: BackendTokens,
    pub(crate) log: RequestLog,
    discovery: tokio::sync::Mutex<Option<Discovery>>,
    /// Held while a sync job runs: one at a time.
    pub(crate) sync_running: tokio::sync::Mutex<()>,
}

impl Shared {
    /// The EHR's SMART configuration (fetched once, then kept).
    pub(crate) async fn discovery(&self) -> Result<Discovery, AppError> {
        let mut cached = self.discovery.lock().await;
        if let Some(d) = cached.as_ref() {
            return Ok(d.clone());
        }
        let found = smart::discover(&self.http, &self.config.fhir_base).await?;
        *cached = Some(found.clone());
        Ok(found)
    }

    /// Whether `flaw` is on.
    pub(crate) fn flawed(&self, flaw: Flaw) -> bool {
        self.config.flaws.has(flaw)
    }

    /// `<fhir base>/<relative>`.
    pub(crate) fn fhir_url(&self, relative: &str) -> String {
        format!("{}/{relative}", self.config.fhir_base)
    }
}

/// One request as the handlers see it.
#[derive(Debug)]
pub(crate) struct Req {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) query: String,
    pub(crate) headers: HeaderMap,
}

impl Req {
    /// The first value of query parameter `name`.
    pub(crate) fn query_value(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// The value of cookie `name`.
    pub(crate) fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }

    /// A header's text.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A response body as warp takes it.
pub(crate) type Resp = Response<String>;

/// A JSON response.
pub(crate) fn json_response(status: u16, body: &Value) -> Resp {
    let mut response = Response::new(body.to_string());
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    headers.insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    response
}

/// `{"error": message}` with `status`.
pub(crate) fn error_response(status: u16, message: &str) -> Resp {
    json_response(status, &json!({"error": message}))
}

/// A 303 (or 302) to `location`, setting `cookies`.
fn redirect(status: u16, location: &str, cookies: &[String]) -> Resp {
    let mut response = Response::new(String::new());
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::SEE_OTHER);
    let headers = response.headers_mut();
    if let Ok(value) = http::HeaderValue::from_str(location) {
        headers.insert(http::header::LOCATION, value);
    }
    headers.insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    for cookie in cookies {
        if let Ok(value) = http::HeaderValue::from_str(cookie) {
            headers.append(http::header::SET_COOKIE, value);
        }
    }
    response
}

/// A session-style cookie (HttpOnly, SameSite=Lax, Path=/).
fn cookie(name: &str, value: &str) -> String {
    format!("{name}={value}; HttpOnly; SameSite=Lax; Path=/")
}

async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let state = warp::any().map(move || Arc::clone(&shared));
    let routes = warp::any()
        .and(state)
        .and(warp::method())
        .and(warp::path::full())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::header::headers_cloned())
        .then(
            |shared: Arc<Shared>,
             method: Method,
             path: warp::path::FullPath,
             query: String,
             headers: HeaderMap| async move {
                let req = Req {
                    method,
                    path: path.as_str().to_string(),
                    query,
                    headers,
                };
                handle(&shared, &req).await
            },
        );
    warp::serve(routes)
        .incoming(listener)
        .graceful(shutdown)
        .run()
        .await;
}

/// Routes, answers and logs one request.
async fn handle(shared: &Shared, req: &Req) -> Resp {
    let response = route(shared, req).await;
    let persona = req
        .cookie(SESSION_COOKIE)
        .and_then(|id| shared.sessions.get(&id))
        .map_or("none", |s| s.persona.name());
    shared.log.request(
        req.method.as_str(),
        &req.path,
        response.status().as_u16(),
        persona,
    );
    response
}

/// Picks the handler of a request.
pub(crate) async fn route(shared: &Shared, req: &Req) -> Resp {
    let announced = req
        .header("content-length")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    if announced > MAX_BODY_BYTES {
        return error_response(413, "the request body is too large");
    }
    let segments: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
    match (&req.method, segments.as_slice()) {
        (&Method::GET, []) => crate::page::index(),
        (&Method::GET, ["login"]) => start_login(shared, req, LaunchKind::Standalone, None).await,
        (&Method::GET, ["launch"]) => ehr_launch(shared, req).await,
        (&Method::GET, ["callback"]) => callback(shared, req).await,
        (&Method::GET, ["api", ..]) => crate::api::handle(shared, req, &segments[1..]).await,
        (&Method::POST, ["internal", "jobs", "sync"]) => crate::sync::endpoint(shared, req).await,
        (
            _,
            ["api", ..] | ["login" | "launch" | "callback"] | ["internal", "jobs", "sync"] | [],
        ) => error_response(405, "method not allowed"),
        _ => error_response(404, "no such page"),
    }
}

/// `GET /launch?iss&launch`: only the configured EHR may launch the app.
async fn ehr_launch(shared: &Shared, req: &Req) -> Resp {
    let Some(iss) = req.query_value("iss") else {
        return error_response(400, "iss is required");
    };
    if iss.trim_end_matches('/') != shared.config.fhir_base {
        return error_response(400, "this app is not registered with that EHR (iss)");
    }
    let Some(launch) = req
        .query_value("launch")
        .filter(|l| !l.is_empty() && l.len() <= 512)
    else {
        return error_response(400, "launch is required");
    };
    start_login(shared, req, LaunchKind::Ehr, Some(&launch)).await
}

/// Sends the browser to the authorize endpoint with state, PKCE and the scopes to ask for.
async fn start_login(shared: &Shared, req: &Req, kind: LaunchKind, launch: Option<&str>) -> Resp {
    let discovery = match shared.discovery().await {
        Ok(d) => d,
        Err(e) => return error_response(502, &format!("cannot sign in: {e}")),
    };
    let made = (|| -> Result<(String, String, Pkce), AppError> {
        let prelogin = match req.cookie(PRELOGIN_COOKIE) {
            Some(existing) if existing.len() == 32 => existing,
            _ => random::token(24)?,
        };
        Ok((prelogin, random::token(24)?, Pkce::new()?))
    })();
    let Ok((prelogin, state, pkce)) = made else {
        return error_response(500, "cannot make a random value");
    };
    let scope = scopes::requested(kind, &shared.config.flaws);
    let redirect_uri = format!("{}/callback", shared.app_url);
    let url = smart::authorize_url(
        &discovery.authorize,
        &smart::AuthorizeParams {
            client_id: &shared.config.client_id,
            redirect_uri: &redirect_uri,
            scope: &scope,
            state: &state,
            aud: &shared.config.fhir_base,
            code_challenge: &pkce.challenge,
            launch,
        },
    );
    let url = match url {
        Ok(u) => u,
        Err(e) => return error_response(502, &e.to_string()),
    };
    shared.sessions.start_login(
        state,
        PendingLogin::new(prelogin.clone(), kind, pkce.verifier, scope, discovery),
    );
    redirect(302, &url, &[cookie(PRELOGIN_COOKIE, &prelogin)])
}

/// `GET /callback?code&state`: checks state, exchanges the code, opens the session.
async fn callback(shared: &Shared, req: &Req) -> Resp {
    if let Some(error) = req.query_value("error") {
        let code: String = error
            .chars()
            .filter(|c| c.is_ascii_lowercase() || *c == '_')
            .take(40)
            .collect();
        return error_response(400, &format!("sign-in failed: {code}"));
    }
    let (Some(code), Some(state)) = (req.query_value("code"), req.query_value("state")) else {
        return error_response(400, "code and state are required");
    };
    let Some(login) = shared
        .sessions
        .finish_login(&state, req.cookie(PRELOGIN_COOKIE).as_deref())
    else {
        return error_response(400, "unknown or expired sign-in: start again");
    };
    let redirect_uri = format!("{}/callback", shared.app_url);
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect_uri.as_str()),
        ("client_id", shared.config.client_id.as_str()),
        ("code_verifier", login.verifier.as_str()),
    ];
    let tokens = match smart::token_request(&shared.http, &login.discovery.token, &form).await {
        Ok(t) => t,
        Err(e) => return error_response(502, &format!("sign-in failed: {e}")),
    };
    let scope = if shared.flawed(Flaw::IgnoresDownscopedGrant) {
        login.scope_requested.clone()
    } else {
        tokens
            .scope
            .clone()
            .unwrap_or_else(|| login.scope_requested.clone())
    };
    let fhir_user = match &tokens.id_token {
        Some(id_token) => {
            smart::verified_fhir_user(
                &shared.http,
                &login.discovery,
                &shared.config.client_id,
                id_token,
            )
            .await
        }
        None => None,
    };
    let persona = persona_of(fhir_user.as_deref(), login.kind);
    let session = Session::new(
        login.kind,
        persona,
        &tokens,
        scope,
        fhir_user,
        login.discovery.token.clone(),
    );
    let Ok(id) = random::token(32) else {
        return error_response(500, "cannot make a random value");
    };
    shared.sessions.insert(id.clone(), session);
    crate::log::analytics(
        &shared.http,
        shared.config.analytics_url.as_deref(),
        "sign-in",
    );
    redirect(303, "/", &[cookie(SESSION_COOKIE, &id)])
}

/// Patient or clinician, from the verified `fhirUser`, else from how the app was launched.
pub(crate) fn persona_of(fhir_user: Option<&str>, kind: LaunchKind) -> Persona {
    let resource = fhir_user.and_then(|u| u.rsplit('/').nth(1));
    match (resource, kind) {
        (Some("Patient"), _) => Persona::Patient,
        (Some("Practitioner" | "PractitionerRole" | "RelatedPerson"), _) => Persona::Clinician,
        (_, LaunchKind::Standalone) => Persona::Patient,
        (_, LaunchKind::Ehr) => Persona::Clinician,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persona_comes_from_fhir_user_first() {
        assert_eq!(
            persona_of(
                Some("http://ehr/fhir/Practitioner/d1"),
                LaunchKind::Standalone
            ),
            Persona::Clinician
        );
        assert_eq!(
            persona_of(Some("http://ehr/fhir/Patient/p1"), LaunchKind::Ehr),
            Persona::Patient
        );
        assert_eq!(persona_of(None, LaunchKind::Ehr), Persona::Clinician);
        assert_eq!(persona_of(None, LaunchKind::Standalone), Persona::Patient);
    }

    #[test]
    fn cookies_and_query_values_are_read() {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::COOKIE,
            http::HeaderValue::from_static("a=1; clinic_session=abc"),
        );
        let req = Req {
            method: Method::GET,
            path: "/".into(),
            query: "patient=p%201&x=2".into(),
            headers,
        };
        assert_eq!(req.cookie("clinic_session").as_deref(), Some("abc"));
        assert_eq!(req.cookie("clinic"), None);
        assert_eq!(req.query_value("patient").as_deref(), Some("p 1"));
    }
}
