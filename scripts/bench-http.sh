#!/usr/bin/env bash
# The hot read path over HTTP (issue 14): the release oes-local in real mode (DynamoDB, SQS and
# SES v2 in moto, Redis for the cache) pinned to core 0, wrk pinned to core 1, against the old
# system's stack (Express + node-redis getOrSetCache, no auth; tools/oes-bench/express-baseline)
# on the same core and the same Redis, and beside the floor: a bare hyper server making the same
# Redis round trip and sending the cached bytes as they are (tools/oes-bench/floor-http),
# what this machine's loopback and cores cost before any work. Prints a Markdown table;
# docs/BENCHMARKS.md holds the figures and the method.
#
#   scripts/bench-http.sh          (make bench-http builds the binaries first)
#
# Set-up goes through the public API as a user would: an instructor and a student sign up (the
# verification links read from moto's SES), `oesctl users set-role` makes the instructor, who
# creates and publishes a 20-question exam; the student starts an attempt. Every route is read
# until it answers `x-cache: hit`, checked again before each measurement, then wrk runs at c=16
# and c=1 on: the student's paper (GET /attempts/{id}), the student's GET /exams/{id}, the
# instructor's GET /exams/{id}/questions, GET /auth/me, the baseline's questions read, and the
# floor's one GET and three GETs in one round trip (the paper's reads).
# Besides wrk's figures, each loaded run reads the server's CPU time (all its threads, from
# /proc) and divides it by the requests served: the CPU one request costs, and so the requests
# per core, whatever else (Redis, the kernel's softirqs, wrk) shared the cores during the run.
#
# Needs target/$BENCH_BUILD/oes-local, oesctl and floor-http, node and npm; installs wrk with apt-get and the
# baseline's npm packages with `npm ci` when missing; starts the services (scripts/services.sh,
# ports from OES_REDIS_PORT, OES_REDIS_CLUSTER_PORT, OES_AWS_PORT). Everything it starts is
# stopped however it ends (the services only if it started them). Settings:
#   BENCH_DURATION       each wrk run (default 10s)
#   BENCH_CONNECTIONS    the loaded run's connections (default 16; the other run is always 1)
#   BENCH_QUESTIONS      questions of the exam (default 20)
#   BENCH_PORT           oes-local's port (default 3900); the baseline uses BENCH_PORT + 1, the
#                        floor BENCH_PORT + 2
#   BENCH_BUILD          the cargo profile whose binaries run (default release; `profiling`
#                        keeps symbols for perf)
#   BENCH_LOCAL          the oes-local binary (default target/$BENCH_BUILD/oes-local; another
#                        build, to compare two back to back)
#   BENCH_ROUTES         which rows to measure (default "paper exam questions me baseline
#                        floor1 floor3")
#   BENCH_PERF           a file: `perf record` oes-local (call graphs, 999 Hz) during the loaded
#                        paper run (with BENCH_BUILD=profiling for symbols)
#   BENCH_OUT            a file to write the table to as well
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

DURATION="${BENCH_DURATION:-10s}"
CONNECTIONS="${BENCH_CONNECTIONS:-16}"
QUESTIONS="${BENCH_QUESTIONS:-20}"
PORT="${BENCH_PORT:-3900}"
BASELINE_PORT=$((PORT + 1))
FLOOR_PORT=$((PORT + 2))
BUILD="${BENCH_BUILD:-release}"
ROUTES="${BENCH_ROUTES:-paper exam questions me baseline floor1 floor3}"
LOCAL="${BENCH_LOCAL:-$ROOT/target/$BUILD/oes-local}"
OESCTL="$ROOT/target/$BUILD/oesctl"
FLOOR="$ROOT/target/$BUILD/floor-http"
BASELINE="$ROOT/tools/oes-bench/express-baseline"
PREFIX="bench-http-$$-$RANDOM"     # fresh resources and cache keys each run
OES_CORE=0
WRK_CORE=1

log() { printf 'bench-http: %s\n' "$*" >&2; }
die() { printf 'bench-http: error: %s\n' "$*" >&2; exit 1; }

[ -x "$LOCAL" ] || die "no $LOCAL: run 'cargo build --release -p oes-local -p oesctl' first"
[ -x "$OESCTL" ] || die "no $OESCTL: run 'cargo build --release -p oes-local -p oesctl' first"
if [[ " $ROUTES " == *" floor"* ]]; then
  [ -x "$FLOOR" ] || die "no $FLOOR: run 'cargo build --release -p floor-http' first"
