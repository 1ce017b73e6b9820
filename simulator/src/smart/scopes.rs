//! SMART on FHIR scopes (App Launch 2.x, with the 1.0 syntax): parsing, their canonical text,
//! and narrowing a requested set to what a client's registration allows.
//!
//! Clinical scopes are `context/Type.permissions[?param=value&…]` where context is `patient`,
//! `user` or `system`, Type a FHIR resource type or `*`, and permissions either the 1.0 words
//! (`read`, `write`, `*`) or the 2.0 letters `c r u d s`, present in that order. 1.0 `read`
//! means 2.0 `rs`, `write` means `cud`, and `*` means `cruds`. Other scopes name launch context
//! (`launch`, `launch/patient`, `launch/encounter`), identity (`openid`, `fhirUser`, `profile`)
//! and refresh (`offline_access`, `online_access`). Anything else is `invalid_scope`.

use std::fmt;

/// Whose data a clinical scope reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Context {
    /// The launch patient's compartment.
    Patient,
    /// What the signed-in user may see.
    User,
    /// The client itself (backend services).
    System,
}

impl Context {
    fn as_str(self) -> &'static str {
        match self {
            Self::Patient => "patient",
            Self::User => "user",
            Self::System => "system",
        }
    }
}

/// The SMART 2.0 permissions: create, read, update, delete, search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Permissions {
    /// `c`: create.
    pub create: bool,
    /// `r`: read and vread.
    pub read: bool,
    /// `u`: update.
    pub update: bool,
    /// `d`: delete.
    pub delete: bool,
    /// `s`: search (and history).
    pub search: bool,
}

impl Permissions {
    /// Every permission (`cruds`).
    pub const ALL: Permissions = Permissions {
        create: true,
        read: true,
        update: true,
        delete: true,
        search: true,
    };

    fn letters(self) -> String {
        [
            (self.create, 'c'),
            (self.read, 'r'),
            (self.update, 'u'),
            (self.delete, 'd'),
            (self.search, 's'),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, letter)| *letter)
        .collect()
    }

    /// The permissions both sets hold.
    pub fn intersection(self, other: Permissions) -> Permissions {
        Permissions {
            create: self.create && other.create,
            read: self.read && other.read,
            update: self.update && other.update,
            delete: self.delete && other.delete,
            search: self.search && other.search,
        }
    }

    /// The permissions either set holds.
    pub fn union(self, other: Permissions) -> Permissions {
        Permissions {
            create: self.create || other.create,
            read: self.read || other.read,
            update: self.update || other.update,
            delete: self.delete || other.delete,
            search: self.search || other.search,
        }
    }

    /// Whether no permission is held.
    pub fn is_empty(self) -> bool {
        self == Permissions::default()
    }

    /// Whether every permission of `other` is also held here.
    pub fn contains(self, other: Permissions) -> bool {
        self.intersection(other) == other
    }
}

/// Which syntax a clinical scope was written in (kept so a grant echoes the request's style).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Syntax {
    /// SMART 1.0: `read`, `write`, `*`.
    V1,
    /// SMART 2.0: `cruds` letters.
    V2,
}

/// A clinical (resource) scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClinicalScope {
    /// `patient`, `user` or `system`.
    pub context: Context,
    /// The resource type, or `None` for `*`.
    pub resource_type: Option<String>,
    /// What it permits.
    pub permissions: Permissions,
    /// 2.0 query restrictions (`?category=…`), as `(parameter, value)` pairs.
    pub restrictions: Vec<(String, String)>,
    /// The syntax it was written in.
    pub syntax: Syntax,
}

impl ClinicalScope {
    /// Whether this scope covers `resource_type` (a `*` scope covers every type).
    pub fn covers_type(&self, resource_type: &str) -> bool {
        self.resource_type
            .as_deref()
            .is_none_or(|t| t == resource_type)
    }

    /// Whether this scope grants everything `other` asks for (context, type, permissions and
    /// restrictions: an unrestricted scope covers a restricted one, not the reverse).
    pub fn covers(&self, other: &ClinicalScope) -> bool {
        self.context == other.context
            && (self.resource_type.is_none() || self.resource_type == other.resource_type)
            && self.permissions.contains(other.permissions)
            && (self.restrictions.is_empty() || self.restrictions == other.restrictions)
    }
}

