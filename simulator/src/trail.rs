//! What happened, as the harness and auditors see it: every decision (FHIR, OAuth, admin)
//! becomes an [`AccessRecord`], which is
//! 1. kept in memory for `GET /_sim/access-log?since=SEQ` (the stream the harness observes),
//! 2. turned into a FHIR R4 AuditEvent, appended to the hash-chained audit log on disk
//!    ([`crate::audit`]) and kept searchable per environment (`GET AuditEvent?patient=…`).
//!
//! Records hold ids, references, client ids, usernames and scopes: never a PHI value (no
//! names, no identifiers, no query strings — a query may carry an MRN).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use serde_json::{Value, json};
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
    pub token_kind: String,
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

/// The trail: access log in memory, AuditEvents per environment, and the audit log file.
#[derive(Debug, Default)]
pub struct Trail {
    state: Mutex<TrailState>,
    file: Option<AuditLog>,
}

#[derive(Debug, Default)]
struct TrailState {
    next_seq: u64,
    entries: VecDeque<Arc<AccessRecord>>,
    events: HashMap<String, AuditEvents>,
    write_error: Option<String>,
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
    /// A trail that also appends to `file` (continuing its sequence).
    pub fn with_file(file: AuditLog) -> Self {
        let (entries, _) = file.head();
        Self {
            state: Mutex::new(TrailState {
                next_seq: entries,
                ..TrailState::default()
            }),
            file: Some(file),
        }
    }

    fn state(&self) -> MutexGuard<'_, TrailState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a decision: assigns its seq, appends its AuditEvent to the log file, keeps both.
    pub fn record(&self, mut record: AccessRecord) -> u64 {
        let mut state = self.state();
        state.next_seq += 1;
        record.seq = state.next_seq;
        let event = audit_event(&record);
        if let Some(file) = &self.file
            && let Err(e) = file.append(event.clone())
            && state.write_error.is_none()
        {
            tracing::error!(error = %e, "the audit log cannot be written; records stay in memory only");
            state.write_error = Some(e.to_string());
        }
        let id = event_id(&record);
        state
            .events
            .entry(record.environment.clone())
            .or_default()
            .push(id, event);
        if state.entries.len() >= ACCESS_LOG_CAPACITY {
            state.entries.pop_front();
        }
        let seq = record.seq;
        state.entries.push_back(Arc::new(record));
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
            token_kind: "none".into(),
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

    /// A copy of an environment's searchable AuditEvents.
    pub fn audit_events(&self, environment: &str) -> AuditEvents {
        self.state()
            .events
            .get(environment)
            .cloned()
            .unwrap_or_default()
    }

    /// The audit log file, if the trail writes one.
    pub fn file(&self) -> Option<&AuditLog> {
        self.file.as_ref()
    }

    /// The first audit-log write failure, if any.
    pub fn write_error(&self) -> Option<String> {
        self.state().write_error.clone()
    }
}

fn event_id(record: &AccessRecord) -> String {
    format!("audit-{}", record.seq)
}

/// The FHIR R4 AuditEvent of a record: references and ids only.
pub fn audit_event(record: &AccessRecord) -> Value {
    let (type_coding, subtype) = if record.channel == "fhir" {
        (
            json!({"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest", "display": "RESTful Operation"}),
            json!([{"system": "http://hl7.org/fhir/restful-interaction", "code": record.action}]),
        )
    } else {
        (
            json!({"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110114", "display": "User Authentication"}),
            json!([{"system": "urn:fhirdrill:audit-subtype", "code": format!("{}-{}", record.channel, record.action)}]),
        )
    };
    let mut agents = Vec::new();
    if let Some(user) = &record.user {
        agents.push(json!({
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/extra-security-role-type", "code": "humanuser", "display": "human user"}]},
            "who": {"reference": user},
            "requestor": true
        }));
    }
    let client = record
        .client_id
        .clone()
        .unwrap_or_else(|| match record.token_kind.as_str() {
            "admin" => "fhirdrill-admin".to_string(),
            _ => "unknown".to_string(),
        });
    let mut client_agent = json!({
        "type": {"coding": [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110150", "display": "Application"}]},
        "who": {"identifier": {"system": "urn:fhirdrill:client", "value": client}, "display": client},
        "requestor": record.user.is_none()
    });
    if let Some(token) = &record.token_id {
        client_agent["policy"] = json!([format!("urn:fhirdrill:token:{token}")]);
    }
    agents.push(client_agent);
    let mut entities: Vec<Value> = record
        .patients
        .iter()
        .map(|p| {
            json!({
                "what": {"reference": format!("Patient/{p}")},
                "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1", "display": "Person"},
                "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1", "display": "Patient"}
            })
        })
        .collect();
    entities.extend(record.resources.iter().map(|r| {
        json!({
            "what": {"reference": r},
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object"},
            "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "4", "display": "Domain Resource"}
        })
    }));
    let mut details = vec![json!({"type": "token-kind", "valueString": record.token_kind})];
    for (name, value) in [
        ("scopes-used", Some(record.scopes_used.join(" "))),
        ("scope-requested", record.scope_requested.clone()),
        ("scope-granted", record.scope_granted.clone()),
        ("route", Some(record.route.clone())),
        (
            "resources-omitted",
            Some(record.resources_omitted.to_string()).filter(|n| n != "0"),
        ),
    ] {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            details.push(json!({"type": name, "valueString": v}));
        }
    }
    let mut token_entity = json!({
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object"},
        "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "13", "display": "Security Resource"},
        "detail": details
    });
    if let Some(token) = &record.token_id {
        token_entity["what"] =
            json!({"identifier": {"system": "urn:fhirdrill:token", "value": token}});
    }
    entities.push(token_entity);
    let mut event = json!({
        "resourceType": "AuditEvent",
        "id": event_id(record),
        "meta": {"lastUpdated": record.time},
        "type": type_coding,
        "subtype": subtype,
        "action": action_code(&record.action),
        "recorded": record.time,
        "outcome": match record.outcome { "allowed" => "0", "denied" => "4", _ => if record.status >= 500 { "8" } else { "4" } },
        "agent": agents,
        "source": {
            "site": record.environment,
            "observer": {"display": format!("fhirdrill simulator, environment {}", record.environment)},
            "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4", "display": "Application Server"}]
        },
        "entity": entities
    });
    if let Some(reason) = &record.reason {
        event["outcomeDesc"] = json!(reason);
    }
    event
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
            token_kind: "access".into(),
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
