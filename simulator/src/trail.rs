//! What happened, as the harness and auditors see it: every decision (FHIR, OAuth, admin)
//! becomes an [`AccessRecord`], which is
//! 1. kept in memory for `GET /_sim/access-log?since=SEQ` (the stream the harness observes),
//! 2. turned into a FHIR R4 AuditEvent, appended to the hash-chained audit log on disk
//!    ([`crate::audit`]) and kept searchable per environment (`GET AuditEvent?patient=…`).
//!
//! Records hold ids, references, client ids, usernames and scopes: never a PHI value (no
//! names, no identifiers, no query strings — a query may carry an MRN).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

use crate::audit::AuditLog;
use crate::clock::fhir_instant;
use crate::search::ResourceSource;

/// Access-log entries kept in memory (older ones are only in the audit log file).
const ACCESS_LOG_CAPACITY: usize = 200_000;
/// AuditEvents kept searchable per environment.
const AUDIT_EVENTS_CAPACITY: usize = 100_000;
/// Resources listed per record; a larger answer lists this many and counts the rest.
const MAX_RESOURCES: usize = 200;

/// One decision, as the access log and the audit trail record it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AccessRecord {
    /// Position in the trail: increases by one per record.
    pub seq: u64,
    /// When (simulated clock, FHIR instant).
    pub time: String,
    /// The environment.
    pub environment: String,
    /// `fhir`, `oauth` or `admin`.
    pub channel: &'static str,
    /// What was done: a FHIR interaction (`read`, `search-type`…) or an OAuth step.
    pub action: String,
    /// The route with ids masked (e.g. `/sandbox/fhir/Patient/{id}`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub route: String,
    /// The client, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The user's FHIR resource, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The patient context of the token, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patient_context: Option<String>,
    /// The token's id (jti), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
    /// `access`, `admin`, `refresh`, `client_credentials`… or `none`.
    pub token_kind: &'static str,
    /// The granted scopes that permitted this (FHIR requests).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scopes_used: Vec<String>,
    /// The scope the client asked for (token requests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope_requested: Option<String>,
    /// The scope granted (token requests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope_granted: Option<String>,
    /// The resources returned or changed (`Type/id`), at most [`MAX_RESOURCES`].
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    /// How many more resources there were than listed.
    #[serde(skip_serializing_if = "is_zero")]
    pub resources_omitted: usize,
    /// The patients whose data was returned or changed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub patients: Vec<String>,
    /// The HTTP status.
    pub status: u16,
    /// `allowed`, `denied` or `error`.
    pub outcome: &'static str,
    /// Why it was denied or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl AccessRecord {
    /// The outcome word of an HTTP status.
    pub fn outcome_of(status: u16) -> &'static str {
        match status {
            401 | 403 => "denied",
            400..=499 if status != 404 && status != 410 => "error",
            500.. => "error",
            _ => "allowed",
        }
    }

    /// Lists `resources` (capped) on the record.
    pub fn set_resources(&mut self, resources: Vec<String>) {
        self.resources_omitted = resources.len().saturating_sub(MAX_RESOURCES);
        self.resources = resources.into_iter().take(MAX_RESOURCES).collect();
    }
}

/// The trail: access log in memory, AuditEvents per environment, and the audit log file
/// (written by its own thread every few milliseconds, in sequence order, so requests neither
/// wait on the file nor wake a thread each).
#[derive(Debug, Default)]
pub struct Trail {
    state: Arc<Mutex<TrailState>>,
    file: Option<Arc<AuditLog>>,
    writer: Option<Writer>,
}

/// The audit-log writer thread.
#[derive(Debug)]
struct Writer {
    handle: Mutex<Option<JoinHandle<()>>>,
    closing: Arc<(Mutex<bool>, Condvar)>,
    error: Arc<Mutex<Option<String>>>,
}

/// How often the writer thread takes the records waiting for the file.
const WRITE_EVERY: std::time::Duration = std::time::Duration::from_millis(20);
/// Records waiting for the file at most; beyond, the recording request writes them itself.
const MAX_PENDING: usize = 100_000;

#[derive(Debug, Default)]
struct TrailState {
    next_seq: u64,
    entries: VecDeque<Arc<AccessRecord>>,
    events: HashMap<String, AuditEvents>,
    /// Per environment, the last seq whose record is in `events`.
    built: HashMap<String, u64>,
    /// Records not yet written to the audit log file, in sequence order.
    pending: Vec<Arc<AccessRecord>>,
}

