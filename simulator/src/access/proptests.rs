//! The rule that a token never reads outside what its grant allows, as a property: random
//! grants (scopes, patient context, user, Group binding) and random requests (reads, searches
//! with includes, chains and `_has`, batches, `$everything`, history) go through the whole
//! simulator, and every resource in every response is checked against an oracle written here
//! from the R4 Patient CompartmentDefinition and the SMART scope rules — not from the code
//! under test. The same requests with the admin token show the oracle is not vacuous.

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

use http::Method;
use proptest::prelude::*;
use serde_json::Value;

use super::Grant;
use crate::Simulator;
use crate::behaviour::Behaviour;
use crate::config::{DataSource, EnvironmentConfig};
use crate::environment::Environment;
use crate::request::SimRequest;
use crate::smart::scopes::{Scope, parse_scopes};
use crate::smart::tokens::{TokenKind, TokenRecord};

const ADMIN: &str = "proptest-admin-token-0123456789";

/// Resource types of the R4 Patient CompartmentDefinition that the generated data holds.
const PATIENT_TYPES: &[&str] = &[
    "Patient",
    "Encounter",
    "Condition",
    "Observation",
    "MedicationRequest",
    "AllergyIntolerance",
    "Immunization",
    "Procedure",
    "DiagnosticReport",
    "DocumentReference",
    "CareTeam",
    "Coverage",
    "Group",
    "Provenance",
    "CarePlan",
    "Goal",
    "ServiceRequest",
];

/// The scopes grants are drawn from.
const SCOPE_POOL: &[&str] = &[
    "patient/*.rs",
    "patient/*.read",
    "patient/Observation.rs",
    "patient/Patient.r",
    "patient/Encounter.s",
    "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
    "patient/Practitioner.rs",
    "user/*.rs",
    "user/Observation.read",
    "user/Condition.rs",
    "system/Patient.rs",
    "system/Observation.rs",
    "system/*.rs",
    "patient/AuditEvent.rs",
];

struct Fixture {
    sim: Simulator,
    patients: Vec<String>,
    practitioners: Vec<(String, BTreeSet<String>)>,
    resources: Vec<(String, String)>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let config = EnvironmentConfig {
            name: "sandbox".into(),
            data: DataSource::Generated {
                patients: 5,
                seed: 11,
            },
            clients: Vec::new(),
            users: Vec::new(),
            tokens: crate::smart::authority::TokenSettings::default(),
        };
        let store = crate::loader::load_environment(&config, "2026-01-01T00:00:00Z")
            .expect("generated data loads");
        let patients: Vec<String> = store
            .current_of_type("Patient")
            .into_iter()
            .map(|(id, _)| id.to_string())
            .collect();
        let practitioners = panels(&store.all_of_type("CareTeam"));
        let resources = store
            .types()
            .into_iter()
            .flat_map(|t| {
                store
                    .current_of_type(t)
                    .into_iter()
                    .map(move |(id, _)| (t.to_string(), id.to_string()))
            })
            .collect();
        let env = Environment::new("sandbox", store);
        let sim = Simulator::new(vec![env], "http://sim.test", Behaviour::default())
            .with_admin_token(ADMIN);
        Fixture {
            sim,
            patients,
            practitioners,
            resources,
        }
    })
}

/// Practitioner id → the patients of the CareTeams they are on (the oracle's own reading).
fn panels(teams: &[Arc<Value>]) -> Vec<(String, BTreeSet<String>)> {
    let mut out: Vec<(String, BTreeSet<String>)> = Vec::new();
    for team in teams {
        let Some(patient) = team["subject"]["reference"]
            .as_str()
            .and_then(|r| r.strip_prefix("Patient/"))
        else {
            continue;
        };
        for p in team["participant"].as_array().into_iter().flatten() {
            if let Some(doc) = p["member"]["reference"]
                .as_str()
                .and_then(|r| r.strip_prefix("Practitioner/"))
            {
                match out.iter_mut().find(|(d, _)| d == doc) {
                    Some((_, set)) => {
                        set.insert(patient.to_string());
                    }
                    None => out.push((doc.to_string(), BTreeSet::from([patient.to_string()]))),
                }
            }
        }
    }
    out
}

