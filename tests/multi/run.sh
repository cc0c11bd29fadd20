#!/usr/bin/env bash
# Several Roster instances behind nginx on one PostgreSQL and one
# S3-compatible store (tests/multi/multi.py says what is checked).
# Installs nginx and wrk from Debian's packages when they are missing;
# uses a throwaway PostgreSQL cluster, moto and aiosmtpd from ./.venv.
set -euo pipefail
cd "$(dirname "$0")/../.."
missing=()
command -v nginx >/dev/null 2>&1 || missing+=(nginx-light)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
if (( ${#missing[@]} )); then
  echo "multi: installing ${missing[*]}" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! .venv/bin/python -c 'import aiosmtpd, moto.server, flask_cors' 2>/dev/null; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check 'aiosmtpd==1.4.6' 'moto[server]==5.2.5'
fi
[[ -x target/release/roster ]] || cargo build --release --locked --bin roster
exec timeout 600 python3 tests/multi/multi.py
