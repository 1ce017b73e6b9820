#!/usr/bin/env bash
# Load runs against the simulator on 127.0.0.1, each compared in the same run with a bare warp
# server that returns a body of the same size. Requires wrk (Debian: apt-get install wrk).
#
#   bench/load.sh [PATIENTS] [DURATION]      defaults: 10000 patients, 15s per run
#
# Prints requests/s, p99 latency and the ratio to the bare server for:
#   1. read by id (GET Patient/<id>), 64 connections, with the admin token
#   2. search returning 50 Observations of one patient, 64 connections, with the admin token
# then the cost of enforcement — the same read with a patient token (SMART patient/*.rs,
# obtained through the real flow), against the admin token, which skips every access check —
# and the token endpoint: client_credentials grants with RS384 assertions (bench/token_load.rs).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
patients="${1:-10000}"
duration="${2:-15s}"
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk"; exit 2; }
cargo build --quiet --release --manifest-path "$root/Cargo.toml" --bin fhirdrill --example bare_warp --example token_load -p fhirdrill -p fhirdrill-simulator
work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  # The simulator closes its audit log on SIGTERM: let it finish before its folder goes.
  for p in "${pids[@]}"; do
    for _ in $(seq 1 60); do kill -0 "$p" 2>/dev/null || break; sleep 0.5; done
  done
  rm -rf "$work"
}
trap cleanup EXIT

admin="bench-admin-$RANDOM-$RANDOM-$RANDOM"
/usr/bin/time -v "$root/target/release/fhirdrill" serve --listen 127.0.0.1:0 --patients "$patients" \
  --admin-token "$admin" --state-dir "$work/state" > "$work/sim.log" 2> "$work/sim.time" &
pids+=($!)
for _ in $(seq 1 600); do grep -q "listening on" "$work/sim.log" && break; sleep 0.5; done
url="$(grep -o 'listening on http://[0-9.:]*' "$work/sim.log" | cut -d' ' -f3)"
base="$url/sandbox/fhir"
echo "simulator: $(head -2 "$work/sim.log" | tr '\n' ' ')"
rss_kb="$(ps -o rss= -p "${pids[0]}" | tr -d ' ')"
# The resident size of the fhirdrill process itself (the child of /usr/bin/time).
sim_pid="$(pgrep -P "${pids[0]}" fhirdrill || echo "${pids[0]}")"
# /usr/bin/time does not pass SIGTERM on: stop the simulator itself at the end.
pids=("$sim_pid" "${pids[@]}")
rss_kb="$(ps -o rss= -p "$sim_pid" | tr -d ' ')"
echo "resident memory after start-up: $((rss_kb / 1024)) MiB"

auth="Authorization: Bearer $admin"
patient="$(curl -s -H "$auth" "$base/Patient?_count=1&_elements=id" | python3 -c 'import json,sys; print(json.load(sys.stdin)["entry"][0]["resource"]["id"])')"
read -r token_patient patient_token < <(python3 "$root/bench/patient_token.py" "$url" "$admin")
read_path="/sandbox/fhir/Patient/$patient"
search_path="/sandbox/fhir/Observation?patient=$patient&_count=50"
curl -s -H "$auth" "$url$read_path" > "$work/read.json"
curl -s -H "$auth" "$url$search_path" > "$work/search.json"
echo "read body: $(wc -c < "$work/read.json") bytes; search body: $(wc -c < "$work/search.json") bytes ($(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1])).get("entry",[])))' "$work/search.json") entries)"

run() { # url [authorization header] -> "requests/s p99"
  wrk -t2 -c64 -d"$duration" --latency ${2:+-H "$2"} "$1" > "$work/wrk.out"
  local rps p99
  rps="$(awk '/Requests\/sec/ {print $2}' "$work/wrk.out")"
  p99="$(awk '$1 == "99%" {print $2}' "$work/wrk.out")"
  echo "$rps $p99"
}

for case in read search; do
  body="$work/$case.json"
  path_var="${case}_path"
  port=$((20000 + RANDOM % 20000))
  "$root/target/release/examples/bare_warp" "$port" "$body" > /dev/null &
  pids+=($!)
  sleep 0.5
  read -r sim_rps sim_p99 < <(run "$url${!path_var}" "$auth")
  read -r bare_rps bare_p99 < <(run "http://127.0.0.1:$port/")
  ratio="$(python3 -c "print(f'{float(\"$sim_rps\")/float(\"$bare_rps\")*100:.0f}%')")"
  printf '%-7s simulator %10s req/s p99 %-9s | bare warp %10s req/s p99 %-9s | ratio %s\n' \
    "$case" "$sim_rps" "$sim_p99" "$bare_rps" "$bare_p99" "$ratio"
done

own_read="/sandbox/fhir/Patient/$token_patient"
# Enforcement: three alternating pairs (admin, patient), so warm-up and the access log filling
# up do not favour one side; the median of the three ratios is reported.
ratios=()
for pair in 1 2 3; do
  read -r admin_rps admin_p99 < <(run "$url$own_read" "$auth")
  read -r token_rps token_p99 < <(run "$url$own_read" "Authorization: Bearer $patient_token")
  ratios+=("$(python3 -c "print(1 - float(\"$token_rps\")/float(\"$admin_rps\"))")")
  printf 'enforcement pair %s: admin token %10s req/s p99 %-9s | patient token %10s req/s p99 %-9s\n' \
    "$pair" "$admin_rps" "$admin_p99" "$token_rps" "$token_p99"
done
python3 -c "import statistics,sys; print(f'enforcement overhead on a read (median of 3 pairs): {statistics.median(map(float, sys.argv[1:]))*100:.1f}%')" "${ratios[@]}"
"$root/target/release/examples/token_load" "$url" "$admin" 20000 16