/// One SMART scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// A clinical scope.
    Clinical(ClinicalScope),
    /// `launch`: EHR launch context.
    Launch,
    /// `launch/patient`: ask for a patient in a standalone launch.
    LaunchPatient,
    /// `launch/encounter`: ask for an encounter in a standalone launch.
    LaunchEncounter,
    /// `openid`: an OpenID Connect id_token.
    OpenId,
    /// `fhirUser`: the user's FHIR resource in the id_token.
    FhirUser,
    /// `profile`: (SMART 1.0) the user's profile in the id_token.
    Profile,
    /// `offline_access`: a refresh token that outlives the session.
    OfflineAccess,
    /// `online_access`: a refresh token for the session.
    OnlineAccess,
}

/// Why a scope string was refused (reported as OAuth `invalid_scope`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid scope {scope:?}: {reason}")]
pub struct ScopeError {
    /// The scope as written.
    pub scope: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Parses a space-separated scope string; repeated scopes are kept once, in first-seen order.
pub fn parse_scopes(text: &str) -> Result<Vec<Scope>, ScopeError> {
    let mut scopes: Vec<Scope> = Vec::new();
    for token in text.split(' ').filter(|t| !t.is_empty()) {
        let scope = parse_scope(token)?;
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    Ok(scopes)
}

/// Parses one scope.
pub fn parse_scope(token: &str) -> Result<Scope, ScopeError> {
    let simple = match token {
        "launch" => Some(Scope::Launch),
        "launch/patient" => Some(Scope::LaunchPatient),
        "launch/encounter" => Some(Scope::LaunchEncounter),
        "openid" => Some(Scope::OpenId),
        "fhirUser" => Some(Scope::FhirUser),
        "profile" => Some(Scope::Profile),
        "offline_access" => Some(Scope::OfflineAccess),
        "online_access" => Some(Scope::OnlineAccess),
        _ => None,
    };
    match simple {
        Some(scope) => Ok(scope),
        None => parse_clinical(token).map(Scope::Clinical),
    }
}

fn parse_clinical(token: &str) -> Result<ClinicalScope, ScopeError> {
    let fail = |reason: &str| ScopeError {
        scope: token.to_string(),
        reason: reason.to_string(),
    };
    let (context, rest) = token
        .split_once('/')
        .ok_or_else(|| fail("not a SMART scope: expected e.g. patient/Observation.rs or openid"))?;
    let context = match context {
        "patient" => Context::Patient,
        "user" => Context::User,
        "system" => Context::System,
        _ => return Err(fail("the context must be patient, user or system")),
    };
    let (body, query) = match rest.split_once('?') {
        Some((body, query)) => (body, Some(query)),
        None => (rest, None),
    };
    let (resource_type, permissions) = body
        .rsplit_once('.')
        .ok_or_else(|| fail("expected Type.permissions, e.g. Observation.rs"))?;
    let resource_type = match resource_type {
        "*" => None,
        t if is_resource_type_name(t) => Some(t.to_string()),
        _ => return Err(fail("the resource type must be a FHIR resource type or *")),
    };
    let (permissions, syntax) = match permissions {
        "read" => (
            Permissions {
                read: true,
                search: true,
                ..Permissions::default()
            },
            Syntax::V1,
        ),
        "write" => (
            Permissions {
                create: true,
                update: true,
                delete: true,
                ..Permissions::default()
            },
            Syntax::V1,
        ),
        "*" => (Permissions::ALL, Syntax::V1),
        letters => (
            parse_letters(letters).ok_or_else(|| {
                fail(
                    "permissions must be read, write, * or the letters c, r, u, d, s in that order",
                )
            })?,
            Syntax::V2,
        ),
    };
    let restrictions = match query {
        None => Vec::new(),
        Some(_) if syntax == Syntax::V1 => {
            return Err(fail(
                "query restrictions need SMART 2.0 permissions (e.g. .rs), not read/write/*",
            ));
        }
        Some(q) => parse_restrictions(q)
            .ok_or_else(|| fail("restrictions must be param=value pairs joined by &"))?,
    };
    Ok(ClinicalScope {
        context,
        resource_type,
        permissions,
        restrictions,
        syntax,
    })
}

/// The 2.0 permission letters: a non-empty subsequence of `cruds`.
fn parse_letters(letters: &str) -> Option<Permissions> {
    let mut remaining = "cruds".chars();
    let mut permissions = Permissions::default();
    for letter in letters.chars() {
        // Each letter must come later in `cruds` than the previous one.
        remaining.by_ref().find(|c| *c == letter)?;
        match letter {
            'c' => permissions.create = true,
            'r' => permissions.read = true,
            'u' => permissions.update = true,
            'd' => permissions.delete = true,
            _ => permissions.search = true,
        }
    }
    (!permissions.is_empty()).then_some(permissions)
}

fn parse_restrictions(query: &str) -> Option<Vec<(String, String)>> {
    query
        .split('&')
        .map(|pair| {
            let (name, value) = pair.split_once('=')?;
            (!name.is_empty() && !value.is_empty()).then(|| (name.to_string(), value.to_string()))
        })
        .collect()
}

/// A resource type name: an upper-case ASCII letter followed by ASCII letters.
fn is_resource_type_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_uppercase()) && chars.all(|c| c.is_ascii_alphabetic())
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let simple = match self {
            Scope::Clinical(c) => return c.fmt(f),
            Scope::Launch => "launch",
            Scope::LaunchPatient => "launch/patient",
            Scope::LaunchEncounter => "launch/encounter",
            Scope::OpenId => "openid",
            Scope::FhirUser => "fhirUser",
            Scope::Profile => "profile",
            Scope::OfflineAccess => "offline_access",
            Scope::OnlineAccess => "online_access",
        };
        f.write_str(simple)
    }
}

