//! Reads an audit log back and locates everything wrong with it.
//!
//! One pass over the lines, with one line of look-ahead, checks each entry's `prev` against the
//! hash of the entry before it and its `seq` against the count. When a link breaks, the pattern
//! around it says what happened (which line was modified, removed, inserted, or moved), one
//! problem is reported, and the check resumes from the entry's own hash, so one modified line
//! gives one problem, not one per later line. The checkpoint is then checked against the lines:
//! it is the only way to see a cut tail or a modified last entry. A last line without its `\n`
//! is a torn write (what a crash during a write leaves), reported apart from tampering.
//!
//! Memory does not grow with the log: lines are streamed.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::value::RawValue;

use super::log::Checkpoint;
use super::{AuditError, CHECKPOINT_FILE, from_hex, hash_line, to_hex};

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Lines read as entries (every complete line, and a last line lacking only its `\n`):
    /// the number of entries when the log verifies.
    pub entries: u64,
    /// Lower-case hex SHA-256 of the last of those lines (64 zeros when there is none).
    pub head: String,
    /// Bytes of the log up to the end of its last `\n`-terminated line.
    pub complete_len: u64,
    /// The checkpoint checked against the log, if there was one and it could be parsed.
    pub checkpoint: Option<Checkpoint>,
    /// The checkpoint file used, if any.
    pub checkpoint_path: Option<PathBuf>,
    /// Every problem found, in line order (checkpoint checks last); empty when the log verifies.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// True when no problem was found.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// Problems that are not torn writes: signs of tampering (or of disk corruption).
    pub fn tampering(&self) -> impl Iterator<Item = &Problem> {
        self.problems.iter().filter(|p| !p.kind.is_torn_write())
    }
}

/// One problem, located by 1-based line number (0 for the checkpoint file itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The line (1-based); 0 when the problem is in the checkpoint file.
    pub line: usize,
    /// The line's `seq`, when it could be read.
    pub seq: Option<u64>,
    /// What kind of problem.
    pub kind: ProblemKind,
    /// What is wrong, starting with the kind, e.g. "entry was modified: its hash …".
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.seq) {
            (0, _) => write!(f, "checkpoint: {}", self.message),
            (line, Some(seq)) => write!(f, "line {line} (seq {seq}): {}", self.message),
            (line, None) => write!(f, "line {line}: {}", self.message),
        }
    }
}

/// The kinds of problem [`verify`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProblemKind {
    /// Not valid JSON, or not an object with exactly `seq`, `prev` (64 hex digits) and `event`.
    Malformed,
    /// The entry's bytes changed after it was written.
    Modified,
    /// Entries are missing before this line.
    Removed,
    /// The entry was not written by the log here: inserted, duplicated or moved.
    Inserted,
    /// Two adjacent entries are in the wrong order.
    Reordered,
    /// The `seq` is out of sequence although the entry links to its predecessor.
    Sequence,
    /// The log ends before the entry its checkpoint records.
    CutTail,
    /// The entry the checkpoint records has another hash, or another `seq`.
    CheckpointMismatch,
    /// The checkpoint file is not a valid checkpoint.
    BadCheckpoint,
    /// The last line is incomplete: a crash during a write (not counted as an entry).
    TornWrite,
    /// The last line is a complete entry without its final `\n`: a crash during a write.
    MissingNewline,
}

impl ProblemKind {
    /// True for the damage a crash during a write leaves ([`TornWrite`](Self::TornWrite),
    /// [`MissingNewline`](Self::MissingNewline)), as opposed to signs of tampering.
    pub fn is_torn_write(self) -> bool {
        matches!(self, Self::TornWrite | Self::MissingNewline)
    }
}