fi
command -v node >/dev/null && command -v npm >/dev/null || die "node and npm are needed for the baseline"
command -v jq >/dev/null || die "jq is needed"
[ "$(nproc)" -ge 2 ] || die "needs two cores: oes on core $OES_CORE, wrk on core $WRK_CORE"

# ---- tools ------------------------------------------------------------------------------

if ! command -v wrk >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || die "wrk not found and apt-get unavailable; install wrk yourself"
  log "installing wrk with apt-get"
  as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi

# npm ci when the lock file changed since the last install (a stamp in node_modules).
STAMP="$BASELINE/node_modules/.package-lock.sha256"
WANT="$(sha256sum "$BASELINE/package-lock.json" | cut -d' ' -f1)"
if [ "$(cat "$STAMP" 2>/dev/null || true)" != "$WANT" ]; then
  log "installing the baseline's packages (npm ci)"
  (cd "$BASELINE" && npm ci --no-audit --no-fund --loglevel=error >&2)
  echo "$WANT" >"$STAMP"
fi

# ---- services and servers ---------------------------------------------------------------

# The services it starts are stopped at the end, those already running left as they were.
NEW_SERVICES=()
for service in redis cluster moto; do
  scripts/services.sh ready "$service" || NEW_SERVICES+=("$service")
done

WORK="$(mktemp -d)"
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
  [ "${#NEW_SERVICES[@]}" -eq 0 ] || scripts/services.sh down "${NEW_SERVICES[@]}" >&2
}
trap cleanup EXIT INT TERM
scripts/services.sh up >&2
eval "$(scripts/services.sh env)"

# Waits until `url` answers (any HTTP status), for at most 30 s, while `pid` lives.
wait_http() { # url pid name
  for _ in $(seq 1 300); do
    curl -s -o /dev/null --max-time 1 "$1" && return 0
    kill -0 "$2" 2>/dev/null || { tail -n 20 "$WORK/$3.log" >&2; die "$3 exited"; }
    sleep 0.1
  done
  die "$3 does not answer at $1"
}

# Starts `command` on the servers' core (its output to $WORK/<name>.log, stopped by cleanup)
# and waits until `url` answers; sets STARTED to its pid.
start_server() { # name url command...
  local name="$1" url="$2"
  shift 2
  log "starting $name on core $OES_CORE at $url"
  taskset -c "$OES_CORE" "$@" >"$WORK/$name.log" 2>&1 &
  STARTED=$!
  PIDS+=("$STARTED")
  wait_http "$url" "$STARTED" "$name"
}

BASE="http://127.0.0.1:$PORT"
log "oes-local: $BUILD, real mode, prefix $PREFIX"
start_server oes-local "$BASE/health" env OES_PREFIX="$PREFIX" \
  OES_JWT_SECRET="bench-http-$(head -c 32 /dev/urandom | base64 | tr -d '/+=')" \
  "$LOCAL" --addr "127.0.0.1:$PORT"
OES_PID=$STARTED

# ---- set-up through the public API ------------------------------------------------------

J='content-type: application/json'
api() { # method path token [body]: the JSON answer; fails on a status >= 400
  local args=(-sS --fail-with-body --max-time 10 -X "$1" "$BASE$2")
  [ -n "$3" ] && args+=(-H "authorization: Bearer $3")
  [ -n "${4:-}" ] && args+=(-H "$J" -d "$4")
  curl "${args[@]}" || die "$1 $2 failed"
}

# The verification link mailed to `address` (the worker sends it through SES v2 in moto).
verification_token() { # address
  local token=""
  for _ in $(seq 1 150); do
    token="$(curl -s --max-time 5 "$AWS_ENDPOINT_URL/moto-api/data.json" |
      jq -r --arg to "$1" '[.ses.Message[]? | select(.destinations.ToAddresses | index($to))][0].body // empty' 2>/dev/null |
      grep -o 'token=[A-Za-z0-9_-]*' | head -n 1 | cut -d= -f2 || true)"
    [ -n "$token" ] && { echo "$token"; return 0; }
    sleep 0.2
  done
  die "no verification email to $1 in moto after 30 s"
}

