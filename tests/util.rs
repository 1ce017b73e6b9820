//! Running the real `fhirdrill` binary and reading what it wrote.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

/// Runs `fhirdrill` with `args`.
pub(crate) fn fhirdrill(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fhirdrill"))
        .args(args)
        .env("CI", "true")
        .output()
        .expect("the fhirdrill binary runs")
}

/// Every file under `dir` (relative path → bytes).
pub(crate) fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    collect(dir, dir, &mut out);
    out
}

fn collect(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
    for entry in std::fs::read_dir(dir).expect("readable folder") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            collect(root, &path, out);
        } else {
            let name = path
                .strip_prefix(root)
                .expect("under root")
                .to_string_lossy()
                .into_owned();
            out.insert(name, std::fs::read(&path).expect("readable file"));
        }
    }
}
