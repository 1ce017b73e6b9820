//! FHIR Bulk Data Access (v2.0) `$export`: kick-off at system, Patient and Group level, a
//! status URL to poll (`[base]/_bulk/<job>`), cancellation (DELETE on it) and NDJSON file
//! downloads (`[base]/_bulk/<job>/<Type>-<n>.ndjson`).
//!
//! The export is computed at kick-off from one snapshot of the store, so a job's files never
//! change afterwards. Jobs live in memory, per environment, at most [`MAX_JOBS`] of them; a job
//! reports "in progress" for its first second of real time so clients see the 202 phase.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::crud::new_id;
use super::{Ctx, ExportLevel, paging, types};
use crate::access::{Grant, Principal, Visible};
use crate::clock::fhir_instant;
use crate::outcome::{FhirError, IssueType, operation_outcome};
use crate::request::{SimRequest, SimResponse};
use crate::search::ResourceSource;
use crate::store::{Lookup, Store, Version};
use crate::stored::StoredJson;

/// Jobs kept per environment; the oldest finished one makes room for a new one.
const MAX_JOBS: usize = 20;
/// Resources per output file; a larger type is split over several files.
const FILE_LIMIT: usize = 10_000;
/// Real time a job stays "in progress" after kick-off.
const READY_AFTER: Duration = Duration::from_secs(1);
/// `_outputFormat` values that mean FHIR NDJSON.
const NDJSON_FORMATS: &[&str] = &["application/fhir+ndjson", "application/ndjson", "ndjson"];
/// Media types a file download may ask for through `Accept`.
const DOWNLOAD_MEDIA: &[&str] = &[
    "*/*",
    "application/*",
    "application/fhir+ndjson",
    "application/ndjson",
    "application/x-ndjson",
    "application/fhir+json",
    "application/json",
];
/// Resource types never exported (audit records).
const NOT_EXPORTED: &[&str] = &["AuditEvent"];
/// The kick-off parameters this server understands.
const KNOWN_PARAMETERS: &[&str] = &["_outputFormat", "_type", "_since", "_format", "_pretty"];

/// One NDJSON output file of a job.
#[derive(Debug, Clone)]
struct OutputFile {
    resource_type: String,
    name: String,
    count: usize,
    ndjson: Arc<[u8]>,
}

/// One export: its files are complete from kick-off; `started` only paces the status replies.
#[derive(Debug)]
struct Job {
    id: String,
    /// The client and user that started it (`None`: the admin); only they may poll, fetch or
    /// cancel.
    owner: Option<(String, Option<String>)>,
    started: Instant,
    transaction_time: String,
    request: String,
    files: Vec<OutputFile>,
}

impl Job {
    /// Whether the job reports complete at `now`.
    fn is_finished(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.started) >= READY_AFTER
    }

    /// Progress at `now`, 0 to 99 while in progress.
    fn percent(&self, now: Instant) -> u128 {
        let elapsed = now.saturating_duration_since(self.started).as_millis();
        (elapsed * 100 / READY_AFTER.as_millis().max(1)).min(99)
    }
}

/// The bulk export jobs of one environment, oldest first.
#[derive(Debug, Default)]
pub(crate) struct BulkJobs {
    jobs: Vec<Job>,
}

impl BulkJobs {
    /// Drops every job (on `/_sim/reset`).
    pub(crate) fn clear(&mut self) {
        self.jobs.clear();
    }

    /// Adds `job`, evicting the oldest finished job when full; 429 when every job still runs.
    fn admit(&mut self, job: Job, now: Instant) -> Result<(), FhirError> {
        if self.jobs.len() >= MAX_JOBS {
            let Some(oldest) = self.jobs.iter().position(|j| j.is_finished(now)) else {
                return Err(FhirError::new(
                    429,
                    IssueType::TooCostly,
                    format!("{MAX_JOBS} bulk exports are already running: retry in a second"),
                ));
            };
            self.jobs.remove(oldest);
        }
        self.jobs.push(job);
        Ok(())
    }

    /// The job `id`, if `principal` may see it (its owner, or the admin).
    fn get(&self, id: &str, principal: &Principal) -> Option<&Job> {
        self.jobs.iter().find(|j| j.id == id && owns(principal, j))
    }