/// A grant as the test draws it.
#[derive(Debug, Clone)]
struct Drawn {
    scopes: Vec<String>,
    patient: Option<usize>,
    user: Option<UserDraw>,
    group: Option<Vec<usize>>,
}

#[derive(Debug, Clone)]
enum UserDraw {
    Practitioner(usize),
    Patient(usize),
}

/// One request.
#[derive(Debug, Clone)]
enum Req {
    Read(usize),
    Search {
        resource_type: &'static str,
        include: bool,
        patient: Option<usize>,
    },
    Chain(usize),
    Has(usize),
    Everything(usize),
    History(&'static str),
    Batch(Vec<usize>),
}

fn drawn() -> impl Strategy<Value = Drawn> {
    (
        proptest::sample::subsequence(SCOPE_POOL.to_vec(), 1..4),
        proptest::option::of(0usize..5),
        proptest::option::of(prop_oneof![
            (0usize..8).prop_map(UserDraw::Practitioner),
            (0usize..5).prop_map(UserDraw::Patient),
        ]),
        proptest::option::weighted(0.2, proptest::collection::vec(0usize..5, 1..3)),
    )
        .prop_map(|(scopes, patient, user, group)| Drawn {
            scopes: scopes.into_iter().map(str::to_string).collect(),
            patient,
            user,
            group,
        })
}

fn request() -> impl Strategy<Value = Req> {
    let types = proptest::sample::select(vec![
        "Patient",
        "Observation",
        "Encounter",
        "Condition",
        "Practitioner",
        "CareTeam",
        "AuditEvent",
    ]);
    prop_oneof![
        (0usize..10_000).prop_map(Req::Read),
        (
            types.clone(),
            any::<bool>(),
            proptest::option::of(0usize..5)
        )
            .prop_map(|(resource_type, include, patient)| Req::Search {
                resource_type,
                include,
                patient
            }),
        (0usize..5).prop_map(Req::Chain),
        (0usize..5).prop_map(Req::Has),
        (0usize..5).prop_map(Req::Everything),
        proptest::sample::select(vec!["Observation", "Patient", "Condition"])
            .prop_map(Req::History),
        proptest::collection::vec(0usize..10_000, 1..4).prop_map(Req::Batch),
    ]
}

/// The grant a drawn token carries (built from the drawn values only).
fn grant(f: &Fixture, d: &Drawn) -> Grant {
    let scopes = parse_scopes(&d.scopes.join(" ")).expect("pool scopes parse");
    let user = d.user.as_ref().map(|u| match u {
        UserDraw::Practitioner(i) => {
            let (id, panel) = &f.practitioners[i % f.practitioners.len()];
            (format!("Practitioner/{id}"), panel.clone())
        }
        UserDraw::Patient(i) => {
            let id = &f.patients[i % f.patients.len()];
            (format!("Patient/{id}"), BTreeSet::from([id.clone()]))
        }
    });
    Grant {
        token_id: "prop".into(),
        client_id: "prop-app".into(),
        user: user.as_ref().map(|(r, _)| r.clone()),
        patient: d.patient.map(|i| f.patients[i % f.patients.len()].clone()),
        encounter: None,
        scopes: scopes
            .into_iter()
            .filter_map(|s| match s {
                Scope::Clinical(c) => Some(c),
                _ => None,
            })
            .collect(),
        scope_names: Vec::new(),
        scope_text: d.scopes.join(" "),
        user_patients: user.map(|(_, p)| Arc::new(p)),
        group_patients: d.group.as_ref().map(|g| {
            Arc::new(
                g.iter()
                    .map(|i| f.patients[i % f.patients.len()].clone())
                    .collect(),
            )
        }),
    }
}

/// The oracle: may a holder of `d` see `resource`? From the scope strings, the compartment
/// definition above and every Patient reference in the resource.
fn oracle_allows(f: &Fixture, d: &Drawn, resource: &Value) -> bool {
    let resource_type = resource["resourceType"].as_str().unwrap_or_default();
    let mut about = BTreeSet::new();
    if resource_type == "Patient" {
        about.insert(resource["id"].as_str().unwrap_or_default().to_string());
    }
    collect_patient_refs(resource, &mut about);
    let patient_bound = PATIENT_TYPES.contains(&resource_type) || !about.is_empty();
    d.scopes.iter().any(|scope| {
        let (context, rest) = scope.split_once('/').unwrap_or(("", ""));
        let (target, perms_and_query) = rest.split_once('.').unwrap_or(("", ""));
        let (perms, query) = perms_and_query
            .split_once('?')
            .unwrap_or((perms_and_query, ""));
        let type_ok = if resource_type == "AuditEvent" {
            target == "AuditEvent"
        } else {
            target == "*" || target == resource_type
        };
        let reads = matches!(perms, "read" | "*") || perms.contains('r') || perms.contains('s');
        if !type_ok || !reads {
            return false;
        }
        if let Some(code) = query
            .strip_prefix("category=http://terminology.hl7.org/CodeSystem/observation-category|")
        {
            let has = resource["category"]
                .to_string()
                .contains(&format!("\"code\":\"{code}\""));
            if !has {
                return false;
            }
        }
        let reach: Option<BTreeSet<String>> = match context {
            "patient" => Some(
                d.patient
                    .map(|i| f.patients[i % f.patients.len()].clone())
                    .into_iter()
                    .collect(),
            ),
            "user" => Some(match &d.user {
                Some(UserDraw::Practitioner(i)) => {
                    f.practitioners[i % f.practitioners.len()].1.clone()
                }
                Some(UserDraw::Patient(i)) => {
                    BTreeSet::from([f.patients[i % f.patients.len()].clone()])
                }
                None => BTreeSet::new(),
            }),
            _ => d.group.as_ref().map(|g| {
                g.iter()
                    .map(|i| f.patients[i % f.patients.len()].clone())
                    .collect()
            }),
        };
        match reach {
            None => true,
            Some(reach) if patient_bound => about.iter().any(|p| reach.contains(p)),
            Some(reach) => !reach.is_empty() || context == "system",
        }
    })
}

fn collect_patient_refs(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "reference"
                    && let Some(r) = v.as_str()
                    && let Some(id) = r.rsplit_once("Patient/").map(|(_, id)| id)
                    && !id.contains('/')
                {
                    out.insert(id.to_string());
                } else {
                    collect_patient_refs(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_patient_refs(v, out)),
        _ => {}
    }
}

fn to_request(f: &Fixture, r: &Req) -> SimRequest {
    let base = "/sandbox/fhir";
    let patient = |i: &usize| f.patients[i % f.patients.len()].clone();
    let resource = |i: &usize| {
        let (t, id) = &f.resources[i % f.resources.len()];
        format!("{t}/{id}")
    };
    match r {
        Req::Read(i) => SimRequest::new(Method::GET, &format!("{base}/{}", resource(i))),
        Req::Search {
            resource_type,
            include,
            patient: p,
        } => {
            let mut q = String::from("_count=1000");
            if let Some(p) = p {
                let param = if *resource_type == "Patient" {
                    "_id"
                } else {
                    "patient"
                };
                q.push_str(&format!("&{param}={}", patient(p)));
            }
            if *include {
                q.push_str(match *resource_type {
                    "Patient" => "&_revinclude=Observation:subject&_revinclude=CareTeam:subject",
                    "Practitioner" => "&_revinclude=CareTeam:participant",
                    "Observation" => "&_include=Observation:subject&_include=Observation:encounter&_include=Observation:performer",
                    "Encounter" => "&_include=Encounter:patient&_include=Encounter:practitioner&_revinclude=Condition:encounter",
                    "Condition" => "&_include=Condition:subject&_include=Condition:encounter",
                    "CareTeam" => "&_include=CareTeam:participant&_include=CareTeam:subject",
                    _ => "&_include=AuditEvent:patient",
                });
            }
            SimRequest::new(Method::GET, &format!("{base}/{resource_type}?{q}"))
        }
        Req::Chain(p) => SimRequest::new(
            Method::GET,
            &format!(
                "{base}/Observation?subject:Patient._id={}&_count=1000",
                patient(p)
            ),
        ),
        Req::Has(p) => SimRequest::new(
            Method::GET,
            &format!(
                "{base}/Patient?_has:Observation:subject:_id=x&_id={}",
                patient(p)
            ),
        ),
        Req::Everything(p) => SimRequest::new(
            Method::GET,
            &format!("{base}/Patient/{}/$everything?_count=1000", patient(p)),
        ),
        Req::History(t) => {
            SimRequest::new(Method::GET, &format!("{base}/{t}/_history?_count=1000"))
        }
        Req::Batch(items) => {
            let entries: Vec<Value> = items
                .iter()
                .map(|i| serde_json::json!({"request": {"method": "GET", "url": resource(i)}}))
                .collect();
            let mut req = SimRequest::new(Method::POST, base);
            req.body =
                serde_json::json!({"resourceType": "Bundle", "type": "batch", "entry": entries})
                    .to_string()
                    .into();
            req.headers.insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/fhir+json"),
            );
            req
        }
    }
}

