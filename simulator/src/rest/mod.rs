//! The FHIR R4 REST API of one environment: routing a request to its interaction, then the
//! interaction itself. Every failure becomes an OperationOutcome with the right status.
//!
//! The request path is a straight line — route, (authorize: next issue), store, respond — so
//! authorization will have exactly one place to go: between [`route`] and the handlers.

mod bulk;
mod bundle;
mod capability;
mod crud;
mod format;
mod history;
mod paging;
mod search;
pub mod types;

pub(crate) use bulk::BulkJobs;
pub use bundle::load_bundle;

use http::Method;

use crate::Simulator;
use crate::access::Principal;
use crate::environment::Environment;
use crate::outcome::FhirError;
use crate::request::{SimRequest, SimResponse};

pub use capability::capability_statement;

/// A FHIR interaction, as routed from method and path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interaction {
    /// `GET [base]/metadata`.
    Capabilities,
    /// `POST [base]` with a batch or transaction Bundle.
    BatchOrTransaction,
    /// `GET [base]/_history`.
    SystemHistory,
    /// `GET [base]/[type]` or `POST [base]/[type]/_search`.
    Search {
        /// The resource type.
        resource_type: String,
        /// Parameters came in a form body.
        via_post: bool,
    },
    /// `GET [base]/Patient/[id]/[type]`: a search within one patient's compartment.
    CompartmentSearch {
        /// The patient id.
        patient_id: String,
        /// The resource type searched.
        resource_type: String,
    },
    /// `POST [base]/[type]`.
    Create {
        /// The resource type.
        resource_type: String,
    },
    /// `GET [base]/[type]/_history`.
    TypeHistory {
        /// The resource type.
        resource_type: String,
    },
    /// `GET [base]/[type]/[id]`.
    Read {
        /// The resource type.
        resource_type: String,
        /// The id.
        id: String,
    },
    /// `PUT [base]/[type]/[id]`.
    Update {
        /// The resource type.
        resource_type: String,
        /// The id.
        id: String,
    },
    /// `DELETE [base]/[type]/[id]`.
    Delete {
        /// The resource type.
        resource_type: String,
        /// The id.
        id: String,
    },
    /// `GET [base]/[type]/[id]/_history`.
    InstanceHistory {
        /// The resource type.
        resource_type: String,
        /// The id.
        id: String,
    },
    /// `GET [base]/[type]/[id]/_history/[vid]`.
    Vread {
        /// The resource type.
        resource_type: String,
        /// The id.
        id: String,
        /// The version.
        version_id: String,
    },
    /// `GET [base]/Patient/[id]/$everything`.
    Everything {
        /// The patient id.
        patient_id: String,
    },
    /// A Bulk Data `$export` kick-off.
    Export {
        /// What is exported.
        level: ExportLevel,
    },
    /// `GET [base]/_bulk/[job]`: a bulk export's status, then its manifest.
    ExportStatus {
        /// The job id.
        job: String,
    },
    /// `DELETE [base]/_bulk/[job]`: cancels a bulk export.
    ExportCancel {
        /// The job id.
        job: String,
    },
    /// `GET [base]/_bulk/[job]/[file]`: one NDJSON file of a bulk export.
    ExportFile {
        /// The job id.
        job: String,
        /// The file name, e.g. `Observation-1.ndjson`.
        file: String,
    },
}

/// What a Bulk Data `$export` kick-off exports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportLevel {
    /// `GET [base]/$export`: every resource (except audit records).
    System,
    /// `GET [base]/Patient/$export`: every patient and their compartments.
    Patient,
    /// `GET [base]/Group/[id]/$export`: the Group's patients and their compartments.
    Group {
        /// The Group id.
        id: String,
    },
}

/// Maps method and path segments (after the base) to an interaction.
pub fn route(method: &Method, segments: &[&str]) -> Result<Interaction, FhirError> {
    use Interaction as I;
    let not_allowed = || {
        FhirError::new(
            405,
            crate::outcome::IssueType::NotSupported,
            format!("{method} is not supported on /{}", segments.join("/")),
        )
    };
    let interaction = match (method.as_str(), segments) {
        ("GET", ["metadata"]) => I::Capabilities,
        ("POST", []) => I::BatchOrTransaction,
        ("GET", ["_history"]) => I::SystemHistory,
        ("GET", ["$export"]) => I::Export {
            level: ExportLevel::System,
        },
        ("GET", ["_bulk", job]) => I::ExportStatus {
            job: (*job).to_string(),
        },
        ("DELETE", ["_bulk", job]) => I::ExportCancel {
            job: (*job).to_string(),
        },
        ("GET", ["_bulk", job, file]) => I::ExportFile {
            job: (*job).to_string(),
            file: (*file).to_string(),
        },
        (_, [t, ..]) if !t.starts_with('_') && !t.starts_with('$') && *t != "metadata" => {
            route_typed(method, segments).ok_or_else(not_allowed)??
        }
        _ => return Err(not_allowed()),
    };
    Ok(interaction)
}

