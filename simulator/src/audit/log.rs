//! The append-only, hash-chained audit log and its checkpoint.
//!
//! # Format
//!
//! The log is `audit.ndjson`: UTF-8, one entry per line, each line a compact JSON object with
//! exactly three members, in this order, and a `\n` after it:
//!
//! ```text
//! {"seq":1,"prev":"0000000000000000000000000000000000000000000000000000000000000000","event":{...}}
//! {"seq":2,"prev":"<sha-256 of line 1>","event":{...}}
//! ```
//!
//! - `seq` numbers the entries 1, 2, 3, … with no gap: entry `seq` is line `seq`.
//! - `prev` is the lower-case hex SHA-256 of the previous line's bytes exactly as written, without
//!   its `\n`; the first entry's `prev` is 64 zeros ([`GENESIS`](super::GENESIS)).
//! - `event` is the caller's JSON value, serialized compactly (object members in the caller's
//!   order). Callers pass ids and references only, never PHI values; the log adds nothing else.
//!
//! The hash of an entry is the SHA-256 of its line's bytes; each line is serialized once, and the
//! same bytes are hashed and written. The chain's *head* is the hash of the last line (64 zeros
//! when the log is empty).
//!
//! The checkpoint is `audit.checkpoint.json`, one JSON object:
//!
//! ```text
//! {"entries":1234,"head":"<sha-256 of line 1234>","updated":"2026-11-22T10:00:00.123Z"}
//! ```
//!
//! It is replaced atomically: written to `audit.checkpoint.json.tmp`, fsynced, renamed over the
//! old one, and the folder fsynced (on Unix).
//!
//! # Why a checkpoint
//!
//! Each entry commits to its predecessor, not to its successor, so a log with its last entries
//! cut off is still a valid chain: the chain alone cannot see a cut tail. The checkpoint anchors
//! the head outside the log. It is written only after the log has been fsynced up to the entry it
//! names, so it never claims an entry that is not durable: after any crash the log holds at least
//! the entries the checkpoint records, and [`verify`](super::verify::verify) reports a log that
//! ends before the checkpoint's head, or whose entry `entries` does not hash to `head`. The log
//! may legitimately run ahead of its checkpoint (entries written since the last checkpoint).
//!
//! The checkpoint does not stop someone who can rewrite both files from rolling both back to an
//! earlier state, or from rebuilding the chain and writing a matching checkpoint: copy the head
//! somewhere they cannot write to (CI output, another machine) to detect that.
//!
//! # Fsync policy and what a crash can lose
//!
//! - [`FsyncPolicy::Always`]: [`AuditLog::append`] writes its line, fsyncs the log, rewrites the
//!   checkpoint, and only then returns. No entry whose `append` returned is ever lost. An append
//!   in progress when the machine crashes may leave a torn last line, or a complete line that no
//!   checkpoint covers yet (kept on reopen). Cost: an fsync of the log plus a checkpoint rewrite
//!   per append; appends that wait at the same time share one fsync.
//! - [`FsyncPolicy::Interval`] (the default, every 200 ms): `append` puts the line in a buffer and
//!   returns. A background thread, each interval in which something was appended, writes the
//!   buffer out, fsyncs the log, then rewrites the checkpoint. A killed process loses the entries
//!   still in its buffer (those appended since the last write-out); an OS crash or power loss
//!   loses those not yet fsynced: at most about one interval of entries. Either may leave a torn
//!   last line. Entries covered by a checkpoint are never lost.
//! - [`FsyncPolicy::Never`]: lines are buffered and nothing is fsynced, and no checkpoint is
//!   written, until [`AuditLog::flush`], [`AuditLog::close`] or drop. Everything since the last
//!   flush can be lost. For tests.
//!
//! Under every policy, [`AuditLog::close`] and drop write out, fsync and checkpoint everything.
//!
//! # Reopening
//!
//! [`AuditLog::open`] on an existing log verifies it with its checkpoint and continues the chain
//! from its last entry. A torn last line (a crash in the middle of a write: the line has no final
//! `\n` and is not a complete entry) is cut off, and a complete last entry missing only its `\n`
//! gets it, each with a warning; any other problem refuses the open with an error naming the
//! file and the first problem. A log is never silently replaced by a new chain. The log file is
//! locked while open, so two processes cannot interleave their chains.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::verify::{self, ProblemKind};
use super::{AuditError, CHECKPOINT_FILE, LOG_FILE, from_hex, hash_line, to_hex};
use crate::clock::fhir_instant;

