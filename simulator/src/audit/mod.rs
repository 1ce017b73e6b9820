//! The audit trail: an append-only, hash-chained NDJSON log of what happened, and its verifier.
//!
//! [`log::AuditLog`] appends entries (one JSON line each, chained by SHA-256) and anchors the
//! chain's head in a checkpoint file beside the log, on the schedule of an [`FsyncPolicy`];
//! [`verify::verify`] reads a log (and its checkpoint) back and locates every modified, removed,
//! inserted or reordered entry, a cut tail, and a write torn by a crash. `fhirdrill audit verify`
//! is a thin wrapper around [`verify::verify`]. The exact format and what a crash can lose under
//! each policy are documented in [`log`].
//!
//! What it is not: it does not decide what to record (callers pass the event, and pass ids and
//! references only, never PHI values), and a hash chain is tamper-evident, not tamper-proof:
//! someone who can rewrite both the log and its checkpoint can roll both back to an earlier
//! state. Copy the head (`fhirdrill audit verify` prints it) somewhere they cannot write to
//! close that gap.

pub mod log;
pub mod verify;

use std::path::PathBuf;

use sha2::{Digest, Sha256};

pub use log::{AuditLog, Checkpoint, DEFAULT_INTERVAL, FsyncPolicy};
pub use verify::{Problem, ProblemKind, VerifyReport, verify};

/// File name of the log inside the audit folder.
pub const LOG_FILE: &str = "audit.ndjson";
/// File name of the checkpoint inside the audit folder.
pub const CHECKPOINT_FILE: &str = "audit.checkpoint.json";
/// The `prev` of the first entry, and the head of an empty log: 64 zeros.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Why the audit log could not be opened, written or read.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// A file operation failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done, e.g. "read audit log".
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The existing log does not verify: it must be inspected and moved away, never continued.
    #[error(
        "audit log {path} does not verify, refusing to continue it: {first} ({count} problem(s) in \
         all; `fhirdrill audit verify {path}` lists them; move the log and its checkpoint away to \
         start a new one)"
    )]
    Tampered {
        /// The log.
        path: PathBuf,
        /// The first problem found, as printed by `fhirdrill audit verify`.
        first: String,
        /// How many problems were found.
        count: usize,
    },
    /// The log is gone but its checkpoint says it had entries.
    #[error(
        "audit log {path} is missing, but its checkpoint {checkpoint} records {entries} entries: \
         restore the log, or move the checkpoint away to start a new one"
    )]
    LogMissing {
        /// The log that should be there.
        path: PathBuf,
        /// The checkpoint that records it.
        checkpoint: PathBuf,
        /// How many entries the checkpoint records.
        entries: u64,
    },
    /// The checkpoint of a log being opened is not a valid checkpoint.
    #[error("audit checkpoint {path} is not valid: {message}")]
    BadCheckpoint {
        /// The checkpoint.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// Another process holds the log open for writing.
    #[error("audit log {path} is in use by another process (it holds the lock on the file)")]
    Locked {
        /// The log.
        path: PathBuf,
    },
    /// A write or fsync failed earlier: the log accepts no more entries until it is reopened
    /// (reopening verifies it and drops a torn last line).
    #[error("audit log {path} accepts no more entries after a failed write: {reason}")]
    Broken {
        /// The log.
        path: PathBuf,
        /// The failure, as first seen.
        reason: String,
    },
    /// The log was closed.
    #[error("audit log {path} is closed")]
    Closed {
        /// The log.
        path: PathBuf,
    },
    /// A thread panicked while holding the log's lock.
    #[error("audit log {path}: a thread panicked while writing it; reopen it to continue")]
    Poisoned {
        /// The log.
        path: PathBuf,
    },
    /// The event could not be serialized.
    #[error("audit event cannot be serialized: {0}")]
    Event(#[source] serde_json::Error),
    /// An fsync policy was misspelled.
    #[error(
        "invalid fsync policy {0:?}: expected always, never, interval, or an interval such as \
         200ms or 1s"
    )]
    InvalidPolicy(String),
}

/// SHA-256 of a line's bytes (without its newline).
pub(crate) fn hash_line(line: &[u8]) -> [u8; 32] {
    Sha256::digest(line).into()
}

/// Lower-case hex of a hash.
pub(crate) fn to_hex(hash: &[u8; 32]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(64);
    for byte in hash {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// Parses exactly 64 lower-case hex digits.
pub(crate) fn from_hex(text: &str) -> Option<[u8; 32]> {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        out[i] = (digit(pair[0])? << 4) | digit(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_is_lower_case() {
        let hash = hash_line(b"abc");
        let hex = to_hex(&hash);
        assert_eq!(
            hex,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(from_hex(&hex), Some(hash));
        assert_eq!(from_hex(&hex.to_uppercase()), None);
        assert_eq!(from_hex(&hex[1..]), None);
        assert_eq!(from_hex(GENESIS), Some([0; 32]));
    }
}