/// Routes paths that start with a resource type.
fn route_typed(method: &Method, segments: &[&str]) -> Option<Result<Interaction, FhirError>> {
    use Interaction as I;
    let t = segments.first()?.to_string();
    if let Err(e) = types::check_type(&t) {
        return Some(Err(e));
    }
    let checked_id = |id: &str| {
        if types::is_valid_id(id) {
            Ok(id.to_string())
        } else {
            Err(FhirError::bad_request(format!(
                "invalid resource id {id:?}: use 1 to 64 letters, digits, '-' or '.'"
            )))
        }
    };
    let interaction = match (method.as_str(), &segments[1..]) {
        ("GET", []) => Ok(I::Search {
            resource_type: t,
            via_post: false,
        }),
        ("POST", []) => Ok(I::Create { resource_type: t }),
        ("POST", ["_search"]) => Ok(I::Search {
            resource_type: t,
            via_post: true,
        }),
        ("GET", ["_history"]) => Ok(I::TypeHistory { resource_type: t }),
        ("GET", ["$export"]) if t == "Patient" => Ok(I::Export {
            level: ExportLevel::Patient,
        }),
        ("GET", ["$export"]) => return None,
        ("GET", [id, "$export"]) if t == "Group" => checked_id(id).map(|id| I::Export {
            level: ExportLevel::Group { id },
        }),
        ("GET", ["$everything"]) => return None,
        ("GET", [id, "$everything"]) if t == "Patient" => {
            checked_id(id).map(|patient_id| I::Everything { patient_id })
        }
        ("GET", [id]) => checked_id(id).map(|id| I::Read {
            resource_type: t,
            id,
        }),
        ("PUT", [id]) => checked_id(id).map(|id| I::Update {
            resource_type: t,
            id,
        }),
        ("DELETE", [id]) => checked_id(id).map(|id| I::Delete {
            resource_type: t,
            id,
        }),
        ("GET", [id, "_history"]) => checked_id(id).map(|id| I::InstanceHistory {
            resource_type: t,
            id,
        }),
        ("GET", [id, "_history", vid]) => checked_id(id).map(|id| I::Vread {
            resource_type: t,
            id,
            version_id: (*vid).to_string(),
        }),
        ("GET", [id, compartment_type]) if t == "Patient" => {
            if let Err(e) = types::check_type(compartment_type) {
                return Some(Err(e));
            }
            checked_id(id).map(|patient_id| I::CompartmentSearch {
                patient_id,
                resource_type: (*compartment_type).to_string(),
            })
        }
        _ => return None,
    };
    Some(interaction)
}

/// What every handler needs: the simulator, the environment and the request.
pub(crate) struct Ctx<'a> {
    pub(crate) sim: &'a Simulator,
    pub(crate) env: &'a Environment,
    pub(crate) req: &'a SimRequest,
    pub(crate) pretty: bool,
    /// Who is asking: every handler decides through [`crate::access`] with it.
    pub(crate) principal: &'a Principal,
    /// What the request returned or changed, for the access log.
    pub(crate) touched: &'a Touched,
}

/// What a request returned or changed, gathered by the handlers for the access log and the
/// audit trail.
#[derive(Debug, Default)]
pub struct Touched {
    inner: std::cell::RefCell<TouchedInner>,
}

#[derive(Debug, Default)]
struct TouchedInner {
    action: &'static str,
    resource_type: Option<String>,
    resources: Vec<String>,
    patients: std::collections::BTreeSet<String>,
}

impl Touched {
    /// Notes a resource returned or changed, and the patients it is about.
    pub(crate) fn touch(&self, resource_type: &str, id: &str, patients: &[String]) {
        let mut inner = self.inner.borrow_mut();
        inner.resources.push(format!("{resource_type}/{id}"));
        inner.patients.extend(patients.iter().cloned());
    }

