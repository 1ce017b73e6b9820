//! The backend sync job: with the backend services token, every Patient the token can see
//! (at most [`MAX_PATIENTS`]) and their recent labs go into the cache.

use std::collections::HashMap;

use serde_json::json;

use crate::cache::CachedPatient;
use crate::config::AppError;
use crate::fhir::{self, FhirAnswer};
use crate::server::{Req, Resp, Shared, error_response, json_response};

/// The most patients one run caches.
pub(crate) const MAX_PATIENTS: usize = 500;
/// The most pages one run follows (a server that pages forever cannot hold the job).
const MAX_PAGES: usize = 50;

/// `POST /internal/jobs/sync` with `X-Job-Token`.
pub(crate) async fn endpoint(shared: &Shared, req: &Req) -> Resp {
    let given = req.header("x-job-token").unwrap_or("");
    let expected = shared.config.job_token.as_bytes();
    let same = !expected.is_empty()
        && given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if !same {
        return error_response(401, "a valid X-Job-Token header is required");
    }
    match run(shared).await {
        Ok((patients, observations)) => json_response(
            200,
            &json!({"patients": patients, "observations": observations}),
        ),
        Err(e) => error_response(502, &format!("sync failed: {e}")),
    }
}

/// Runs the job: (patients, observations) cached.
pub(crate) async fn run(shared: &Shared) -> Result<(usize, usize), AppError> {
    let _one_at_a_time = shared.sync_running.lock().await;
    let mut patients = Vec::new();
    let mut next = Some(shared.fhir_url("Patient?_count=200"));
    let mut pages = 0;
    while let Some(url) = next.take() {
        pages += 1;
        let bundle = backend_ok(shared, &url).await?;
        patients.extend(fhir::bundle_resources(&bundle, "Patient").cloned());
        if patients.len() >= MAX_PATIENTS || pages >= MAX_PAGES {
            break;
        }
        // Only follow links back to the same FHIR server: the token must not go elsewhere.
        next = fhir::next_link(&bundle)
            .filter(|link| {
                link.starts_with(&format!("{}/", shared.config.fhir_base))
                    || link.starts_with(&format!("{}?", shared.config.fhir_base))
            })
            .map(str::to_string);
    }
    patients.truncate(MAX_PATIENTS);
    let mut cached = HashMap::new();
    let mut observations = 0;
    for patient in &patients {
        let Some(id) = patient["id"].as_str() else {
            continue;
        };
        let labs_url = shared.fhir_url(&format!(
            "Observation?patient={id}&category=laboratory&_sort=-date&_count=20"
        ));
        let bundle = backend_ok(shared, &labs_url).await?;
        let labs: Vec<_> = fhir::bundle_resources(&bundle, "Observation")
            .map(fhir::observation_row)
            .collect();
        observations += labs.len();
        cached.insert(
            id.to_string(),
            CachedPatient {
                summary: fhir::patient_summary(patient),
                labs,
            },
        );
    }
    let count = cached.len();
    shared.cache.replace(cached);
    Ok((count, observations))
}

async fn backend_ok(shared: &Shared, url: &str) -> Result<serde_json::Value, AppError> {
    let answer = backend_get(shared, url).await?;
    if answer.status == 200 {
        Ok(answer.body)
    } else {
        Err(AppError::Upstream(format!(
            "the EHR answered {} to the backend",
            answer.status
        )))
    }
}

/// `GET url` with the backend token (a new token once if the EHR says 401).
pub(crate) async fn backend_get(shared: &Shared, url: &str) -> Result<FhirAnswer, AppError> {
    let token_url = shared.discovery().await?.token;
    let token = shared.backend.token(&shared.http, &token_url).await?;
    let answer = fhir::get(&shared.http, url, &token)
        .await
        .map_err(AppError::Upstream)?;
    if answer.status != 401 {
        return Ok(answer);
    }
    shared.backend.forget().await;
    let token = shared.backend.token(&shared.http, &token_url).await?;
    fhir::get(&shared.http, url, &token)
        .await
        .map_err(AppError::Upstream)
}
