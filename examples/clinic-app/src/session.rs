//! Server-side sessions (tokens never reach the browser) and logins in flight (`state`
//! bound to the browser's pre-login cookie, with the PKCE verifier).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::scopes::LaunchKind;

/// The session cookie.
pub(crate) const SESSION_COOKIE: &str = "clinic_session";
/// The pre-login cookie that binds `state` to the browser that started the login.
pub(crate) const PRELOGIN_COOKIE: &str = "clinic_prelogin";
/// How long a login may take.
const LOGIN_TTL: Duration = Duration::from_secs(600);
/// At most this many logins in flight (oldest dropped first).
const MAX_PENDING: usize = 10_000;
/// At most this many sessions (oldest dropped first).
const MAX_SESSIONS: usize = 100_000;

/// Who is signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Persona {
    /// A patient: sees their own record.
    Patient,
    /// A clinician: sees what the EHR lets them see.
    Clinician,
}

impl Persona {
    /// `patient` or `clinician`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Persona::Patient => "patient",
            Persona::Clinician => "clinician",
        }
    }
}

/// One signed-in user.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) kind: LaunchKind,
    pub(crate) persona: Persona,
    pub(crate) access_token: String,
    pub(crate) refresh_token: Option<String>,
    /// Unix time the access token expires (wall clock), if the EHR said.
    pub(crate) expires_at: Option<i64>,
    /// The scopes the app acts on: the granted ones (or, with the
    /// `ignores-downscoped-grant` flaw, the requested ones).
    pub(crate) scope: String,
    pub(crate) patient: Option<String>,
    pub(crate) fhir_user: Option<String>,
    pub(crate) token_url: String,
    /// Held while refreshing, so parallel requests do not spend the refresh token twice.
    pub(crate) refresh_lock: Arc<tokio::sync::Mutex<()>>,
    created: Instant,
}

impl Session {
    /// A new session.
    pub(crate) fn new(
        kind: LaunchKind,
        persona: Persona,
        tokens: &crate::smart::Tokens,
        scope: String,
        fhir_user: Option<String>,
        token_url: String,
    ) -> Self {
        Self {
            kind,
            persona,
            access_token: tokens.access_token.clone(),
            refresh_token: tokens.refresh_token.clone(),
            expires_at: expires_at(tokens.expires_in),
            scope,
            patient: tokens.patient.clone(),
            fhir_user,
            token_url,
            refresh_lock: Arc::new(tokio::sync::Mutex::new(())),
            created: Instant::now(),
        }
    }
}

/// The wall-clock expiry of a token that lives `expires_in` seconds.
pub(crate) fn expires_at(expires_in: Option<i64>) -> Option<i64> {
    expires_in.map(|s| time::OffsetDateTime::now_utc().unix_timestamp() + s)
}

/// A login in flight, keyed by its `state`.
#[derive(Debug, Clone)]
pub(crate) struct PendingLogin {
    pub(crate) prelogin: String,
    pub(crate) kind: LaunchKind,
    pub(crate) verifier: String,
    pub(crate) scope_requested: String,
    pub(crate) discovery: crate::smart::Discovery,
    created: Instant,
}

impl PendingLogin {
    /// A login started now.
    pub(crate) fn new(
        prelogin: String,
        kind: LaunchKind,
        verifier: String,
        scope_requested: String,
        discovery: crate::smart::Discovery,
    ) -> Self {
        Self {
            prelogin,
            kind,
            verifier,
            scope_requested,
            discovery,
            created: Instant::now(),
        }
    }
}

/// Every session and login in flight.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    sessions: Mutex<HashMap<String, Session>>,
    pending: Mutex<HashMap<String, PendingLogin>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Sessions {
    /// Remembers a login under `state`.
    pub(crate) fn start_login(&self, state: String, login: PendingLogin) {
        let mut pending = lock(&self.pending);
        pending.retain(|_, p| p.created.elapsed() < LOGIN_TTL);
        if pending.len() >= MAX_PENDING
            && let Some(oldest) = pending
                .iter()
                .min_by_key(|(_, p)| p.created)
                .map(|(k, _)| k.clone())
        {
            pending.remove(&oldest);
        }
        pending.insert(state, login);
    }

    /// Takes the login of `state` if the same browser (pre-login cookie) started it and it is
    /// still fresh; a state is used at most once.
    pub(crate) fn finish_login(&self, state: &str, prelogin: Option<&str>) -> Option<PendingLogin> {
        let mut pending = lock(&self.pending);
        let login = pending.get(state)?;
        let same_browser = prelogin.is_some_and(|p| {
            p.len() == login.prelogin.len()
                && p.bytes()
                    .zip(login.prelogin.bytes())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
        });
        if !same_browser {
            return None;
        }
        pending
            .remove(state)
            .filter(|l| l.created.elapsed() < LOGIN_TTL)
    }

    /// Stores a new session under `id`.
    pub(crate) fn insert(&self, id: String, session: Session) {
        let mut sessions = lock(&self.sessions);
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, s)| s.created)
                .map(|(k, _)| k.clone())
        {
            sessions.remove(&oldest);
        }
        sessions.insert(id, session);
    }

    /// A copy of the session `id`.
    pub(crate) fn get(&self, id: &str) -> Option<Session> {
        lock(&self.sessions).get(id).cloned()
    }

    /// Changes the session `id`, if it still exists.
    pub(crate) fn update(&self, id: &str, change: impl FnOnce(&mut Session)) {
        if let Some(s) = lock(&self.sessions).get_mut(id) {
            change(s);
        }
    }

    /// Ends the session `id`.
    pub(crate) fn end(&self, id: &str) {
        lock(&self.sessions).remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn discovery() -> crate::smart::Discovery {
        crate::smart::Discovery {
            issuer: "i".into(),
            authorize: "a".into(),
            token: "t".into(),
            jwks_uri: None,
            introspection: None,
        }
    }

    #[test]
    fn state_is_bound_to_the_browser_and_used_once() {
        let sessions = Sessions::default();
        let login = PendingLogin::new(
            "browser-a".into(),
            LaunchKind::Standalone,
            "v".into(),
            "openid".into(),
            discovery(),
        );
        sessions.start_login("state-1".into(), login);
        assert!(sessions.finish_login("state-1", None).is_none());
        assert!(
            sessions
                .finish_login("state-1", Some("browser-b"))
                .is_none()
        );
        assert!(
            sessions
                .finish_login("state-2", Some("browser-a"))
                .is_none()
        );
        assert!(
            sessions
                .finish_login("state-1", Some("browser-a"))
                .is_some()
        );
        assert!(
            sessions
                .finish_login("state-1", Some("browser-a"))
                .is_none(),
            "used once"
        );
    }
}