    /// Names the interaction a request would have been (when it is refused before handling).
    pub fn name_route(&self, method: &Method, segments: &[&str]) {
        if let Ok(interaction) = route(method, segments) {
            self.set_interaction(&interaction);
        }
    }

    fn set_interaction(&self, interaction: &Interaction) {
        let mut inner = self.inner.borrow_mut();
        inner.action = interaction.name();
        inner.resource_type = interaction.resource_type().map(str::to_string);
    }

    /// The interaction's name (`read`, `search-type`…), or `unknown` if it was not routed.
    pub fn action(&self) -> &'static str {
        match self.inner.borrow().action {
            "" => "unknown",
            a => a,
        }
    }

    /// The resource type the interaction named, if any.
    pub fn resource_type(&self) -> Option<String> {
        self.inner.borrow().resource_type.clone()
    }

    /// The resources (`Type/id`), in the order touched, once each.
    pub fn resources(&self) -> Vec<String> {
        let inner = self.inner.borrow();
        let mut seen = std::collections::HashSet::new();
        inner
            .resources
            .iter()
            .filter(|r| seen.insert(r.as_str()))
            .cloned()
            .collect()
    }

    /// The patients whose data was touched.
    pub fn patients(&self) -> Vec<String> {
        self.inner.borrow().patients.iter().cloned().collect()
    }
}

impl Interaction {
    /// The FHIR name of the interaction (`read`, `search-type`, `history-instance`…).
    pub fn name(&self) -> &'static str {
        use Interaction as I;
        match self {
            I::Capabilities => "capabilities",
            I::BatchOrTransaction => "batch",
            I::SystemHistory => "history-system",
            I::Search { .. } => "search-type",
            I::CompartmentSearch { .. } => "search-compartment",
            I::Create { .. } => "create",
            I::TypeHistory { .. } => "history-type",
            I::Read { .. } => "read",
            I::Update { .. } => "update",
            I::Delete { .. } => "delete",
            I::InstanceHistory { .. } => "history-instance",
            I::Vread { .. } => "vread",
            I::Everything { .. } => "everything",
            I::Export { .. } => "export",
            I::ExportStatus { .. } => "export-status",
            I::ExportCancel { .. } => "export-cancel",
            I::ExportFile { .. } => "export-file",
        }
    }

    /// The resource type it names, if any.
    pub fn resource_type(&self) -> Option<&str> {
        use Interaction as I;
        match self {
            I::Search { resource_type, .. }
            | I::CompartmentSearch { resource_type, .. }
            | I::Create { resource_type }
            | I::TypeHistory { resource_type }
            | I::Read { resource_type, .. }
            | I::Update { resource_type, .. }
            | I::Delete { resource_type, .. }
            | I::InstanceHistory { resource_type, .. }
            | I::Vread { resource_type, .. } => Some(resource_type),
            I::Everything { .. } => Some("Patient"),
            _ => None,
        }
    }
}

impl Ctx<'_> {
    /// The absolute FHIR base URL of this environment.
    pub(crate) fn base_url(&self) -> String {
        format!("{}{}", self.sim.public_url(), self.env.base_path())
    }

    /// A FHIR JSON response.
    pub(crate) fn respond(
        &self,
        status: u16,
        value: &(impl serde::Serialize + ?Sized),
    ) -> SimResponse {
        SimResponse::fhir(status, value, self.pretty)
    }
}

/// Handles a request under an environment's FHIR base; `segments` follow the base, and
/// `principal` is the authenticated caller.
pub fn handle(
    sim: &Simulator,
    env: &Environment,
    req: &SimRequest,
    segments: &[&str],
    principal: &Principal,
    touched: &Touched,
) -> SimResponse {
    let pretty = req.query_value("_pretty") == Some("true");
    let ctx = Ctx {
        sim,
        env,
        req,
        pretty,
        principal,
        touched,
    };
    let routed = route(&req.method, segments);
    let negotiated = match &routed {
        Ok(Interaction::ExportFile { .. }) => bulk::negotiate_download(req),
        _ => format::negotiate(req),
    };
    if let Ok(interaction) = &routed {
        touched.set_interaction(interaction);
    }
    let result = negotiated
        .and(routed)
        .and_then(|interaction| dispatch(&ctx, &interaction));
    result.unwrap_or_else(|e| SimResponse::error(&e, pretty))
}