    /// Removes a job `principal` may see; false when there was none.
    fn remove(&mut self, id: &str, principal: &Principal) -> bool {
        let before = self.jobs.len();
        self.jobs.retain(|j| !(j.id == id && owns(principal, j)));
        self.jobs.len() < before
    }
}

/// Whether `principal` may see `job`: the admin sees every job; a token, the jobs started by
/// its client for the same user (or none), and only while it holds a system/ or user/ scope.
fn owns(principal: &Principal, job: &Job) -> bool {
    match principal.grant() {
        None => true,
        Some(grant) => {
            grant.has_population_scope()
                && job
                    .owner
                    .as_ref()
                    .is_some_and(|(client, user)| *client == grant.client_id && *user == grant.user)
        }
    }
}

/// What a kick-off asked for: `_type` and `_since`.
#[derive(Debug, Default)]
struct Filter {
    types: Option<Vec<String>>,
    since: Option<OffsetDateTime>,
    /// The caller's grant: only what it reaches is exported (`None`: the admin, everything).
    grant: Option<Arc<Grant>>,
}

impl Filter {
    /// Checks the kick-off request (`Prefer`, parameters) and reads its filters.
    fn from_request(req: &SimRequest, principal: &Principal) -> Result<Self, FhirError> {
        let grant = match principal {
            Principal::Admin => None,
            Principal::Bearer(grant) if grant.has_population_scope() => Some(Arc::clone(grant)),
            Principal::Bearer(_) => {
                return Err(FhirError::new(
                    403,
                    IssueType::Forbidden,
                    "$export needs system/ or user/ scopes (Bulk Data Access); patient/ scopes \
                     cannot export",
                ));
            }
        };
        if !req.prefers("respond-async") {
            return Err(FhirError::bad_request(
                "$export runs asynchronously: add the header Prefer: respond-async",
            ));
        }
        check_output_format(req.query_value("_outputFormat"))?;
        if req.prefers("handling=strict") {
            check_known_parameters(req)?;
        }
        let type_values: Vec<&str> = req
            .query
            .iter()
            .filter(|(k, _)| k == "_type")
            .map(|(_, v)| v.as_str())
            .collect();
        let types = if type_values.is_empty() {
            None
        } else {
            Some(parse_types(&type_values)?)
        };
        let since = paging::since(req.query_value("_since"))?;
        Ok(Self {
            types,
            since,
            grant,
        })
    }

    fn wants_type(&self, resource_type: &str) -> bool {
        !NOT_EXPORTED.contains(&resource_type)
            && self
                .types
                .as_ref()
                .is_none_or(|ts| ts.iter().any(|t| t == resource_type))
    }

    /// Whether a version written at `last_updated` is at or after `_since`.
    fn is_recent(&self, last_updated: &str) -> bool {
        self.since.is_none_or(|since| {
            OffsetDateTime::parse(last_updated, &Rfc3339).is_ok_and(|t| t >= since)
        })
    }
}

fn check_output_format(format: Option<&str>) -> Result<(), FhirError> {
    match format {
        Some(f) if !NDJSON_FORMATS.contains(&f.trim().to_ascii_lowercase().as_str()) => {
            Err(FhirError::bad_request(format!(
                "_outputFormat={f:?} is not supported: use application/fhir+ndjson or leave it out"
            ))
            .at("_outputFormat"))
        }
        _ => Ok(()),
    }
}

fn check_known_parameters(req: &SimRequest) -> Result<(), FhirError> {
    match req
        .query
        .iter()
        .find(|(k, _)| !KNOWN_PARAMETERS.contains(&k.as_str()))
    {
        Some((name, _)) => Err(FhirError::new(
            400,
            IssueType::NotSupported,
            format!(
                "{name} is not supported by $export here: remove it, or drop Prefer: handling=strict to have it ignored"
            ),
        )
        .at(name.clone())),
        None => Ok(()),
    }
}

/// Parses `_type` values (each a comma list) into checked resource types.
fn parse_types(values: &[&str]) -> Result<Vec<String>, FhirError> {
    let mut out: Vec<String> = Vec::new();
    for t in values.iter().flat_map(|v| v.split(',')).map(str::trim) {
        if t.is_empty() {
            continue;
        }
        types::check_type(t).map_err(|e| {
            FhirError::bad_request(format!(
                "{} (in _type: list resource types separated by commas, e.g. Patient,Observation)",
                e.diagnostics
            ))
            .at("_type")
        })?;
        if !out.iter().any(|known| known == t) {
            out.push(t.to_string());
        }
    }
    Ok(out)
}

