#!/usr/bin/env bash
# Local services for oes tests and `oes-local`: Redis, a one-node Redis Cluster (the cluster
# client ElastiCache Serverless needs is tested against it) and moto_server (AWS emulator), all
# on loopback, all project-local (state under .services/, Python tools in .venv/).
#
#   scripts/services.sh up      install what is missing, start what is not already answering
#   scripts/services.sh down    stop what this script started (reused services are left alone);
#                               `down moto` (or redis, cluster) stops only those
#   scripts/services.sh status  show what is running
#   scripts/services.sh ready S exit 0 if service S (redis, cluster, moto) answers
#   scripts/services.sh env     print the export lines the tests use (eval "$(... env)")
#   scripts/services.sh venv    install only the Python tools (requirements-dev.txt) into .venv
#
# Ports: OES_REDIS_PORT (default 6379), OES_REDIS_CLUSTER_PORT (default 7001; its cluster bus
# uses that port + 10000), OES_AWS_PORT (default 4566).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

REDIS_PORT="${OES_REDIS_PORT:-6379}"
CLUSTER_PORT="${OES_REDIS_CLUSTER_PORT:-7001}"
AWS_PORT="${OES_AWS_PORT:-4566}"
STATE="$ROOT/.services"            # pidfiles and logs (gitignored)
VENV="$ROOT/.venv"                 # Python tools (gitignored)
REQS="$ROOT/requirements-dev.txt"
STAMP="$VENV/.requirements-dev.sha256"
READY_TIMEOUT=30                   # seconds to wait for each service

# One pidfile/log per port, so instances on other ports (OES_*_PORT) never get mixed up.
REDIS_PID="$STATE/redis-$REDIS_PORT.pid"; REDIS_LOG="$STATE/redis-$REDIS_PORT.log"
MOTO_PID="$STATE/moto-$AWS_PORT.pid";     MOTO_LOG="$STATE/moto-$AWS_PORT.log"
# The cluster node keeps its nodes.conf (which slots it owns) in its own directory.
CLUSTER_DIR="$STATE/redis-cluster-$CLUSTER_PORT"
CLUSTER_PID="$CLUSTER_DIR/redis.pid";      CLUSTER_LOG="$CLUSTER_DIR/redis.log"
# What the process command line must contain for a pidfile to count as ours (pid reuse guard).
REDIS_CMD="redis-server 127.0.0.1:$REDIS_PORT"
CLUSTER_CMD="redis-server 127.0.0.1:$CLUSTER_PORT"
MOTO_CMD="moto_server.py -H 127.0.0.1 -p $AWS_PORT"
# What the moto this script started runs: the pinned packages and our server script. One that
# started from other code (moto bumped, moto_server.py edited) is restarted, not reused.
MOTO_CODE="$STATE/moto-$AWS_PORT.code"

log() { printf 'services: %s\n' "$*"; }
die() { printf 'services: error: %s\n' "$*" >&2; exit 1; }

# ---- probes ---------------------------------------------------------------------------

redis_ready() {
  command -v redis-cli >/dev/null 2>&1 &&
    [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = "PONG" ]
}

cluster_cli() { redis-cli -h 127.0.0.1 -p "$CLUSTER_PORT" "$@" 2>/dev/null; }
cluster_answers() { command -v redis-cli >/dev/null 2>&1 && [ "$(cluster_cli ping)" = "PONG" ]; }
cluster_ready() { cluster_cli cluster info | grep -q '^cluster_state:ok'; }

# HTTP GET succeeds (2xx/3xx). curl if present, else Python (always here: the venv needs it).
http_ok() {
  if command -v curl >/dev/null 2>&1; then
    curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null
  else
    python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$1" 2>/dev/null
  fi
}
moto_ready() { http_ok "http://127.0.0.1:$AWS_PORT/moto-api/"; }
# LocalStack (docker compose) on the same port is accepted too, with a warning.
localstack_ready() { http_ok "http://127.0.0.1:$AWS_PORT/_localstack/health"; }