fn dispatch(ctx: &Ctx<'_>, interaction: &Interaction) -> Result<SimResponse, FhirError> {
    use Interaction as I;
    match interaction {
        I::Capabilities => Ok(ctx.respond(200, &capability_statement(ctx.sim, ctx.env))),
        I::BatchOrTransaction => bundle::batch_or_transaction(ctx),
        I::SystemHistory => history::history(ctx, None, None),
        I::TypeHistory { resource_type } => history::history(ctx, Some(resource_type), None),
        I::InstanceHistory { resource_type, id } => {
            history::history(ctx, Some(resource_type), Some(id))
        }
        I::Search {
            resource_type,
            via_post,
        } => search::search(ctx, resource_type, *via_post, None),
        I::CompartmentSearch {
            patient_id,
            resource_type,
        } => search::search(ctx, resource_type, false, Some(patient_id)),
        I::Everything { patient_id } => search::everything(ctx, patient_id),
        I::Read { resource_type, id } => crud::read(ctx, resource_type, id),
        I::Vread {
            resource_type,
            id,
            version_id,
        } => crud::vread(ctx, resource_type, id, version_id),
        I::Create { resource_type } => crud::create(ctx, resource_type),
        I::Update { resource_type, id } => crud::update(ctx, resource_type, id),
        I::Delete { resource_type, id } => crud::delete(ctx, resource_type, id),
        I::Export { level } => bulk::kick_off(ctx, level),
        I::ExportStatus { job } => bulk::status(ctx, job),
        I::ExportCancel { job } => bulk::cancel(ctx, job),
        I::ExportFile { job, file } => bulk::download(ctx, job, file),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(method: Method, path: &str, expected: Result<Interaction, u16>) {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        assert_eq!(
            route(&method, &segments).map_err(|e| e.status),
            expected,
            "{method} {path}"
        );
    }

    #[test]
    fn routes() {
        use Interaction as I;
        let t = |s: &str| s.to_string();
        check(Method::GET, "metadata", Ok(I::Capabilities));
        check(Method::POST, "", Ok(I::BatchOrTransaction));
        check(
            Method::GET,
            "Patient",
            Ok(I::Search {
                resource_type: t("Patient"),
                via_post: false,
            }),
        );
        check(
            Method::POST,
            "Patient/_search",
            Ok(I::Search {
                resource_type: t("Patient"),
                via_post: true,
            }),
        );
        check(
            Method::GET,
            "Patient/p1",
            Ok(I::Read {
                resource_type: t("Patient"),
                id: t("p1"),
            }),
        );
        check(
            Method::GET,
            "Patient/p1/_history/2",
            Ok(I::Vread {
                resource_type: t("Patient"),
                id: t("p1"),
                version_id: t("2"),
            }),
        );
        check(
            Method::GET,
            "Patient/p1/$everything",
            Ok(I::Everything {
                patient_id: t("p1"),
            }),
        );
        check(
            Method::GET,
            "Patient/p1/Observation",
            Ok(I::CompartmentSearch {
                patient_id: t("p1"),
                resource_type: t("Observation"),
            }),
        );
        let export = |level| Ok(I::Export { level });
        check(Method::GET, "$export", export(ExportLevel::System));
        check(Method::GET, "Patient/$export", export(ExportLevel::Patient));
        check(
            Method::GET,
            "Group/g1/$export",
            export(ExportLevel::Group { id: t("g1") }),
        );
        check(Method::GET, "Group/a$b/$export", Err(400));
        check(Method::GET, "Observation/$export", Err(405));
        check(Method::POST, "$export", Err(405));
        check(
            Method::GET,
            "_bulk/j1",
            Ok(I::ExportStatus { job: t("j1") }),
        );
        check(
            Method::DELETE,
            "_bulk/j1",
            Ok(I::ExportCancel { job: t("j1") }),
        );
        check(
            Method::GET,
            "_bulk/j1/Patient-1.ndjson",
            Ok(I::ExportFile {
                job: t("j1"),
                file: t("Patient-1.ndjson"),
            }),
        );
        check(Method::PUT, "_bulk/j1", Err(405));
        check(Method::GET, "Banana/1", Err(404));
        check(Method::GET, "Patient/a$b", Err(400));
        check(Method::PATCH, "Patient/p1", Err(405));
        check(Method::GET, "", Err(405));
        check(Method::GET, "Observation/o1/Patient", Err(405));
    }
}
