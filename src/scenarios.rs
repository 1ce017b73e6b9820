//! `fhirdrill scenarios list`: the catalog, one scenario per line with its severity and what
//! it needs from the target.

use clap::{Args, Subcommand};
use fhirdrill_scenarios::registry::registry;

/// Arguments of `fhirdrill scenarios`.
#[derive(Debug, Args)]
pub(crate) struct ScenariosArgs {
    #[command(subcommand)]
    command: ScenariosCommand,
}

#[derive(Debug, Subcommand)]
enum ScenariosCommand {
    /// Print the catalog.
    List {
        /// Also print each scenario's summary, controls and fix.
        #[arg(long)]
        long: bool,
    },
}

/// Runs `fhirdrill scenarios`.
pub(crate) fn run(args: ScenariosArgs) {
    let ScenariosCommand::List { long } = args.command;
    print!("{}", catalog(long));
}

/// The catalog as text.
pub(crate) fn catalog(long: bool) -> String {
    let mut out = String::new();
    for scenario in registry() {
        let meta = scenario.meta();
        let needs: Vec<&str> = meta.needs.iter().map(|n| n.describe()).collect();
        out.push_str(&format!(
            "{:<34} {:<9} {}\n",
            meta.id,
            meta.severity.as_str(),
            meta.title
        ));
        if long {
            out.push_str(&format!("    {}\n", meta.summary));
            let controls: Vec<String> = meta.controls.iter().map(|c| c.label()).collect();
            out.push_str(&format!("    controls: {}\n", controls.join("; ")));
            out.push_str(&format!("    needs:    {}\n", needs.join("; ")));
            out.push_str(&format!("    fix:      {}\n\n", meta.fix));
        }
    }
    out
}
