//! `fhirdrill audit verify`: checks an audit log's hash chain against its checkpoint.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use fhirdrill_simulator::audit::{CHECKPOINT_FILE, verify};

/// Exit code when the command ran and found problems.
const EXIT_FOUND_PROBLEMS: u8 = 1;

/// Arguments of `fhirdrill audit`.
#[derive(Debug, Args)]
pub(crate) struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Verify an audit log: every entry's hash chain link and seq, and the checkpoint's head.
    /// Exits 0 when it verifies, 1 when it found problems (each printed with its line).
    Verify(VerifyArgs),
}

/// Arguments of `fhirdrill audit verify`.
#[derive(Debug, Args)]
struct VerifyArgs {
    /// The log (audit.ndjson in the serve command's state folder, under audit/).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// The checkpoint to check the log against (default: audit.checkpoint.json beside the
    /// log, if there is one).
    #[arg(long, value_name = "FILE")]
    checkpoint: Option<PathBuf>,
}

/// Runs `fhirdrill audit`.
pub(crate) fn run(args: AuditArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        AuditCommand::Verify(args) => run_verify(&args),
    }
}

fn run_verify(args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let report = verify(&args.file, args.checkpoint.as_deref())?;
    if report.checkpoint_path.is_none() {
        eprintln!(
            "warning: no checkpoint ({CHECKPOINT_FILE}) beside {}: a cut tail cannot be detected",
            args.file.display()
        );
    }
    if report.is_ok() {
        println!("ok: {} entries, head {}", report.entries, report.head);
        return Ok(ExitCode::SUCCESS);
    }
    for problem in &report.problems {
        println!("{problem}");
    }
    let total = report.problems.len();
    let tampering = report.tampering().count();
    let torn = total - tampering;
    let mut kinds = Vec::new();
    if tampering > 0 {
        kinds.push(format!("{tampering} sign(s) of tampering or corruption"));
    }
    if torn > 0 {
        kinds.push(format!("{torn} torn write(s) from a crash"));
    }
    println!(
        "FAILED: {} does not verify: {total} problem(s) ({}) in {} entries",
        args.file.display(),
        kinds.join(", "),
        report.entries
    );
    Ok(ExitCode::from(EXIT_FOUND_PROBLEMS))
}
