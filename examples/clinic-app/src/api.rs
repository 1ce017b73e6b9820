//! The JSON API: who is signed in, and a patient's demographics, labs, medications and vital
//! signs, each behind the scope check and the patient authorization of the correct app.

use serde_json::{Value, json};

use crate::fhir::{self, FhirAnswer};
use crate::flaws::Flaw;
use crate::scopes::covers_read;
use crate::server::{Req, Resp, Shared, error_response, json_response};
use crate::session::{Persona, SESSION_COOKIE, Session};
use crate::smart;

/// Why an API call was not answered with data.
#[derive(Debug)]
enum ApiError {
    /// No session.
    SignedOut,
    /// A bearer token the EHR does not vouch for, for this app and this FHIR server.
    TokenRejected,
    /// The session ended (refresh failed).
    Expired,
    /// A patient asked for another patient.
    NotYours,
    /// The granted scopes do not cover reading this type.
    NotGranted(&'static str),
    /// A clinician's EHR check said no.
    NotFound,
    /// The EHR answered 403 to the user's token.
    Refused,
    /// The EHR failed or could not be reached.
    Upstream(String),
    /// A parameter is missing or malformed.
    BadRequest(&'static str),
}

impl ApiError {
    fn into_response(self, shared: &Shared) -> Resp {
        match self {
            ApiError::SignedOut => error_response(401, "sign in first"),
            ApiError::TokenRejected => error_response(401, "the bearer token is not accepted"),
            ApiError::Expired => error_response(401, "session expired, sign in again"),
            ApiError::NotYours => error_response(403, "not your record"),
            ApiError::NotGranted(t) => error_response(403, &format!("not granted: {t}")),
            ApiError::NotFound => error_response(404, "patient not found"),
            ApiError::Refused if shared.flawed(Flaw::IgnoresDownscopedGrant) => {
                error_response(502, "the EHR answered with an unexpected error")
            }
            ApiError::Refused => {
                error_response(403, "the EHR refused: your access does not include this")
            }
            ApiError::Upstream(m) => error_response(502, &m),
            ApiError::BadRequest(m) => error_response(400, m),
        }
    }
}

/// The signed-in request's session.
struct Ctx<'a> {
    shared: &'a Shared,
    id: String,
    session: Session,
}

/// `GET /api/<segments>`.
pub(crate) async fn handle(shared: &Shared, req: &Req, segments: &[&str]) -> Resp {
    let result = match signed_in(shared, req).await {
        Err(e) => Err(e),
        Ok(ctx) => match segments {
            ["me"] => Ok(me(&ctx)),
            ["patients", id] if valid_id(id) => demographics(&ctx, id).await,
            ["patients", id, "labs"] if valid_id(id) => labs(&ctx, id).await,
            ["patients", id, "medications"] if valid_id(id) => medications(&ctx, id).await,
            ["observations"] => match req.query_value("patient").filter(|p| valid_id(p)) {
                Some(id) => vitals(&ctx, &id).await,
                None => Err(ApiError::BadRequest("patient must be a FHIR id")),
            },
            ["patients", ..] => Err(ApiError::BadRequest("not a FHIR id")),
            _ => return error_response(404, "no such API endpoint"),
        },
    };
    match result {
        Ok(value) => json_response(200, &value),
        Err(e) => e.into_response(shared),
    }
}

/// A FHIR id: 1 to 64 of `A-Z a-z 0-9 - .`.
fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// The request's session: the cookie's, else one made for a SMART bearer token (no id: it is
/// not kept, and cannot be refreshed).
async fn signed_in<'a>(shared: &'a Shared, req: &Req) -> Result<Ctx<'a>, ApiError> {
    if let Some(id) = req.cookie(SESSION_COOKIE) {
        let session = shared.sessions.get(&id).ok_or(ApiError::SignedOut)?;
        return Ok(Ctx {
            shared,
            id,
            session,
        });
    }
    let token = req
        .header("authorization")
        .and_then(|h| h.strip_prefix("Bearer "))
        .ok_or(ApiError::SignedOut)?;
    let session = crate::bearer::session(shared, token)
        .await
        .map_err(|_| ApiError::TokenRejected)?;
    Ok(Ctx {
        shared,
        id: String::new(),
        session,
    })
}

