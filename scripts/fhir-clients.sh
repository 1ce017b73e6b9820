#!/usr/bin/env bash
# Starts `fhirdrill serve` on a free loopback port and runs the independent-client checks
# (fhirpy) against it, including loading a Synthea transaction bundle from ../shared/data.
# The client authenticates with the admin token (a full-access bearer), random per run.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bundle="$root/../shared/data/synthea-r4/Abdul_Koepp_e925b0f3-8006-43f6-aa31-94bd215e55e7.json"
cargo build --quiet --release --manifest-path "$root/Cargo.toml"
work="$(mktemp -d)"
log="$work/server.log"
FHIRDRILL_ADMIN_TOKEN="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export FHIRDRILL_ADMIN_TOKEN
server=""
cleanup() {
  status=$?
  if [ -n "$server" ]; then
    kill "$server" 2> /dev/null || true
    wait "$server" 2> /dev/null || true
  fi
  if [ "$status" -ne 0 ]; then
    echo "---- fhirdrill serve log ----"
    cat "$log" || true
    echo "---- end of server log ----"
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
"$root/target/release/fhirdrill" serve --listen 127.0.0.1:0 --patients 20 \
  --admin-token "$FHIRDRILL_ADMIN_TOKEN" --state-dir "$work/state" > "$log" 2>&1 &
server=$!
url=""
for _ in $(seq 1 300); do
  url="$(grep -o 'listening on http://[0-9.:]*' "$log" | head -1 | cut -d' ' -f3 || true)"
  [ -n "$url" ] && break
  kill -0 "$server" 2> /dev/null || break
  sleep 0.1
done
if [ -z "$url" ]; then
  echo "the simulator did not start"
  exit 1
fi
"$root/.venv/bin/python" "$root/scripts/fhirpy_client_test.py" "$url/sandbox/fhir" "$bundle"
