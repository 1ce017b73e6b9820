#!/usr/bin/env bash
# Generates a 200-patient population with the release build and validates every resource with
# the independent Python package fhir.resources (FHIR R4). Prints "N passed, M failed".
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
cargo run --quiet --release --manifest-path "$root/Cargo.toml" -- \
  generate --patients 200 --seed 42 --out "$out/data" --quiet
"$root/.venv/bin/python" "$root/scripts/validate_fhir.py" "$out/data"