fn me(ctx: &Ctx<'_>) -> Value {
    json!({
        "fhirUser": ctx.session.fhir_user,
        "patient": ctx.session.patient,
        "scope": ctx.session.scope,
        "persona": ctx.session.persona.name(),
    })
}

/// The correct app reads a type only when the granted scopes cover it.
fn require(ctx: &Ctx<'_>, resource_type: &'static str) -> Result<(), ApiError> {
    if covers_read(&ctx.session.scope, resource_type) {
        Ok(())
    } else {
        Err(ApiError::NotGranted(resource_type))
    }
}

/// May this session see patient `id`? A patient: only their own. A clinician: if the EHR
/// lets them read the Patient with their own token (returned, to spare a second read).
async fn authorize(ctx: &Ctx<'_>, id: &str) -> Result<Option<Value>, ApiError> {
    if ctx.shared.flawed(Flaw::CrossPatientApi) {
        return Ok(None);
    }
    match ctx.session.persona {
        Persona::Patient if ctx.session.patient.as_deref() == Some(id) => Ok(None),
        Persona::Patient => Err(ApiError::NotYours),
        Persona::Clinician => {
            require(ctx, "Patient")?;
            match user_get(ctx, &format!("Patient/{id}")).await {
                Ok(patient) => Ok(Some(patient)),
                Err(ApiError::Expired) => Err(ApiError::Expired),
                Err(_) => Err(ApiError::NotFound),
            }
        }
    }
}

/// The sync cache holds data fetched with the backend token, so the correct app never answers
/// a user from it: a user's request is served with that user's token, which the EHR checks and
/// audits. The `cross-patient-api` flaw answers from it ("faster"), with no check at all.
fn cached(ctx: &Ctx<'_>, id: &str) -> Option<crate::cache::CachedPatient> {
    if ctx.shared.flawed(Flaw::CrossPatientApi) {
        ctx.shared.cache.get(id)
    } else {
        None
    }
}

async fn demographics(ctx: &Ctx<'_>, id: &str) -> Result<Value, ApiError> {
    require(ctx, "Patient")?;
    let checked = authorize(ctx, id).await?;
    analytics(ctx, "view-patient");
    if let Some(cached) = cached(ctx, id) {
        return Ok(cached.summary);
    }
    let patient = match checked {
        Some(p) => p,
        None => user_get(ctx, &format!("Patient/{id}")).await?,
    };
    Ok(fhir::patient_summary(&patient))
}

async fn labs(ctx: &Ctx<'_>, id: &str) -> Result<Value, ApiError> {
    require(ctx, "Observation")?;
    authorize(ctx, id).await?;
    analytics(ctx, "view-labs");
    if let Some(cached) = cached(ctx, id) {
        return Ok(json!(cached.labs));
    }
    observations(ctx, id, "laboratory").await
}

async fn vitals(ctx: &Ctx<'_>, id: &str) -> Result<Value, ApiError> {
    require(ctx, "Observation")?;
    authorize(ctx, id).await?;
    analytics(ctx, "view-vitals");
    observations(ctx, id, "vital-signs").await
}

async fn observations(ctx: &Ctx<'_>, id: &str, category: &str) -> Result<Value, ApiError> {
    let bundle = user_get(
        ctx,
        &format!("Observation?patient={id}&category={category}&_sort=-date&_count=20"),
    )
    .await?;
    let rows: Vec<Value> = fhir::bundle_resources(&bundle, "Observation")
        .map(fhir::observation_row)
        .collect();
    Ok(json!(rows))
}

async fn medications(ctx: &Ctx<'_>, id: &str) -> Result<Value, ApiError> {
    require(ctx, "MedicationRequest")?;
    authorize(ctx, id).await?;
    analytics(ctx, "view-medications");
    let bundle = user_get(ctx, &format!("MedicationRequest?patient={id}&_count=50")).await?;
    let rows: Vec<Value> = fhir::bundle_resources(&bundle, "MedicationRequest")
        .map(fhir::medication_row)
        .collect();
    Ok(json!(rows))
}

