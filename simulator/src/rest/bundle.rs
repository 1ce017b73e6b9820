//! Batch and transaction Bundles (`POST [base]`).
//!
//! A batch runs each entry on its own and reports each outcome. A transaction is
//! all-or-nothing: its writes run in the order FHIR prescribes (DELETE, POST, PUT) under one
//! store lock, `urn:uuid:` fullUrls of created resources are resolved to their new ids in
//! every reference, and any failure rolls every write back. GET entries run afterwards.

use std::collections::HashMap;

use http::Method;
use serde_json::{Value, json};

use super::crud::{self, WriteOp, Written};
use super::{Ctx, dispatch, route};
use crate::access::Principal;
use crate::clock::fhir_instant;
use crate::outcome::{FhirError, IssueType};
use crate::request::{SimRequest, SimResponse, parse_query};
use crate::store::Store;

/// One entry's request, parsed.
#[derive(Debug, Clone)]
struct EntryRequest {
    index: usize,
    method: Method,
    url: String,
    full_url: Option<String>,
    resource: Option<Value>,
    if_match: Option<String>,
}

/// `POST [base]` with a Bundle of type `batch` or `transaction`.
pub(crate) fn batch_or_transaction(ctx: &Ctx<'_>) -> Result<SimResponse, FhirError> {
    let bundle = ctx.req.json_body()?;
    if bundle["resourceType"] != "Bundle" {
        return Err(FhirError::bad_request(
            "POST to the base URL takes a Bundle of type batch or transaction",
        )
        .at("resourceType"));
    }
    let entries = parse_entries(&bundle)?;
    match bundle["type"].as_str() {
        Some("batch") => Ok(ctx.respond(200, &batch(ctx, &entries))),
        Some("transaction") => transaction(ctx, entries).map(|b| ctx.respond(200, &b)),
        other => Err(FhirError::bad_request(format!(
            "Bundle.type {other:?} cannot be processed: use batch or transaction"
        ))
        .at("Bundle.type")),
    }
}

fn parse_entries(bundle: &Value) -> Result<Vec<EntryRequest>, FhirError> {
    let empty = Vec::new();
    let entries = bundle["entry"].as_array().unwrap_or(&empty);
    entries
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            let at = |field: &str| format!("Bundle.entry[{index}].{field}");
            let request = &entry["request"];
            let method = request["method"]
                .as_str()
                .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
                .filter(|m| [Method::GET, Method::POST, Method::PUT, Method::DELETE].contains(m))
                .ok_or_else(|| {
                    FhirError::bad_request("request.method must be GET, POST, PUT or DELETE")
                        .at(at("request.method"))
                })?;
            let url = request["url"]
                .as_str()
                .filter(|u| !u.is_empty())
                .ok_or_else(|| {
                    FhirError::bad_request("request.url is required").at(at("request.url"))
                })?;
            let resource = entry.get("resource").filter(|r| r.is_object()).cloned();
            if (method == Method::POST || method == Method::PUT) && resource.is_none() {
                return Err(
                    FhirError::bad_request(format!("a {method} entry needs a resource"))
                        .at(at("resource")),
                );
            }
            Ok(EntryRequest {
                index,
                method,
                url: url.trim_start_matches('/').to_string(),
                full_url: entry["fullUrl"].as_str().map(str::to_string),
                resource,
                if_match: request["ifMatch"].as_str().map(str::to_string),
            })
        })
        .collect()
}

/// The write an entry asks for, or `None` for a GET.
fn write_op(entry: &EntryRequest, new_id: &str) -> Result<Option<WriteOp>, FhirError> {
    let path = entry.url.split('?').next().unwrap_or("");
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let at = format!("Bundle.entry[{}].request.url", entry.index);
    let bad_url = || {
        FhirError::bad_request(format!(
            "{} {} is not a supported entry request",
            entry.method, entry.url
        ))
        .at(at.clone())
    };
    let resource = entry.resource.clone().unwrap_or(Value::Null);
    let op = match (&entry.method, segments.as_slice()) {
        (&Method::GET, _) => return Ok(None),
        (&Method::POST, [t]) => WriteOp::Create {
            resource_type: (*t).to_string(),
            resource,
            id: new_id.to_string(),
        },
        (&Method::PUT, [t, id]) => WriteOp::Update {
            resource_type: (*t).to_string(),
            id: (*id).to_string(),
            resource,
            if_match: entry.if_match.clone(),
        },
        (&Method::DELETE, [t, id]) => WriteOp::Delete {
            resource_type: (*t).to_string(),
            id: (*id).to_string(),
        },
        _ => return Err(bad_url()),
    };
    let resource_type = match &op {
        WriteOp::Create { resource_type, .. }
        | WriteOp::Update { resource_type, .. }
        | WriteOp::Delete { resource_type, .. } => resource_type,
    };
    super::types::check_type(resource_type).map_err(|e| e.at(at))?;
    Ok(Some(op))
}

