//! Benchmarks of the generator's hot path: one patient built, and one patient built and
//! serialized to NDJSON lines (what `fhirdrill generate` does per patient).
//!
//! Run with `cargo bench -p fhirdrill-synthetic-data`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use fhirdrill_synthetic_data::Generator;
use fhirdrill_synthetic_data::dates::DEFAULT_REFERENCE_DATE;

fn one_patient(c: &mut Criterion) {
    let generator = Generator::new(42, DEFAULT_REFERENCE_DATE, "sandbox");
    let mut index = 0u64;
    c.bench_function("generate one patient", |b| {
        b.iter(|| {
            index += 1;
            black_box(generator.patient(black_box(index % 1000)))
        })
    });
    c.bench_function("generate and serialize one patient", |b| {
        let mut buf = Vec::with_capacity(1 << 20);
        b.iter(|| {
            index += 1;
            buf.clear();
            let record = generator.patient(black_box(index % 1000));
            for resource in &record.resources {
                serde_json::to_writer(&mut buf, resource).expect("a Value always serializes");
                buf.push(b'\n');
            }
            black_box(buf.len())
        })
    });
}

criterion_group!(benches, one_patient);
criterion_main!(benches);