/// The default interval of [`FsyncPolicy::Interval`]: 200 ms.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(200);

/// When the log is fsynced and the checkpoint rewritten (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// On every append, before it returns.
    Always,
    /// In the background, every interval in which something was appended.
    Interval(Duration),
    /// Only on flush, close and drop (for tests).
    Never,
}

impl Default for FsyncPolicy {
    fn default() -> Self {
        Self::Interval(DEFAULT_INTERVAL)
    }
}

impl fmt::Display for FsyncPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Always => f.write_str("always"),
            Self::Never => f.write_str("never"),
            Self::Interval(d) => {
                let nanos = d.as_nanos();
                if nanos % 1_000_000_000 == 0 {
                    write!(f, "{}s", nanos / 1_000_000_000)
                } else if nanos % 1_000_000 == 0 {
                    write!(f, "{}ms", nanos / 1_000_000)
                } else if nanos % 1_000 == 0 {
                    write!(f, "{}us", nanos / 1_000)
                } else {
                    write!(f, "{nanos}ns")
                }
            }
        }
    }
}

impl FromStr for FsyncPolicy {
    type Err = AuditError;

    /// `always`, `never`, `interval` (200 ms), or an interval: `500ms`, `1s`, `interval:500ms`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || AuditError::InvalidPolicy(s.to_string());
        let text = s.trim().to_ascii_lowercase();
        match text.as_str() {
            "always" => return Ok(Self::Always),
            "never" => return Ok(Self::Never),
            "interval" => return Ok(Self::default()),
            _ => {}
        }
        let spec = text
            .strip_prefix("interval:")
            .or_else(|| text.strip_prefix("interval="))
            .unwrap_or(&text);
        let split = spec
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(invalid)?;
        let (number, unit) = spec.split_at(split);
        let number: u64 = number.parse().map_err(|_| invalid())?;
        let interval = match unit {
            "s" => Duration::from_secs(number),
            "ms" => Duration::from_millis(number),
            "us" => Duration::from_micros(number),
            "ns" => Duration::from_nanos(number),
            _ => return Err(invalid()),
        };
        if interval.is_zero() {
            return Err(invalid());
        }
        Ok(Self::Interval(interval))
    }
}

/// The content of `audit.checkpoint.json`: how many entries were durable, and the last one's hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// Number of entries fsynced in the log when the checkpoint was written.
    pub entries: u64,
    /// Lower-case hex SHA-256 of line `entries` (64 zeros when `entries` is 0).
    pub head: String,
    /// When the checkpoint was written (RFC 3339, UTC).
    pub updated: String,
}