/// The exported resources: type → id → resource (both sorted).
type Snapshot = BTreeMap<String, BTreeMap<String, StoredJson>>;

/// Gathers what `level` exports from `store`, filtered. It works on the stored text and the
/// versions' `lastUpdated`: nothing is parsed but a Group's member list.
fn snapshot(store: &Store, level: &ExportLevel, filter: &Filter) -> Result<Snapshot, FhirError> {
    if let Some(grant) = filter.grant.as_deref()
        && let ExportLevel::Group { id } = level
        && store.get("Group", id).is_some()
        && Visible::new(store, grant).get("Group", id).is_none()
    {
        return Err(FhirError::new(
            403,
            IssueType::Forbidden,
            format!("Group/{id} is outside what this token may read"),
        ));
    }
    let mut out = Snapshot::new();
    match level {
        ExportLevel::System => {
            for t in store.types().into_iter().filter(|t| filter.wants_type(t)) {
                for (id, version) in store.current_of_type(t) {
                    add(store, &mut out, filter, t, id, version);
                }
            }
        }
        ExportLevel::Patient => {
            let ids: Vec<String> = store
                .current_of_type("Patient")
                .into_iter()
                .map(|(id, _)| id.to_string())
                .collect();
            add_compartments(store, &ids, filter, &mut out);
        }
        ExportLevel::Group { id } => {
            let group = store.get("Group", id).ok_or_else(|| {
                FhirError::not_found(format!(
                    "Group/{id} is not known: create the Group first, or export Patient/$export"
                ))
            })?;
            add_compartments(store, &group_members(&group), filter, &mut out);
        }
    }
    Ok(out)
}

/// The patient ids a Group's members name (`member[].entity.reference` = `Patient/<id>`).
fn group_members(group: &Value) -> Vec<String> {
    group["member"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["entity"]["reference"].as_str()?.strip_prefix("Patient/"))
        .filter(|id| types::is_valid_id(id))
        .map(str::to_string)
        .collect()
}

/// Adds each existing patient and every resource in their compartments.
fn add_compartments(store: &Store, patient_ids: &[String], filter: &Filter, out: &mut Snapshot) {
    let wanted: Vec<&str> = store
        .types()
        .into_iter()
        .filter(|t| filter.wants_type(t))
        .collect();
    for patient_id in patient_ids {
        let Lookup::Found(patient) = store.current("Patient", patient_id) else {
            continue;
        };
        add(store, out, filter, "Patient", patient_id, &patient);
        for t in &wanted {
            for (id, version) in store.current_in_patient_compartment(t, patient_id) {
                add(store, out, filter, t, id, version);
            }
        }
    }
}

fn add(
    store: &Store,
    out: &mut Snapshot,
    filter: &Filter,
    resource_type: &str,
    id: &str,
    version: &Version,
) {
    let Some(json) = &version.json else { return };
    if let Some(grant) = filter.grant.as_deref() {
        let body = grant
            .restricts(resource_type)
            .then(|| version.resource())
            .flatten();
        if !grant.sees(resource_type, &version.patients, body.as_ref(), store) {
            return;
        }
    }
    if filter.wants_type(resource_type) && filter.is_recent(&version.last_updated) {
        out.entry(resource_type.to_string())
            .or_default()
            .insert(id.to_string(), json.clone());
    }
}

/// One file per type, or several of at most `per_file` resources, in type order.
fn output_files(snapshot: &Snapshot, per_file: usize) -> Vec<OutputFile> {
    let mut files = Vec::new();
    for (resource_type, by_id) in snapshot {
        let resources: Vec<&StoredJson> = by_id.values().collect();
        for (i, chunk) in resources.chunks(per_file.max(1)).enumerate() {
            files.push(OutputFile {
                resource_type: resource_type.clone(),
                name: format!("{resource_type}-{}.ndjson", i + 1),
                count: chunk.len(),
                ndjson: ndjson(chunk).into(),
            });
        }
    }
    files
}

/// One resource per line (its stored compact JSON), each line ending with `\n`.
fn ndjson(resources: &[&StoredJson]) -> Vec<u8> {
    let mut out = Vec::with_capacity(resources.iter().map(|r| r.text().len() + 1).sum());
    for resource in resources {
        out.extend_from_slice(resource.text().as_bytes());
        out.push(b'\n');
    }
    out
}

