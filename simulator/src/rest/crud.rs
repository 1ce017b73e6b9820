//! read, vread, create, update and delete, with versioning headers (ETag, Last-Modified,
//! Location) and conditional requests (If-None-Match → 304, If-Match → 412).

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{Ctx, types};
use crate::access::{Action, Principal};
use crate::clock::fhir_instant;
use crate::outcome::{FhirError, IssueType};
use crate::request::SimResponse;
use crate::store::{Lookup, Store, Version, patients_about};

/// `W/"<version>"`, the weak ETag FHIR uses for versions.
pub(crate) fn etag(version_id: u64) -> String {
    format!("W/\"{version_id}\"")
}

/// An HTTP-date (`Sun, 06 Nov 1994 08:49:37 GMT`) from a FHIR instant.
pub(crate) fn http_date(instant: &str) -> Option<String> {
    let t = OffsetDateTime::parse(instant, &Rfc3339)
        .ok()?
        .to_offset(time::UtcOffset::UTC);
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    t.format(&format).ok()
}

/// The version number an ETag or `If-Match` value names (`W/"3"`, `"3"` or `3`).
fn version_of_etag(value: &str) -> Option<u64> {
    value
        .trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .ok()
}

/// A response carrying one version of a resource, with its version headers.
fn version_response(ctx: &Ctx<'_>, status: u16, version: &Version) -> SimResponse {
    // The stored JSON goes out as it is: nothing is parsed or re-serialized for a read,
    // unless `_pretty` asks for indentation.
    let mut response = match (&version.json, ctx.pretty) {
        (Some(json), false) => ctx.respond(status, json.raw()),
        (Some(_), true) => ctx.respond(status, &version.resource().unwrap_or(Value::Null)),
        (None, _) => ctx.respond(status, &Value::Null),
    };
    response = response.with_header("etag", etag(version.version_id));
    if let Some(date) = http_date(&version.last_updated) {
        response = response.with_header("last-modified", date);
    }
    response
}

fn gone(resource_type: &str, id: &str, version: &Version) -> FhirError {
    FhirError::new(
        410,
        IssueType::Deleted,
        format!(
            "{resource_type}/{id} was deleted (version {})",
            version.version_id
        ),
    )
}

fn missing(resource_type: &str, id: &str) -> FhirError {
    FhirError::not_found(format!("{resource_type}/{id} is not known"))
}

/// Checks that the caller may `action` this version of `resource_type/id` (a deletion is
/// judged by the version it deleted).
pub(crate) fn check_version(
    ctx: &Ctx<'_>,
    action: Action,
    resource_type: &str,
    id: &str,
    version: &Version,
) -> Result<(), FhirError> {
    let Some(grant) = ctx.principal.grant() else {
        return Ok(());
    };
    let body = grant
        .restricts(resource_type)
        .then(|| version.resource())
        .flatten();
    let store = ctx.env.read();
    ctx.principal.require_on(
        action,
        resource_type,
        id,
        &version.patients,
        body.as_ref(),
        &*store,
    )
}

/// `GET [type]/[id]`.
pub(crate) fn read(ctx: &Ctx<'_>, resource_type: &str, id: &str) -> Result<SimResponse, FhirError> {
    ctx.principal.require(Action::Read, resource_type)?;
    let lookup = ctx.env.read().current(resource_type, id);
    if let Lookup::Found(version) | Lookup::Deleted(version) = &lookup {
        check_version(ctx, Action::Read, resource_type, id, version)?;
    }
    match lookup {
        Lookup::Found(version) => {
            ctx.touched.touch(resource_type, id, &version.patients);
            let unchanged = ctx
                .req
                .header("if-none-match")
                .and_then(version_of_etag)
                .is_some_and(|v| v == version.version_id);
            if unchanged {
                return Ok(SimResponse::empty(304).with_header("etag", etag(version.version_id)));
            }
            Ok(version_response(ctx, 200, &version))
        }
        Lookup::Deleted(version) => Err(gone(resource_type, id, &version)),
        Lookup::Missing => Err(missing(resource_type, id)),
    }
}