/// Every resource a response body carries (a resource, or a Bundle's entries, nested).
fn resources_in(body: &Value, out: &mut Vec<Value>) {
    if body["resourceType"] == "Bundle" {
        for entry in body["entry"].as_array().into_iter().flatten() {
            resources_in(&entry["resource"], out);
        }
    } else if body["resourceType"].is_string() && body["resourceType"] != "OperationOutcome" {
        out.push(body.clone());
    }
}

fn returned(f: &Fixture, req: &SimRequest) -> Vec<Value> {
    answer(f, req).1
}

/// The status of a response and the resources it carries.
fn answer(f: &Fixture, req: &SimRequest) -> (u16, Vec<Value>) {
    let response = f.sim.handle(req);
    let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    let mut out = Vec::new();
    resources_in(&body, &mut out);
    (response.status, out)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn nothing_returned_is_outside_the_grant(d in drawn(), r in request()) {
        let f = fixture();
        let env = &f.sim.environments()[0];
        let text = format!("prop-{}", uuid::Uuid::new_v4().simple());
        let now = f.sim.clock().now();
        env.tokens().insert(
            text.clone(),
            TokenRecord::new(TokenKind::Access, "prop".into(), Arc::new(grant(f, &d)), now, None, "f".into(), String::new()),
            now,
        );
        let request = to_request(f, &r);
        let (status, _) = answer(f, &request.clone().bearer(ADMIN));
        prop_assert_eq!(status, 200, "the request itself is valid: {:?}", r);
        for resource in returned(f, &request.clone().bearer(&text)) {
            prop_assert!(
                oracle_allows(f, &d, &resource),
                "{:?} with {:?} returned {}/{}",
                r, d, resource["resourceType"], resource["id"]
            );
        }
    }
}

/// The oracle is not vacuous: the admin sees what a narrow token may not, through the same
/// requests, and the oracle refuses some of it.
#[test]
fn the_admin_sees_what_the_oracle_refuses_a_patient_token() {
    let f = fixture();
    let d = Drawn {
        scopes: vec!["patient/*.rs".into()],
        patient: Some(0),
        user: None,
        group: None,
    };
    let admin = returned(
        f,
        &to_request(
            f,
            &Req::Search {
                resource_type: "Observation",
                include: true,
                patient: None,
            },
        )
        .bearer(ADMIN),
    );
    assert!(admin.len() > 10);
    let refused = admin.iter().filter(|r| !oracle_allows(f, &d, r)).count();
    assert!(
        refused > 0,
        "the oracle refuses other patients' observations"
    );
    let allowed = admin.iter().filter(|r| oracle_allows(f, &d, r)).count();
    assert!(allowed > 0, "and allows the patient's own");
}