fn analytics(ctx: &Ctx<'_>, event: &'static str) {
    crate::log::analytics(
        &ctx.shared.http,
        ctx.shared.config.analytics_url.as_deref(),
        event,
    );
}

/// A live FHIR read with the user's token: on 401 one refresh and one retry; with the
/// `service-account-fallback` flaw, a 401/403/404 that remains is retried with the backend
/// token.
async fn user_get(ctx: &Ctx<'_>, relative: &str) -> Result<Value, ApiError> {
    let url = ctx.shared.fhir_url(relative);
    let token = ctx
        .shared
        .sessions
        .get(&ctx.id)
        .map_or_else(|| ctx.session.access_token.clone(), |s| s.access_token);
    let mut answer = fetch(ctx, &url, &token).await?;
    if answer.status == 401 {
        match refresh(ctx, &token).await {
            Some(new_token) => answer = fetch(ctx, &url, &new_token).await?,
            None => {
                if let Some(value) = fallback(ctx, &url).await {
                    return Ok(value);
                }
                ctx.shared.sessions.end(&ctx.id);
                return Err(ApiError::Expired);
            }
        }
    }
    // The simulator (like many EHRs, per FHIR's access-denied guidance) answers a read outside
    // the token's reach with 404, so the flawed fallback treats that as a refusal too.
    if matches!(answer.status, 401 | 403 | 404)
        && let Some(value) = fallback(ctx, &url).await
    {
        return Ok(value);
    }
    match answer.status {
        200 => Ok(answer.body),
        401 => {
            ctx.shared.sessions.end(&ctx.id);
            Err(ApiError::Expired)
        }
        403 => Err(ApiError::Refused),
        404 => Err(ApiError::NotFound),
        other => Err(ApiError::Upstream(format!("the EHR answered {other}"))),
    }
}

async fn fetch(ctx: &Ctx<'_>, url: &str, token: &str) -> Result<FhirAnswer, ApiError> {
    fhir::get(&ctx.shared.http, url, token)
        .await
        .map_err(ApiError::Upstream)
}

/// The confused deputy: the same read with the app's own backend token (only with the flaw).
async fn fallback(ctx: &Ctx<'_>, url: &str) -> Option<Value> {
    if !ctx.shared.flawed(Flaw::ServiceAccountFallback) {
        return None;
    }
    let answer = crate::sync::backend_get(ctx.shared, url).await.ok()?;
    (answer.status == 200).then_some(answer.body)
}

/// Refreshes the session's tokens once (no `scope`, unless the `widens-on-refresh` flaw
/// widens it); the new access token, or `None` when the refresh failed.
async fn refresh(ctx: &Ctx<'_>, failed_token: &str) -> Option<String> {
    let lock = ctx.session.refresh_lock.clone();
    let _held = lock.lock().await;
    let current = ctx.shared.sessions.get(&ctx.id)?;
    if current.access_token != failed_token {
        return Some(current.access_token);
    }
    let refresh_token = current.refresh_token.clone()?;
    let config = &ctx.shared.config;
    let widened = crate::scopes::widened(current.kind, &config.flaws);
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token.as_str()),
        ("client_id", config.client_id.as_str()),
    ];
    if ctx.shared.flawed(Flaw::WidensOnRefresh) {
        form.push(("scope", widened.as_str()));
    }
    let tokens = smart::token_request(&ctx.shared.http, &current.token_url, &form)
        .await
        .ok()?;
    let ignore_grant = ctx.shared.flawed(Flaw::IgnoresDownscopedGrant);
    ctx.shared.sessions.update(&ctx.id, |s| {
        s.access_token = tokens.access_token.clone();
        if let Some(rotated) = &tokens.refresh_token {
            s.refresh_token = Some(rotated.clone());
        }
        s.expires_at = crate::session::expires_at(tokens.expires_in);
        if let Some(granted) = tokens.scope.as_ref().filter(|_| !ignore_grant) {
            s.scope = granted.clone();
        }
    });
    Some(tokens.access_token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked() {
        assert!(valid_id("abc-123.x"));
        assert!(!valid_id(""));
        assert!(!valid_id("a/b"));
        assert!(!valid_id("a?b"));
        assert!(!valid_id(&"x".repeat(65)));
    }
}
