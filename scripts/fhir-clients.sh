#!/usr/bin/env bash
# Starts `fhirdrill serve` on a free loopback port and runs the independent-client checks
# (fhirpy) against it, including loading a Synthea transaction bundle from ../shared/data.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bundle="$root/../shared/data/synthea-r4/Abdul_Koepp_e925b0f3-8006-43f6-aa31-94bd215e55e7.json"
cargo build --quiet --release --manifest-path "$root/Cargo.toml"
log="$(mktemp)"
"$root/target/release/fhirdrill" serve --listen 127.0.0.1:0 --patients 20 > "$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 100); do
  url="$(grep -o 'listening on http://[0-9.:]*' "$log" | head -1 | cut -d' ' -f3 || true)"
  [ -n "$url" ] && break
  sleep 0.1
done
if [ -z "${url:-}" ]; then
  echo "the simulator did not start:"; cat "$log"; exit 1
fi
"$root/.venv/bin/python" "$root/scripts/fhirpy_client_test.py" "$url/sandbox/fhir" "$bundle"
