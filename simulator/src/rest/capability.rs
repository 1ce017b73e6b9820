//! The CapabilityStatement (`GET [base]/metadata`), built from the same tables the server runs
//! on (the search registry and the list of R4 types), so it cannot claim what is not served.

use serde_json::{Value, json};

use crate::Simulator;
use crate::environment::Environment;
use crate::search::registry::{self, ParamType};

/// The interactions every stored type supports.
const TYPE_INTERACTIONS: [&str; 8] = [
    "read",
    "vread",
    "update",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
];

/// The CapabilityStatement of `env`.
pub fn capability_statement(sim: &Simulator, env: &Environment) -> Value {
    let base = format!("{}{}", sim.public_url(), env.base_path());
    let resources: Vec<Value> = listed_types(env)
        .iter()
        .map(|t| resource_entry(t))
        .collect();
    json!({
        "resourceType": "CapabilityStatement",
        "id": format!("fhirdrill-{}", env.name()),
        "url": format!("{base}/metadata"),
        "version": env!("CARGO_PKG_VERSION"),
        "name": "FhirdrillSimulator",
        "title": format!("fhirdrill simulator, environment {}", env.name()),
        "status": "active",
        "experimental": true,
        "date": "2026-11-23",
        "publisher": "fhirdrill",
        "description": "A mock EHR for testing healthcare integrations. It serves synthetic test data only (every resource is labelled HTEST).",
        "kind": "instance",
        "instantiates": ["http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"],
        "software": {"name": "fhirdrill", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {"description": format!("fhirdrill simulator, environment {}", env.name()), "url": base},
        "fhirVersion": "4.0.1",
        "format": ["json", "application/fhir+json", "application/json"],
        "rest": [{
            "mode": "server",
            "security": security(sim, env),
            "documentation": "Every FHIR R4 resource type can be created, read, updated, deleted and read through its history; the types listed with search-type can be searched by the parameters listed. Paging uses _count (default 50, at most 1000) and _offset. JSON only; XML requests get 406.",
            "resource": resources,
            "interaction": [{"code": "transaction"}, {"code": "batch"}, {"code": "history-system"}],
            "operation": [{
                "name": "export",
                "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"
            }]
        }]
    })
}

/// `rest.security`: SMART on FHIR, with the OAuth endpoints in the `oauth-uris` extension.
fn security(sim: &Simulator, env: &Environment) -> Value {
    let issuer = crate::smart::issuer(sim, env);
    let uri = |name: &str, endpoint: &str| json!({"url": name, "valueUri": format!("{issuer}/{endpoint}")});
    json!({
        "cors": false,
        "service": [{
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service", "code": "SMART-on-FHIR"}],
            "text": "SMART App Launch 2.x and SMART Backend Services, over OAuth 2.0"
        }],
        "description": "Every interaction but this CapabilityStatement needs a bearer access token; scopes, patient context and user are enforced on every read, search, include, batch entry and export.",
        "extension": [{
            "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
            "extension": [
                uri("authorize", "authorize"),
                uri("token", "token"),
                uri("introspect", "introspect"),
                uri("revoke", "revoke")
            ]
        }]
    })
}

/// The searchable types, then any other type present in the environment.
fn listed_types(env: &Environment) -> Vec<String> {
    let mut types: Vec<String> = registry::supported_types()
        .into_iter()
        .map(str::to_string)
        .collect();
    for t in env.read().types() {
        if !types.iter().any(|known| known == t) {
            types.push(t.to_string());
        }
    }
    types
}

fn resource_entry(resource_type: &str) -> Value {
    let params = registry::params_for(resource_type);
    let search_params: Vec<Value> = params
        .iter()
        .map(|p| json!({"name": p.name, "type": p.kind.as_str(), "documentation": p.doc}))
        .collect();
    let includes: Vec<String> = params
        .iter()
        .filter(|p| p.kind == ParamType::Reference)
        .map(|p| format!("{resource_type}:{}", p.name))
        .collect();
    let rev_includes: Vec<String> = registry::supported_types()
        .into_iter()
        .flat_map(|other| {
            registry::params_for(other)
                .into_iter()
                .filter(move |p| {
                    p.kind == ParamType::Reference
                        && p.allows_target(resource_type)
                        && !p.targets.is_empty()
                })
                .map(move |p| format!("{other}:{}", p.name))
        })
        .collect();
    let mut entry = json!({
        "type": resource_type,
        "versioning": "versioned",
        "readHistory": true,
        "updateCreate": true,
        "conditionalCreate": false,
        "conditionalRead": "not-supported",
        "conditionalUpdate": false,
        "conditionalDelete": "not-supported",
        "interaction": TYPE_INTERACTIONS
            .iter()
            .filter(|c| **c != "search-type" || registry::is_supported(resource_type))
            .map(|c| json!({"code": c}))
            .collect::<Vec<_>>(),
        "searchInclude": includes,
        "searchRevInclude": rev_includes,
        "searchParam": search_params
    });
    match resource_type {
        "Patient" => {
            entry["operation"] = json!([{
                "name": "everything",
                "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"
            }, {
                "name": "export",
                "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export"
            }]);
        }
        "Group" => {
            entry["operation"] = json!([{
                "name": "export",
                "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export"
            }]);
        }
        _ => {}
    }
    entry
}