/// `GET [type]/[id]/_history/[vid]`.
pub(crate) fn vread(
    ctx: &Ctx<'_>,
    resource_type: &str,
    id: &str,
    version_id: &str,
) -> Result<SimResponse, FhirError> {
    let Ok(vid) = version_id.parse::<u64>() else {
        return Err(FhirError::bad_request(format!(
            "invalid version id {version_id:?}: versions are whole numbers"
        )));
    };
    ctx.principal.require(Action::Read, resource_type)?;
    // The resource as a whole is judged first, so a token outside it cannot learn which of
    // its versions exist (403 for all of them, not 403 for some and 404 for others).
    if ctx.principal.grant().is_some() {
        let store = ctx.env.read();
        if let Some(patients) = store.patients_of(resource_type, id) {
            let current = store.get(resource_type, id);
            ctx.principal.require_on(
                Action::Read,
                resource_type,
                id,
                patients,
                current.as_deref(),
                &*store,
            )?;
        }
    }
    let lookup = ctx.env.read().version(resource_type, id, vid);
    if let Lookup::Found(version) | Lookup::Deleted(version) = &lookup {
        check_version(ctx, Action::Read, resource_type, id, version)?;
    }
    match lookup {
        Lookup::Found(version) => {
            ctx.touched.touch(resource_type, id, &version.patients);
            Ok(version_response(ctx, 200, &version))
        }
        Lookup::Deleted(version) => Err(gone(resource_type, id, &version)),
        Lookup::Missing if ctx.env.read().patients_of(resource_type, id).is_none() => Err(
            FhirError::not_found(format!("{resource_type}/{id} is not known")),
        ),
        Lookup::Missing => Err(FhirError::not_found(format!(
            "{resource_type}/{id} has no version {vid}"
        ))),
    }
}

/// The response to a create or update, shaped by `Prefer: return=…`.
pub(crate) fn written_response(
    ctx: &Ctx<'_>,
    status: u16,
    resource_type: &str,
    id: &str,
    version: &Version,
) -> SimResponse {
    let location = format!(
        "{}/{resource_type}/{id}/_history/{}",
        ctx.base_url(),
        version.version_id
    );
    let response = if ctx.req.prefers("return=minimal") {
        let mut r = SimResponse::empty(status).with_header("etag", etag(version.version_id));
        if let Some(date) = http_date(&version.last_updated) {
            r = r.with_header("last-modified", date);
        }
        r
    } else if ctx.req.prefers("return=OperationOutcome") {
        let outcome = crate::outcome::operation_outcome(
            "information",
            IssueType::Informational,
            &format!(
                "{resource_type}/{id} stored as version {}",
                version.version_id
            ),
            None,
        );
        ctx.respond(status, &outcome)
            .with_header("etag", etag(version.version_id))
    } else {
        version_response(ctx, status, version)
    };
    response.with_header("location", location)
}

/// A write, as parsed from a request or a Bundle entry.
#[derive(Debug, Clone)]
pub(crate) enum WriteOp {
    /// Create with a server-assigned id (or the given one, in a transaction with urn:uuid ids).
    Create {
        /// The resource type.
        resource_type: String,
        /// The resource (its id is replaced).
        resource: Value,
        /// The id to assign.
        id: String,
    },
    /// Update (or create) at a client-chosen id.
    Update {
        /// The resource type.
        resource_type: String,
        /// The id from the URL.
        id: String,
        /// The resource.
        resource: Value,
        /// The `If-Match` value, if any.
        if_match: Option<String>,
    },
    /// Delete.
    Delete {
        /// The resource type.
        resource_type: String,
        /// The id.
        id: String,
    },
}

