//! Enforcement: the one place that decides what a caller may do and see.
//!
//! Every FHIR interaction is decided from who is asking (a [`Principal`]: the admin, or the
//! [`Grant`] behind a bearer token — client, user, patient context, granted scopes) against
//! what is asked (the action, the resource type, and the patients the resource is about, from
//! the store's compartment data). Two entry points serve the REST handlers:
//! - [`Grant::require`]: may this token do `action` on `resource_type` at all? (else 403,
//!   naming the scope that is missing);
//! - [`Grant::allows`]: may it see or change this particular resource?
//!
//! Searches, includes, chains, `_has`, `$everything` and history read the store through a
//! [`Visible`] view that hides everything a grant does not reach, so no search vector can
//! reveal a resource (or, by matching on it, a fact about one) outside the grant.
//!
//! Rules: `patient/` scopes reach the launch patient's compartment; `user/` scopes what the
//! user may see (a practitioner's care-team panel, a patient user's own record); `system/`
//! scopes every patient, or only a bound Group's members. Resources about no patient
//! (Practitioner, Organization, Location, Medication…) are reached by any scope on their type.
//! AuditEvent is reached only by a scope that names it, never by a `*` scope.

mod view;

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::Value;

use crate::outcome::{FhirError, IssueType};
use crate::search::{self, ResourceSource, SearchQuery};
use crate::smart::scopes::{ClinicalScope, Context, Permissions};

pub use view::Visible;

/// The audit resource type: reachable only through a scope that names it.
pub const AUDIT_TYPE: &str = "AuditEvent";

/// Who is making a FHIR request.
#[derive(Debug, Clone)]
pub enum Principal {
    /// The admin token: full access, audited as admin.
    Admin,
    /// A bearer access token issued by this environment.
    Bearer(Arc<Grant>),
}

/// What an access token grants: who it was issued to and for what.
#[derive(Debug, Clone, Default)]
pub struct Grant {
    /// The token's id (`jti`).
    pub token_id: String,
    /// The client it was issued to.
    pub client_id: String,
    /// The signed-in user's FHIR resource (`Practitioner/…` or `Patient/…`), if any.
    pub user: Option<String>,
    /// The launch patient (patient context), if any.
    pub patient: Option<String>,
    /// The launch encounter, if any.
    pub encounter: Option<String>,
    /// The granted clinical scopes.
    pub scopes: Vec<ClinicalScope>,
    /// Their canonical text, in the same order (made once, for the access log); computed on
    /// the fly when it does not match `scopes`.
    pub scope_names: Vec<Arc<str>>,
    /// Every granted scope, as text (for messages and the audit trail).
    pub scope_text: String,
    /// The patients the user may see (`user/` scopes): a practitioner's panel, or a patient
    /// user's own id. `None` when no user signed in.
    pub user_patients: Option<Arc<BTreeSet<String>>>,
    /// The members of the Group a backend client is bound to (`system/` scopes), if bound.
    pub group_patients: Option<Arc<BTreeSet<String>>>,
}

/// What a request does to a resource, in SMART 2.0 terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// `c`: create.
    Create,
    /// `r`: read and vread (and instance history).
    Read,
    /// `u`: update.
    Update,
    /// `d`: delete.
    Delete,
    /// `s`: search (and type or system history).
    Search,
}

impl Action {
    /// The SMART 2.0 permission letter.
    pub fn letter(self) -> char {
        match self {
            Action::Create => 'c',
            Action::Read => 'r',
            Action::Update => 'u',
            Action::Delete => 'd',
            Action::Search => 's',
        }
    }

    fn permitted_by(self, p: Permissions) -> bool {
        match self {
            Action::Create => p.create,
            Action::Read => p.read,
            Action::Update => p.update,
            Action::Delete => p.delete,
            Action::Search => p.search,
        }
    }
}

/// Which patients a scope's context reaches for a grant.
#[derive(Debug, Clone, Copy)]
enum Reach<'a> {
    /// Every patient (an unbound `system/` scope).
    Everyone,
    /// Exactly one patient (the launch patient).
    One(&'a str),
    /// A set of patients (a user's panel, a bound Group).
    Set(&'a BTreeSet<String>),
    /// No patient (a `patient/` scope without a launch patient, a `user/` scope without a user).
    Nobody,
}

impl Reach<'_> {
    fn any_of(self, patients: &[String]) -> bool {
        match self {
            Reach::Everyone => true,
            Reach::One(p) => patients.iter().any(|x| x == p),
            Reach::Set(set) => patients.iter().any(|x| set.contains(x)),
            Reach::Nobody => false,
        }
    }
}

/// Whether resources of `resource_type` are about patients (so access to one needs a reach
/// that includes its patient): the Patient compartment types, in either definition we hold.
pub fn is_patient_type(resource_type: &str) -> bool {
    crate::compartment::is_compartment_type(resource_type)
        || !search::compartment_params(resource_type).is_empty()
}