/// The AuditEvents of one environment, searchable.
#[derive(Debug, Default, Clone)]
pub struct AuditEvents {
    order: VecDeque<String>,
    by_id: HashMap<String, Arc<Value>>,
}

impl AuditEvents {
    fn push(&mut self, id: String, event: Value) {
        if self.order.len() >= AUDIT_EVENTS_CAPACITY
            && let Some(oldest) = self.order.pop_front()
        {
            self.by_id.remove(&oldest);
        }
        self.order.push_back(id.clone());
        self.by_id.insert(id, Arc::new(event));
    }
}

impl ResourceSource for AuditEvents {
    fn get(&self, resource_type: &str, id: &str) -> Option<Arc<Value>> {
        (resource_type == "AuditEvent")
            .then(|| self.by_id.get(id).cloned())
            .flatten()
    }

    fn all_of_type(&self, resource_type: &str) -> Vec<Arc<Value>> {
        if resource_type != "AuditEvent" {
            return Vec::new();
        }
        self.order
            .iter()
            .filter_map(|id| self.by_id.get(id).cloned())
            .collect()
    }

    fn in_patient_compartment(&self, _: &str, _: &str) -> Option<Vec<Arc<Value>>> {
        None
    }
}

impl Trail {
    /// A trail that also appends to `file` (continuing its sequence), from a writer thread.
    pub fn with_file(file: AuditLog) -> Self {
        let (entries, _) = file.head();
        let file = Arc::new(file);
        let state = Arc::new(Mutex::new(TrailState {
            next_seq: entries,
            ..TrailState::default()
        }));
        let closing = Arc::new((Mutex::new(false), Condvar::new()));
        let error = Arc::new(Mutex::new(None));
        let handle = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn({
                let (file, state, closing, error) = (
                    Arc::clone(&file),
                    Arc::clone(&state),
                    Arc::clone(&closing),
                    Arc::clone(&error),
                );
                move || write_loop(&file, &state, &closing, &error)
            })
            .ok();
        Self {
            state,
            writer: handle.map(|handle| Writer {
                handle: Mutex::new(Some(handle)),
                closing,
                error,
            }),
            file: Some(file),
        }
    }

    /// Writes what is waiting, stops the writer, then closes the audit log (flushed, fsynced,
    /// checkpointed). Records made afterwards stay in memory only.
    pub fn close(&self) -> Result<(), crate::audit::AuditError> {
        if let Some(writer) = &self.writer {
            let (flag, wake) = &*writer.closing;
            *flag.lock().unwrap_or_else(|p| p.into_inner()) = true;
            wake.notify_all();
            let handle = writer
                .handle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
            if let Some(handle) = handle
                && handle.join().is_err()
            {
                tracing::error!("the audit writer thread panicked");
            }
        }
        self.file.as_ref().map_or(Ok(()), |f| f.close())
    }

    fn state(&self) -> MutexGuard<'_, TrailState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a decision: assigns its seq, appends its AuditEvent to the log file, keeps both.
    ///
    /// Only the sequence number and the in-memory list are taken under the trail's lock; the
    /// AuditEvent is built and appended to the file outside it (the file's own chain orders
    /// its lines), and the searchable AuditEvents are built when a search asks for them.
    pub fn record(&self, mut record: AccessRecord) -> u64 {
        let mut state = self.state();
        state.next_seq += 1;
        record.seq = state.next_seq;
        let record = Arc::new(record);
        if state.entries.len() >= ACCESS_LOG_CAPACITY {
            state.entries.pop_front();
        }
        state.entries.push_back(Arc::clone(&record));
        let seq = record.seq;
        if self.writer.is_some() {
            state.pending.push(record);
            if state.pending.len() >= MAX_PENDING
                && let (Some(file), Some(writer)) = (&self.file, &self.writer)
            {
                // The writer is behind: this request writes the backlog (in order, under the lock).
                let backlog = std::mem::take(&mut state.pending);
                write_all(file, &backlog, &writer.error);
            }
        }
        seq
    }

    /// Records an OAuth step.
    #[expect(clippy::too_many_arguments, reason = "the fields of one OAuth record")]
    pub fn record_oauth(
        &self,
        environment: &str,
        action: &str,
        client_id: &str,
        user: Option<&str>,
        status: u16,
        reason: Option<&str>,
        now: OffsetDateTime,
    ) {
        self.record(AccessRecord {
            time: fhir_instant(now),
            environment: environment.to_string(),
            channel: "oauth",
            action: action.to_string(),
            client_id: (!client_id.is_empty()).then(|| client_id.to_string()),
            user: user.map(str::to_string),
            token_kind: "none",
            status,
            outcome: if reason.is_some() {
                "denied"
            } else {
                "allowed"
            },
            reason: reason.map(str::to_string),
            ..AccessRecord::default()
        });
    }