impl fmt::Display for ClinicalScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let resource_type = self.resource_type.as_deref().unwrap_or("*");
        let v1 = match self.permissions {
            p if p == Permissions::ALL => Some("*"),
            Permissions {
                read: true,
                search: true,
                create: false,
                update: false,
                delete: false,
            } => Some("read"),
            Permissions {
                create: true,
                update: true,
                delete: true,
                read: false,
                search: false,
            } => Some("write"),
            _ => None,
        };
        let permissions = match (self.syntax, v1) {
            (Syntax::V1, Some(word)) => word.to_string(),
            _ => self.permissions.letters(),
        };
        write!(f, "{}/{resource_type}.{permissions}", self.context.as_str())?;
        for (i, (name, value)) in self.restrictions.iter().enumerate() {
            write!(f, "{}{name}={value}", if i == 0 { '?' } else { '&' })?;
        }
        Ok(())
    }
}

/// Narrows `requested` to what `allowed` (a client's registration) permits: non-clinical scopes
/// pass when registered; a clinical scope passes with the permissions some registered scope of
/// the same context and type grants, or is dropped. Production EHRs grant less than asked; so
/// does this.
pub fn narrow(requested: &[Scope], allowed: &[Scope]) -> Vec<Scope> {
    let mut granted = Vec::new();
    for scope in requested {
        let kept = match scope {
            Scope::Clinical(asked) => narrow_clinical(asked, allowed).map(Scope::Clinical),
            other => allowed.contains(other).then(|| other.clone()),
        };
        if let Some(scope) = kept
            && !granted.contains(&scope)
        {
            granted.push(scope);
        }
    }
    granted
}