/// What a write did.
#[derive(Debug, Clone)]
pub(crate) struct Written {
    /// The HTTP status of the write (201, 200 or 204).
    pub(crate) status: u16,
    /// The resource type.
    pub(crate) resource_type: String,
    /// The id.
    pub(crate) id: String,
    /// The version written (none when deleting something already deleted).
    pub(crate) version: Option<Version>,
}

/// Checks that `principal` may make this write: the new content must be within its reach for
/// EVERY patient it is about (one reference to the caller's own patient must not carry a write
/// into another's compartment), and so must the last version it replaces or deletes, even a
/// deleted one (a token cannot take over another patient's deleted id).
fn authorize_write(store: &Store, op: &WriteOp, principal: &Principal) -> Result<(), FhirError> {
    let Some(grant) = principal.grant() else {
        return Ok(());
    };
    let (action, resource_type, id, new) = match op {
        WriteOp::Create {
            resource_type,
            resource,
            id,
        } => (Action::Create, resource_type, id, Some(resource)),
        WriteOp::Update {
            resource_type,
            id,
            resource,
            ..
        } => (Action::Update, resource_type, id, Some(resource)),
        WriteOp::Delete { resource_type, id } => (Action::Delete, resource_type, id, None),
    };
    grant.require(action, resource_type)?;
    if let Some(resource) = new {
        // Judged as it will be stored: a created resource gets the server's id, not the body's.
        let mut stored = resource.clone();
        if let (Action::Create, Value::Object(map)) = (action, &mut stored) {
            map.insert("id".into(), json!(id));
        }
        let patients = patients_about(&stored);
        principal.require_all_on(action, resource_type, id, &patients, Some(&stored), store)?;
    }
    if let Some(patients) = store.patients_of(resource_type, id) {
        let old = store.get(resource_type, id);
        principal.require_all_on(action, resource_type, id, patients, old.as_deref(), store)?;
    }
    Ok(())
}

/// Applies one write to a locked store, checking the caller's grant, the resource and
/// preconditions first.
pub(crate) fn apply(
    store: &mut Store,
    op: WriteOp,
    now: &str,
    principal: &Principal,
) -> Result<Written, FhirError> {
    authorize_write(store, &op, principal)?;
    match op {
        WriteOp::Create {
            resource_type,
            mut resource,
            id,
        } => {
            types::check_resource(&resource, &resource_type)?;
            if let Value::Object(map) = &mut resource {
                // The server assigns ids on create (FHIR R4 3.1.0.8: any id in the body is ignored).
                map.insert("id".into(), json!(id));
            }
            let version = store.put(resource, now);
            Ok(Written {
                status: 201,
                resource_type,
                id,
                version: Some(version),
            })
        }
        WriteOp::Update {
            resource_type,
            id,
            resource,
            if_match,
        } => {
            types::check_resource(&resource, &resource_type)?;
            check_body_id(&resource, &id)?;
            let current = match store.current(&resource_type, &id) {
                Lookup::Found(v) => Some(v.version_id),
                Lookup::Deleted(_) | Lookup::Missing => None,
            };
            if let Some(expected) = if_match {
                check_if_match(&expected, current, &resource_type, &id)?;
            }
            let version = store.put(resource, now);
            let status = if current.is_some() { 200 } else { 201 };
            Ok(Written {
                status,
                resource_type,
                id,
                version: Some(version),
            })
        }
        WriteOp::Delete { resource_type, id } => match store.current(&resource_type, &id) {
            Lookup::Missing => Err(missing(&resource_type, &id)),
            Lookup::Deleted(_) => Ok(Written {
                status: 204,
                resource_type,
                id,
                version: None,
            }),
            Lookup::Found(_) => {
                let version = store.delete(&resource_type, &id, now);
                Ok(Written {
                    status: 204,
                    resource_type,
                    id,
                    version,
                })
            }
        },
    }
}