    /// The seq of the newest record (0 before the first).
    pub fn last_seq(&self) -> u64 {
        self.state().next_seq
    }

    /// The access-log entries after `since`, oldest first, at most `limit`.
    pub fn since(&self, since: u64, limit: usize) -> Vec<Arc<AccessRecord>> {
        let state = self.state();
        let start = state.entries.partition_point(|e| e.seq <= since);
        state
            .entries
            .iter()
            .skip(start)
            .take(limit)
            .cloned()
            .collect()
    }

    /// A copy of an environment's searchable AuditEvents, built from the records not yet
    /// turned into events.
    pub fn audit_events(&self, environment: &str) -> AuditEvents {
        let mut state = self.state();
        let built = state.built.get(environment).copied().unwrap_or(0);
        let fresh: Vec<Arc<AccessRecord>> = state
            .entries
            .iter()
            .skip(state.entries.partition_point(|e| e.seq <= built))
            .filter(|e| e.environment == environment)
            .cloned()
            .collect();
        let last = state.next_seq;
        state.built.insert(environment.to_string(), last);
        let events = state.events.entry(environment.to_string()).or_default();
        for record in fresh {
            events.push(event_id(&record), audit_event(&record));
        }
        events.clone()
    }

    /// The audit log file, if the trail writes one.
    pub fn file(&self) -> Option<&AuditLog> {
        self.file.as_deref()
    }

    /// The first audit-log write failure, if any.
    pub fn write_error(&self) -> Option<String> {
        self.writer
            .as_ref()
            .and_then(|w| w.error.lock().unwrap_or_else(|p| p.into_inner()).clone())
    }
}

/// The writer thread: every [`WRITE_EVERY`], appends the waiting records' AuditEvents; on
/// close, the last ones, then stops.
fn write_loop(
    file: &AuditLog,
    state: &Mutex<TrailState>,
    closing: &(Mutex<bool>, Condvar),
    error: &Mutex<Option<String>>,
) {
    let (flag, wake) = closing;
    loop {
        let closed = {
            let guard = flag.lock().unwrap_or_else(|p| p.into_inner());
            let (guard, _) = wake
                .wait_timeout(guard, WRITE_EVERY)
                .unwrap_or_else(|p| p.into_inner());
            *guard
        };
        let batch = std::mem::take(&mut state.lock().unwrap_or_else(|p| p.into_inner()).pending);
        write_all(file, &batch, error);
        if closed {
            return;
        }
    }
}

/// Appends the AuditEvents of `records`; the first failure is logged and kept.
fn write_all(file: &AuditLog, records: &[Arc<AccessRecord>], error: &Mutex<Option<String>>) {
    for record in records {
        if let Err(e) = file.append_serialized(&AuditEventDoc::of(record)) {
            let mut slot = error.lock().unwrap_or_else(|p| p.into_inner());
            if slot.is_none() {
                tracing::error!(error = %e, "the audit log cannot be written; records stay in memory only");
                *slot = Some(e.to_string());
            }
        }
    }
}

fn event_id(record: &AccessRecord) -> String {
    format!("audit-{}", record.seq)
}

/// The FHIR R4 AuditEvent of a record, as a JSON tree (for AuditEvent search).
pub fn audit_event(record: &AccessRecord) -> Value {
    serde_json::to_value(AuditEventDoc::of(record)).unwrap_or(Value::Null)
}

/// A FHIR R4 AuditEvent that borrows its record: serialized straight to the audit log, with
/// no intermediate tree (one is written per request). References and ids only.
#[derive(Serialize)]
pub struct AuditEventDoc<'a> {
    #[serde(rename = "resourceType")]
    resource_type: &'static str,
    id: String,
    meta: Meta<'a>,
    #[serde(rename = "type")]
    kind: Coding<'a>,
    subtype: [Coding<'a>; 1],
    action: &'static str,
    recorded: &'a str,
    outcome: &'static str,
    #[serde(rename = "outcomeDesc", skip_serializing_if = "Option::is_none")]
    outcome_desc: Option<&'a str>,
    agent: Vec<Agent<'a>>,
    source: Source<'a>,
    entity: Vec<Entity<'a>>,
}

#[derive(Serialize)]
struct Meta<'a> {
    #[serde(rename = "lastUpdated")]
    last_updated: &'a str,
}