PASSWORD="bench-http-password-$RANDOM$RANDOM"
account() { # name role: signs up, verifies, sets the role, signs in; prints the access token
  local email="$1-$PREFIX@example.com"
  api POST /auth/register "" "{\"email\":\"$email\",\"password\":\"$PASSWORD\",\"name\":\"Bench $1\"}" >/dev/null
  api POST /auth/verify-email "" "{\"token\":\"$(verification_token "$email")\"}" >/dev/null
  if [ "$2" != student ]; then
    # errexit does not reach into the $(account …) that calls this: fail by hand.
    OES_PREFIX="$PREFIX" "$OESCTL" users set-role "$email" "$2" >/dev/null || return 1
  fi
  api POST /auth/login "" "{\"email\":\"$email\",\"password\":\"$PASSWORD\"}" | jq -r .access_token
}

log "set-up: an instructor publishes a $QUESTIONS-question exam, a student starts an attempt"
TEACHER="$(account instructor instructor)"
STUDENT="$(account student student)"
EXAM="$(api POST /exams "$TEACHER" \
  '{"title":"Exam day","description":"The hot read path","duration_minutes":120,"pass_mark_percent":50}' |
  jq -r .exam_id)"
for i in $(seq 1 "$QUESTIONS"); do
  api POST "/exams/$EXAM/questions" "$TEACHER" "$(jq -nc --arg i "$i" '{
    text: "Question \($i): which of these statements about ownership and borrowing in Rust holds?",
    options: ["A value has exactly one owner at a time", "A mutable and a shared borrow may coexist",
              "Moving a value copies it", "References may outlive what they point to"],
    correct_option: 0, points: 1}')" >/dev/null
done
api POST "/exams/$EXAM/publish" "$TEACHER" >/dev/null
ATTEMPT="$(api POST "/exams/$EXAM/attempts" "$STUDENT" | jq -r .attempt_id)"
api GET "/exams/$EXAM/questions" "$TEACHER" >"$WORK/questions.json"

if [[ " $ROUTES " == *" baseline "* ]]; then
  start_server baseline "http://127.0.0.1:$BASELINE_PORT/" env PORT="$BASELINE_PORT" \
    QUESTIONS="$WORK/questions.json" NODE_ENV=production node "$BASELINE/server.js"
  BASELINE_PID=$STARTED
fi

if [[ " $ROUTES " == *" floor"* ]]; then
  start_server floor "http://127.0.0.1:$FLOOR_PORT/" env PORT="$FLOOR_PORT" \
    QUESTIONS="$WORK/questions.json" "$FLOOR"
  FLOOR_PID=$STARTED
fi

# ---- measurements -----------------------------------------------------------------------

# route name → "url token"
declare -A URL TOKEN LABEL
URL[paper]="$BASE/attempts/$ATTEMPT";           TOKEN[paper]="$STUDENT"
LABEL[paper]="student \`GET /attempts/{id}\` (the paper)"
URL[exam]="$BASE/exams/$EXAM";                   TOKEN[exam]="$STUDENT"
LABEL[exam]="student \`GET /exams/{id}\`"
URL[questions]="$BASE/exams/$EXAM/questions";    TOKEN[questions]="$TEACHER"
LABEL[questions]="instructor \`GET /exams/{id}/questions\`"
URL[me]="$BASE/auth/me";                         TOKEN[me]="$STUDENT"
LABEL[me]="\`GET /auth/me\`"
URL[baseline]="http://127.0.0.1:$BASELINE_PORT/exams/$EXAM/questions"; TOKEN[baseline]=""
LABEL[baseline]="Express + node-redis \`GET /exams/{id}/questions\` (no auth)"
URL[floor1]="http://127.0.0.1:$FLOOR_PORT/reads/1"; TOKEN[floor1]=""
LABEL[floor1]="floor: hyper, one Redis GET, the cached bytes as they are"
URL[floor3]="http://127.0.0.1:$FLOOR_PORT/reads/3"; TOKEN[floor3]=""
LABEL[floor3]="floor: hyper, three Redis GETs in one round trip (the paper's reads)"

# Reads `name` until it answers 200 with `x-cache: hit` (at most 10 tries).
warm() { # name
  local headers status cache
  for _ in $(seq 1 10); do
    headers="$(curl -s -o /dev/null -D - --max-time 5 ${TOKEN[$1]:+-H "authorization: Bearer ${TOKEN[$1]}"} "${URL[$1]}")"
    status="$(sed -n '1s/^HTTP\/[0-9.]* \([0-9]*\).*/\1/p' <<<"$headers")"
    cache="$(sed -n 's/^x-cache: *\([a-z]*\).*/\1/ip' <<<"$headers" | tr 'A-Z' 'a-z')"
    [ "$status" = 200 ] && [ "$cache" = hit ] && return 0
  done
  die "$1 (${URL[$1]}) is not a cache hit: status $status, x-cache '${cache:-none}'"
}