impl Checkpoint {
    /// Reads and checks a checkpoint file.
    pub fn read(path: &Path) -> Result<Self, AuditError> {
        let text = fs::read_to_string(path).map_err(|source| AuditError::Io {
            action: "read audit checkpoint",
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text).map_err(|message| AuditError::BadCheckpoint {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Parses a checkpoint's text, checking that `head` is 64 lower-case hex digits.
    pub fn parse(text: &str) -> Result<Self, String> {
        let checkpoint: Self =
            serde_json::from_str(text).map_err(|e| format!("not a checkpoint: {e}"))?;
        if from_hex(&checkpoint.head).is_none() {
            return Err(format!(
                "head {:?} is not 64 lower-case hex digits",
                checkpoint.head
            ));
        }
        if checkpoint.entries == 0 && checkpoint.head != super::GENESIS {
            return Err("it records 0 entries but its head is not 64 zeros".to_string());
        }
        Ok(checkpoint)
    }
}

/// The audit log: appends hash-chained entries from many threads, syncs them by its
/// [`FsyncPolicy`], and anchors the head in a checkpoint (see the [module docs](self)).
#[derive(Debug)]
pub struct AuditLog {
    inner: Arc<Inner>,
    flusher: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    dir: PathBuf,
    checkpoint_path: PathBuf,
    policy: FsyncPolicy,
    /// A second handle on the log, to fsync it without holding `state`.
    sync_file: File,
    state: Mutex<State>,
    /// Wakes the background flusher when the log is closing.
    wake: Condvar,
    /// Entries covered by the last checkpoint written. Held across fsync + checkpoint, so those
    /// happen one at a time and checkpoints only move forward. Lock order: `synced`, then `state`.
    synced: Mutex<u64>,
}

#[derive(Debug)]
struct State {
    writer: BufWriter<File>,
    entries: u64,
    head: [u8; 32],
    /// Lines in `writer` not yet handed to the OS.
    buffered: bool,
    /// The first write or fsync failure: no more appends after it.
    broken: Option<String>,
    closed: bool,
    /// The line being built, kept to reuse its allocation.
    line: Vec<u8>,
}

impl AuditLog {
    /// Opens (creating if needed) the log `dir/audit.ndjson`, continuing an existing one after
    /// verifying it; refuses a log that does not verify, and a missing log whose checkpoint
    /// records entries.
    pub fn open(dir: &Path, policy: FsyncPolicy) -> Result<Self, AuditError> {
        if let FsyncPolicy::Interval(interval) = policy
            && interval.is_zero()
        {
            return Err(AuditError::InvalidPolicy(policy.to_string()));
        }
        let io = |action, path: &Path| {
            let path = path.to_path_buf();
            move |source| AuditError::Io {
                action,
                path,
                source,
            }
        };
        fs::create_dir_all(dir).map_err(io("create audit folder", dir))?;
        let path = dir.join(LOG_FILE);
        let checkpoint_path = dir.join(CHECKPOINT_FILE);
        let existed = path.try_exists().map_err(io("look for audit log", &path))?;
        if !existed
            && checkpoint_path
                .try_exists()
                .map_err(io("look for audit checkpoint", &checkpoint_path))?
        {
            let checkpoint = Checkpoint::read(&checkpoint_path)?;
            if checkpoint.entries > 0 {
                return Err(AuditError::LogMissing {
                    path,
                    checkpoint: checkpoint_path,
                    entries: checkpoint.entries,
                });
            }
        }
        let mut file = OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
            .map_err(io("open audit log", &path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(AuditError::Locked { path }),
            Err(fs::TryLockError::Error(e)) if e.kind() == std::io::ErrorKind::Unsupported => {
                tracing::warn!(path = %path.display(), "cannot lock the audit log on this file system");
            }
            Err(fs::TryLockError::Error(source)) => {
                return Err(AuditError::Io {
                    action: "lock audit log",
                    path,
                    source,
                });
            }
        }
        let (entries, head) = if existed {
            recover(&path, &mut file)?
        } else {
            sync_dir(dir)?;
            (0, [0; 32])
        };
        file.sync_data().map_err(io("fsync audit log", &path))?;
        write_checkpoint(dir, &checkpoint_path, entries, &head)?;
        let sync_file = file.try_clone().map_err(io("open audit log", &path))?;
        let inner = Arc::new(Inner {
            path,
            dir: dir.to_path_buf(),
            checkpoint_path,
            policy,
            sync_file,
            state: Mutex::new(State {
                writer: BufWriter::with_capacity(64 * 1024, file),
                entries,
                head,
                buffered: false,
                broken: None,
                closed: false,
                line: Vec::with_capacity(4096),
            }),
            wake: Condvar::new(),
            synced: Mutex::new(entries),
        });
        let flusher = match policy {
            FsyncPolicy::Interval(interval) => {
                let worker = Arc::clone(&inner);
                let handle = std::thread::Builder::new()
                    .name("audit-fsync".to_string())
                    .spawn(move || worker.run_flusher(interval))
                    .map_err(io("start the fsync thread of", &inner.path))?;
                Some(handle)
            }
            FsyncPolicy::Always | FsyncPolicy::Never => None,
        };
        Ok(Self {
            inner,
            flusher: Mutex::new(flusher),
        })
    }

    /// Appends one entry holding `event` and returns its `seq`. Under [`FsyncPolicy::Always`] the
    /// entry is durable and checkpointed when this returns; otherwise it is on its way.
    pub fn append(&self, event: serde_json::Value) -> Result<u64, AuditError> {
        self.append_serialized(&event)
    }

    /// Like [`append`](Self::append), for any serializable event (no intermediate JSON tree).
    pub fn append_serialized(&self, event: &impl serde::Serialize) -> Result<u64, AuditError> {
        let seq = {
            let mut guard = self.inner.lock()?;
            let state = &mut *guard;
            if state.closed {
                return Err(AuditError::Closed {
                    path: self.inner.path.clone(),
                });
            }
            if let Some(reason) = &state.broken {
                return Err(self.inner.broken(reason));
            }
            let seq = state.entries + 1;
            // Built in place: `{"seq":N,"prev":"<hex>","event":<event>}`, hashed, then `\n`.
            let line = &mut state.line;
            line.clear();
            line.extend_from_slice(b"{\"seq\":");
            line.extend_from_slice(seq.to_string().as_bytes());
            line.extend_from_slice(b",\"prev\":\"");
            line.extend_from_slice(to_hex(&state.head).as_bytes());
            line.extend_from_slice(b"\",\"event\":");
            serde_json::to_writer(&mut *line, event).map_err(AuditError::Event)?;
            line.push(b'}');
            let hash = hash_line(line);
            line.push(b'\n');
            if let Err(e) = state.writer.write_all(line) {
                let reason = format!("write failed: {e}");
                let err = self.inner.broken(&reason);
                state.broken = Some(reason);
                return Err(err);
            }
            state.entries = seq;
            state.head = hash;
            state.buffered = true;
            seq
        };
        if self.inner.policy == FsyncPolicy::Always {
            self.inner.sync(seq)?;
        }
        Ok(seq)
    }

    /// Writes out, fsyncs and checkpoints every entry appended so far.
    pub fn flush(&self) -> Result<(), AuditError> {
        self.inner.sync(u64::MAX)
    }

    /// Stops the background flusher, then writes out, fsyncs and checkpoints everything; later
    /// appends fail. Closing twice is harmless.
    pub fn close(&self) -> Result<(), AuditError> {
        {
            let mut state = self.inner.lock()?;
            state.closed = true;
        }
        self.inner.wake.notify_all();
        let handle = self
            .flusher
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(handle) = handle
            && handle.join().is_err()
        {
            tracing::error!(path = %self.inner.path.display(), "the audit fsync thread panicked");
        }
        self.inner.sync(u64::MAX)
    }

    /// The number of entries appended so far and the head (hex hash of the last line; 64 zeros
    /// when empty), including entries not yet fsynced.
    pub fn head(&self) -> (u64, String) {
        let state = self
            .inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        (state.entries, to_hex(&state.head))
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The checkpoint file.
    pub fn checkpoint_path(&self) -> &Path {
        &self.inner.checkpoint_path
    }

    /// The fsync policy.
    pub fn policy(&self) -> FsyncPolicy {
        self.inner.policy
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        if let Err(error) = self.close() {
            tracing::error!(%error, "closing the audit log failed");
        }
    }
}

impl Inner {
    fn lock(&self) -> Result<MutexGuard<'_, State>, AuditError> {
        self.state.lock().map_err(|_| AuditError::Poisoned {
            path: self.path.clone(),
        })
    }

    fn broken(&self, reason: &str) -> AuditError {
        AuditError::Broken {
            path: self.path.clone(),
            reason: reason.to_string(),
        }
    }

    /// Makes every entry up to at least `seq` durable and checkpointed (all of them for
    /// `u64::MAX`). Entries appended meanwhile ride along in the same fsync.
    fn sync(&self, seq: u64) -> Result<(), AuditError> {
        let mut synced = self.synced.lock().map_err(|_| AuditError::Poisoned {
            path: self.path.clone(),
        })?;
        if *synced >= seq {
            return Ok(());
        }
        let (entries, head) = {
            let mut state = self.lock()?;
            if let Some(reason) = &state.broken {
                return Err(self.broken(reason));
            }
            if state.buffered {
                if let Err(e) = state.writer.flush() {
                    let reason = format!("write failed: {e}");
                    let err = self.broken(&reason);
                    state.broken = Some(reason);
                    return Err(err);
                }
                state.buffered = false;
            }
            (state.entries, state.head)
        };
        if *synced >= entries {
            return Ok(());
        }
        if let Err(e) = self.sync_file.sync_data() {
            // After a failed fsync the kernel may have dropped the dirty pages: never retry it
            // and carry on as if the lines were safe.
            let reason = format!("fsync failed: {e}");
            let err = self.broken(&reason);
            self.lock()?.broken = Some(reason);
            return Err(err);
        }
        write_checkpoint(&self.dir, &self.checkpoint_path, entries, &head)?;
        *synced = entries;
        Ok(())
    }

    /// The background flusher of [`FsyncPolicy::Interval`]: syncs every `interval` until closed.
    fn run_flusher(&self, interval: Duration) {
        let mut reported = false;
        loop {
            let Ok(state) = self.state.lock() else { return };
            let Ok((state, _)) = self.wake.wait_timeout_while(state, interval, |s| !s.closed)
            else {
                return;
            };
            if state.closed {
                return;
            }
            drop(state);
            match self.sync(u64::MAX) {
                Ok(()) => reported = false,
                Err(error) if !reported => {
                    tracing::error!(%error, "audit log sync failed");
                    reported = true;
                }
                Err(_) => {}
            }
        }
    }
}

/// Verifies an existing log and repairs a torn last line; returns its entry count and head.
fn recover(path: &Path, file: &mut File) -> Result<(u64, [u8; 32]), AuditError> {
    let report = verify::verify(path, None)?;
    let head = from_hex(&report.head).unwrap_or([0; 32]);
    match report.problems.as_slice() {
        [] => {}
        [problem] if problem.kind == ProblemKind::TornWrite => {
            file.set_len(report.complete_len)
                .map_err(|source| AuditError::Io {
                    action: "cut the torn last line of audit log",
                    path: path.to_path_buf(),
                    source,
                })?;
            tracing::warn!(
                path = %path.display(),
                line = problem.line,
                "audit log: cut off a torn last line left by a crash during a write"
            );
        }
        [problem] if problem.kind == ProblemKind::MissingNewline => {
            file.write_all(b"\n").map_err(|source| AuditError::Io {
                action: "complete the last line of audit log",
                path: path.to_path_buf(),
                source,
            })?;
            tracing::warn!(
                path = %path.display(),
                line = problem.line,
                "audit log: added the missing newline after the last entry"
            );
        }
        problems => {
            return Err(AuditError::Tampered {
                path: path.to_path_buf(),
                first: problems
                    .first()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                count: problems.len(),
            });
        }
    }
    Ok((report.entries, head))
}

/// Replaces the checkpoint atomically: temporary file, fsync, rename, folder fsync.
fn write_checkpoint(
    dir: &Path,
    path: &Path,
    entries: u64,
    head: &[u8; 32],
) -> Result<(), AuditError> {
    let checkpoint = Checkpoint {
        entries,
        head: to_hex(head),
        updated: fhir_instant(time::OffsetDateTime::now_utc()),
    };
    let mut text = serde_json::to_string(&checkpoint).map_err(AuditError::Event)?;
    text.push('\n');
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let write = || -> std::io::Result<()> {
        let mut file = File::create(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()
    };
    write().map_err(|source| AuditError::Io {
        action: "write audit checkpoint",
        path: tmp.clone(),
        source,
    })?;
    fs::rename(&tmp, path).map_err(|source| AuditError::Io {
        action: "replace audit checkpoint",
        path: path.to_path_buf(),
        source,
    })?;
    sync_dir(dir)
}

/// Fsyncs a folder so a file created or renamed in it survives a crash (Unix only: other
/// systems cannot open a folder as a file).
fn sync_dir(dir: &Path) -> Result<(), AuditError> {
    if cfg!(unix) {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|source| AuditError::Io {
                action: "fsync audit folder",
                path: dir.to_path_buf(),
                source,
            })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{GENESIS, verify::verify};
    use serde_json::json;

    fn event(i: u64) -> serde_json::Value {
        json!({"type": "read", "client": "app-1", "what": format!("Patient/p{i}")})
    }

    fn lines(path: &Path) -> Vec<String> {
        fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn lines_are_chained_and_the_checkpoint_names_the_head() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path(), FsyncPolicy::Always).unwrap();
        assert_eq!(log.head(), (0, GENESIS.to_string()));
        assert_eq!(log.append(event(1)).unwrap(), 1);
        assert_eq!(log.append(event(2)).unwrap(), 2);
        let text = fs::read_to_string(log.path()).unwrap();
        assert!(text.ends_with('\n'));
        let lines = lines(log.path());
        assert_eq!(
            lines[0],
            format!(
                r#"{{"seq":1,"prev":"{GENESIS}","event":{{"type":"read","client":"app-1","what":"Patient/p1"}}}}"#
            )
        );
        let first = to_hex(&hash_line(lines[0].as_bytes()));
        assert!(lines[1].starts_with(&format!(r#"{{"seq":2,"prev":"{first}","event":"#)));
        let second = to_hex(&hash_line(lines[1].as_bytes()));
        assert_eq!(log.head(), (2, second.clone()));
        // Always: the checkpoint is current as soon as append returns.
        let checkpoint = Checkpoint::read(log.checkpoint_path()).unwrap();
        assert_eq!((checkpoint.entries, checkpoint.head), (2, second));
        let report = verify(log.path(), None).unwrap();
        assert!(report.is_ok(), "{:?}", report.problems);
        assert_eq!(report.entries, 2);
    }

    #[test]
    fn a_new_log_starts_with_an_empty_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(&dir.path().join("state"), FsyncPolicy::Never).unwrap();
        let checkpoint = Checkpoint::read(log.checkpoint_path()).unwrap();
        assert_eq!((checkpoint.entries, checkpoint.head.as_str()), (0, GENESIS));
        assert!(fs::read(log.path()).unwrap().is_empty());
    }

    #[test]
    fn never_checkpoints_only_on_flush_and_the_checkpoint_never_runs_ahead() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path(), FsyncPolicy::Never).unwrap();
        for i in 0..5 {
            log.append(event(i)).unwrap();
        }
        assert_eq!(Checkpoint::read(log.checkpoint_path()).unwrap().entries, 0);
        log.flush().unwrap();
        let checkpoint = Checkpoint::read(log.checkpoint_path()).unwrap();
        assert_eq!((checkpoint.entries, checkpoint.head), log.head());
        assert_eq!(lines(log.path()).len(), 5);
    }

    #[test]
    fn interval_syncs_in_the_background_and_on_close() {
        let dir = tempfile::tempdir().unwrap();
        let log =
            AuditLog::open(dir.path(), FsyncPolicy::Interval(Duration::from_millis(10))).unwrap();
        log.append(event(1)).unwrap();
        let mut waited = 0;
        while Checkpoint::read(log.checkpoint_path()).unwrap().entries < 1 {
            assert!(waited < 500, "the flusher never ran");
            std::thread::sleep(Duration::from_millis(10));
            waited += 1;
        }
        log.append(event(2)).unwrap();
        log.close().unwrap();
        assert_eq!(Checkpoint::read(log.checkpoint_path()).unwrap().entries, 2);
        assert!(matches!(
            log.append(event(3)),
            Err(AuditError::Closed { .. })
        ));
        log.close().unwrap();
    }

    #[test]
    fn drop_writes_out_and_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        let head = {
            let log = AuditLog::open(dir.path(), FsyncPolicy::default()).unwrap();
            for i in 0..3 {
                log.append(event(i)).unwrap();
            }
            log.head()
        };
        let checkpoint = Checkpoint::read(&dir.path().join(CHECKPOINT_FILE)).unwrap();
        assert_eq!((checkpoint.entries, checkpoint.head), head);
        assert!(verify(&dir.path().join(LOG_FILE), None).unwrap().is_ok());
    }

    #[test]
    fn reopening_continues_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        {
            let log = AuditLog::open(dir.path(), FsyncPolicy::Never).unwrap();
            for i in 0..3 {
                log.append(event(i)).unwrap();
            }
        }
        let log = AuditLog::open(dir.path(), FsyncPolicy::Always).unwrap();
        assert_eq!(log.head().0, 3);
        assert_eq!(log.append(event(3)).unwrap(), 4);
        assert_eq!(log.append(event(4)).unwrap(), 5);
        let seqs: Vec<u64> = lines(log.path())
            .iter()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(seqs, [1, 2, 3, 4, 5]);
        let report = verify(log.path(), None).unwrap();
        assert!(report.is_ok(), "{:?}", report.problems);
        assert_eq!(report.entries, 5);
    }

    #[test]
    fn reopening_a_tampered_log_is_refused_and_leaves_it_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = {
            let log = AuditLog::open(dir.path(), FsyncPolicy::Never).unwrap();
            for i in 0..4 {
                log.append(event(i)).unwrap();
            }
            log.path().to_path_buf()
        };
        let tampered = fs::read_to_string(&path)
            .unwrap()
            .replacen("Patient/p1", "Patient/p9", 1);
        fs::write(&path, &tampered).unwrap();
        let err = AuditLog::open(dir.path(), FsyncPolicy::Always).unwrap_err();
        let message = err.to_string();
        assert!(
            matches!(err, AuditError::Tampered { count: 1, .. }),
            "{message}"
        );
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(
            message.contains("line 2 (seq 2): entry was modified"),
            "{message}"
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), tampered);
    }

    #[test]
    fn reopening_a_log_with_its_tail_cut_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = {
            let log = AuditLog::open(dir.path(), FsyncPolicy::Never).unwrap();
            for i in 0..4 {
                log.append(event(i)).unwrap();
            }
            log.path().to_path_buf()
        };
        let kept: String = lines(&path)[..3].iter().map(|l| format!("{l}\n")).collect();
        fs::write(&path, kept).unwrap();
        let err = AuditLog::open(dir.path(), FsyncPolicy::Never).unwrap_err();
        assert!(err.to_string().contains("log was cut"), "{err}");
    }