#[derive(Serialize)]
struct Coding<'a> {
    system: &'static str,
    code: std::borrow::Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    display: Option<&'static str>,
}

fn coding<'a>(
    system: &'static str,
    code: impl Into<std::borrow::Cow<'a, str>>,
    display: Option<&'static str>,
) -> Coding<'a> {
    Coding {
        system,
        code: code.into(),
        display,
    }
}

#[derive(Serialize)]
struct CodeableConcept<'a> {
    coding: [Coding<'a>; 1],
}

#[derive(Serialize)]
struct Agent<'a> {
    #[serde(rename = "type")]
    kind: CodeableConcept<'a>,
    who: Reference<'a>,
    requestor: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    policy: Vec<String>,
}

#[derive(Serialize)]
struct Reference<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    reference: Option<std::borrow::Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    identifier: Option<Identifier<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    display: Option<&'a str>,
}

#[derive(Serialize)]
struct Identifier<'a> {
    system: &'static str,
    value: &'a str,
}

#[derive(Serialize)]
struct Source<'a> {
    site: &'a str,
    observer: Observer,
    #[serde(rename = "type")]
    kind: [Coding<'static>; 1],
}

#[derive(Serialize)]
struct Observer {
    display: String,
}

#[derive(Serialize)]
struct Entity<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    what: Option<Reference<'a>>,
    #[serde(rename = "type")]
    kind: Coding<'static>,
    role: Coding<'static>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    detail: Vec<Detail<'a>>,
}

#[derive(Serialize)]
struct Detail<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "valueString")]
    value: std::borrow::Cow<'a, str>,
}

const ENTITY_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-entity-type";
const OBJECT_ROLE: &str = "http://terminology.hl7.org/CodeSystem/object-role";
const DCM: &str = "http://dicom.nema.org/resources/ontology/DCM";

fn reference<'a>(text: impl Into<std::borrow::Cow<'a, str>>) -> Reference<'a> {
    Reference {
        reference: Some(text.into()),
        identifier: None,
        display: None,
    }
}

impl<'a> AuditEventDoc<'a> {
    /// The AuditEvent of `record`.
    pub fn of(record: &'a AccessRecord) -> Self {
        let (kind, subtype) = if record.channel == "fhir" {
            (
                coding(
                    "http://terminology.hl7.org/CodeSystem/audit-event-type",
                    "rest",
                    Some("RESTful Operation"),
                ),
                coding(
                    "http://hl7.org/fhir/restful-interaction",
                    record.action.as_str(),
                    None,
                ),
            )
        } else {
            (
                coding(DCM, "110114", Some("User Authentication")),
                coding(
                    "urn:fhirdrill:audit-subtype",
                    format!("{}-{}", record.channel, record.action),
                    None,
                ),
            )
        };
        Self {
            resource_type: "AuditEvent",
            id: event_id(record),
            meta: Meta {
                last_updated: &record.time,
            },
            kind,
            subtype: [subtype],
            action: action_code(&record.action),
            recorded: &record.time,
            outcome: match record.outcome {
                "allowed" => "0",
                "denied" => "4",
                _ if record.status >= 500 => "8",
                _ => "4",
            },
            outcome_desc: record.reason.as_deref(),
            agent: agents(record),
            source: Source {
                site: &record.environment,
                observer: Observer {
                    display: format!("fhirdrill simulator, environment {}", record.environment),
                },
                kind: [coding(
                    "http://terminology.hl7.org/CodeSystem/security-source-type",
                    "4",
                    Some("Application Server"),
                )],
            },
            entity: entities(record),
        }
    }
}

/// The user (when there is one) and the client.
fn agents(record: &AccessRecord) -> Vec<Agent<'_>> {
    let mut agents = Vec::with_capacity(2);
    if let Some(user) = &record.user {
        agents.push(Agent {
            kind: CodeableConcept {
                coding: [coding(
                    "http://terminology.hl7.org/CodeSystem/extra-security-role-type",
                    "humanuser",
                    Some("human user"),
                )],
            },
            who: reference(user.as_str()),
            requestor: true,
            policy: Vec::new(),
        });
    }
    let client = record
        .client_id
        .as_deref()
        .unwrap_or(match record.token_kind {
            "admin" => "fhirdrill-admin",
            _ => "unknown",
        });
    agents.push(Agent {
        kind: CodeableConcept {
            coding: [coding(DCM, "110150", Some("Application"))],
        },
        who: Reference {
            reference: None,
            identifier: Some(Identifier {
                system: "urn:fhirdrill:client",
                value: client,
            }),
            display: Some(client),
        },
        requestor: record.user.is_none(),
        policy: record
            .token_id
            .iter()
            .map(|t| format!("urn:fhirdrill:token:{t}"))
            .collect(),
    });
    agents
}

