#!/usr/bin/env bash
# Installs the JavaScript clients' dependencies (fhirclient, playwright-core) into
# scripts/js/node_modules exactly as scripts/js/package-lock.json pins them. Needs Node >= 20.
# scripts/js/.npmrc sets legacy-peer-deps so that the optional React Native peers of fhirclient's
# isomorphic-webcrypto stay out (the lock file was made with the same setting).
set -euo pipefail
js="$(cd "$(dirname "$0")/js" && pwd)"
if ! command -v node > /dev/null || ! command -v npm > /dev/null; then
  echo "setup-node: node and npm are required (Node 20 or later)" >&2
  exit 2
fi
major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$major" -lt 20 ]; then
  echo "setup-node: Node $(node --version) is too old; Node 20 or later is required" >&2
  exit 2
fi
cd "$js"
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