impl Grant {
    fn reach(&self, context: Context) -> Reach<'_> {
        match context {
            Context::Patient => self.patient.as_deref().map_or(Reach::Nobody, Reach::One),
            Context::User => self
                .user_patients
                .as_deref()
                .map_or(Reach::Nobody, Reach::Set),
            Context::System => self
                .group_patients
                .as_deref()
                .map_or(Reach::Everyone, Reach::Set),
        }
    }

    /// The scopes that permit `action` on `resource_type` and reach some patient.
    fn candidates<'a>(
        &'a self,
        action: Action,
        resource_type: &'a str,
    ) -> impl Iterator<Item = &'a ClinicalScope> + 'a {
        self.scopes.iter().filter(move |s| {
            covers_type(s, resource_type)
                && action.permitted_by(s.permissions)
                && !matches!(self.reach(s.context), Reach::Nobody)
        })
    }

    /// Whether some scope may do `action` on `resource_type` at all.
    pub fn may(&self, action: Action, resource_type: &str) -> bool {
        self.candidates(action, resource_type).next().is_some()
    }

    /// Checks that some scope permits `action` on `resource_type`; the error (403) names the
    /// scopes that would.
    pub fn require(&self, action: Action, resource_type: &str) -> Result<(), FhirError> {
        if self.may(action, resource_type) {
            return Ok(());
        }
        Err(self.missing_scope(action, resource_type))
    }

    /// The 403 for a request no granted scope permits.
    pub fn missing_scope(&self, action: Action, resource_type: &str) -> FhirError {
        let letter = action.letter();
        let granted = if self.scope_text.is_empty() {
            "none".to_string()
        } else {
            self.scope_text.clone()
        };
        FhirError::new(
            403,
            IssueType::Forbidden,
            format!(
                "insufficient scope: {action:?} of {resource_type} needs a scope such as \
                 patient/{resource_type}.{letter}, user/{resource_type}.{letter} or \
                 system/{resource_type}.{letter} (with a patient or user context to match); \
                 granted: {granted}"
            ),
        )
    }

    /// The scope that permits `action` on this resource, if any. `patients` are the patients the
    /// resource is about ([`crate::store::Store::patients_of`]); `resource` is needed only when
    /// a scope carries query restrictions (`?category=…`), matched against it through `source`.
    pub fn allows<'a>(
        &'a self,
        action: Action,
        resource_type: &str,
        patients: &[String],
        resource: Option<&Value>,
        source: &dyn ResourceSource,
    ) -> Option<&'a ClinicalScope> {
        let about_patients = !patients.is_empty() || is_patient_type(resource_type);
        self.scopes.iter().find(|scope| {
            covers_type(scope, resource_type)
                && action.permitted_by(scope.permissions)
                && {
                    let reach = self.reach(scope.context);
                    if about_patients {
                        reach.any_of(patients)
                    } else {
                        !matches!(reach, Reach::Nobody)
                    }
                }
                && restrictions_hold(scope, resource_type, resource, source)
        })
    }

    /// Whether some scope permits `action` on this resource for EVERY patient it is about (for
    /// writes, and for records that mention several patients): `allows`, patient by patient.
    pub fn allows_all(
        &self,
        action: Action,
        resource_type: &str,
        patients: &[String],
        resource: Option<&Value>,
        source: &dyn ResourceSource,
    ) -> bool {
        if patients.is_empty() {
            return self
                .allows(action, resource_type, patients, resource, source)
                .is_some();
        }
        patients.iter().all(|p| {
            self.allows(
                action,
                resource_type,
                std::slice::from_ref(p),
                resource,
                source,
            )
            .is_some()
        })
    }

    /// Whether the grant lets its holder see this resource (by read or by search).
    pub fn sees(
        &self,
        resource_type: &str,
        patients: &[String],
        resource: Option<&Value>,
        source: &dyn ResourceSource,
    ) -> bool {
        self.allows(Action::Read, resource_type, patients, resource, source)
            .or_else(|| self.allows(Action::Search, resource_type, patients, resource, source))
            .is_some()
    }

    /// Whether any scope that can see `resource_type` carries query restrictions (then
    /// deciding needs the resource itself, not only its patients).
    pub fn restricts(&self, resource_type: &str) -> bool {
        self.scopes
            .iter()
            .any(|s| covers_type(s, resource_type) && !s.restrictions.is_empty())
    }

    /// The patients every patient-bearing resource this grant can see must be about, or `None`
    /// when some scope reaches every patient. Lets a search read only those compartments.
    pub fn patient_bound(&self, resource_type: &str) -> Option<BTreeSet<String>> {
        let mut out = BTreeSet::new();
        for scope in self.scopes.iter().filter(|s| covers_type(s, resource_type)) {
            match self.reach(scope.context) {
                Reach::Everyone => return None,
                Reach::One(p) => {
                    out.insert(p.to_string());
                }
                Reach::Set(set) => out.extend(set.iter().cloned()),
                Reach::Nobody => {}
            }
        }
        Some(out)
    }

    /// The granted scopes that cover `resource_type` or the type of any of `resources`
    /// (`Type/id`): the scopes a request made use of, for the access log.
    pub fn scopes_used(&self, resource_type: Option<&str>, resources: &[String]) -> Vec<String> {
        let mut types: BTreeSet<&str> = resources
            .iter()
            .filter_map(|r| r.split('/').next())
            .collect();
        types.extend(resource_type);
        let named = self.scope_names.len() == self.scopes.len();
        self.scopes
            .iter()
            .enumerate()
            .filter(|(_, s)| types.iter().any(|t| covers_type(s, t)))
            .map(|(i, s)| {
                if named {
                    self.scope_names[i].to_string()
                } else {
                    s.to_string()
                }
            })
            .collect()
    }

    /// Whether the grant holds any `system/` or `user/` scope (Bulk Data export needs one).
    pub fn has_population_scope(&self) -> bool {
        self.scopes
            .iter()
            .any(|s| matches!(s.context, Context::System | Context::User))
    }
}