# Prints the pid from a pidfile if that process is alive and its command line contains
# the expected text (guards against a recycled pid); otherwise prints nothing.
owned_pid() { # pidfile expected-cmdline
  local pid
  [ -f "$1" ] || return 0
  pid="$(cat "$1" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 0
  if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$2"; then
    echo "$pid"
  fi
}

# wait_ready probe-function logfile name [pid]: polls the probe every 0.5 s for at most
# READY_TIMEOUT seconds; stops early if the given pid has exited.
wait_ready() {
  local i why="not ready after ${READY_TIMEOUT}s"
  for ((i = 0; i < READY_TIMEOUT * 2; i++)); do
    "$1" && return 0
    if [ -n "${4:-}" ] && ! kill -0 "$4" 2>/dev/null; then why="exited"; break; fi
    sleep 0.5
  done
  printf 'services: error: %s %s; last lines of %s:\n' "$3" "$why" "$2" >&2
  tail -n 20 "$2" >&2 2>/dev/null || true
  exit 1
}

# ---- installation ---------------------------------------------------------------------

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "need root to run: $* (install redis-server yourself)"; fi
}

ensure_redis_installed() {
  command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 && return 0
  command -v apt-get >/dev/null 2>&1 || die "redis-server not found and apt-get unavailable; install Redis 7 yourself"
  log "installing redis-server with apt-get"
  # Note: on hosts with systemd, the package may start its own service on 6379; `up` then
  # reuses it (it answers PONG). This script itself never uses the system service.
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
}

