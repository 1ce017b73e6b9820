//! Search (`GET [type]?…`, `POST [type]/_search`, `GET Patient/[id]/[type]`) and
//! `Patient/[id]/$everything`: searchset Bundles with paging links, includes, `_summary`,
//! `_elements` and `_total`. Matching itself lives in [`crate::search`].

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::value::RawValue;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::Ctx;
use super::paging::{DEFAULT_COUNT, MAX_COUNT, Page, since};
use crate::access::{AUDIT_TYPE, Action, Visible};
use crate::outcome::{FhirError, IssueType};
use crate::request::{SimResponse, parse_query};
use crate::search::{
    self, ParsedSearch, ResourceSource, SearchError, SearchQuery, SummaryMode, TotalMode,
};
use crate::store::Store;

/// Notes returned resources for the access log.
fn touch_all(ctx: &Ctx<'_>, store: &Store, resources: &[Arc<Value>]) {
    for r in resources {
        let resource_type = r["resourceType"].as_str().unwrap_or_default();
        let id = r["id"].as_str().unwrap_or_default();
        let patients = store.patients_of(resource_type, id).unwrap_or_default();
        ctx.touched.touch(resource_type, id, patients);
    }
}

/// The answer for a patient whose compartment the caller does not reach: the same as for a
/// patient that does not exist, so it reveals nothing (FHIR security, "Access Denied Response
/// Handling").
fn outside_reach(patient_id: &str) -> FhirError {
    FhirError::not_found(format!("Patient/{patient_id} is not known"))
}

fn search_error(e: SearchError) -> FhirError {
    match e {
        SearchError::UnsupportedType(t) => FhirError::new(
            404,
            IssueType::NotSupported,
            format!("{t} resources cannot be searched on this server"),
        ),
        other => FhirError::bad_request(other.to_string()),
    }
}

/// The search parameters of a request: the URL query, plus a form body for `_search`.
fn parameters(ctx: &Ctx<'_>, via_post: bool) -> Result<Vec<(String, String)>, FhirError> {
    let mut params = ctx.req.query.clone();
    if via_post {
        let media = ctx.req.media_type();
        if media != "application/x-www-form-urlencoded" {
            return Err(FhirError::new(
                415,
                IssueType::NotSupported,
                "POST _search takes its parameters as application/x-www-form-urlencoded",
            ));
        }
        let body = std::str::from_utf8(&ctx.req.body)
            .map_err(|_| FhirError::bad_request("the _search form body is not UTF-8"))?;
        params.extend(parse_query(body));
    }
    Ok(params)
}

/// Handles a type search, or a compartment search when `compartment` names a patient.
pub(crate) fn search(
    ctx: &Ctx<'_>,
    resource_type: &str,
    via_post: bool,
    compartment: Option<&str>,
) -> Result<SimResponse, FhirError> {
    let params = parameters(ctx, via_post)?;
    let strict = ctx.req.prefers("handling=strict");
    let parsed = SearchQuery::parse(resource_type, &params, strict).map_err(search_error)?;
    ctx.principal.require(Action::Search, resource_type)?;
    if resource_type == AUDIT_TYPE && compartment.is_none() {
        return audit_search(ctx, &parsed);
    }
    let store = ctx.env.read();
    let view = ctx.principal.grant().map(|g| Visible::new(&store, g));
    let source: &dyn ResourceSource = match &view {
        Some(view) => view,
        None => &*store,
    };
    let mut matches = search::search(&parsed, source).map_err(search_error)?;
    let path = match compartment {
        Some(patient_id) => {
            if store.get("Patient", patient_id).is_none() {
                return Err(FhirError::not_found(format!(
                    "Patient/{patient_id} is not known"
                )));
            }
            if source.get("Patient", patient_id).is_none() {
                return Err(outside_reach(patient_id));
            }
            let members: BTreeSet<String> = store
                .in_patient_compartment(resource_type, patient_id)
                .iter()
                .filter_map(|r| r["id"].as_str().map(str::to_string))
                .collect();
            matches.retain(|r| r["id"].as_str().is_some_and(|id| members.contains(id)));
            format!("{}/Patient/{patient_id}/{resource_type}", ctx.base_url())
        }
        None => format!("{}/{resource_type}", ctx.base_url()),
    };
    let included = search::included(&parsed, page(&parsed, &matches), source);
    touch_all(ctx, &store, page(&parsed, &matches));
    touch_all(ctx, &store, &included);
    let bundle = searchset(ctx, &store, &parsed, &matches, &included, &path);
    Ok(ctx.respond(200, &bundle))
}

