//! `fhirdrill generate`: determinism, sharding, outputs and bad input.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use crate::util::{fhirdrill, files};

fn generate(out: &Path, extra: &[&str]) -> BTreeMap<String, Vec<u8>> {
    let out_str = out.to_str().expect("utf-8 temp path");
    let mut args = vec!["generate", "--out", out_str, "--quiet"];
    args.extend_from_slice(extra);
    let result = fhirdrill(&args);
    assert!(
        result.status.success(),
        "generate failed: {}",
        String::from_utf8_lossy(&result.stderr)
    );
    files(out)
}

#[test]
fn same_arguments_give_the_same_bytes_whatever_the_thread_count() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let args = ["--patients", "40", "--seed", "42"];
    let a = generate(&tmp.path().join("a"), &args);
    let b = generate(&tmp.path().join("b"), &args);
    let mut one_thread = args.to_vec();
    one_thread.extend(["--threads", "1"]);
    let c = generate(&tmp.path().join("c"), &one_thread);
    assert!(a.contains_key("Patient.ndjson") && a.contains_key("canaries.ndjson"));
    assert!(
        a.keys().any(|k| k.starts_with("fhir/")),
        "bundles written by default"
    );
    assert_eq!(a, b);
    assert_eq!(a, c);
}

#[test]
fn three_shards_concatenated_equal_the_whole_run() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let args = ["--patients", "31", "--seed", "9"];
    let whole = generate(&tmp.path().join("whole"), &args);
    let mut joined: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for k in 1..=3 {
        let shard = format!("{k}/3");
        let mut shard_args = args.to_vec();
        shard_args.extend(["--shard", shard.as_str()]);
        for (name, bytes) in generate(&tmp.path().join(format!("s{k}")), &shard_args) {
            joined.entry(name).or_default().extend(bytes);
        }
    }
    assert_eq!(
        whole.keys().collect::<Vec<_>>(),
        joined.keys().collect::<Vec<_>>()
    );
    for (name, bytes) in &whole {
        assert!(
            joined[name] == *bytes,
            "{name} differs between the shards and the whole run"
        );
    }
}

#[test]
fn formats_write_only_what_was_asked() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let ndjson = generate(
        &tmp.path().join("n"),
        &["--patients", "3", "--format", "ndjson"],
    );
    assert!(!ndjson.keys().any(|k| k.starts_with("fhir/")));
    assert!(ndjson.contains_key("Observation.ndjson"));
    let bundles = generate(
        &tmp.path().join("b"),
        &["--patients", "3", "--format", "bundle"],
    );
    assert!(
        !bundles
            .keys()
            .any(|k| k.ends_with(".ndjson") && k != "canaries.ndjson")
    );
    assert_eq!(
        bundles.keys().filter(|k| k.starts_with("fhir/")).count(),
        4,
        "3 patients + shared"
    );
    let bundle: serde_json::Value =
        serde_json::from_slice(&bundles["fhir/shared.json"]).expect("bundle is JSON");
    assert_eq!(bundle["type"], "transaction");
    assert_eq!(bundle["entry"][0]["request"]["method"], "PUT");
}

#[test]
fn canaries_are_unique_and_appear_in_the_patient_records() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let out = generate(
        &tmp.path().join("o"),
        &["--patients", "60", "--format", "ndjson"],
    );
    let patients = String::from_utf8(out["Patient.ndjson"].clone()).expect("utf-8");
    let canaries = String::from_utf8(out["canaries.ndjson"].clone()).expect("utf-8");
    let mut seen = HashSet::new();
    for line in canaries.lines() {
        let c: serde_json::Value = serde_json::from_str(line).expect("canary line is JSON");
        for key in ["mrn", "ssn", "phone", "email"] {
            let value = c[key].as_str().expect("string canary");
            assert!(seen.insert(value.to_string()), "{key} {value} repeats");
            assert!(
                patients.contains(&format!("\"{value}\"")),
                "{key} not in Patient.ndjson"
            );
        }
        assert!(patients.contains(&format!("\"{}\"", c["name"].as_str().unwrap_or("?"))));
    }
    assert_eq!(canaries.lines().count(), 60);
}

/// Runs `generate` with `args` (and `--out DIR` when `dir` is given) and expects exit code 2,
/// a one-line error on stderr that contains `expected`, and no partial files left behind.
#[track_caller]
fn check_refused(args: &[&str], dir: Option<&Path>, expected: &str) {
    let mut full = vec!["generate"];
    full.extend_from_slice(args);
    let dir_str = dir.map(|d| d.to_string_lossy().into_owned());
    if let Some(d) = &dir_str {
        full.extend(["--out", d.as_str()]);
    }
    let result = fhirdrill(&full);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(
        result.status.code(),
        Some(2),
        "exit code for {args:?}; stderr: {stderr}"
    );
    let first = stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("error:"),
        "first line is the error: {stderr}"
    );
    assert!(
        first.contains(expected),
        "{first:?} should contain {expected:?}"
    );
    if let Some(d) = dir {
        assert!(
            !d.join(".fhirdrill-partial").exists(),
            "partial output left behind"
        );
    }
}

#[test]
fn bad_input_gets_a_one_line_error_and_exit_code_2() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let out = tmp.path().join("out");
    let o = Some(out.as_path());
    check_refused(&["--patients", "0"], o, "--patients");
    check_refused(&["--patients", "many"], o, "--patients");
    check_refused(&["--shard", "0/3"], o, "K must be between 1 and 3");
    check_refused(&["--shard", "4/3"], o, "K must be between 1 and 3");
    check_refused(&["--shard", "three"], o, "expected K/M");
    check_refused(&["--format", "xml"], o, "--format");
    check_refused(&["--reference-date", "2026-13-01"], o, "YYYY-MM-DD");
    check_refused(&["--environment", "Prod Env"], o, "lower-case");
    check_refused(&["--patients", "5"], None, "--out");
}

#[test]
fn a_non_empty_folder_is_refused_without_force_and_replaced_with_it() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let out = tmp.path().join("out");
    std::fs::create_dir_all(&out).expect("mkdir");
    std::fs::write(out.join("notes.txt"), "keep me").expect("write");
    check_refused(&["--patients", "2"], Some(&out), "not empty");
    assert_eq!(
        std::fs::read_to_string(out.join("notes.txt"))
            .ok()
            .as_deref(),
        Some("keep me")
    );
    let written = generate(&out, &["--patients", "2", "--force"]);
    assert!(written.contains_key("Patient.ndjson"));
    assert!(
        written.contains_key("notes.txt"),
        "--force replaces only the files it writes"
    );
}

#[test]
fn an_unwritable_folder_is_refused_with_its_path() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "x").expect("write");
    let inside_a_file = file.join("out");
    check_refused(&["--patients", "2"], Some(&inside_a_file), "cannot write");
}