# The TLS cache test makes a throwaway certificate with openssl; the fuzzing and load-smoke
# scripts wait for oes-local and talk to it with curl. Each tool is its Debian package's name.
ensure_tools_installed() {
  local tool missing=()
  for tool in openssl curl; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  command -v apt-get >/dev/null 2>&1 || die "${missing[*]} not found and apt-get unavailable; install them yourself"
  log "installing ${missing[*]} with apt-get"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# The console's browser test (tools/oes-local/tests/local/console.rs) drives Debian's Chromium
# headless through chromedriver.
ensure_chromium_installed() {
  command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 && return 0
  command -v apt-get >/dev/null 2>&1 || die "chromium and chromedriver not found and apt-get unavailable; install them yourself (the page tests need them)"
  log "installing chromium and chromium-driver with apt-get"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
}

# Python 3 with its venv module: Debian ships ensurepip, which `python3 -m venv` needs, apart
# (python3-venv), and a minimal image has no python3 at all.
ensure_python_installed() {
  python3 -c 'import venv, ensurepip' >/dev/null 2>&1 && return 0
  command -v apt-get >/dev/null 2>&1 || die "python3 with its venv module not found and apt-get unavailable; install them yourself"
  log "installing python3 and python3-venv with apt-get"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
}

ensure_venv() {
  local want have=""
  # Made again if it has no pip: a `python3 -m venv` that failed half-way (no ensurepip) leaves
  # a python behind, and every later run would fail at `pip install`.
  if ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
    ensure_python_installed
    log "creating $VENV"
    python3 -m venv --clear "$VENV"
  fi
  want="$(sha256sum "$REQS" | cut -d' ' -f1)"
  [ -f "$STAMP" ] && have="$(cat "$STAMP")"
  if [ "$want" != "$have" ]; then
    log "installing $(basename "$REQS") into .venv (about a minute from a cold pip cache)"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQS"
    echo "$want" >"$STAMP"
  fi
}

# ---- up / down / status ---------------------------------------------------------------

up_redis() {
  if redis_ready; then
    if [ -n "$(owned_pid "$REDIS_PID" "$REDIS_CMD")" ]; then
      log "redis already running on 127.0.0.1:$REDIS_PORT (started by this script)"
    else
      log "redis: reusing the server already answering on 127.0.0.1:$REDIS_PORT"
    fi
    return 0
  fi
  rm -f "$REDIS_PID"
  log "starting redis-server on 127.0.0.1:$REDIS_PORT"
  # No persistence: test data is disposable. --daemonize forks and writes the pidfile.
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes \
    --pidfile "$REDIS_PID" --logfile "$REDIS_LOG" --dir "$STATE" \
    --save '' --appendonly no
  wait_ready redis_ready "$REDIS_LOG" redis
  log "redis ready (pid $(cat "$REDIS_PID" 2>/dev/null || echo '?'))"
}

up_cluster() {
  if cluster_ready; then
    if [ -n "$(owned_pid "$CLUSTER_PID" "$CLUSTER_CMD")" ]; then
      log "redis cluster already running on 127.0.0.1:$CLUSTER_PORT (started by this script)"
    else
      log "redis cluster: reusing the node already answering on 127.0.0.1:$CLUSTER_PORT"
    fi
    return 0
  fi
  if ! cluster_answers; then
    rm -f "$CLUSTER_PID"
    mkdir -p "$CLUSTER_DIR"
    log "starting a one-node redis cluster on 127.0.0.1:$CLUSTER_PORT"
    # nodes.conf survives restarts (so the slots stay assigned); the data does not.
    redis-server --bind 127.0.0.1 --port "$CLUSTER_PORT" --daemonize yes \
      --pidfile "$CLUSTER_PID" --logfile "$CLUSTER_LOG" --dir "$CLUSTER_DIR" \
      --save '' --appendonly no \
      --cluster-enabled yes --cluster-config-file nodes.conf \
      --cluster-announce-ip 127.0.0.1
    wait_ready cluster_answers "$CLUSTER_LOG" "redis cluster"
  fi
  cluster_cli info cluster | grep -q '^cluster_enabled:1' ||
    die "127.0.0.1:$CLUSTER_PORT answers but is not in cluster mode; set OES_REDIS_CLUSTER_PORT to a free port"
  if cluster_cli cluster info | grep -q '^cluster_slots_assigned:0'; then
    log "redis cluster: assigning all 16384 slots to the node"
    # ADDSLOTS rather than ADDSLOTSRANGE: the latter needs Redis 7.
    # shellcheck disable=SC2046
    [ "$(cluster_cli cluster addslots $(seq 0 16383))" = "OK" ] ||
      die "redis cluster: CLUSTER ADDSLOTS failed; see $CLUSTER_LOG"
  fi
  wait_ready cluster_ready "$CLUSTER_LOG" "redis cluster"
  log "redis cluster ready (cluster_state:ok)"
}

moto_code() { cat "$REQS" "$ROOT/scripts/moto_server.py" | sha256sum | cut -d' ' -f1; }

up_moto() {
  if moto_ready; then
    if [ -z "$(owned_pid "$MOTO_PID" "$MOTO_CMD")" ]; then
      log "moto: reusing the server already answering on 127.0.0.1:$AWS_PORT (not started by this script: its version is not checked)"
      return 0
    fi
    if [ "$(cat "$MOTO_CODE" 2>/dev/null)" = "$(moto_code)" ]; then
      log "moto already running on 127.0.0.1:$AWS_PORT (started by this script)"
      return 0
    fi
    log "moto: requirements-dev.txt or scripts/moto_server.py changed since it started; restarting it"
    stop_owned "$MOTO_PID" "$MOTO_CMD" moto
  fi
  if localstack_ready; then
    log "warning: LocalStack answers on 127.0.0.1:$AWS_PORT; reusing it (no SES v2 there)"
    return 0
  fi
  rm -f "$MOTO_PID"
  # scripts/moto_server.py: moto_server that does not keep every object for its dashboard.
  log "starting moto_server on 127.0.0.1:$AWS_PORT"
  # nohup + stdin from /dev/null: survives the calling shell; output goes to the log only.
  # setsid (if present) gives it its own session, so killing the caller's process group
  # (Ctrl-C in make, a CI step timeout) does not take it down. Neither forks: $! is moto.
  local detach=()
  command -v setsid >/dev/null 2>&1 && detach=(setsid)
  nohup "${detach[@]}" "$VENV/bin/python" "$ROOT/scripts/moto_server.py" -H 127.0.0.1 -p "$AWS_PORT" >"$MOTO_LOG" 2>&1 </dev/null &
  echo $! >"$MOTO_PID"
  moto_code >"$MOTO_CODE"
  wait_ready moto_ready "$MOTO_LOG" moto_server "$(cat "$MOTO_PID")"
  log "moto ready (pid $(cat "$MOTO_PID"))"
}

cmd_up() {
  mkdir -p "$STATE"
  ensure_redis_installed
  ensure_tools_installed
  ensure_chromium_installed
  ensure_venv          # always: `make template-check` needs cfn-lint even if moto is reused
  up_redis
  up_cluster
  up_moto
}

stop_owned() { # pidfile expected-cmdline name
  local pid i
  pid="$(owned_pid "$1" "$2")"
  if [ -z "$pid" ]; then
    log "$3: nothing started by this script is running"
    rm -f "$1"
    return 0
  fi
  kill "$pid"
  for ((i = 0; i < 20; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  kill -0 "$pid" 2>/dev/null && { log "$3: pid $pid ignored SIGTERM, sending SIGKILL"; kill -9 "$pid"; }
  rm -f "$1"
  log "$3: stopped pid $pid"
}

cmd_down() { # [redis] [cluster] [moto]: only those (default: all three)
  local which=("$@") service
  [ "${#which[@]}" -gt 0 ] || which=(redis cluster moto)
  for service in "${which[@]}"; do
    case "$service" in
      redis) stop_owned "$REDIS_PID" "$REDIS_CMD" redis ;;
      cluster) stop_owned "$CLUSTER_PID" "$CLUSTER_CMD" "redis cluster" ;;
      moto) stop_owned "$MOTO_PID" "$MOTO_CMD" moto; rm -f "$MOTO_CODE" ;;
      *) die "down: no service $service (redis, cluster, moto)" ;;
    esac
  done
}