    #[test]
    fn a_deleted_log_with_a_checkpoint_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let log = AuditLog::open(dir.path(), FsyncPolicy::Never).unwrap();
            log.append(event(1)).unwrap();
        }
        fs::remove_file(dir.path().join(LOG_FILE)).unwrap();
        let err = AuditLog::open(dir.path(), FsyncPolicy::Never).unwrap_err();
        assert!(
            matches!(err, AuditError::LogMissing { entries: 1, .. }),
            "{err}"
        );
    }

    #[test]
    fn reopening_after_a_torn_write_cuts_the_torn_line_and_continues() {
        let dir = tempfile::tempdir().unwrap();
        let path = {
            let log = AuditLog::open(dir.path(), FsyncPolicy::Never).unwrap();
            for i in 0..3 {
                log.append(event(i)).unwrap();
            }
            log.path().to_path_buf()
        };
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(br#"{"seq":4,"prev":"ab"#).unwrap();
        drop(file);
        let log = AuditLog::open(dir.path(), FsyncPolicy::Never).unwrap();
        assert_eq!(log.append(event(3)).unwrap(), 4);
        log.close().unwrap();
        let report = verify(&path, None).unwrap();
        assert!(report.is_ok(), "{:?}", report.problems);
        assert_eq!(report.entries, 4);
    }

    #[test]
    fn reopening_adds_a_missing_final_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = {
            let log = AuditLog::open(dir.path(), FsyncPolicy::Never).unwrap();
            log.append(event(1)).unwrap();
            log.path().to_path_buf()
        };
        let text = fs::read_to_string(&path).unwrap();
        fs::write(&path, text.trim_end()).unwrap();
        let log = AuditLog::open(dir.path(), FsyncPolicy::Never).unwrap();
        assert_eq!(log.append(event(2)).unwrap(), 2);
        log.close().unwrap();
        assert!(verify(&path, None).unwrap().is_ok());
    }

    #[test]
    fn a_second_writer_is_refused_while_the_log_is_open() {
        let dir = tempfile::tempdir().unwrap();
        let _log = AuditLog::open(dir.path(), FsyncPolicy::Never).unwrap();
        let err = AuditLog::open(dir.path(), FsyncPolicy::Never).unwrap_err();
        assert!(matches!(err, AuditError::Locked { .. }), "{err}");
    }

    #[test]
    fn concurrent_appends_get_distinct_seqs_and_a_valid_chain() {
        for policy in [FsyncPolicy::Always, FsyncPolicy::default()] {
            let dir = tempfile::tempdir().unwrap();
            let log = AuditLog::open(dir.path(), policy).unwrap();
            let mut seqs: Vec<u64> = std::thread::scope(|scope| {
                let workers: Vec<_> = (0..8)
                    .map(|t| {
                        let log = &log;
                        scope.spawn(move || {
                            (0..200)
                                .map(|i| log.append(json!({"thread": t, "i": i})).unwrap())
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                workers
                    .into_iter()
                    .flat_map(|w| w.join().unwrap())
                    .collect()
            });
            seqs.sort_unstable();
            assert_eq!(seqs, (1..=1600).collect::<Vec<_>>(), "{policy}");
            log.close().unwrap();
            let report = verify(log.path(), None).unwrap();
            assert!(report.is_ok(), "{policy}: {:?}", report.problems);
            assert_eq!(report.entries, 1600);
            assert_eq!(report.checkpoint.map(|c| c.entries), Some(1600));
        }
    }

    #[test]
    fn policies_parse_and_print() {
        for (text, policy) in [
            ("always", FsyncPolicy::Always),
            ("never", FsyncPolicy::Never),
            ("interval", FsyncPolicy::Interval(DEFAULT_INTERVAL)),
            ("200ms", FsyncPolicy::Interval(DEFAULT_INTERVAL)),
            ("Interval:1s", FsyncPolicy::Interval(Duration::from_secs(1))),
            (
                "interval=1500ms",
                FsyncPolicy::Interval(Duration::from_millis(1500)),
            ),
        ] {
            assert_eq!(text.parse::<FsyncPolicy>().unwrap(), policy, "{text}");
            assert_eq!(policy.to_string().parse::<FsyncPolicy>().unwrap(), policy);
        }
        assert_eq!(FsyncPolicy::default().to_string(), "200ms");
        assert_eq!(
            FsyncPolicy::Interval(Duration::from_secs(2)).to_string(),
            "2s"
        );
        for bad in ["", "sometimes", "0ms", "10", "ms", "5 min", "-1s"] {
            let err = bad.parse::<FsyncPolicy>().unwrap_err();
            assert!(err.to_string().starts_with("invalid fsync policy"), "{bad}");
        }
        let dir = tempfile::tempdir().unwrap();
        assert!(AuditLog::open(dir.path(), FsyncPolicy::Interval(Duration::ZERO)).is_err());
    }
}
