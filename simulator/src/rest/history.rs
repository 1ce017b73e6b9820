//! `_history` at instance, type and system level: every version, newest first, as a Bundle of
//! type `history`, paged, with `_since`.

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::Ctx;
use super::paging::{Page, since};
use crate::access::Action;
use crate::outcome::FhirError;
use crate::request::SimResponse;
use crate::store::{HistoryKey, Version, WriteKind};

/// The versions the caller may see: each is judged by its own content (a deletion by the
/// version it deleted), with search permission on its type.
fn visible_versions(
    ctx: &Ctx<'_>,
    versions: Vec<(HistoryKey, Version)>,
) -> Vec<(HistoryKey, Version)> {
    let Some(grant) = ctx.principal.grant() else {
        return versions;
    };
    let store = ctx.env.read();
    versions
        .into_iter()
        .filter(|(key, version)| {
            let body = grant
                .restricts(&key.resource_type)
                .then(|| version.resource())
                .flatten();
            [Action::Search, Action::Read].iter().any(|action| {
                grant
                    .allows(
                        *action,
                        &key.resource_type,
                        &version.patients,
                        body.as_ref(),
                        &*store,
                    )
                    .is_some()
            })
        })
        .collect()
}

/// `GET [base]/_history`, `[type]/_history` or `[type]/[id]/_history`.
pub(crate) fn history(
    ctx: &Ctx<'_>,
    resource_type: Option<&str>,
    id: Option<&str>,
) -> Result<SimResponse, FhirError> {
    let page = Page::from_params(
        ctx.req.query_value("_count"),
        ctx.req.query_value("_offset"),
    )?;
    let since = since(ctx.req.query_value("_since"))?;
    match (resource_type, id) {
        (Some(t), Some(_)) => ctx.principal.require(Action::Read, t)?,
        (Some(t), None) => ctx.principal.require(Action::Search, t)?,
        _ => {}
    }
    let versions = ctx.env.read().history(resource_type, id);
    if let (Some(t), Some(i), Some((_, newest))) = (resource_type, id, versions.first()) {
        super::crud::check_version(ctx, Action::Read, t, i, newest)?;
    }
    let versions = visible_versions(ctx, versions);
    if versions.is_empty()
        && let (Some(t), Some(i)) = (resource_type, id)
    {
        return Err(FhirError::not_found(format!("{t}/{i} is not known")));
    }
    let versions: Vec<_> = versions
        .into_iter()
        .filter(|(_, v)| {
            since.is_none_or(|s| {
                OffsetDateTime::parse(&v.last_updated, &Rfc3339).is_ok_and(|t| t >= s)
            })
        })
        .collect();
    let base = ctx.base_url();
    for (key, version) in page.slice(&versions) {
        ctx.touched
            .touch(&key.resource_type, &key.id, &version.patients);
    }
    let entries: Vec<Value> = page
        .slice(&versions)
        .iter()
        .map(|(key, version)| {
            let (method, url, status) = match version.kind {
                WriteKind::Create => ("POST", key.resource_type.clone(), "201 Created"),
                WriteKind::Update => ("PUT", format!("{}/{}", key.resource_type, key.id), "200 OK"),
                WriteKind::Delete => ("DELETE", format!("{}/{}", key.resource_type, key.id), "204 No Content"),
            };
            let mut entry = json!({
                "fullUrl": format!("{base}/{}/{}", key.resource_type, key.id),
                "request": {"method": method, "url": url},
                "response": {"status": status, "etag": super::crud::etag(version.version_id), "lastModified": version.last_updated}
            });
            if let Some(resource) = version.resource() {
                entry["resource"] = resource;
            }
            entry
        })
        .collect();
    let path = match (resource_type, id) {
        (Some(t), Some(i)) => format!("{base}/{t}/{i}/_history"),
        (Some(t), None) => format!("{base}/{t}/_history"),
        _ => format!("{base}/_history"),
    };
    let url = match ctx.req.query_value("_since") {
        Some(s) => format!(
            "{path}?_since={}",
            form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
        ),
        None => path,
    };
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "history",
        "total": versions.len(),
        "link": page.links(&url, versions.len()),
        "entry": entries
    });
    Ok(ctx.respond(200, &bundle))
}