/// The patients, the resources, and the token with its scopes (entity codes carry no display:
/// they repeat for every entity of every event).
fn entities(record: &AccessRecord) -> Vec<Entity<'_>> {
    let mut entities: Vec<Entity<'_>> =
        Vec::with_capacity(record.patients.len() + record.resources.len() + 1);
    entities.extend(record.patients.iter().map(|p| Entity {
        what: Some(reference(format!("Patient/{p}"))),
        kind: coding(ENTITY_TYPE, "1", None),
        role: coding(OBJECT_ROLE, "1", None),
        detail: Vec::new(),
    }));
    // A Patient that is already an entity as the patient is not listed again as a resource.
    let listed = |r: &&String| {
        r.strip_prefix("Patient/")
            .is_some_and(|id| record.patients.iter().any(|p| p == id))
    };
    entities.extend(
        record
            .resources
            .iter()
            .filter(|r| !listed(r))
            .map(|r| Entity {
                what: Some(reference(r.as_str())),
                kind: coding(ENTITY_TYPE, "2", None),
                role: coding(OBJECT_ROLE, "4", None),
                detail: Vec::new(),
            }),
    );
    let mut details = vec![Detail {
        kind: "token-kind",
        value: record.token_kind.into(),
    }];
    let scopes_used = record.scopes_used.join(" ");
    let omitted = record.resources_omitted.to_string();
    for (kind, value) in [
        ("scopes-used", Some(scopes_used)),
        ("scope-requested", record.scope_requested.clone()),
        ("scope-granted", record.scope_granted.clone()),
        ("route", Some(record.route.clone())),
        ("resources-omitted", Some(omitted).filter(|n| n != "0")),
    ] {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            details.push(Detail {
                kind,
                value: value.into(),
            });
        }
    }
    entities.push(Entity {
        what: record.token_id.as_deref().map(|token| Reference {
            reference: None,
            identifier: Some(Identifier {
                system: "urn:fhirdrill:token",
                value: token,
            }),
            display: None,
        }),
        kind: coding(ENTITY_TYPE, "2", None),
        role: coding(OBJECT_ROLE, "13", None),
        detail: details,
    });
    entities
}

/// The AuditEvent action code (C, R, U, D, E) of an interaction.
fn action_code(action: &str) -> &'static str {
    match action {
        "create" => "C",
        "read" | "vread" | "search-type" | "search-system" | "search-compartment"
        | "history-instance" | "history-type" | "history-system" | "everything" => "R",
        "update" => "U",
        "delete" => "D",
        _ => "E",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(env: &str, patients: &[&str]) -> AccessRecord {
        AccessRecord {
            environment: env.into(),
            channel: "fhir",
            action: "read".into(),
            client_id: Some("app".into()),
            user: Some("Practitioner/d1".into()),
            token_id: Some("jti-1".into()),
            token_kind: "access",
            patients: patients.iter().map(|p| p.to_string()).collect(),
            resources: vec!["Observation/o1".into()],
            status: 200,
            outcome: "allowed",
            time: "2026-01-01T00:00:00Z".into(),
            ..AccessRecord::default()
        }
    }

    #[test]
    fn records_get_increasing_seqs_and_searchable_events() {
        let trail = Trail::default();
        assert_eq!(trail.record(record("sandbox", &["p1"])), 1);
        assert_eq!(trail.record(record("staging", &["p2"])), 2);
        assert_eq!(trail.since(0, 10).len(), 2);
        assert_eq!(trail.since(1, 10)[0].seq, 2);
        let events = trail.audit_events("sandbox");
        let all = events.all_of_type("AuditEvent");
        assert_eq!(all.len(), 1);
        let event = &all[0];
        assert_eq!(event["action"], "R");
        assert_eq!(event["entity"][0]["what"]["reference"], "Patient/p1");
        assert_eq!(event["agent"][0]["who"]["reference"], "Practitioner/d1");
    }

    #[test]
    fn large_answers_are_capped() {
        let mut r = record("sandbox", &[]);
        r.set_resources(
            (0..MAX_RESOURCES + 5)
                .map(|i| format!("Observation/{i}"))
                .collect(),
        );
        assert_eq!(r.resources.len(), MAX_RESOURCES);
        assert_eq!(r.resources_omitted, 5);
    }
}