/// The completion manifest of a job whose files are under `base_url`.
fn manifest(job: &Job, base_url: &str) -> Value {
    let output: Vec<Value> = job
        .files
        .iter()
        .map(|f| {
            json!({
                "type": f.resource_type,
                "url": format!("{base_url}/_bulk/{}/{}", job.id, f.name),
                "count": f.count
            })
        })
        .collect();
    json!({
        "transactionTime": job.transaction_time,
        "request": job.request,
        "requiresAccessToken": true,
        "output": output,
        "error": []
    })
}

/// The kick-off URL with its query, as the manifest repeats it.
fn request_url(ctx: &Ctx<'_>, level: &ExportLevel) -> String {
    let base = ctx.base_url();
    let url = match level {
        ExportLevel::System => format!("{base}/$export"),
        ExportLevel::Patient => format!("{base}/Patient/$export"),
        ExportLevel::Group { id } => format!("{base}/Group/{id}/$export"),
    };
    if ctx.req.query.is_empty() {
        return url;
    }
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&ctx.req.query)
        .finish();
    format!("{url}?{query}")
}

fn unknown_job(ctx: &Ctx<'_>, job_id: &str) -> FhirError {
    FhirError::not_found(format!(
        "no bulk export job {job_id:?} at {}: it was cancelled, evicted or reset, or never existed; start a new one with $export",
        ctx.base_url()
    ))
}

/// `GET [base]/$export`, `[base]/Patient/$export`, `[base]/Group/[id]/$export`: runs the
/// export and answers 202 with the status URL in `Content-Location`.
pub(crate) fn kick_off(ctx: &Ctx<'_>, level: &ExportLevel) -> Result<SimResponse, FhirError> {
    let filter = Filter::from_request(ctx.req, ctx.principal)?;
    let transaction_time = fhir_instant(ctx.sim.clock().now());
    // The read lock is held until the job is admitted, so a reset cannot slip in between and
    // leave a job made of data the reset discarded (reset clears jobs under the write lock).
    let store = ctx.env.read();
    let files = output_files(&snapshot(&store, level, &filter)?, FILE_LIMIT);
    let job = Job {
        id: new_id(),
        owner: ctx
            .principal
            .grant()
            .map(|g| (g.client_id.clone(), g.user.clone())),
        started: Instant::now(),
        transaction_time,
        request: request_url(ctx, level),
        files,
    };
    let status_url = format!("{}/_bulk/{}", ctx.base_url(), job.id);
    if let Err(e) = ctx.env.jobs().admit(job, Instant::now()) {
        return Ok(SimResponse::error(&e, ctx.pretty).with_header("retry-after", "1"));
    }
    drop(store);
    let outcome = operation_outcome(
        "information",
        IssueType::Informational,
        &format!("export started: poll {status_url} until it answers 200 with the manifest"),
        None,
    );
    Ok(ctx
        .respond(202, &outcome)
        .with_header("content-location", status_url))
}

/// `GET [base]/_bulk/<job>`: 202 with `X-Progress` while running, then 200 with the manifest.
pub(crate) fn status(ctx: &Ctx<'_>, job_id: &str) -> Result<SimResponse, FhirError> {
    let jobs = ctx.env.jobs();
    let job = jobs
        .get(job_id, ctx.principal)
        .ok_or_else(|| unknown_job(ctx, job_id))?;
    let now = Instant::now();
    if !job.is_finished(now) {
        return Ok(SimResponse::empty(202)
            .with_header("x-progress", format!("exporting, {}%", job.percent(now)))
            .with_header("retry-after", "1"));
    }
    let body = manifest(job, &ctx.base_url());
    Ok(SimResponse::json(
        200,
        &body,
        ctx.pretty,
        "application/json",
    ))
}

/// `DELETE [base]/_bulk/<job>`: cancels the job and deletes its files.
pub(crate) fn cancel(ctx: &Ctx<'_>, job_id: &str) -> Result<SimResponse, FhirError> {
    if !ctx.env.jobs().remove(job_id, ctx.principal) {
        return Err(unknown_job(ctx, job_id));
    }
    let outcome = operation_outcome(
        "information",
        IssueType::Informational,
        &format!("bulk export job {job_id} is cancelled and its files are deleted"),
        None,
    );
    Ok(ctx.respond(202, &outcome))
}

