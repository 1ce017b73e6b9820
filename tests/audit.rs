//! `fhirdrill audit verify`: exit codes and what it prints, on logs written by the library.

use std::fs;
use std::path::{Path, PathBuf};

use fhirdrill_simulator::audit::{AuditLog, CHECKPOINT_FILE, FsyncPolicy};
use serde_json::json;

use crate::util::fhirdrill;

/// Writes a log of `n` entries in `dir`; returns its path and head.
fn write_log(dir: &Path, n: u64) -> (PathBuf, String) {
    let log = AuditLog::open(dir, FsyncPolicy::Never).expect("open the audit log");
    for i in 0..n {
        log.append(json!({"action": "read", "entity": format!("Observation/o{i}")}))
            .expect("append");
    }
    log.close().expect("close");
    (log.path().to_path_buf(), log.head().1)
}

/// Runs `fhirdrill audit verify` with `args`: (exit code, stdout, stderr).
fn verify(args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["audit", "verify"];
    all.extend_from_slice(args);
    let out = fhirdrill(&all);
    (
        out.status.code().expect("exit code"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn text(path: &Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}

fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .expect("read log")
        .lines()
        .map(str::to_string)
        .collect()
}

fn rewrite(path: &Path, lines: &[String]) {
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    fs::write(path, body).expect("write log");
}

#[test]
fn a_good_log_exits_0_and_prints_its_head() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let (path, head) = write_log(tmp.path(), 5);
    let (code, stdout, stderr) = verify(&[text(&path)]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, format!("ok: 5 entries, head {head}\n"));
    assert_eq!(stderr, "");
}

#[test]
fn a_modified_entry_exits_1_and_names_its_line() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let (path, _) = write_log(tmp.path(), 5);
    let mut lines = lines(&path);
    lines[2] = lines[2].replace("Observation/o2", "Observation/o7");
    rewrite(&path, &lines);
    let (code, stdout, _) = verify(&[text(&path)]);
    assert_eq!(code, 1);
    let printed: Vec<&str> = stdout.lines().collect();
    assert_eq!(printed.len(), 2, "{stdout}");
    assert_eq!(
        printed[0],
        "line 3 (seq 3): entry was modified: its hash does not match the prev of line 4"
    );
    assert!(
        printed[1].starts_with("FAILED: ") && printed[1].contains("1 problem(s)"),
        "{stdout}"
    );
}

#[test]
fn a_removed_last_line_exits_1_through_the_checkpoint() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let (path, head) = write_log(tmp.path(), 5);
    let mut lines = lines(&path);
    lines.pop();
    rewrite(&path, &lines);
    let (code, stdout, _) = verify(&[text(&path)]);
    assert_eq!(code, 1);
    assert!(
        stdout.starts_with(&format!(
            "line 5: log was cut: its checkpoint records 5 entries with head {head}"
        )),
        "{stdout}"
    );
    // Another checkpoint, named on the command line, is used instead of the one beside the log.
    let other = tmp.path().join("elsewhere");
    write_log(&other, 4);
    fs::write(&path, fs::read(other.join("audit.ndjson")).expect("read")).expect("write");
    let checkpoint = other.join(CHECKPOINT_FILE);
    let (code, stdout, stderr) = verify(&[text(&path), "--checkpoint", text(&checkpoint)]);
    assert_eq!(code, 0, "{stdout}{stderr}");
}

#[test]
fn a_torn_last_line_exits_1_as_a_torn_write() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let (path, _) = write_log(tmp.path(), 3);
    let mut body = fs::read_to_string(&path).expect("read");
    body.push_str("{\"seq\":4,\"prev\":\"00");
    fs::write(&path, body).expect("write");
    let (code, stdout, _) = verify(&[text(&path)]);
    assert_eq!(code, 1);
    assert!(stdout.starts_with("line 4: torn write:"), "{stdout}");
    assert!(stdout.contains("1 torn write(s) from a crash"), "{stdout}");
    assert!(!stdout.contains("tampering"), "{stdout}");
}

#[test]
fn without_a_checkpoint_it_verifies_and_warns() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let (path, _) = write_log(tmp.path(), 2);
    fs::remove_file(tmp.path().join(CHECKPOINT_FILE)).expect("remove checkpoint");
    let (code, stdout, stderr) = verify(&[text(&path)]);
    assert_eq!(code, 0);
    assert!(stdout.starts_with("ok: 2 entries, head "), "{stdout}");
    assert!(stderr.contains("a cut tail cannot be detected"), "{stderr}");
}

#[test]
fn an_unreadable_file_or_bad_usage_exits_2_with_one_line() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let missing = tmp.path().join("missing.ndjson");
    let (code, stdout, stderr) = verify(&[text(&missing)]);
    assert_eq!(code, 2);
    assert_eq!(stdout, "");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: cannot read audit log") && stderr.contains("missing.ndjson"),
        "{stderr}"
    );

    let (path, _) = write_log(tmp.path(), 1);
    let absent = tmp.path().join("absent.json");
    let (code, _, stderr) = verify(&[text(&path), "--checkpoint", text(&absent)]);
    assert_eq!(code, 2);
    assert!(stderr.contains("absent.json"), "{stderr}");

    let (code, _, _) = verify(&[]);
    assert_eq!(code, 2);
}