# The machine must be quiet: wait (up to 10 minutes) for builds to end.
quiet() {
  for _ in $(seq 1 120); do
    pgrep -x rustc >/dev/null || pgrep -f 'cargo build' >/dev/null || return 0
    sleep 5
  done
  log "warning: a build is still running; measuring anyway"
}

# The CPU time a process has used, all its threads, in clock ticks.
cpu_ticks() { # pid
  awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# One wrk run; prints "requests/s p50 p99 cpu" (latencies in ms; cpu: the server's CPU time
# per request in µs, all its threads: what a request costs whatever else shares the cores).
run_wrk() { # name connections [perf-file]
  local out="$WORK/wrk-$1-$2.txt" perf_pid="" server="$OES_PID" before after
  [ "$1" = baseline ] && server="$BASELINE_PID"
  [[ "$1" == floor* ]] && server="$FLOOR_PID"
  warm "$1"
  quiet
  before="$(cpu_ticks "$server")"
  if [ -n "${3:-}" ]; then
    # DWARF call graphs: the release code keeps no frame pointers.
    perf record -F 999 --call-graph dwarf -o "$3" -p "$OES_PID" -- sleep "${DURATION%s}" >/dev/null 2>&1 &
    perf_pid=$!
  fi
  taskset -c "$WRK_CORE" wrk -t1 -c"$2" -d"$DURATION" --latency \
    ${TOKEN[$1]:+-H "authorization: Bearer ${TOKEN[$1]}"} "${URL[$1]}" >"$out"
  after="$(cpu_ticks "$server")"
  [ -n "$perf_pid" ] && wait "$perf_pid"
  if grep -q 'Non-2xx\|Socket errors' "$out"; then
    cat "$out" >&2
    die "$1 at c=$2: errors during the run"
  fi
  awk -v ticks="$((after - before))" -v hz="$(getconf CLK_TCK)" '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    /^ +50%/ { p50 = ms($2) } /^ +99%/ { p99 = ms($2) } /^Requests\/sec/ { rps = $2 }
    / requests in / { requests = $1 }
    END { printf "%.0f %.3f %.3f %.1f\n", rps, p50, p99, ticks / hz * 1e6 / requests }' "$out"
}

declare -A RPS P99 P50 CPU
for name in $ROUTES; do
  [ -n "${URL[$name]:-}" ] || die "unknown route '$name' in BENCH_ROUTES"
  perf_file=""
  [ "$name" = paper ] && perf_file="${BENCH_PERF:-}"
  loaded="$(run_wrk "$name" "$CONNECTIONS" "$perf_file")"
  single="$(run_wrk "$name" 1)"
  read -r rps _ p99 cpu <<<"$loaded"
  read -r _ p50 _ _ <<<"$single"
  RPS[$name]=$rps P99[$name]=$p99 P50[$name]=$p50 CPU[$name]=$cpu
  log "$name: c=$CONNECTIONS $rps req/s, p99 $p99 ms, $cpu µs of CPU per request; c=1 p50 $p50 ms"
done

# ---- the table --------------------------------------------------------------------------

thousands() { sed -e ':a' -e 's/\([0-9]\)\([0-9]\{3\}\)\($\|,\)/\1,\2\3/' -e 'ta' <<<"$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.2f×", a / b; else printf "–" }'; }
{
  echo "| route | c=$CONNECTIONS req/s | c=$CONNECTIONS p99 | c=1 p50 | CPU per request | req/s ÷ baseline | c=1 p50 ÷ baseline | requests per CPU-second ÷ baseline |"
  echo "|---|---|---|---|---|---|---|---|"
  for name in $ROUTES; do
    printf '| %s | %s | %s ms | %s µs | %s µs | %s | %s | %s |\n' "${LABEL[$name]}" \
      "$(thousands "${RPS[$name]}")" "${P99[$name]}" \
      "$(awk -v v="${P50[$name]}" 'BEGIN { printf "%.0f", v * 1000 }')" \
      "$(awk -v v="${CPU[$name]}" 'BEGIN { printf "%.0f", v }')" \
      "$(ratio "${RPS[$name]}" "${RPS[baseline]:-0}")" \
      "$(ratio "${P50[$name]}" "${P50[baseline]:-0}")" \
      "$(ratio "${CPU[baseline]:-0}" "${CPU[$name]}")"
  done
} | tee "${BENCH_OUT:-/dev/null}"
