#!/usr/bin/env bash
# Fuzzes every operation of the OpenAPI document with schemathesis (all
# checks, positive and negative data) against the release binary on a fresh
# database: as an organisation admin, a member, a coach and staff. Prints the
# figures per operation and fails on any server error; REQUIRE_2XX=1 (as in
# CI) also on an operation that never succeeded, STRICT=1 on any failed
# check as well (docs/fuzzing.md).
#
#   tests/fuzz/run.sh                       # SQLite
#   DATABASE_URL=postgres://.../db tests/fuzz/run.sh
#   EXAMPLES=20 tests/fuzz/run.sh           # examples per operation
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
EXAMPLES=${EXAMPLES:-15}
PORT=${PORT:-8420}
BASE=http://127.0.0.1:$PORT
BIN=${BIN:-$ROOT/target/release/roster}
VENV=$ROOT/.venv-fuzz

if ! "$VENV/bin/schemathesis" --version >/dev/null 2>&1; then
  echo "fuzz: installing schemathesis into $VENV" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check 'schemathesis==4.32.5'
fi
[[ -x "$BIN" ]] || cargo build --release --locked --bin roster

WORK=$(mktemp -d /tmp/roster-fuzz.XXXXXX)
export ROSTER_DATA_DIR=$WORK ROSTER_LISTEN=127.0.0.1:$PORT ROSTER_PUBLIC_URL=$BASE ROSTER_LOG=warn
export ROSTER_ACCESS_TOKEN_LIFETIME=7200 ROSTER_FILE_URL_LIFETIME=7200
# The fuzzer logs in and asks for resets far more often than people do.
export ROSTER_LOGIN_RATE_PER_MINUTE=100000 ROSTER_LOGIN_FAILURES_PER_ACCOUNT=100000
backend=sqlite
[[ -n "${DATABASE_URL:-}" ]] && backend=postgres

"$BIN" seed-demo --password 'Demo-Pass-2024!' >/dev/null
"$BIN" serve > "$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf "$BASE/healthz" >/dev/null && break; sleep 0.2; done

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
login() { curl -sf "$BASE/api/auth/jwt/create/" -H 'content-type: application/json' \
  -d "{\"email\":\"$1\",\"password\":\"$2\"}" | json '["access"]'; }
ADMIN=$(login admin@demo.example 'Demo-Pass-2024!')
curl -sf "$BASE/api/myTeams/" -H "authorization: JWT $ADMIN" -H 'content-type: application/json' \
  -d '{"email":"fuzz.member@demo.example","first_name":"Fuzz","last_name":"Member","password":"Fuzz-Pass-2024!","role":"Member"}' >/dev/null
MEMBER=$(login fuzz.member@demo.example 'Fuzz-Pass-2024!')
curl -sf "$BASE/api/myTeams/" -H "authorization: JWT $ADMIN" -H 'content-type: application/json' \
  -d '{"email":"fuzz.coach@demo.example","first_name":"Fuzz","last_name":"Coach","password":"Fuzz-Pass-2024!","role":"Coach"}' >/dev/null
COACH=$(login fuzz.coach@demo.example 'Fuzz-Pass-2024!')
"$BIN" create-staff --email fuzz.staff@platform.example --password 'Fuzz-Pass-2024!' >/dev/null
STAFF=$(login fuzz.staff@platform.example 'Fuzz-Pass-2024!')

# State that some operations need to succeed (FUZZ_* variables, which
# schemathesis.toml fixes those operations' parameters to).
export ADMIN MEMBER
eval "$(python3 "$ROOT/tests/fuzz/fixtures.py" "$BASE" "$WORK")"

fuzz() {  # fuzz <pass name> <access token> [schemathesis options]
  local who=$1 token=$2; shift 2
  echo "==> schemathesis on $backend as $who: $EXAMPLES examples per operation" >&2
  "$VENV/bin/schemathesis" --config-file "$ROOT/tests/fuzz/schemathesis.toml" run "$BASE/openapi.json" \
    --header "Authorization: Bearer $token" \
    --max-examples "$EXAMPLES" --mode all \
    --phases examples,coverage,fuzzing --seed 42 --no-color --workers 2 \
    --report ndjson --report-dir "$WORK/report-$who" "$@" > "$WORK/$who.txt" 2>&1 || true
  grep -A6 '^Failures:' "$WORK/$who.txt" >&2 || true
}

status=0
# First the operations that change or delete the caller's own account, each
# as a throwaway user of its own (the main passes cannot succeed at them).
fuzz set-password "$FUZZ_SET_PASSWORD_TOKEN" --include-name 'POST /api/auth/users/set_password/'
fuzz delete-me "$FUZZ_DELETE_ME_TOKEN" --include-name 'DELETE /api/auth/users/me/'
for who in admin member coach staff; do
  case $who in
    admin) token=$ADMIN ;; member) token=$MEMBER ;; coach) token=$COACH ;; staff) token=$STAFF ;;
  esac
  fuzz "$who" "$token"
done

# Figures, and the operations that never answered 2xx in either pass.
strict=(); [[ "${STRICT:-0}" == 1 ]] && strict=(--strict)
[[ "${REQUIRE_2XX:-0}" == 1 ]] && strict+=(--require-2xx)
python3 "$ROOT/tests/fuzz/summary.py" "${strict[@]}" "$backend" "$WORK"/report-*/*.ndjson || status=1
if grep -q 'panicked' "$WORK/server.log"; then echo "fuzz: the server panicked" >&2; status=1; fi
exit $status