fn check_body_id(resource: &Value, id: &str) -> Result<(), FhirError> {
    match resource.get("id").and_then(Value::as_str) {
        Some(body_id) if body_id == id => Ok(()),
        Some(body_id) => Err(FhirError::bad_request(format!(
            "the body's id {body_id:?} does not match the URL's id {id:?}"
        ))
        .at("id")),
        None => Err(FhirError::bad_request(
            "the resource has no id: an update must carry the id of its URL",
        )
        .at("id")),
    }
}

fn check_if_match(
    expected: &str,
    current: Option<u64>,
    resource_type: &str,
    id: &str,
) -> Result<(), FhirError> {
    let wanted = version_of_etag(expected).ok_or_else(|| {
        FhirError::bad_request(format!(
            "If-Match {expected:?} is not a version ETag such as W/\"3\""
        ))
    })?;
    if current == Some(wanted) {
        return Ok(());
    }
    let found = current.map_or("no current version".to_string(), |v| format!("version {v}"));
    Err(FhirError::new(
        412,
        IssueType::Conflict,
        format!(
            "If-Match asked for version {wanted} of {resource_type}/{id}, but the server has {found}"
        ),
    ))
}

/// Notes a write for the access log.
pub(crate) fn touch_written(ctx: &Ctx<'_>, written: &Written) {
    if let Some(version) = &written.version {
        ctx.touched
            .touch(&written.resource_type, &written.id, &version.patients);
    }
}

/// A new server-assigned resource id.
pub(crate) fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Runs one write against the environment and builds its HTTP response.
fn write(ctx: &Ctx<'_>, op: WriteOp) -> Result<SimResponse, FhirError> {
    let now = fhir_instant(ctx.sim.clock().now());
    let written = apply(&mut ctx.env.write(), op, &now, ctx.principal)?;
    touch_written(ctx, &written);
    Ok(match &written.version {
        Some(version) if written.status != 204 => written_response(
            ctx,
            written.status,
            &written.resource_type,
            &written.id,
            version,
        ),
        Some(version) => SimResponse::empty(204).with_header("etag", etag(version.version_id)),
        None => SimResponse::empty(204),
    })
}

/// `POST [type]`: stores the resource under a new server-assigned id.
pub(crate) fn create(ctx: &Ctx<'_>, resource_type: &str) -> Result<SimResponse, FhirError> {
    let resource = ctx.req.json_body()?;
    let op = WriteOp::Create {
        resource_type: resource_type.to_string(),
        resource,
        id: new_id(),
    };
    write(ctx, op)
}

/// `PUT [type]/[id]`: a new version, or the first one (update as create).
pub(crate) fn update(
    ctx: &Ctx<'_>,
    resource_type: &str,
    id: &str,
) -> Result<SimResponse, FhirError> {
    let resource = ctx.req.json_body()?;
    let op = WriteOp::Update {
        resource_type: resource_type.to_string(),
        id: id.to_string(),
        resource,
        if_match: ctx.req.header("if-match").map(str::to_string),
    };
    write(ctx, op)
}

/// `DELETE [type]/[id]`.
pub(crate) fn delete(
    ctx: &Ctx<'_>,
    resource_type: &str,
    id: &str,
) -> Result<SimResponse, FhirError> {
    write(
        ctx,
        WriteOp::Delete {
            resource_type: resource_type.to_string(),
            id: id.to_string(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_round_trip() {
        assert_eq!(version_of_etag(&etag(7)), Some(7));
        assert_eq!(version_of_etag("\"7\""), Some(7));
        assert_eq!(version_of_etag("7"), Some(7));
        assert_eq!(version_of_etag("W/\"x\""), None);
    }

    #[test]
    fn http_dates() {
        assert_eq!(
            http_date("1994-11-06T08:49:37Z").as_deref(),
            Some("Sun, 06 Nov 1994 08:49:37 GMT")
        );
        assert_eq!(http_date("not a date"), None);
    }
}