/// The `response` element of a write's entry.
fn written_entry(ctx: &Ctx<'_>, written: &Written) -> Value {
    let status = match written.status {
        201 => "201 Created",
        204 => "204 No Content",
        _ => "200 OK",
    };
    let mut response = json!({"status": status});
    let mut entry = json!({});
    if let Some(version) = &written.version {
        response["etag"] = json!(crud::etag(version.version_id));
        response["lastModified"] = json!(version.last_updated);
        if written.status != 204 {
            response["location"] = json!(format!(
                "{}/{}/{}/_history/{}",
                ctx.base_url(),
                written.resource_type,
                written.id,
                version.version_id
            ));
            entry["fullUrl"] = json!(format!(
                "{}/{}/{}",
                ctx.base_url(),
                written.resource_type,
                written.id
            ));
            if let Some(resource) = version.resource() {
                entry["resource"] = resource;
            }
        }
    }
    entry["response"] = response;
    entry
}

/// The entry of a failed batch entry.
fn failed_entry(error: &FhirError) -> Value {
    json!({"response": {"status": error.status.to_string(), "outcome": error.to_outcome()}})
}

/// Runs a GET entry through the ordinary routing, as if it were its own request.
fn get_entry(ctx: &Ctx<'_>, entry: &EntryRequest) -> Value {
    let (path, query) = entry.url.split_once('?').unwrap_or((&entry.url, ""));
    let mut req = SimRequest::new(Method::GET, path);
    req.query = parse_query(query);
    req.headers = ctx.req.headers.clone();
    let inner = Ctx {
        sim: ctx.sim,
        env: ctx.env,
        req: &req,
        pretty: false,
        principal: ctx.principal,
        touched: ctx.touched,
    };
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let result = route(&Method::GET, &segments).and_then(|i| dispatch(&inner, &i));
    match result {
        Ok(response) => {
            let resource: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
            let mut r = json!({"status": response.status.to_string()});
            if let Some(etag) = response.header("etag") {
                r["etag"] = json!(etag);
            }
            json!({"resource": resource, "response": r})
        }
        Err(e) => failed_entry(&e),
    }
}

fn batch(ctx: &Ctx<'_>, entries: &[EntryRequest]) -> Value {
    let results: Vec<Value> = entries
        .iter()
        .map(|entry| match write_op(entry, &crud::new_id()) {
            Ok(None) => get_entry(ctx, entry),
            Ok(Some(op)) => {
                let now = fhir_instant(ctx.sim.clock().now());
                match crud::apply(&mut ctx.env.write(), op, &now, ctx.principal) {
                    Ok(written) => {
                        crud::touch_written(ctx, &written);
                        written_entry(ctx, &written)
                    }
                    Err(e) => failed_entry(&e),
                }
            }
            Err(e) => failed_entry(&e),
        })
        .collect();
    json!({"resourceType": "Bundle", "type": "batch-response", "entry": results})
}

fn transaction(ctx: &Ctx<'_>, entries: Vec<EntryRequest>) -> Result<Value, FhirError> {
    let now = fhir_instant(ctx.sim.clock().now());
    let written = {
        let mut store = ctx.env.write();
        apply_transaction(
            &mut store,
            &entries,
            &now,
            &|_| crud::new_id(),
            ctx.principal,
        )?
    };
    let mut results: Vec<Value> = vec![Value::Null; entries.len()];
    for (index, w) in written {
        crud::touch_written(ctx, &w);
        results[index] = written_entry(ctx, &w);
    }
    for entry in entries.iter().filter(|e| e.method == Method::GET) {
        results[entry.index] = get_entry(ctx, entry);
    }
    Ok(json!({"resourceType": "Bundle", "type": "transaction-response", "entry": results}))
}

/// Applies a transaction's writes to a locked store: all of them, or (on error) none.
/// `id_for` gives the id of each created resource. Returns each write with its entry index.
fn apply_transaction(
    store: &mut Store,
    entries: &[EntryRequest],
    now: &str,
    id_for: &dyn Fn(&EntryRequest) -> String,
    principal: &Principal,
) -> Result<Vec<(usize, Written)>, FhirError> {
    // Ids for created resources first, so references between entries can be resolved.
    let mut ids: HashMap<usize, String> = HashMap::new();
    let mut aliases: HashMap<String, String> = HashMap::new();
    for entry in entries.iter().filter(|e| e.method == Method::POST) {
        let id = id_for(entry);
        let resource_type = entry.url.split(['/', '?']).next().unwrap_or("");
        if let Some(full_url) = &entry.full_url {
            aliases.insert(full_url.clone(), format!("{resource_type}/{id}"));
        }
        ids.insert(entry.index, id);
    }
    let order = |m: &Method| match m.as_str() {
        "DELETE" => 0,
        "POST" => 1,
        "PUT" => 2,
        _ => 3,
    };
    let mut sorted: Vec<&EntryRequest> =
        entries.iter().filter(|e| e.method != Method::GET).collect();
    sorted.sort_by_key(|e| (order(&e.method), e.index));
    let checkpoint = store.checkpoint();
    let mut written = Vec::new();
    for entry in sorted {
        let mut entry = entry.clone();
        if let Some(resource) = &mut entry.resource {
            resolve_references(resource, &aliases);
        }
        let new_id = ids.get(&entry.index).cloned().unwrap_or_default();
        let result = write_op(&entry, &new_id).and_then(|op| match op {
            Some(op) => crud::apply(store, op, now, principal).map(Some),
            None => Ok(None),
        });
        match result {
            Ok(Some(w)) => written.push((entry.index, w)),
            Ok(None) => {}
            Err(e) => {
                store.rollback(checkpoint);
                let at = e
                    .expression
                    .clone()
                    .unwrap_or_else(|| format!("Bundle.entry[{}]", entry.index));
                return Err(FhirError::new(
                    e.status,
                    e.issue,
                    format!(
                        "transaction failed at entry {} ({} {}), nothing was written: {}",
                        entry.index, entry.method, entry.url, e.diagnostics
                    ),
                )
                .at(at));
            }
        }
    }
    Ok(written)
}

