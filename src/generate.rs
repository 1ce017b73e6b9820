//! `fhirdrill generate`: arguments, progress display and the summary line.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, ValueEnum};
use fhirdrill_synthetic_data::dates::DEFAULT_REFERENCE_DATE;
use fhirdrill_synthetic_data::identifiers::MAX_POPULATION;
use fhirdrill_synthetic_data::{
    Generator, OutputFormat, Shard, WriteError, WriteOptions, write_population,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use time::Date;

/// Arguments of `fhirdrill generate`.
#[derive(Debug, Args)]
pub(crate) struct GenerateArgs {
    /// How many patients in the whole population (before sharding).
    #[arg(long, value_name = "N", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(1..=MAX_POPULATION))]
    patients: u64,
    /// The seed: patient i of seed S is the same on every machine.
    #[arg(long, value_name = "S", default_value_t = 1)]
    seed: u64,
    /// The output folder (required; created if missing; must be empty unless --force).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Which files to write.
    #[arg(long, value_enum, default_value_t = Format::Both)]
    format: Format,
    /// Write only part K of M of the population, e.g. 3/16; the M parts concatenated in order
    /// per file equal the whole run.
    #[arg(long, value_name = "K/M", default_value = "1/1")]
    shard: Shard,
    /// The generation date: every event is before it (fixed default, so output never changes
    /// with the calendar).
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date,
          default_value_t = DEFAULT_REFERENCE_DATE)]
    reference_date: Date,
    /// The environment whose MRN identifier system the patients use.
    #[arg(long, value_name = "NAME", default_value = "sandbox", value_parser = parse_environment)]
    environment: String,
    /// Worker threads (default: one per core); the output is the same for any number.
    #[arg(long, value_name = "N", default_value_t = 0)]
    threads: usize,
    /// Replace files in a non-empty output folder.
    #[arg(long)]
    force: bool,
    /// Print nothing but errors.
    #[arg(long, short)]
    quiet: bool,
}

/// Output formats as spelled on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    /// Bulk Data NDJSON, one file per resource type.
    Ndjson,
    /// One FHIR transaction Bundle per patient, under fhir/.
    Bundle,
    /// Both.
    Both,
}

fn parse_date(s: &str) -> Result<Date, String> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(s, &format).map_err(|e| format!("expected a date as YYYY-MM-DD ({e})"))
}

fn parse_environment(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 40
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(s.to_string())
    } else {
        Err("use 1 to 40 lower-case letters, digits or '-', e.g. sandbox".to_string())
    }
}

/// Runs `fhirdrill generate`.
pub(crate) fn run(args: GenerateArgs) -> anyhow::Result<()> {
    let Some(out) = args.out.clone() else {
        anyhow::bail!("--out DIR is required: name the folder to write, e.g. --out synthetic");
    };
    let format = match args.format {
        Format::Ndjson => OutputFormat::Ndjson,
        Format::Bundle => OutputFormat::Bundle,
        Format::Both => OutputFormat::Both,
    };
    let range = args.shard.range(args.patients);
    let generator = Generator::new(args.seed, args.reference_date, &args.environment);
    let options = WriteOptions {
        out: out.clone(),
        format,
        threads: args.threads,
        force: args.force,
        include_shared: args.shard.writes_shared(),
    };
    let bar = progress_bar(range.end - range.start, args.quiet);
    let started = Instant::now();
    let summary = write_population(&generator, range, &options, &|done| bar.set_position(done))
        .map_err(|err| match err {
            WriteError::NotEmpty { .. } => anyhow::Error::from(err),
            other => anyhow::Error::from(other)
                .context("generate stopped and removed its partial output"),
        })?;
    bar.finish_and_clear();
    if !args.quiet {
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "wrote {} patients ({} resources, {:.1} MB) of seed {}, shard {}, to {} in {:.2} s ({:.0} patients/s)",
            summary.patients,
            summary.resources,
            summary.bytes as f64 / 1e6,
            args.seed,
            args.shard,
            out.display(),
            seconds,
            summary.patients as f64 / seconds.max(1e-9),
        );
    }
    Ok(())
}

/// A progress bar on stderr, only for a person watching: hidden with --quiet, in CI, or when
/// stderr is not a terminal.
fn progress_bar(total: u64, quiet: bool) -> ProgressBar {
    let visible = !quiet && std::env::var_os("CI").is_none() && std::io::stderr().is_terminal();
    if !visible {
        return ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(
        "{elapsed_precise} [{bar:40}] {pos}/{len} patients ({per_sec}, {eta} left)",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}