fn narrow_clinical(asked: &ClinicalScope, allowed: &[Scope]) -> Option<ClinicalScope> {
    let permissions = allowed
        .iter()
        .filter_map(|s| match s {
            Scope::Clinical(c) => Some(c),
            _ => None,
        })
        .filter(|c| {
            c.context == asked.context
                && (c.resource_type.is_none() || c.resource_type == asked.resource_type)
                && (c.restrictions.is_empty() || c.restrictions == asked.restrictions)
        })
        .fold(Permissions::default(), |held, c| {
            held.union(c.permissions.intersection(asked.permissions))
        });
    (!permissions.is_empty()).then(|| ClinicalScope {
        permissions,
        ..asked.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[track_caller]
    fn check(text: &str, canonical: &str) {
        let scopes = parse_scopes(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let shown: Vec<String> = scopes.iter().map(ToString::to_string).collect();
        assert_eq!(shown.join(" "), canonical);
    }

    #[track_caller]
    fn refused(text: &str, reason: &str) {
        let err = parse_scopes(text)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains(reason),
            "{text}: {err:?} should contain {reason:?}"
        );
    }

    #[test]
    fn parses_v1_v2_and_identity_scopes() {
        check("patient/Observation.read", "patient/Observation.read");
        check(
            "user/*.write system/Patient.*",
            "user/*.write system/Patient.*",
        );
        check("patient/Observation.rs", "patient/Observation.rs");
        check("system/Group.cruds", "system/Group.cruds");
        check(
            "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
            "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
        );
        check(
            "openid  fhirUser launch/patient openid",
            "openid fhirUser launch/patient",
        );
        check(
            "launch launch/encounter profile offline_access online_access",
            "launch launch/encounter profile offline_access online_access",
        );
    }

    #[test]
    fn v1_words_mean_v2_letters() {
        let read = parse_scope("patient/Observation.read");
        let rs = parse_scope("patient/Observation.rs");
        match (read, rs) {
            (Ok(Scope::Clinical(a)), Ok(Scope::Clinical(b))) => {
                assert_eq!(a.permissions, b.permissions)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn malformed_scopes_are_named() {
        refused("patient/Observation.sr", "in that order");
        refused("patient/Observation.rr", "in that order");
        refused("patient/Observation.x", "in that order");
        refused("patient/Observation.", "in that order");
        refused("doctor/Observation.read", "patient, user or system");
        refused("patient/observation.read", "resource type");
        refused("patient/Observation", "Type.permissions");
        refused("patient/Observation.read?category=x", "SMART 2.0");
        refused("patient/Observation.rs?category", "param=value");
        refused("admin", "not a SMART scope");
    }

    #[test]
    fn narrowing_grants_at_most_the_registration() {
        let allowed = parse_scopes("patient/Observation.rs patient/Patient.r openid fhirUser")
            .unwrap_or_default();
        let asked = parse_scopes("patient/Observation.cruds patient/Condition.rs patient/Patient.read openid offline_access")
            .unwrap_or_default();
        let granted: Vec<String> = narrow(&asked, &allowed)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            granted,
            ["patient/Observation.rs", "patient/Patient.r", "openid"]
        );
        let wildcard = parse_scopes("user/*.rs").unwrap_or_default();
        let asked = parse_scopes("user/Observation.read user/Encounter.write").unwrap_or_default();
        let granted: Vec<String> = narrow(&asked, &wildcard)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(granted, ["user/Observation.read"]);
    }

    fn scope_strategy() -> impl Strategy<Value = String> {
        let context = prop_oneof![Just("patient"), Just("user"), Just("system")];
        let resource = prop_oneof![
            Just("*"),
            Just("Observation"),
            Just("Patient"),
            Just("Condition")
        ];
        let permissions = prop_oneof![
            Just("read".to_string()),
            Just("write".to_string()),
            Just("*".to_string()),
            proptest::sample::subsequence(vec!['c', 'r', 'u', 'd', 's'], 1..=5)
                .prop_map(|v| v.into_iter().collect()),
        ];
        (context, resource, permissions).prop_map(|(c, r, p)| format!("{c}/{r}.{p}"))
    }

    proptest! {
        #[test]
        fn canonical_text_parses_back_to_the_same_scope(text in scope_strategy()) {
            let scope = parse_scope(&text);
            prop_assert!(scope.is_ok());
            let scope = scope.unwrap_or(Scope::OpenId);
            prop_assert_eq!(parse_scope(&scope.to_string()), Ok(scope));
        }

        #[test]
        fn a_grant_never_exceeds_the_request_or_the_registration(
            asked in proptest::collection::vec(scope_strategy(), 0..6),
            allowed in proptest::collection::vec(scope_strategy(), 0..6),
        ) {
            let asked = parse_scopes(&asked.join(" ")).unwrap_or_default();
            let allowed = parse_scopes(&allowed.join(" ")).unwrap_or_default();
            for granted in narrow(&asked, &allowed) {
                let Scope::Clinical(g) = granted else { continue };
                let within_request = asked.iter().any(|a| matches!(a, Scope::Clinical(a) if a.covers(&g)));
                let within_registration = allowed.iter().any(|a| matches!(a, Scope::Clinical(a) if a.covers(&g)))
                    || permissions_union_covers(&allowed, &g);
                prop_assert!(within_request, "{} exceeds the request", g);
                prop_assert!(within_registration, "{} exceeds the registration", g);
            }
        }
    }

    /// Whether the registered scopes of `g`'s context and type together hold its permissions.
    fn permissions_union_covers(allowed: &[Scope], g: &ClinicalScope) -> bool {
        let mut held = Permissions::default();
        for a in allowed {
            if let Scope::Clinical(a) = a
                && a.context == g.context
                && (a.resource_type.is_none() || a.resource_type == g.resource_type)
            {
                held = held.union(a.permissions);
            }
        }
        held.contains(g.permissions)
    }
}