/// Verifies the log at `log` against `checkpoint`, or when `None` against the
/// `audit.checkpoint.json` beside it if there is one. Errors only when a file cannot be read;
/// everything wrong with the content is in the report.
pub fn verify(log: &Path, checkpoint: Option<&Path>) -> Result<VerifyReport, AuditError> {
    let checkpoint_path = match checkpoint {
        Some(path) => Some(path.to_path_buf()),
        None => {
            let beside = log.with_file_name(CHECKPOINT_FILE);
            let exists = beside.try_exists().map_err(|source| AuditError::Io {
                action: "look for audit checkpoint",
                path: beside.clone(),
                source,
            })?;
            exists.then_some(beside)
        }
    };
    let mut checker = Checker::default();
    if let Some(path) = &checkpoint_path {
        let text = std::fs::read_to_string(path).map_err(|source| AuditError::Io {
            action: "read audit checkpoint",
            path: path.clone(),
            source,
        })?;
        match Checkpoint::parse(&text) {
            Ok(parsed) => {
                checker.anchor = Some((parsed.entries, from_hex(&parsed.head).unwrap_or([0; 32])));
                checker.checkpoint = Some(parsed);
            }
            Err(message) => checker.problems.push(Problem {
                line: 0,
                seq: None,
                kind: ProblemKind::BadCheckpoint,
                message: format!("{} is not a valid checkpoint: {message}", path.display()),
            }),
        }
    }
    let file = File::open(log).map_err(|source| AuditError::Io {
        action: "read audit log",
        path: log.to_path_buf(),
        source,
    })?;
    let mut reader = Reader {
        input: BufReader::with_capacity(256 * 1024, file),
        buf: Vec::new(),
        line: 0,
        path: log,
    };
    let mut next = checker.read(&mut reader)?;
    while let Some(current) = next.take() {
        next = checker.read(&mut reader)?;
        if current.entry.is_err() && !current.terminated {
            checker.report(
                &current,
                ProblemKind::TornWrite,
                format!(
                    "torn write: the last line is incomplete ({} bytes, no final newline), as a \
                     crash during a write leaves it; it is not counted as an entry",
                    current.len
                ),
            );
            continue;
        }
        if !current.terminated {
            checker.report(
                &current,
                ProblemKind::MissingNewline,
                "torn write: the last entry lacks its final newline, as a crash during a write \
                 leaves it"
                    .to_string(),
            );
        }
        if checker.check(&current, next.as_ref()) == Step::Two {
            next = checker.read(&mut reader)?;
        }
    }
    checker.check_checkpoint();
    let mut problems = checker.problems;
    // Checkpoint problems found before the pass (line 0) go last, with the other checkpoint checks.
    problems.sort_by_key(|p| p.line == 0);
    Ok(VerifyReport {
        entries: checker.entries,
        head: to_hex(&checker.last_hash),
        complete_len: checker.complete_len,
        checkpoint: checker.checkpoint,
        checkpoint_path,
        problems,
    })
}

/// One line of the log.
#[derive(Debug)]
struct Record {
    line: usize,
    len: usize,
    terminated: bool,
    hash: [u8; 32],
    entry: Result<Entry, String>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    seq: u64,
    prev: [u8; 32],
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "an object with seq, prev and event")]
struct RawEntry<'a> {
    seq: u64,
    #[serde(borrow)]
    prev: Cow<'a, str>,
    #[serde(borrow, rename = "event")]
    _event: &'a RawValue,
}

fn parse(line: &[u8]) -> Result<Entry, String> {
    if line.is_empty() {
        return Err("malformed entry: the line is empty".to_string());
    }
    let raw: RawEntry<'_> = serde_json::from_slice(line).map_err(|e| {
        if e.is_data() {
            format!("malformed entry: not an audit entry: {e}")
        } else {
            format!("malformed entry: not valid JSON: {e}")
        }
    })?;
    let prev = from_hex(&raw.prev).ok_or_else(|| {
        format!(
            "malformed entry: prev {:?} is not 64 lower-case hex digits",
            raw.prev
        )
    })?;
    Ok(Entry { seq: raw.seq, prev })
}

struct Reader<'a> {
    input: BufReader<File>,
    buf: Vec<u8>,
    line: usize,
    path: &'a Path,
}

impl Reader<'_> {
    fn next(&mut self) -> Result<Option<Record>, AuditError> {
        self.buf.clear();
        let read = self
            .input
            .read_until(b'\n', &mut self.buf)
            .map_err(|source| AuditError::Io {
                action: "read audit log",
                path: self.path.to_path_buf(),
                source,
            })?;
        if read == 0 {
            return Ok(None);
        }
        self.line += 1;
        let terminated = self.buf.last() == Some(&b'\n');
        let bytes = if terminated {
            &self.buf[..self.buf.len() - 1]
        } else {
            &self.buf[..]
        };
        Ok(Some(Record {
            line: self.line,
            len: bytes.len(),
            terminated,
            hash: hash_line(bytes),
            entry: parse(bytes),
        }))
    }
}

/// What the chain check expects of the next entry: the last accepted entry `p`.
#[derive(Debug, Clone, Copy)]
struct Expect {
    /// Hash of `p` (64 zeros at the start).
    prev: [u8; 32],
    /// `p`'s seq + 1.
    seq: u64,
    /// `p` itself (line, seq, its own prev), `None` at the start of the log.
    last: Option<(usize, u64, [u8; 32])>,
}

impl Expect {
    const START: Self = Self {
        prev: [0; 32],
        seq: 1,
        last: None,
    };

