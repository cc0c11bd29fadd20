#!/usr/bin/env bash
# Roster side by side with Django REST Framework + Djoser + SimpleJWT (the
# peer in ../shared/peer/django) and a bare axum handler, on loopback, in one
# run. Writes bench/RESULTS.md. See bench/README.md.
#
#   bench/run.sh                      # 100,000 and 1,000,000 team members
#   MEMBERS=100000 bench/run.sh       # one dataset only
#   DATABASE=postgres bench/run.sh    # both servers on a throwaway PostgreSQL
#   DURATION=5 CONNECTIONS=16 bench/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SIZES=${MEMBERS:-100000 1000000}
DEPARTMENTS=${DEPARTMENTS:-1000}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
WORK=${WORK:-$ROOT/bench/work}
PEER=${PEER:-$ROOT/../shared/peer/django}
PASSWORD='Bench-Pass-2024!'
SURNAME=${SURNAME:-garcia}
DATABASE=${DATABASE:-sqlite}
case $DATABASE in sqlite | postgres) ;; *) echo "DATABASE must be sqlite or postgres" >&2; exit 2 ;; esac
# Result files and the report: RESULTS.md for SQLite, RESULTS-postgres.md.
TAG=$([[ $DATABASE == sqlite ]] && echo "" || echo "-$DATABASE")
mkdir -p "$WORK"
rm -f "$WORK"/mem-*.stop # left by an interrupted run, they would stop the samplers

# Two cores: the server gets one, the load generator the other.
if [[ $(nproc) -ge 2 ]]; then SERVER_CPUS=1; LOAD_CPUS=0; else SERVER_CPUS=0; LOAD_CPUS=0; fi
# Servers start in the background as `[env ...] taskset ... server &`: env
# and taskset exec, so `$!` is the server itself.

log() { printf '\n==> %s\n' "$*" >&2; }

# Whatever is still running when the script ends (an error included) stops.
CLEANUP=()
cleanup() { for step in "${CLEANUP[@]}"; do eval "$step" >/dev/null 2>&1 || true; done; }
trap cleanup EXIT
started() { CLEANUP+=("kill $1"); } # pid of a server started in the background
for port in 8300 8301 8302; do
  if curl -s -o /dev/null "http://127.0.0.1:$port/"; then
    echo "port $port is in use (a server left from an earlier run?)" >&2; exit 1
  fi
done

if ! command -v wrk >/dev/null 2>&1; then
  log "installing wrk"
  apt-get update -qq && apt-get install -y -qq wrk
fi

# PostgreSQL: a cluster of the benchmark's own (trust auth, loopback only),
# kept with its seeded databases between runs, pinned with the servers.
PG_PORT=${PG_PORT:-55440}
PG_DIR=${PG_DIR:-/var/tmp/roster-bench-pg}
as_pg() { if [[ $(id -u) -eq 0 ]]; then su postgres -s /bin/bash -c "$*"; else bash -c "$*"; fi; }
pg_url() { echo "postgres://postgres@127.0.0.1:$PG_PORT/$1"; }
psql_do() { psql "$(pg_url postgres)" -AtqX -c "$1"; }
# A database as the seed left it: a template copy, so every run starts equal.
pg_fresh_copy() { # seeded-name copy-name
  psql_do "DROP DATABASE IF EXISTS $2 WITH (FORCE)"
  psql_do "CREATE DATABASE $2 TEMPLATE $1"
}
if [[ $DATABASE == postgres ]]; then
  if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    log "installing PostgreSQL"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql postgresql-contrib
  fi
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  if [[ ! -d $PG_DIR/data ]]; then
    mkdir -p "$PG_DIR" && chmod 777 "$PG_DIR"
    as_pg "$PG_BIN/initdb -D $PG_DIR/data --auth=trust -U postgres" >/dev/null
  fi
  log "starting PostgreSQL on port $PG_PORT"
  taskset -c "$SERVER_CPUS" su postgres -s /bin/bash -c "$PG_BIN/pg_ctl -D $PG_DIR/data -l $PG_DIR/log \
    -o '-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=200 -c shared_buffers=256MB' -w start" \
    2>/dev/null || as_pg "$PG_BIN/pg_ctl -D $PG_DIR/data -l $PG_DIR/log \
    -o '-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=200 -c shared_buffers=256MB' -w start"
  CLEANUP+=("as_pg '$PG_BIN/pg_ctl -D $PG_DIR/data -m fast -w stop'")
fi

