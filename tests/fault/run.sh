#!/usr/bin/env bash
# The fault stage: crashes, outages, floods and hostile input against the
# release binary (docs/fault-tolerance.md). Each scenario is bounded in
# time, uses loopback only, prints one line of figures and writes them to
# target/reliability/<scenario>.json; the stage fails on any miss.
#
#   tests/fault/run.sh                     # every scenario
#   tests/fault/run.sh drain slowloris     # some
#
# PostgreSQL scenarios run on a throwaway cluster of their own (initdb on a
# free port), which they stop and crash; the machine's server is untouched.
set -euo pipefail
cd "$(dirname "$0")/../.."
[[ -x target/release/roster ]] || cargo build --release --locked --bin roster
# The SMTP sink of the outbox scenario (aiosmtpd) lives in scripts/test's venv.
if ! .venv/bin/python -c 'import aiosmtpd' 2>/dev/null; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check 'aiosmtpd==1.4.6'
fi
rm -rf target/reliability
exec timeout 900 python3 tests/fault/fault.py "$@"
