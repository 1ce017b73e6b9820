#!/usr/bin/env bash
# Starts one `fhirdrill serve` (random admin token, fresh state folder, 20 patients) on a free
# loopback port and runs the independent SMART clients against it:
#   1. scripts/backend_client_test.py   backend services with PyJWT (RS384 and ES384 assertions)
#   2. scripts/js/fhirclient_standalone.mjs   standalone launch with fhirclient's Node API
#   3. scripts/js/browser_login.mjs    the HTML login, picker and consent pages in headless Chromium
# Then stops the server with SIGINT and checks its audit log with `fhirdrill audit verify`.
# Needs scripts/setup-python.sh, scripts/setup-node.sh and scripts/setup-browser.sh first.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/target/release/fhirdrill"
cargo build --quiet --release --manifest-path "$root/Cargo.toml"

work="$(mktemp -d)"
state="$work/state"
log="$work/server.log"
FHIRDRILL_ADMIN_TOKEN="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export FHIRDRILL_ADMIN_TOKEN
server=""

show_log() {
  echo "---- fhirdrill serve log ($log) ----"
  cat "$log" || true
  echo "---- end of server log ----"
}

cleanup() {
  status=$?
  if [ -n "$server" ] && kill -0 "$server" 2> /dev/null; then
    kill -INT "$server" 2> /dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$server" 2> /dev/null || break
      sleep 0.1
    done
    kill -KILL "$server" 2> /dev/null || true
  fi
  if [ "$status" -ne 0 ]; then
    show_log
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT

"$bin" serve --listen 127.0.0.1:0 --patients 20 --admin-token "$FHIRDRILL_ADMIN_TOKEN" \
  --state-dir "$state" > "$log" 2>&1 &
server=$!

url=""
for _ in $(seq 1 300); do
  url="$(grep -o 'listening on http://[0-9.:]*' "$log" | head -1 | cut -d' ' -f3 || true)"
  [ -n "$url" ] && break
  if ! kill -0 "$server" 2> /dev/null; then
    break
  fi
  sleep 0.1
done
if [ -z "$url" ]; then
  echo "the simulator did not start"
  exit 1
fi
if ! curl --silent --fail --max-time 10 --noproxy '*' "$url/_sim/health" > /dev/null; then
  echo "the simulator printed $url but GET /_sim/health did not answer 200"
  exit 1
fi

failed=()
run() {
  local name="$1"
  shift
  echo "-- $name"
  local started=$SECONDS
  if "$@"; then
    echo "-- $name: ok ($((SECONDS - started)) s)"
  else
    echo "-- $name: FAILED ($((SECONDS - started)) s)"
    failed+=("$name")
  fi
}
run "backend services (PyJWT)" "$root/.venv/bin/python" "$root/scripts/backend_client_test.py" "$url"
run "standalone launch (fhirclient)" node "$root/scripts/js/fhirclient_standalone.mjs" "$url"
run "browser login (Chromium)" node "$root/scripts/js/browser_login.mjs" "$url"

# Stop the server the way a user does (Ctrl-C) and wait for it to finish writing the audit log.
kill -INT "$server"
exited=""
for _ in $(seq 1 300); do
  if ! kill -0 "$server" 2> /dev/null; then
    exited=yes
    break
  fi
  sleep 0.1
done
if [ -z "$exited" ]; then
  echo "fhirdrill serve did not stop within 30 s of SIGINT"
  exit 1
fi
server_status=0
wait "$server" || server_status=$?
server=""
if [ "$server_status" -ne 0 ]; then
  echo "fhirdrill serve exited with status $server_status after SIGINT"
  failed+=("server shutdown")
fi

echo "-- audit verify"
if "$bin" audit verify "$state/audit/audit.ndjson"; then
  echo "-- audit verify: ok"
else
  echo "-- audit verify: FAILED"
  failed+=("audit verify")
fi

if [ "${#failed[@]}" -ne 0 ]; then
  echo "failed: ${failed[*]}"
  exit 1
fi
echo "all SMART client checks passed"