log "building the release binaries"
cargo build --release --locked --bin roster --example bare_axum

wait_up() { # url: any HTTP answer will do
  for _ in $(seq 1 600); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' "$1") != 000 ]] && return 0
    sleep 0.5
  done
  echo "server at $1 did not come up" >&2; return 1
}

descendants() { # pid: the pid and every process below it
  echo "$1"
  for child in $(pgrep -P "$1" 2>/dev/null); do descendants "$child"; done
}

# Peak resident memory of a process tree, sampled until the file STOP appears.
sample_memory() { # root-pid out-file
  local root=$1 out=$2 peak=0
  while [[ ! -e "$out.stop" ]]; do
    local total=0
    for p in $(descendants "$root"); do
      local kb
      kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
      total=$((total + ${kb:-0}))
    done
    (( total > peak )) && peak=$total
    echo "$peak" > "$out"
    sleep 0.2
  done
}

run_wrk() { # server scenario script url [env...]
  local server=$1 scenario=$2 script=$3 url=$4
  shift 4
  local combined
  combined=$(mktemp)
  cat "$ROOT/bench/lua/$script" "$ROOT/bench/lua/report.lua" > "$combined"
  local line
  line=$(env "$@" taskset -c "$LOAD_CPUS" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --timeout 10s -s "$combined" "$url" | grep '^RESULT' || true)
  rm -f "$combined"
  echo "$server $scenario ${line#RESULT }" | tee -a "$OUT" >&2
  # A slow server is still working through requests that wrk gave up on
  # (gunicorn's sync workers answer every queued request): wait until a cheap
  # request is answered, so the next scenario starts on an idle server.
  curl -s -o /dev/null --max-time 300 "$DRAIN_URL" || true
}

login() { # base email -> access token
  curl -s "$1/api/auth/jwt/create/" -H 'content-type: application/json' \
    -d "{\"email\":\"$2\",\"password\":\"$PASSWORD\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access"])'
}

scenarios() { # server base token
  local server=$1 base=$2 token=$3
  local auth="JWT $token"
  run_wrk "$server" me get.lua "$base/api/auth/users/me/" AUTH="$auth"
  run_wrk "$server" departments_page2 get.lua "$base/api/departments/?page=2" AUTH="$auth"
  run_wrk "$server" team_search get.lua "$base/api/myTeams/?search=$SURNAME" AUTH="$auth"
  run_wrk "$server" team_deep_ordering get.lua "$base/api/myTeams/?ordering=-last_name&page=50" AUTH="$auth"
  run_wrk "$server" jwt_verify post_json.lua "$base/api/auth/jwt/verify/" BODY="{\"token\":\"$token\"}"
  run_wrk "$server" create_department post_department.lua "$base/api/departments/" AUTH="$auth"
  run_wrk "$server" jwt_create post_json.lua "$base/api/auth/jwt/create/" BODY="{\"email\":\"$4\",\"password\":\"$PASSWORD\"}"
  login_flood "$@"
}

# `me` while 16 connections log in flat out (every login one password hash):
# the flood must not starve other requests. `me` runs idle just before and
# just after, so the comparison is with the machine's state of the moment.
login_flood() { # server base token email
  local server=$1 base=$2 auth="JWT $3" flood
  sleep 5 # logins queued by the previous scenario finish first
  run_wrk "$server" me_before_login_flood get.lua "$base/api/auth/users/me/" AUTH="$auth"
  flood=$(mktemp)
  cat "$ROOT/bench/lua/post_json.lua" "$ROOT/bench/lua/report.lua" > "$flood"
  BODY="{\"email\":\"$4\",\"password\":\"$PASSWORD\"}" taskset -c "$LOAD_CPUS" \
    wrk -t1 -c16 -d"$((DURATION + 2))s" --timeout 10s -s "$flood" "$base/api/auth/jwt/create/" >/dev/null &
  local flood_pid=$!
  sleep 1
  run_wrk "$server" me_during_login_flood get.lua "$base/api/auth/users/me/" AUTH="$auth"
  wait "$flood_pid" || true
  rm -f "$flood"
  sleep 5
  run_wrk "$server" me_after_login_flood get.lua "$base/api/auth/users/me/" AUTH="$auth"
}

json_field() { # python expression over the JSON on stdin, bound to `j`
  python3 -c "import json,sys; j=json.load(sys.stdin); print($1)"
}