    fn after(record: &Record, entry: &Entry) -> Self {
        Self {
            prev: record.hash,
            seq: entry.seq.saturating_add(1),
            last: Some((record.line, entry.seq, entry.prev)),
        }
    }

    /// "line 4", or "the start of the log" (for messages).
    fn describe(&self) -> String {
        match self.last {
            Some((line, _, _)) => format!("line {line}"),
            None => "the start of the log (64 zeros)".to_string(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    One,
    /// The look-ahead line was dealt with too.
    Two,
}

#[derive(Debug)]
struct Checker {
    /// What the next entry must match; `None` right after a line that could not be trusted:
    /// the next entry is then taken as it is (resynchronisation).
    expect: Option<Expect>,
    problems: Vec<Problem>,
    reported: HashSet<usize>,
    checkpoint: Option<Checkpoint>,
    /// The checkpoint's entries and head.
    anchor: Option<(u64, [u8; 32])>,
    /// The first line whose hash is the checkpoint's head: (line, seq).
    anchor_line: Option<(usize, Option<u64>)>,
    /// The first line whose seq is the checkpoint's entry count.
    anchor_seq_line: Option<usize>,
    max_seq: Option<u64>,
    entries: u64,
    last_hash: [u8; 32],
    complete_len: u64,
}

impl Default for Checker {
    fn default() -> Self {
        Self {
            expect: Some(Expect::START),
            problems: Vec::new(),
            reported: HashSet::new(),
            checkpoint: None,
            anchor: None,
            anchor_line: None,
            anchor_seq_line: None,
            max_seq: None,
            entries: 0,
            last_hash: [0; 32],
            complete_len: 0,
        }
    }
}

impl Checker {
    /// Reads the next line and notes what the checkpoint check needs about it.
    fn read(&mut self, reader: &mut Reader<'_>) -> Result<Option<Record>, AuditError> {
        let Some(record) = reader.next()? else {
            return Ok(None);
        };
        if record.terminated {
            self.complete_len += record.len as u64 + 1;
        }
        if record.terminated || record.entry.is_ok() {
            self.entries += 1;
            self.last_hash = record.hash;
            let seq = record.entry.as_ref().ok().map(|e| e.seq);
            if let Some(seq) = seq {
                self.max_seq = self.max_seq.max(Some(seq));
            }
            if let Some((entries, head)) = self.anchor {
                if self.anchor_line.is_none() && record.hash == head {
                    self.anchor_line = Some((record.line, seq));
                }
                if self.anchor_seq_line.is_none() && seq == Some(entries) {
                    self.anchor_seq_line = Some(record.line);
                }
            }
        }
        Ok(Some(record))
    }

    fn report(&mut self, record: &Record, kind: ProblemKind, message: String) {
        let seq = record.entry.as_ref().ok().map(|e| e.seq);
        self.report_at(record.line, seq, kind, message);
    }

    fn report_at(&mut self, line: usize, seq: Option<u64>, kind: ProblemKind, message: String) {
        self.reported.insert(line);
        self.problems.push(Problem {
            line,
            seq,
            kind,
            message,
        });
    }

    /// Checks one line against the chain so far, looking at the next line to tell what broke.
    fn check(&mut self, current: &Record, next: Option<&Record>) -> Step {
        let entry = match &current.entry {
            Ok(entry) => *entry,
            Err(message) => {
                self.report(current, ProblemKind::Malformed, message.clone());
                self.expect = None;
                return Step::One;
            }
        };
        let Some(expect) = self.expect else {
            self.expect = Some(Expect::after(current, &entry));
            return Step::One;
        };
        let next_entry = next.and_then(|n| n.entry.as_ref().ok().map(|e| (n, *e)));
        let link_ok = entry.prev == expect.prev;
        let seq_ok = entry.seq == expect.seq;
        if link_ok && seq_ok {
            self.expect = Some(Expect::after(current, &entry));
            return Step::One;
        }
        if link_ok {
            return self.check_seq(current, &entry, &expect, next_entry);
        }
        self.check_link(current, &entry, &expect, next_entry)
    }

    /// The entry links to its predecessor but its seq is wrong.
    fn check_seq(
        &mut self,
        current: &Record,
        entry: &Entry,
        expect: &Expect,
        next: Option<(&Record, Entry)>,
    ) -> Step {
        let seqs = format!("seq {} where {} was expected", entry.seq, expect.seq);
        match next {
            Some((next, next_entry)) if next_entry.prev == expect.prev => {
                self.report(
                    current,
                    ProblemKind::Inserted,
                    format!(
                        "entry was inserted: {seqs}, and line {} links past it to {}",
                        next.line,
                        expect.describe()
                    ),
                );
                // The chain goes on from the predecessor.
            }
            Some((next, next_entry)) if next_entry.prev != current.hash => {
                self.report(
                    current,
                    ProblemKind::Modified,
                    format!(
                        "entry was modified: {seqs}, and its hash does not match the prev of \
                         line {}",
                        next.line
                    ),
                );
                self.expect = None;
            }
            _ => {
                self.report(
                    current,
                    ProblemKind::Sequence,
                    format!("seq out of sequence: {seqs}"),
                );
                self.expect = Some(Expect::after(current, entry));
            }
        }
        Step::One
    }

    /// The entry's prev is not the hash of the entry before it: find out why.
    fn check_link(
        &mut self,
        current: &Record,
        entry: &Entry,
        expect: &Expect,
        next: Option<(&Record, Entry)>,
    ) -> Step {
        let after = expect.describe();
        // This entry and the next are swapped: it links to the next, the next to our predecessor.
        if let Some((next, next_entry)) = next
            && entry.prev == next.hash
            && next_entry.prev == expect.prev
        {
            self.report(
                current,
                ProblemKind::Reordered,
                format!(
                    "entries are in the wrong order: this entry follows line {} (seq {}) in the \
                     chain but comes before it",
                    next.line, next_entry.seq
                ),
            );
            self.expect = Some(Expect::after(current, entry));
            return Step::Two;
        }
        // A copy of the entry before it.
        if current.hash == expect.prev {
            self.report_repeat(current, expect);
            return Step::One;
        }
        // The next entry links to our predecessor: this one is extra.
        if let Some((next, _)) = next.filter(|(_, n)| n.prev == expect.prev) {
            self.report(
                current,
                ProblemKind::Inserted,
                format!(
                    "entry was inserted: its prev does not match the hash of {after}, and line \
                     {} links past it",
                    next.line
                ),
            );
            return Step::One;
        }
        // This entry links to the same predecessor as the previous one: one of the two is extra.
        if let Some((last_line, last_seq, last_prev)) = expect.last
            && entry.prev == last_prev
        {
            if !self.reported.contains(&last_line) {
                self.report_at(
                    last_line,
                    Some(last_seq),
                    ProblemKind::Inserted,
                    format!(
                        "entry was inserted: line {} links past it to the entry before it",
                        current.line
                    ),
                );
            }
            self.expect = Some(Expect::after(current, entry));
            return Step::One;
        }
        if entry.seq > expect.seq {
            let missing = if entry.seq - expect.seq == 1 {
                format!("seq {} is missing", expect.seq)
            } else {
                format!("seqs {} to {} are missing", expect.seq, entry.seq - 1)
            };
            self.report(
                current,
                ProblemKind::Removed,
                format!(
                    "entries were removed before this line: {missing}, and its prev does not \
                     match the hash of {after}"
                ),
            );
            self.expect = Some(Expect::after(current, entry));
            return Step::One;
        }
        if entry.seq == expect.seq {
            // Either the predecessor changed (its hash moved) or this entry did (its prev, hence
            // its hash too): the next line, or the checkpoint for the last line, tells which.
            let this_changed = match next {
                Some((_, next_entry)) => next_entry.prev != current.hash,
                None => {
                    self.anchor_line.is_none()
                        && self.anchor.is_some_and(|(_, head)| head != current.hash)
                }
            };
            let Some((last_line, last_seq, _)) = expect.last else {
                self.report(
                    current,
                    ProblemKind::Modified,
                    "entry was modified: the first entry's prev must be 64 zeros".to_string(),
                );
                self.expect = None;
                return Step::One;
            };
            if this_changed {
                let because = match next {
                    Some((next, _)) => format!("the prev of line {}", next.line),
                    None => "the checkpoint head".to_string(),
                };
                self.report(
                    current,
                    ProblemKind::Modified,
                    format!(
                        "entry was modified: its prev does not match the hash of {after}, and \
                         its hash does not match {because}"
                    ),
                );
                self.expect = None;
                return Step::One;
            }
            if !self.reported.contains(&last_line) {
                self.report_at(
                    last_line,
                    Some(last_seq),
                    ProblemKind::Modified,
                    format!(
                        "entry was modified: its hash does not match the prev of line {}",
                        current.line
                    ),
                );
            }
            self.expect = Some(Expect::after(current, entry));
            return Step::One;
        }
        self.report(
            current,
            ProblemKind::Inserted,
            format!(
                "entry was inserted or moved: seq {} where {} was expected, and its prev does \
                 not match the hash of {after}",
                entry.seq, expect.seq
            ),
        );
        self.expect = Some(Expect::after(current, entry));
        Step::One
    }

    /// Reports `current`, a copy of the entry before it (the chain goes on from that one).
    fn report_repeat(&mut self, current: &Record, expect: &Expect) {
        let last_line = expect.last.map(|(line, _, _)| line);
        // A copy placed just before the entry preceding its original looks like a swap of the
        // copy and that entry, until the original shows up: one insertion, not two problems.
        if let Some(swap) = self.problems.last()
            && swap.kind == ProblemKind::Reordered
            && Some(swap.line) == last_line
        {
            let (line, seq) = (swap.line, swap.seq);
            self.problems.pop();
            self.report_at(
                line,
                seq,
                ProblemKind::Inserted,
                format!(
                    "entry was inserted: it is a copy of line {}, placed out of order",
                    current.line
                ),
            );
            return;
        }
        let what = last_line.map_or_else(
            || "the entry before it".to_string(),
            |l| format!("line {l}"),
        );
        self.report(
            current,
            ProblemKind::Inserted,
            format!("entry was inserted: it repeats {what}"),
        );
    }

    /// Checks that the log still holds the entry the checkpoint records.
    fn check_checkpoint(&mut self) {
        let Some((entries, head)) = self.anchor else {
            return;
        };
        if entries == 0 {
            return;
        }
        let head_hex = to_hex(&head);
        match self.anchor_line {
            Some((line, seq)) => {
                if seq != Some(entries) && !self.reported.contains(&line) {
                    self.report_at(
                        line,
                        seq,
                        ProblemKind::CheckpointMismatch,
                        format!(
                            "the checkpoint's head is this entry's hash, but the checkpoint \
                             records {entries} entries"
                        ),
                    );
                }
            }
            None => {
                // The line that should hold the checkpoint's entry: the one with its seq, else
                // line `entries`. If it was reported already, the checkpoint adds nothing.
                let candidate = self.anchor_seq_line.or_else(|| {
                    (entries <= self.entries)
                        .then(|| usize::try_from(entries).ok())
                        .flatten()
                });
                if candidate.is_some_and(|line| self.reported.contains(&line)) {
                    return;
                }
                if self.max_seq.is_none_or(|max| max < entries) {
                    let end = match self.max_seq {
                        Some(max) => format!("after line {} (seq {max})", self.entries),
                        None => "with no entry".to_string(),
                    };
                    let line = usize::try_from(self.entries).unwrap_or(usize::MAX);
                    self.report_at(
                        line.saturating_add(1),
                        None,
                        ProblemKind::CutTail,
                        format!(
                            "log was cut: its checkpoint records {entries} entries with head \
                             {head_hex}, but the log ends {end}"
                        ),
                    );
                } else if let Some(line) = candidate {
                    self.report_at(
                        line,
                        Some(entries),
                        ProblemKind::CheckpointMismatch,
                        format!(
                            "entry was modified: its hash does not match the checkpoint head \
                             {head_hex} (this entry changed, or the chain was rebuilt from an \
                             earlier one)"
                        ),
                    );
                } else if self.problems.is_empty() {
                    self.report_at(
                        0,
                        None,
                        ProblemKind::CheckpointMismatch,
                        format!(
                            "no entry of the log has seq {entries} or the checkpoint head \
                             {head_hex}"
                        ),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::audit::{AuditLog, FsyncPolicy, GENESIS, LOG_FILE};

    /// A log of `n` entries written through [`AuditLog`]: (folder, log path, lines).
    fn build(n: usize) -> (tempfile::TempDir, PathBuf, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        {
            let log = AuditLog::open(dir.path(), FsyncPolicy::Never).unwrap();
            for i in 0..n {
                log.append(json!({
                    "action": "read",
                    "client": format!("client{}", i % 3),
                    "entity": format!("Observation/o{i}"),
                    "patient": format!("Patient/p{}", i % 5),
                }))
                .unwrap();
            }
        }
        let path = dir.path().join(LOG_FILE);
        let text = fs::read_to_string(&path).unwrap();
        let lines = text.lines().map(str::to_string).collect();
        (dir, path, lines)
    }

    fn write(path: &Path, lines: &[String]) {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        fs::write(path, text).unwrap();
    }

    /// Verifies and returns each problem as printed.
    fn problems(path: &Path) -> Vec<String> {
        verify(path, None)
            .unwrap()
            .problems
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn kinds(path: &Path) -> Vec<(usize, ProblemKind)> {
        verify(path, None)
            .unwrap()
            .problems
            .iter()
            .map(|p| (p.line, p.kind))
            .collect()
    }

    #[test]
    fn a_log_written_by_audit_log_verifies() {
        let (_dir, path, lines) = build(20);
        let report = verify(&path, None).unwrap();
        assert!(report.is_ok(), "{:?}", report.problems);
        assert_eq!(report.entries, 20);
        assert_eq!(report.head, to_hex(&hash_line(lines[19].as_bytes())));
        assert_eq!(report.checkpoint.as_ref().map(|c| c.entries), Some(20));
        assert_eq!(report.complete_len, fs::metadata(&path).unwrap().len());
    }

    #[test]
    fn an_empty_log_verifies() {
        let (_dir, path, _) = build(0);
        let report = verify(&path, None).unwrap();
        assert!(report.is_ok());
        assert_eq!((report.entries, report.head.as_str()), (0, GENESIS));
    }

    #[test]
    fn a_modified_event_is_one_problem_at_its_line() {
        let (_dir, path, mut lines) = build(20);
        lines[11] = lines[11].replace("Observation/o11", "Observation/o99");
        write(&path, &lines);
        assert_eq!(
            problems(&path),
            ["line 12 (seq 12): entry was modified: its hash does not match the prev of line 13"]
        );
    }

    #[test]
    fn a_modified_first_or_last_entry_is_located() {
        let (_dir, path, lines) = build(5);
        let mut first = lines.clone();
        first[0] = first[0].replace("o0", "o7");
        write(&path, &first);
        assert_eq!(kinds(&path), [(1, ProblemKind::Modified)]);
        let mut last = lines.clone();
        last[4] = last[4].replace("o4", "o7");
        write(&path, &last);
        assert_eq!(kinds(&path), [(5, ProblemKind::CheckpointMismatch)]);
        assert!(problems(&path)[0].starts_with("line 5 (seq 5): entry was modified"));
        // Broken beyond parsing: one problem, not also a cut tail.
        let mut garbled = lines;
        garbled[4] = garbled[4].replacen('"', "'", 1);
        write(&path, &garbled);
        assert_eq!(kinds(&path), [(5, ProblemKind::Malformed)]);
    }

    #[test]
    fn a_modified_prev_or_seq_is_one_problem_at_its_line() {
        let (_dir, path, lines) = build(6);
        let mut relinked = lines.clone();
        let hex_start = relinked[2].find("\"prev\":\"").unwrap() + 8;
        relinked[2].replace_range(hex_start..=hex_start, "f");
        if relinked[2] == lines[2] {
            relinked[2].replace_range(hex_start..=hex_start, "e");
        }
        write(&path, &relinked);
        assert_eq!(kinds(&path), [(3, ProblemKind::Modified)]);
        let mut reseq = lines;
        reseq[2] = reseq[2].replace("\"seq\":3,", "\"seq\":33,");
        write(&path, &reseq);
        assert_eq!(kinds(&path), [(3, ProblemKind::Modified)]);
    }

    #[test]
    fn a_removed_middle_line_is_located() {
        let (_dir, path, mut lines) = build(10);
        lines.remove(4);
        write(&path, &lines);
        let found = problems(&path);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with(
                "line 5 (seq 6): entries were removed before this line: seq 5 is missing"
            ),
            "{found:?}"
        );
    }

    #[test]
    fn a_removed_first_line_is_located() {
        let (_dir, path, mut lines) = build(4);
        lines.remove(0);
        write(&path, &lines);
        assert_eq!(kinds(&path), [(1, ProblemKind::Removed)]);
    }

    #[test]
    fn a_removed_last_line_is_seen_only_through_the_checkpoint() {
        let (dir, path, mut lines) = build(10);
        lines.pop();
        write(&path, &lines);
        assert_eq!(kinds(&path), [(10, ProblemKind::CutTail)]);
        assert!(problems(&path)[0].starts_with("line 10: log was cut"));
        fs::remove_file(dir.path().join(CHECKPOINT_FILE)).unwrap();
        assert!(verify(&path, None).unwrap().is_ok());
    }

    #[test]
    fn a_checkpoint_claiming_more_than_the_log_is_reported() {
        let (dir, path, _) = build(3);
        let checkpoint = dir.path().join("other.json");
        let head = to_hex(&[7; 32]);
        fs::write(
            &checkpoint,
            format!(r#"{{"entries":9,"head":"{head}","updated":"2026-01-01T00:00:00Z"}}"#),
        )
        .unwrap();
        let report = verify(&path, Some(&checkpoint)).unwrap();
        assert_eq!(report.problems.len(), 1);
        assert_eq!(report.problems[0].kind, ProblemKind::CutTail);
        assert_eq!(report.problems[0].line, 4);
        assert_eq!(
            report.checkpoint_path.as_deref(),
            Some(checkpoint.as_path())
        );
    }

    #[test]
    fn a_checkpoint_with_a_foreign_head_is_reported() {
        let (dir, path, _) = build(3);
        let checkpoint = dir.path().join("other.json");
        let head = to_hex(&[7; 32]);
        fs::write(
            &checkpoint,
            format!(r#"{{"entries":3,"head":"{head}","updated":"2026-01-01T00:00:00Z"}}"#),
        )
        .unwrap();
        let report = verify(&path, Some(&checkpoint)).unwrap();
        let kinds: Vec<_> = report.problems.iter().map(|p| (p.line, p.kind)).collect();
        assert_eq!(kinds, [(3, ProblemKind::CheckpointMismatch)]);
    }

    #[test]
    fn a_bad_checkpoint_is_a_problem_and_a_missing_one_an_error() {
        let (dir, path, _) = build(2);
        fs::write(dir.path().join(CHECKPOINT_FILE), "{\"entries\":2}").unwrap();
        let found = problems(&path);
        assert_eq!(found.len(), 1);
        assert!(found[0].starts_with("checkpoint: "), "{found:?}");
        let missing = dir.path().join("nope.json");
        let err = verify(&path, Some(&missing)).unwrap_err();
        assert!(err.to_string().contains("nope.json"), "{err}");
    }

    #[test]
    fn an_inserted_forged_line_is_located() {
        let (_dir, path, lines) = build(6);
        // A forged entry with the right prev but a seq that does not fit.
        let prev = to_hex(&hash_line(lines[2].as_bytes()));
        let forged = format!(r#"{{"seq":9,"prev":"{prev}","event":{{"action":"delete"}}}}"#);
        let mut with_forged = lines.clone();
        with_forged.insert(3, forged);
        write(&path, &with_forged);
        assert_eq!(kinds(&path), [(4, ProblemKind::Inserted)]);
        // The same with a seq that fits (4): the original line 4 shows it was skipped.
        let forged = format!(r#"{{"seq":4,"prev":"{prev}","event":{{"action":"delete"}}}}"#);
        let mut with_forged = lines.clone();
        with_forged.insert(3, forged);
        write(&path, &with_forged);
        assert_eq!(kinds(&path), [(4, ProblemKind::Inserted)]);
        // A line of garbage.
        let mut with_garbage = lines;
        with_garbage.insert(2, "{\"seq\":3}".to_string());
        write(&path, &with_garbage);
        let found = problems(&path);
        assert_eq!(
            found,
            [
                "line 3: malformed entry: not an audit entry: missing field `prev` at line 1 column 9"
            ]
        );
    }

    #[test]
    fn a_duplicated_line_is_located() {
        let (_dir, path, mut lines) = build(6);
        lines.insert(3, lines[2].clone());
        write(&path, &lines);
        let found = problems(&path);
        assert_eq!(
            found,
            ["line 4 (seq 3): entry was inserted: it repeats line 3"],
            "{found:?}"
        );
    }

    #[test]
    fn a_copy_placed_before_its_predecessor_is_one_insertion() {
        let (_dir, path, mut lines) = build(8);
        lines.insert(5, lines[6].clone());
        write(&path, &lines);
        assert_eq!(
            problems(&path),
            ["line 6 (seq 7): entry was inserted: it is a copy of line 8, placed out of order"]
        );
    }

    #[test]
    fn swapped_lines_are_one_problem() {
        let (_dir, path, mut lines) = build(8);
        lines.swap(3, 4);
        write(&path, &lines);
        let found = problems(&path);
        assert_eq!(
            found,
            [
                "line 4 (seq 5): entries are in the wrong order: this entry follows line 5 \
                 (seq 4) in the chain but comes before it"
            ]
        );
        let (_dir, path, mut lines) = build(8);
        lines.swap(6, 7);
        write(&path, &lines);
        assert_eq!(kinds(&path), [(7, ProblemKind::Reordered)]);
    }

    #[test]
    fn a_torn_last_line_is_a_torn_write_not_tampering() {
        let (_dir, path, lines) = build(5);
        let mut text: String = lines[..4].iter().map(|l| format!("{l}\n")).collect();
        text.push_str(&lines[4][..30]);
        fs::write(&path, &text).unwrap();
        let report = verify(&path, None).unwrap();
        let found: Vec<_> = report.problems.iter().map(ToString::to_string).collect();
        // The checkpoint had covered the entry: so the tail is also reported as cut.
        assert_eq!(report.problems[0].kind, ProblemKind::TornWrite, "{found:?}");
        assert!(found[0].starts_with("line 5: torn write:"), "{found:?}");
        assert_eq!(report.entries, 4);
        assert_eq!(report.complete_len, text.len() as u64 - 30);

        // Without the checkpoint claiming it, the torn write is the only problem.
        let (dir, path, lines) = build(4);
        let mut text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        text.push_str("{\"seq\":5,\"pr");
        fs::write(&path, &text).unwrap();
        let report = verify(&path, None).unwrap();
        assert_eq!(
            report
                .problems
                .iter()
                .map(|p| (p.line, p.kind))
                .collect::<Vec<_>>(),
            [(5, ProblemKind::TornWrite)]
        );
        assert_eq!(report.tampering().count(), 0);
        drop(dir);
    }

    #[test]
    fn a_missing_final_newline_is_a_torn_write() {
        let (_dir, path, lines) = build(3);
        fs::write(&path, lines.join("\n")).unwrap();
        let report = verify(&path, None).unwrap();
        let found: Vec<_> = report.problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            found,
            [
                "line 3 (seq 3): torn write: the last entry lacks its final newline, as a crash \
              during a write leaves it"
            ]
        );
        assert_eq!(report.entries, 3);
    }

    #[test]
    fn many_problems_are_all_reported_without_cascading() {
        let (_dir, path, mut lines) = build(100);
        lines[9] = lines[9].replace("Observation/o9", "Observation/x9");
        lines[49] = "not json".to_string();
        lines.remove(79);
        write(&path, &lines);
        assert_eq!(
            kinds(&path),
            [
                (10, ProblemKind::Modified),
                (50, ProblemKind::Malformed),
                (80, ProblemKind::Removed),
            ]
        );
    }

    #[test]
    fn a_missing_log_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.ndjson");
        let err = verify(&path, None).unwrap_err();
        assert!(
            err.to_string().starts_with("cannot read audit log"),
            "{err}"
        );
        assert!(err.to_string().contains("absent.ndjson"), "{err}");
    }

    #[derive(Debug, Clone)]
    enum Mutation {
        None,
        Delete(usize),
        Duplicate { from: usize, to: usize },
        Swap(usize, usize),
        ModifyByte { line: usize, pick: usize, byte: u8 },
    }

    /// Byte ranges of the string values (not keys) of a line that has no escapes.
    fn string_values(line: &str) -> Vec<std::ops::Range<usize>> {
        let bytes = line.as_bytes();
        let mut ranges = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'"' {
                let end = i + 1 + line[i + 1..].find('"').unwrap();
                if bytes.get(end + 1) != Some(&b':') && end > i + 1 {
                    ranges.push(i + 1..end);
                }
                i = end + 1;
            } else {
                i += 1;
            }
        }
        ranges
    }

    /// Applies `mutation`; false when it cannot apply to this log (then it is left as it is).
    fn mutate(lines: &mut Vec<String>, mutation: &Mutation) -> bool {
        let n = lines.len();
        match *mutation {
            Mutation::None => return false,
            Mutation::Delete(i) if n > 0 => {
                lines.remove(i % n);
            }
            Mutation::Duplicate { from, to } if n > 0 => {
                let copy = lines[from % n].clone();
                lines.insert(to % (n + 1), copy);
            }
            Mutation::Swap(a, b) if n > 1 => lines.swap(a % n, (a % n + 1 + b % (n - 1)) % n),
            Mutation::ModifyByte { line, pick, byte } if n > 0 => {
                let line = &mut lines[line % n];
                let positions: Vec<usize> = string_values(line).into_iter().flatten().collect();
                let at = positions[pick % positions.len()];
                let alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/";
                let mut new = alphabet[usize::from(byte) % alphabet.len()];
                if new == line.as_bytes()[at] {
                    new = if new == b'a' { b'b' } else { b'a' };
                }
                line.replace_range(at..=at, &char::from(new).to_string());
            }
            _ => return false,
        }
        true
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        prop_oneof![
            Just(Mutation::None),
            any::<usize>().prop_map(Mutation::Delete),
            (any::<usize>(), any::<usize>())
                .prop_map(|(from, to)| Mutation::Duplicate { from, to }),
            (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Swap(a, b)),
            (any::<usize>(), any::<usize>(), any::<u8>())
                .prop_map(|(line, pick, byte)| Mutation::ModifyByte { line, pick, byte }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_single_mutation_is_detected_and_none_is_clean(
            n in 0usize..25,
            mutation in mutation(),
        ) {
            let (_dir, path, mut lines) = build(n);
            let mutated = mutate(&mut lines, &mutation);
            write(&path, &lines);
            let report = verify(&path, None).unwrap();
            if !mutated {
                prop_assert!(report.is_ok(), "{:?}", report.problems);
            } else {
                prop_assert!(!report.problems.is_empty(), "{mutation:?} went unnoticed");
                prop_assert!(report.problems.len() <= 4, "{:?}", report.problems);
            }
        }
    }
}