/// `GET AuditEvent?…`: a search over the environment's audit trail (not the store), limited
/// to the events about patients the caller reaches.
fn audit_search(ctx: &Ctx<'_>, parsed: &ParsedSearch) -> Result<SimResponse, FhirError> {
    let events = ctx.sim.trail().audit_events(ctx.env.name());
    let mut matches = search::search(parsed, &events).map_err(search_error)?;
    if let Some(grant) = ctx.principal.grant() {
        let store = ctx.env.read();
        matches.retain(|event| {
            let patients = crate::store::patients_about(event);
            // Every patient an event names must be in reach: one event can list several.
            [Action::Read, Action::Search].iter().any(|action| {
                grant.allows_all(*action, AUDIT_TYPE, &patients, Some(event), &*store)
            })
        });
    }
    matches.reverse();
    let store = ctx.env.read();
    let path = format!("{}/{AUDIT_TYPE}", ctx.base_url());
    let bundle = searchset(ctx, &store, parsed, &matches, &[], &path);
    Ok(ctx.respond(200, &bundle))
}

/// A searchset Bundle that borrows the stored resources, so serving a page copies nothing.
#[derive(serde::Serialize)]
struct Searchset<'a> {
    #[serde(rename = "resourceType")]
    resource_type: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<usize>,
    link: Vec<Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    entry: Vec<Entry<'a>>,
}

/// One entry of a [`Searchset`].
#[derive(serde::Serialize)]
struct Entry<'a> {
    #[serde(rename = "fullUrl")]
    full_url: String,
    resource: EntryResource<'a>,
    search: SearchMode,
}

/// An entry's resource: the stored JSON spliced in as it is, or a shaped (`_elements`,
/// `_summary`) copy.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum EntryResource<'a> {
    /// The stored JSON, unchanged.
    Stored(&'a RawValue),
    /// A tree: shaped, or not found in the store.
    Tree(Cow<'a, Value>),
}

/// `Bundle.entry.search`.
#[derive(serde::Serialize)]
struct SearchMode {
    mode: &'static str,
}

impl<'a> Searchset<'a> {
    fn new(total: Option<usize>, link: Vec<Value>, entry: Vec<Entry<'a>>) -> Self {
        Self {
            resource_type: "Bundle",
            kind: "searchset",
            total,
            link,
            entry,
        }
    }
}

/// Builds the searchset Bundle of a page of `matches`.
fn searchset<'a>(
    ctx: &Ctx<'_>,
    store: &'a Store,
    parsed: &ParsedSearch,
    matches: &'a [Arc<Value>],
    included: &'a [Arc<Value>],
    path: &str,
) -> Searchset<'a> {
    let total = matches.len();
    let range = parsed.page_range(total, DEFAULT_COUNT, MAX_COUNT);
    let count = parsed.count.unwrap_or(DEFAULT_COUNT).min(MAX_COUNT);
    let base = ctx.base_url();
    let link = |relation: &str, query: String| {
        let url = if query.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{query}")
        };
        json!({"relation": relation, "url": url})
    };
    let mut links = vec![link("self", parsed.query_string())];
    let mut entries = Vec::new();
    if !parsed.count_only() {
        if count > 0 && range.end < total {
            links.push(link("next", parsed.query_string_for_page(count, range.end)));
        }
        if range.start > 0 {
            links.push(link(
                "previous",
                parsed.query_string_for_page(count, range.start.saturating_sub(count)),
            ));
        }
        entries.extend(
            matches[range]
                .iter()
                .map(|r| entry(&base, store, parsed, r, "match")),
        );
        entries.extend(
            included
                .iter()
                .map(|r| entry(&base, store, parsed, r, "include")),
        );
    }
    let total = (parsed.total != Some(TotalMode::None)).then_some(total);
    Searchset::new(total, links, entries)
}

/// The page of `matches` a search returns, before includes are added.
fn page<'a>(parsed: &ParsedSearch, matches: &'a [Arc<Value>]) -> &'a [Arc<Value>] {
    if parsed.count_only() {
        return &[];
    }
    &matches[parsed.page_range(matches.len(), DEFAULT_COUNT, MAX_COUNT)]
}

fn entry<'a>(
    base: &str,
    store: &'a Store,
    parsed: &ParsedSearch,
    resource: &'a Value,
    mode: &'static str,
) -> Entry<'a> {
    let resource_type = resource["resourceType"].as_str().unwrap_or_default();
    let id = resource["id"].as_str().unwrap_or_default();
    let full_url = format!("{base}/{resource_type}/{id}");
    let resource = match shape(resource, parsed) {
        Cow::Borrowed(unshaped) => stored_or_tree(store, unshaped),
        shaped => EntryResource::Tree(shaped),
    };
    Entry {
        full_url,
        resource,
        search: SearchMode { mode },
    }
}