# Surfaces the Django peer does not have: Roster only.
roster_only() { # base admin-token
  local base=$1 token=$2
  # No database and no credentials: what the middleware and routing cost.
  run_wrk roster healthz get.lua "$base/healthz" AUTH=
  curl -s "$base/api/myTeams/" -H "authorization: JWT $token" -H 'content-type: application/json' \
    -d "{\"email\":\"coach@bench.example\",\"first_name\":\"Bench\",\"last_name\":\"Coach\",\"password\":\"$PASSWORD\",\"role\":\"Coach\"}" >/dev/null
  local coach profile key
  coach=$(login "$base" coach@bench.example)
  run_wrk roster coach_me get.lua "$base/auth/coach/" AUTH="JWT $coach"
  profile=$(curl -s "$base/api/v1/profiles?per_page=1&page=500" -H "authorization: Bearer $token" \
    | json_field 'j["profiles"][0]["id"]')
  run_wrk roster profile get.lua "$base/api/v1/profiles/$profile" AUTH="Bearer $token"
  key=$(curl -s "$base/api/auth/api-keys/" -H "authorization: JWT $token" -H 'content-type: application/json' \
    -d '{"name":"bench"}' | json_field 'j["key"]')
  curl -s "$base/clients" -H "authorization: Bearer $key" -H 'content-type: application/json' \
    -d '{"name":"Bench Client","email":"client@bench.example"}' >/dev/null
  run_wrk roster clients_filter_email get.lua "$base/clients?filter%5Bemail%5D=client%40bench.example" AUTH="Bearer $key"
}

# --- the ceiling: a bare axum handler -------------------------------------------------
log "bare axum"
DRAIN_URL=http://127.0.0.1:8302/
OUT=$WORK/results$TAG-ceiling.txt
: > "$OUT"
taskset -c "$SERVER_CPUS" target/release/examples/bare_axum 127.0.0.1:8302 &
BARE_PID=$!; started "$BARE_PID"
wait_up http://127.0.0.1:8302/
sample_memory "$BARE_PID" "$WORK/mem-bare" &
run_wrk bare json get.lua http://127.0.0.1:8302/ AUTH=
touch "$WORK/mem-bare.stop"; sleep 0.5
echo "bare peak_rss_kb=$(cat "$WORK/mem-bare")" | tee -a "$OUT" >&2
kill "$BARE_PID"; wait "$BARE_PID" 2>/dev/null || true
rm -f "$WORK/mem-bare.stop"