/// Whether `scope` covers `resource_type`; AuditEvent must be named, `*` does not reach it.
fn covers_type(scope: &ClinicalScope, resource_type: &str) -> bool {
    if resource_type == AUDIT_TYPE {
        return scope.resource_type.as_deref() == Some(AUDIT_TYPE);
    }
    scope.covers_type(resource_type)
}

/// Whether `resource` satisfies the scope's query restrictions (always, when it has none).
fn restrictions_hold(
    scope: &ClinicalScope,
    resource_type: &str,
    resource: Option<&Value>,
    source: &dyn ResourceSource,
) -> bool {
    if scope.restrictions.is_empty() {
        return true;
    }
    let Some(resource) = resource else {
        return false;
    };
    match SearchQuery::parse(resource_type, &scope.restrictions, true) {
        Ok(parsed) => search::matches(&parsed.criteria, resource, source),
        Err(_) => false,
    }
}

impl Principal {
    /// Checks `action` on a resource for every patient it is about (writes); the 403 says the
    /// resource is outside the token's reach.
    pub fn require_all_on(
        &self,
        action: Action,
        resource_type: &str,
        id: &str,
        patients: &[String],
        resource: Option<&Value>,
        source: &dyn ResourceSource,
    ) -> Result<(), FhirError> {
        self.require_where(action, resource_type, id, |g| {
            g.allows_all(action, resource_type, patients, resource, source)
        })
    }

    /// Checks the type-level scope, then `allowed` on the grant; the admin passes.
    fn require_where(
        &self,
        action: Action,
        resource_type: &str,
        id: &str,
        allowed: impl FnOnce(&Grant) -> bool,
    ) -> Result<(), FhirError> {
        let Some(grant) = self.grant() else {
            return Ok(());
        };
        grant.require(action, resource_type)?;
        if allowed(grant) {
            Ok(())
        } else {
            Err(outside(action, resource_type, id))
        }
    }

    /// The grant behind a bearer token; `None` for the admin.
    pub fn grant(&self) -> Option<&Grant> {
        match self {
            Principal::Admin => None,
            Principal::Bearer(grant) => Some(grant),
        }
    }

    /// Checks `action` on `resource_type` (the admin may do anything).
    pub fn require(&self, action: Action, resource_type: &str) -> Result<(), FhirError> {
        self.grant()
            .map_or(Ok(()), |g| g.require(action, resource_type))
    }

    /// Checks `action` on one stored resource; the 403 says the resource is outside the token's
    /// reach without saying anything about its content.
    pub fn require_on(
        &self,
        action: Action,
        resource_type: &str,
        id: &str,
        patients: &[String],
        resource: Option<&Value>,
        source: &dyn ResourceSource,
    ) -> Result<(), FhirError> {
        self.require_where(action, resource_type, id, |g| {
            g.allows(action, resource_type, patients, resource, source)
                .is_some()
        })
    }
}

/// The answer for a resource outside the token's reach. A read is answered exactly as for an
/// id that does not exist (FHIR security, "Access Denied Response Handling"): a 403 would tell
/// the caller the record exists. A write still gets a 403 naming the reason (the caller must
/// learn why the write failed, and a write to an unknown id would create it).
fn outside(action: Action, resource_type: &str, id: &str) -> FhirError {
    let verb = match action {
        Action::Read | Action::Search => {
            return FhirError::not_found(format!("{resource_type}/{id} is not known"));
        }
        Action::Create => "create",
        Action::Update => "update",
        Action::Delete => "delete",
    };
    FhirError::new(
        403,
        IssueType::Forbidden,
        format!(
            "{resource_type}/{id} is outside what this token may {verb} (its patient context, user \
             or scope restrictions do not reach every patient it is about)"
        ),
    )
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
