#!/usr/bin/env bash
# The /docs page in a real headless browser: Debian's chromium driven by
# playwright-core from npm (no browser download). Installs chromium from
# Debian's packages when missing. Writes target/docs/docs.png.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
if ! command -v chromium >/dev/null 2>&1; then
  echo "docs: installing chromium" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
(cd tests/docs && npm ci --no-audit --no-fund --silent)
[[ -x target/release/roster ]] || cargo build --release --locked --bin roster
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
WORK=$(mktemp -d /tmp/roster-docs.XXXXXX)
ROSTER_DATA_DIR=$WORK ROSTER_LISTEN=127.0.0.1:$PORT ROSTER_LOG=warn target/release/roster serve > "$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
mkdir -p target/docs
timeout 120 node tests/docs/docs-page.mjs "http://127.0.0.1:$PORT" "$ROOT/target/docs/docs.png"