origin() { if [ -n "$1" ]; then echo "started by this script, pid $1"; else echo "not started by this script"; fi; }

cmd_status() {
  local pid
  pid="$(owned_pid "$REDIS_PID" "$REDIS_CMD")"
  if redis_ready; then
    log "redis: up on 127.0.0.1:$REDIS_PORT ($(origin "$pid"))"
  else
    log "redis: down (127.0.0.1:$REDIS_PORT)"
  fi
  pid="$(owned_pid "$CLUSTER_PID" "$CLUSTER_CMD")"
  if cluster_ready; then
    log "redis cluster: up on 127.0.0.1:$CLUSTER_PORT ($(origin "$pid"))"
  elif cluster_answers; then
    log "redis cluster: answering on 127.0.0.1:$CLUSTER_PORT but cluster_state is not ok"
  else
    log "redis cluster: down (127.0.0.1:$CLUSTER_PORT)"
  fi
  pid="$(owned_pid "$MOTO_PID" "$MOTO_CMD")"
  if moto_ready; then
    log "moto:  up on 127.0.0.1:$AWS_PORT ($(origin "$pid"))"
  elif localstack_ready; then
    log "aws:   LocalStack on 127.0.0.1:$AWS_PORT (not started by this script)"
  else
    log "moto:  down (127.0.0.1:$AWS_PORT)"
  fi
}

cmd_env() {
  cat <<EOF
export AWS_ENDPOINT_URL=http://127.0.0.1:$AWS_PORT
export AWS_REGION=us-east-1
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
export REDIS_URL=redis://127.0.0.1:$REDIS_PORT
export REDIS_CLUSTER_URL=redis://127.0.0.1:$CLUSTER_PORT
EOF
}

cmd_ready() { # redis|cluster|moto: exits 0 if it answers (whoever started it)
  case "${1:-}" in
    redis) redis_ready ;;
    cluster) cluster_ready ;;
    moto) moto_ready ;;
    *) die "ready: no service ${1:-} (redis, cluster, moto)" ;;
  esac
}

case "${1:-}" in
  up) cmd_up ;;
  ready) cmd_ready "${2:-}" ;;
  down) shift; cmd_down "$@" ;;
  status) cmd_status ;;
  env) cmd_env ;;
  venv) ensure_venv ;;
  *) echo "usage: $0 {up|down|ready|status|env|venv}" >&2; exit 2 ;;
esac
