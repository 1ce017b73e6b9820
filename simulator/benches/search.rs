//! Benchmarks of the simulator's hot paths: evaluating a search over a generated population,
//! and serializing a 50-entry searchset Bundle.
//!
//! Run with `cargo bench -p fhirdrill-simulator --bench search`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use fhirdrill_simulator::config::{DataSource, EnvironmentConfig};
use fhirdrill_simulator::loader::load_environment;
use fhirdrill_simulator::search::{self, SearchQuery};
use fhirdrill_simulator::store::Store;
use serde_json::{Value, json};

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

fn benches(c: &mut Criterion) {
    let config = EnvironmentConfig {
        name: "bench".into(),
        data: DataSource::Generated {
            patients: 300,
            seed: 1,
        },
        clients: Vec::new(),
        users: Vec::new(),
        tokens: fhirdrill_simulator::smart::authority::TokenSettings::default(),
    };
    let store = load_environment(&config, "2026-01-01T00:00:00Z").expect("generated store");
    let patient = store.all_of_type("Patient")[0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let source: &Store = &store;

    let compartment = pairs(&[
        ("patient", &patient),
        ("category", "laboratory"),
        ("_sort", "-date"),
    ]);
    c.bench_function("search: one patient's labs, sorted by date", |b| {
        b.iter(|| {
            let parsed = SearchQuery::parse("Observation", black_box(&compartment), false)
                .expect("valid query");
            black_box(search::search(&parsed, source).expect("search runs").len())
        })
    });
    let scan = pairs(&[
        ("code", "http://loinc.org|4548-4"),
        ("value-quantity", "gt7"),
    ]);
    c.bench_function(
        "search: HbA1c above 7 across the population (full scan)",
        |b| {
            b.iter(|| {
                let parsed = SearchQuery::parse("Observation", black_box(&scan), false)
                    .expect("valid query");
                black_box(search::search(&parsed, source).expect("search runs").len())
            })
        },
    );

    let observations = store.in_patient_compartment("Observation", &patient);
    let entries: Vec<Value> = observations
        .iter()
        .take(50)
        .map(|r| json!({"fullUrl": format!("http://127.0.0.1:8080/sandbox/fhir/Observation/{}", r["id"]), "resource": **r, "search": {"mode": "match"}}))
        .collect();
    let bundle =
        json!({"resourceType": "Bundle", "type": "searchset", "total": 50, "entry": entries});
    c.bench_function("serialize a 50-entry searchset Bundle", |b| {
        b.iter(|| {
            black_box(
                serde_json::to_vec(black_box(&bundle))
                    .map(|v| v.len())
                    .unwrap_or(0),
            )
        })
    });
}

criterion_group!(search_benches, benches);
criterion_main!(search_benches);