# --- each dataset: Roster, then the Django peer -----------------------------------
for members in $SIZES; do
  OUT=$WORK/results$TAG-$members.txt
  : > "$OUT"
  # --- Roster ---------------------------------------------------------------------
  ROSTER_DIR=$WORK/roster$TAG-$members
  # Reseeded when the schema changes (the marker names the migrations).
  SEEDED=$ROSTER_DIR/.seeded-$(cat migrations/"$DATABASE"/*.sql | md5sum | cut -c1-12)
  SEED_DB=() RUN_DB=()
  if [[ $DATABASE == postgres ]]; then
    SEED_DB=(DATABASE_URL="$(pg_url "roster_$members")")
    RUN_DB=(DATABASE_URL="$(pg_url roster_run)")
  fi
  if [[ ! -e "$SEEDED" ]]; then
    log "seeding Roster: $members members, $DEPARTMENTS departments"
    rm -rf "$ROSTER_DIR" && mkdir -p "$ROSTER_DIR"
    if [[ $DATABASE == postgres ]]; then
      psql_do "DROP DATABASE IF EXISTS roster_$members WITH (FORCE)"
      psql_do "CREATE DATABASE roster_$members"
    fi
    env "${SEED_DB[@]}" ROSTER_DATA_DIR="$ROSTER_DIR" ROSTER_LOG=warn target/release/roster seed-demo \
      --members "$members" --departments "$DEPARTMENTS" --coaches 0 --password "$PASSWORD" --domain bench.example
    touch "$SEEDED"
  fi
  log "Roster ($DATABASE)"
  # Every run starts from the seeded data as it was (writes of earlier runs gone).
  RUN_DIR=$WORK/roster-run
  rm -rf "$RUN_DIR" && cp -r "$ROSTER_DIR" "$RUN_DIR"
  [[ $DATABASE == postgres ]] && pg_fresh_copy "roster_$members" roster_run
  env "${RUN_DB[@]}" ROSTER_DATA_DIR="$RUN_DIR" ROSTER_LISTEN=127.0.0.1:8300 ROSTER_LOG=warn \
    ROSTER_LOGIN_RATE_PER_MINUTE=100000000 ROSTER_LOGIN_FAILURES_PER_ACCOUNT=100000000 \
    ROSTER_ACCESS_TOKEN_LIFETIME=3600 taskset -c "$SERVER_CPUS" target/release/roster serve &
  ROSTER_PID=$!; started "$ROSTER_PID"
  wait_up http://127.0.0.1:8300/healthz
  DRAIN_URL=http://127.0.0.1:8300/healthz
  sample_memory "$ROSTER_PID" "$WORK/mem-roster" &
  TOKEN=$(login http://127.0.0.1:8300 admin@bench.example)
  scenarios roster http://127.0.0.1:8300 "$TOKEN" admin@bench.example
  roster_only http://127.0.0.1:8300 "$TOKEN"
  touch "$WORK/mem-roster.stop"; sleep 0.5
  echo "roster peak_rss_kb=$(cat "$WORK/mem-roster")" | tee -a "$OUT" >&2
  kill "$ROSTER_PID"; wait "$ROSTER_PID" 2>/dev/null || true
  rm -f "$WORK/mem-roster.stop"

  # --- Django REST Framework + Djoser (gunicorn, 2 x cores + 1 sync workers) ------------
  if [[ -x "$PEER/run.sh" ]] && command -v python3 >/dev/null 2>&1; then
    log "Django peer ($PEER)"
    DJANGO_DIR=$WORK/django
    if [[ ! -d "$DJANGO_DIR" ]]; then cp -r "$PEER" "$DJANGO_DIR"; chmod -R u+w "$DJANGO_DIR"; fi
    SEEDED_DB=$WORK/django$TAG-$members.sqlite3
    if [[ $DATABASE == postgres ]]; then
      SEED_DB=(DATABASE_URL="$(pg_url "django_$members")")
      RUN_DB=(DATABASE_URL="$(pg_url django_run)")
    else
      SEED_DB=(SQLITE_PATH="$SEEDED_DB")
      RUN_DB=(SQLITE_PATH="$WORK/django-run.sqlite3")
    fi
    if [[ ! -e "$SEEDED_DB.seeded" ]]; then
      log "seeding Django: $members members, $DEPARTMENTS departments"
      if [[ $DATABASE == postgres ]]; then
        psql_do "DROP DATABASE IF EXISTS django_$members WITH (FORCE)"
        psql_do "CREATE DATABASE django_$members"
      fi
      env "${SEED_DB[@]}" PORT=8301 \
        SEED="--companies 1 --departments $DEPARTMENTS --members $members --password $PASSWORD --reset" \
        taskset -c "$SERVER_CPUS" "$DJANGO_DIR/run.sh" &
      SEED_PID=$!; started "$SEED_PID"
      wait_up http://127.0.0.1:8301/api/auth/jwt/create/
      kill "$SEED_PID"; wait "$SEED_PID" 2>/dev/null || true
      touch "$SEEDED_DB.seeded"
    fi
    if [[ $DATABASE == postgres ]]; then
      pg_fresh_copy "django_$members" django_run
    else
      cp "$SEEDED_DB" "$WORK/django-run.sqlite3"
    fi
    env "${RUN_DB[@]}" PORT=8301 SEED="" taskset -c "$SERVER_CPUS" "$DJANGO_DIR/run.sh" &
    DJANGO_PID=$!; started "$DJANGO_PID"
    wait_up http://127.0.0.1:8301/api/auth/jwt/create/
    DRAIN_URL=http://127.0.0.1:8301/api/auth/jwt/create/ # a GET: 405 at once
    sample_memory "$DJANGO_PID" "$WORK/mem-django" &
    TOKEN=$(login http://127.0.0.1:8301 admin1@example.com)
    scenarios django http://127.0.0.1:8301 "$TOKEN" admin1@example.com
    touch "$WORK/mem-django.stop"; sleep 0.5
    echo "django peak_rss_kb=$(cat "$WORK/mem-django")" | tee -a "$OUT" >&2
    kill "$DJANGO_PID"; wait "$DJANGO_PID" 2>/dev/null || true
    rm -f "$WORK/mem-django.stop"
  else
    echo "django skipped: no peer at $PEER (set PEER=...)" | tee -a "$OUT" >&2
  fi

done

log "writing bench/RESULTS$TAG.md"
python3 "$ROOT/bench/report.py" "$WORK" "$DATABASE" "$DURATION" "$CONNECTIONS" $SIZES > "$ROOT/bench/RESULTS$TAG.md"
cat "$ROOT/bench/RESULTS$TAG.md"