/// `GET [base]/_bulk/<job>/<file>`: one NDJSON output file.
pub(crate) fn download(ctx: &Ctx<'_>, job_id: &str, name: &str) -> Result<SimResponse, FhirError> {
    let bytes = {
        let jobs = ctx.env.jobs();
        let job = jobs
            .get(job_id, ctx.principal)
            .ok_or_else(|| unknown_job(ctx, job_id))?;
        let file = job.files.iter().find(|f| f.name == name).ok_or_else(|| {
            FhirError::not_found(format!(
                "bulk export job {job_id} has no file {name:?}: take the file URLs from its manifest"
            ))
        })?;
        Arc::clone(&file.ndjson)
    };
    let mut response =
        SimResponse::empty(200).with_header("content-type", "application/fhir+ndjson");
    response.body = bytes.to_vec();
    Ok(response)
}

/// Content negotiation for file downloads: NDJSON (or a wildcard), else 406.
pub(crate) fn negotiate_download(req: &SimRequest) -> Result<(), FhirError> {
    let Some(accept) = req.header("accept") else {
        return Ok(());
    };
    let acceptable = accept.split(',').any(|part| {
        let media = part.split(';').next().unwrap_or("").trim();
        media.is_empty() || DOWNLOAD_MEDIA.contains(&media.to_ascii_lowercase().as_str())
    });
    if acceptable {
        Ok(())
    } else {
        Err(FhirError::new(
            406,
            IssueType::NotSupported,
            format!(
                "Accept {accept:?} is not served here: export files are application/fhir+ndjson"
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use http::{HeaderValue, Method};

    use super::*;
    use crate::Simulator;
    use crate::behaviour::Behaviour;
    use crate::environment::Environment;

    const OLD: &str = "2020-01-01T00:00:00Z";
    const NEW: &str = "2024-06-01T00:00:00Z";

    fn store() -> Store {
        let mut s = Store::new();
        for p in ["p1", "p2"] {
            s.put(json!({"resourceType": "Patient", "id": p}), OLD);
        }
        let subject = |p: &str| json!({"reference": format!("Patient/{p}")});
        s.put(
            json!({"resourceType": "Observation", "id": "o1", "subject": subject("p1")}),
            NEW,
        );
        s.put(
            json!({"resourceType": "Observation", "id": "o2", "subject": subject("p2")}),
            OLD,
        );
        s.put(json!({"resourceType": "Organization", "id": "org"}), OLD);
        s.put(json!({"resourceType": "AuditEvent", "id": "a1"}), OLD);
        s.put(json!({"resourceType": "Group", "id": "g1", "type": "person", "actual": true,
            "member": [{"entity": {"reference": "Patient/p1"}}, {"entity": {"reference": "Patient/gone"}}]}), OLD);
        s
    }

    fn admin_request(query: &str) -> SimRequest {
        request(query).bearer("admin")
    }

    fn request(query: &str) -> SimRequest {
        let mut req = SimRequest::new(Method::GET, &format!("/sandbox/fhir/$export?{query}"));
        req.headers
            .insert("prefer", HeaderValue::from_static("respond-async"));
        req
    }

    /// `type/id` of every exported resource.
    fn exported(level: &ExportLevel, query: &str) -> Result<Vec<String>, u16> {
        let filter =
            Filter::from_request(&request(query), &Principal::Admin).map_err(|e| e.status)?;
        let snapshot = snapshot(&store(), level, &filter).map_err(|e| e.status)?;
        Ok(snapshot
            .iter()
            .flat_map(|(t, by_id)| by_id.keys().map(move |id| format!("{t}/{id}")))
            .collect())
    }

    fn job(id: &str, started: Instant) -> Job {
        Job {
            owner: None,
            id: id.to_string(),
            started,
            transaction_time: NEW.to_string(),
            request: "http://x/fhir/$export".to_string(),
            files: Vec::new(),
        }
    }

    #[test]
    fn levels_export_everything_or_compartments_but_never_audit_events() {
        let all = exported(&ExportLevel::System, "").unwrap_or_default();
        assert_eq!(all.len(), 6, "{all:?}");
        assert!(!all.iter().any(|k| k.starts_with("AuditEvent/")));
        let patients = exported(&ExportLevel::Patient, "").unwrap_or_default();
        assert!(!patients.contains(&"Organization/org".to_string()));
        assert!(patients.contains(&"Observation/o2".to_string()));
        let group = ExportLevel::Group { id: "g1".into() };
        assert_eq!(
            exported(&group, ""),
            Ok(vec![
                "Group/g1".to_string(),
                "Observation/o1".to_string(),
                "Patient/p1".to_string()
            ])
        );
        let missing = ExportLevel::Group { id: "nope".into() };
        assert_eq!(exported(&missing, ""), Err(404));
    }

    #[test]
    fn type_and_since_filter_the_export() {
        assert_eq!(
            exported(
                &ExportLevel::System,
                "_type=Observation,Organization&_since=2024-01-01T00:00:00Z"
            ),
            Ok(vec!["Observation/o1".to_string()])
        );
        assert_eq!(
            exported(&ExportLevel::Patient, "_type=Patient&_type=Group").map(|v| v.len()),
            Ok(3)
        );
        assert_eq!(exported(&ExportLevel::System, "_type=Banana"), Err(400));
        assert_eq!(exported(&ExportLevel::System, "_type=Parameters"), Err(400));
        assert_eq!(exported(&ExportLevel::System, "_since=yesterday"), Err(400));
    }

    #[test]
    fn kick_off_checks_prefer_and_output_format() {
        let ok = |req: &SimRequest| {
            Filter::from_request(req, &Principal::Admin)
                .map(|_| ())
                .map_err(|e| e.status)
        };
        for format in ["application/fhir%2Bndjson", "application/ndjson", "ndjson"] {
            assert_eq!(ok(&request(&format!("_outputFormat={format}"))), Ok(()));
        }
        assert_eq!(
            ok(&request("_outputFormat=application/fhir%2Bjson")),
            Err(400)
        );
        assert_eq!(
            ok(&request("_typeFilter=x")),
            Ok(()),
            "ignored unless strict"
        );
        let mut strict = request("_typeFilter=x");
        strict
            .headers
            .append("prefer", HeaderValue::from_static("handling=strict"));
        assert_eq!(ok(&strict), Err(400));
        let no_prefer = SimRequest::new(Method::GET, "/sandbox/fhir/$export");
        let error = Filter::from_request(&no_prefer, &Principal::Admin).err();
        assert!(error.is_some_and(|e| e.diagnostics.contains("Prefer: respond-async")));
    }

    #[test]
    fn large_types_are_split_and_lines_match_counts() {
        let mut snapshot = Snapshot::new();
        for i in 0..5 {
            let id = format!("o{i}");
            let resource = StoredJson::new(&json!({"resourceType": "Observation", "id": id}));
            snapshot
                .entry("Observation".into())
                .or_default()
                .insert(id, resource);
        }
        let patient = StoredJson::new(&json!({"resourceType": "Patient", "id": "p"}));
        snapshot
            .entry("Patient".into())
            .or_default()
            .insert("p".into(), patient);
        let files = output_files(&snapshot, 2);
        let names: Vec<(&str, usize)> = files.iter().map(|f| (f.name.as_str(), f.count)).collect();
        assert_eq!(
            names,
            [
                ("Observation-1.ndjson", 2),
                ("Observation-2.ndjson", 2),
                ("Observation-3.ndjson", 1),
                ("Patient-1.ndjson", 1)
            ]
        );
        for file in &files {
            let text = String::from_utf8_lossy(&file.ndjson);
            assert!(text.ends_with('\n'));
            assert_eq!(text.lines().count(), file.count);
            for line in text.lines() {
                let value: Value = serde_json::from_str(line).unwrap_or_default();
                assert_eq!(value["resourceType"], file.resource_type.as_str());
            }
        }
    }

    #[test]
    fn manifest_lists_every_file_with_its_url() {
        let mut j = job("j1", Instant::now());
        let filter = Filter::default();
        j.files = output_files(
            &snapshot(&store(), &ExportLevel::System, &filter).unwrap_or_default(),
            FILE_LIMIT,
        );
        let m = manifest(&j, "http://x/fhir");
        assert_eq!(m["transactionTime"], NEW);
        assert_eq!(m["request"], "http://x/fhir/$export");
        assert_eq!(m["requiresAccessToken"], true);
        assert_eq!(m["error"], json!([]));
        let types: Vec<&str> = m["output"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|o| o["type"].as_str())
            .collect();
        assert_eq!(types, ["Group", "Observation", "Organization", "Patient"]);
        assert_eq!(
            m["output"][1]["url"],
            "http://x/fhir/_bulk/j1/Observation-1.ndjson"
        );
        assert_eq!(m["output"][1]["count"], 2);
    }

    #[test]
    fn jobs_evict_the_oldest_finished_one_or_refuse_when_all_run() {
        let start = Instant::now();
        let mut jobs = BulkJobs::default();
        for i in 0..MAX_JOBS {
            assert!(jobs.admit(job(&format!("j{i}"), start), start).is_ok());
        }
        let refused = jobs.admit(job("late", start), start);
        assert_eq!(refused.map_err(|e| e.status), Err(429));
        let later = start + READY_AFTER;
        assert!(jobs.admit(job("late", later), later).is_ok());
        let admin = Principal::Admin;
        assert!(jobs.get("j0", &admin).is_none());
        assert!(jobs.get("j1", &admin).is_some() && jobs.get("late", &admin).is_some());
        assert_eq!(jobs.jobs.len(), MAX_JOBS);
        assert!(jobs.remove("late", &admin));
        assert!(!jobs.remove("late", &admin));
    }

    #[test]
    fn progress_runs_for_a_second() {
        let start = Instant::now();
        let j = job("j", start);
        assert!(!j.is_finished(start));
        assert_eq!(j.percent(start + Duration::from_millis(400)), 40);
        assert!(j.is_finished(start + READY_AFTER));
    }

    #[test]
    fn kick_off_status_cancel_and_reset_through_the_simulator() {
        let env = Environment::new("sandbox", store());
        let sim = Simulator::new(vec![env], "http://sim.test", Behaviour::default())
            .with_admin_token("admin");
        let kick = sim.handle(&admin_request("_type=Patient"));
        assert_eq!(kick.status, 202);
        let location = kick
            .header("content-location")
            .unwrap_or_default()
            .to_string();
        let path = location.trim_start_matches("http://sim.test").to_string();
        assert!(path.starts_with("/sandbox/fhir/_bulk/"), "{location}");
        let status = sim.handle(&SimRequest::new(Method::GET, &path).bearer("admin"));
        assert_eq!(status.status, 202);
        assert!(
            status
                .header("x-progress")
                .is_some_and(|p| p.starts_with("exporting"))
        );
        assert_eq!(status.header("retry-after"), Some("1"));
        let file =
            SimRequest::new(Method::GET, &format!("{path}/Patient-1.ndjson")).bearer("admin");
        let download = sim.handle(&file);
        assert_eq!(
            download.header("content-type"),
            Some("application/fhir+ndjson")
        );
        assert_eq!(String::from_utf8_lossy(&download.body).lines().count(), 2);
        assert_eq!(
            sim.handle(
                &SimRequest::new(Method::GET, &format!("{path}/Nope-1.ndjson")).bearer("admin")
            )
            .status,
            404
        );
        assert_eq!(
            sim.handle(&SimRequest::new(Method::DELETE, &path).bearer("admin"))
                .status,
            202
        );
        assert_eq!(
            sim.handle(&SimRequest::new(Method::GET, &path).bearer("admin"))
                .status,
            404
        );
        assert_eq!(
            sim.handle(&SimRequest::new(Method::DELETE, &path).bearer("admin"))
                .status,
            404
        );
        let again = sim.handle(&admin_request(""));
        let path = again
            .header("content-location")
            .unwrap_or_default()
            .replace("http://sim.test", "");
        sim.environments()[0].reset();
        assert_eq!(
            sim.handle(&SimRequest::new(Method::GET, &path).bearer("admin"))
                .status,
            404
        );
    }

    #[test]
    fn downloads_accept_ndjson_or_wildcards() {
        let with_accept = |accept: &'static str| {
            let mut req = SimRequest::new(Method::GET, "/x");
            req.headers
                .insert("accept", HeaderValue::from_static(accept));
            negotiate_download(&req).map_err(|e| e.status)
        };
        assert_eq!(with_accept("application/fhir+ndjson"), Ok(()));
        assert_eq!(with_accept("*/*"), Ok(()));
        assert_eq!(with_accept("application/fhir+xml"), Err(406));
        assert_eq!(
            negotiate_download(&SimRequest::new(Method::GET, "/x")).map_err(|e| e.status),
            Ok(())
        );
    }
}