/// The stored JSON of `resource` (no re-serialization), or the tree itself.
fn stored_or_tree<'a>(store: &'a Store, resource: &'a Value) -> EntryResource<'a> {
    let resource_type = resource["resourceType"].as_str().unwrap_or_default();
    let id = resource["id"].as_str().unwrap_or_default();
    match store.get_json(resource_type, id) {
        Some(json) => EntryResource::Stored(json.raw()),
        None => EntryResource::Tree(Cow::Borrowed(resource)),
    }
}

/// Applies `_elements` (which wins) or `_summary` to a returned resource; borrows it unchanged
/// otherwise.
fn shape<'a>(resource: &'a Value, parsed: &ParsedSearch) -> Cow<'a, Value> {
    if !parsed.elements.is_empty() {
        return Cow::Owned(search::apply_elements(resource, &parsed.elements));
    }
    match parsed.summary {
        Some(mode) if mode != SummaryMode::False && mode != SummaryMode::Count => {
            Cow::Owned(search::apply_summary(resource, mode))
        }
        _ => Cow::Borrowed(resource),
    }
}

/// Resource types never part of `$everything` (protocol and audit records).
const NOT_IN_EVERYTHING: &[&str] = &["AuditEvent"];

/// `GET Patient/[id]/$everything`: the patient, every resource in their compartment, and the
/// resources those refer to (practitioners, organizations, locations…); `_type`, `_since`,
/// `_count` and `_offset` are honoured.
pub(crate) fn everything(ctx: &Ctx<'_>, patient_id: &str) -> Result<SimResponse, FhirError> {
    let page = Page::from_params(
        ctx.req.query_value("_count"),
        ctx.req.query_value("_offset"),
    )?;
    let types: Option<Vec<String>> = ctx.req.query_value("_type").map(|t| {
        t.split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    });
    let since = since(ctx.req.query_value("_since"))?;
    ctx.principal.require(Action::Read, "Patient")?;
    let store = ctx.env.read();
    let Some(patient) = store.get("Patient", patient_id) else {
        return Err(FhirError::not_found(format!(
            "Patient/{patient_id} is not known"
        )));
    };
    let view = ctx.principal.grant().map(|g| Visible::new(&store, g));
    if let Some(view) = &view
        && !view.sees(&patient)
    {
        return Err(outside_reach(patient_id));
    }
    let mut members: Vec<Arc<Value>> = vec![Arc::clone(&patient)];
    for resource_type in store.types() {
        if resource_type == "Patient" || NOT_IN_EVERYTHING.contains(&resource_type) {
            continue;
        }
        members.extend(store.in_patient_compartment(resource_type, patient_id));
    }
    // Filtered before following references: what a hidden resource points to must not show.
    if let Some(view) = &view {
        members.retain(|r| view.sees(r));
    }
    let mut seen: BTreeSet<String> = members.iter().map(|r| key(r)).collect();
    let mut referenced = Vec::new();
    for resource in &members {
        for reference in crate::compartment::references_in(resource) {
            let Some((t, id)) = reference
                .split_once('/')
                .filter(|(_, id)| !id.contains('/'))
            else {
                continue;
            };
            if t == "Patient" || seen.contains(&reference) {
                continue;
            }
            if let Some(target) = store.get(t, id) {
                seen.insert(reference.clone());
                referenced.push(target);
            }
        }
    }
    members.extend(referenced);
    if let Some(view) = &view {
        members.retain(|r| view.sees(r));
    }
    members.retain(|r| {
        let type_ok = types
            .as_ref()
            .is_none_or(|ts| ts.iter().any(|t| r["resourceType"] == t.as_str()));
        let since_ok = since.is_none_or(|s| {
            r["meta"]["lastUpdated"]
                .as_str()
                .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
                .is_some_and(|t| t >= s)
        });
        type_ok && since_ok
    });
    let total = members.len();
    touch_all(ctx, &store, page.slice(&members));
    let base = ctx.base_url();
    let entries: Vec<Entry<'_>> = page
        .slice(&members)
        .iter()
        .map(|r| Entry {
            full_url: format!("{base}/{}", key(r)),
            resource: stored_or_tree(&store, r),
            search: SearchMode { mode: "match" },
        })
        .collect();
    let url = format!("{}/Patient/{patient_id}/$everything", ctx.base_url());
    let links = page
        .links(&url, total)
        .as_array()
        .cloned()
        .unwrap_or_default();
    Ok(ctx.respond(200, &Searchset::new(Some(total), links, entries)))
}

fn key(resource: &Value) -> String {
    format!(
        "{}/{}",
        resource["resourceType"].as_str().unwrap_or_default(),
        resource["id"].as_str().unwrap_or_default()
    )
}