/// Replaces every `reference` equal to a `urn:uuid:` fullUrl by the created resource's `Type/id`.
fn resolve_references(value: &mut Value, aliases: &HashMap<String, String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map.iter_mut() {
                if key == "reference" {
                    if let Some(target) = inner.as_str().and_then(|r| aliases.get(r)) {
                        *inner = json!(target);
                    }
                } else {
                    resolve_references(inner, aliases);
                }
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|v| resolve_references(v, aliases)),
        _ => {}
    }
}

/// Loads a transaction or batch Bundle from data (e.g. Synthea output) into a store, keeping
/// `urn:uuid:` identifiers as resource ids so loading is deterministic.
pub fn load_bundle(store: &mut Store, bundle: &Value, now: &str) -> Result<usize, FhirError> {
    let entries = parse_entries(bundle)?;
    let uuid_id = |e: &EntryRequest| {
        e.full_url
            .as_deref()
            .and_then(|u| u.strip_prefix("urn:uuid:"))
            .filter(|id| super::types::is_valid_id(id))
            .map_or_else(crud::new_id, str::to_string)
    };
    // Loading seed data is the operator's act, not a client's: no grant applies.
    let written = apply_transaction(store, &entries, now, &uuid_id, &Principal::Admin)?;
    if written.is_empty() && !entries.is_empty() {
        return Err(FhirError::new(
            400,
            IssueType::Invalid,
            "the bundle has only GET entries: nothing to load",
        ));
    }
    Ok(written.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(method: &str, url: &str, full_url: Option<&str>, resource: Option<Value>) -> Value {
        let mut e = json!({"request": {"method": method, "url": url}});
        if let Some(f) = full_url {
            e["fullUrl"] = json!(f);
        }
        if let Some(r) = resource {
            e["resource"] = r;
        }
        e
    }

    #[test]
    fn urn_uuid_references_resolve_to_created_ids() {
        let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            entry("POST", "Observation", Some("urn:uuid:bbbbbbbb-0000-0000-0000-000000000002"),
                  Some(json!({"resourceType": "Observation", "subject": {"reference": "urn:uuid:aaaaaaaa-0000-0000-0000-000000000001"}}))),
            entry("POST", "Patient", Some("urn:uuid:aaaaaaaa-0000-0000-0000-000000000001"), Some(json!({"resourceType": "Patient"}))),
        ]});
        let mut store = Store::new();
        assert_eq!(
            load_bundle(&mut store, &bundle, "2024-01-01T00:00:00Z"),
            Ok(2)
        );
        let obs = store.get("Observation", "bbbbbbbb-0000-0000-0000-000000000002");
        assert_eq!(
            obs.map(|o| o["subject"]["reference"].clone()),
            Some(json!("Patient/aaaaaaaa-0000-0000-0000-000000000001"))
        );
        assert_eq!(
            store
                .in_patient_compartment("Observation", "aaaaaaaa-0000-0000-0000-000000000001")
                .len(),
            1
        );
    }

    #[test]
    fn a_failing_entry_rolls_back_the_whole_transaction() {
        let mut store = Store::new();
        store.put(json!({"resourceType": "Patient", "id": "keep"}), "t0");
        let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            entry("POST", "Patient", None, Some(json!({"resourceType": "Patient"}))),
            entry("DELETE", "Patient/keep", None, None),
            entry("PUT", "Patient/x", None, Some(json!({"resourceType": "Patient", "id": "other"}))),
        ]});
        let err = load_bundle(&mut store, &bundle, "t1").err();
        assert_eq!(err.as_ref().map(|e| e.status), Some(400));
        assert!(err.is_some_and(|e| e.diagnostics.contains("entry 2")));
        assert_eq!(store.len(), 1);
        assert!(store.get("Patient", "keep").is_some());
    }

    #[test]
    fn malformed_entries_are_named() {
        let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"request": {"method": "PATCH", "url": "Patient/1"}}
        ]});
        let err = parse_entries(&bundle).err();
        assert_eq!(
            err.and_then(|e| e.expression),
            Some("Bundle.entry[0].request.method".to_string())
        );
    }
}
