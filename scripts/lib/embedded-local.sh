# Sourced by the scripts that run against a fresh embedded oes-local (fuzz-api.sh,
# load-smoke.sh). Expects $WORK (a temporary folder) and die() from the sourcing script.

SERVER_PID=""
BASE=""

# start_embedded BIN PASSWORD [ARGS...]: starts BIN in its embedded mode (none of the services'
# variables) on a port the kernel picks, its mail in $WORK/outbox and its output in $WORK/stdout
# and $WORK/stderr; sets SERVER_PID, and BASE once it has said where it serves and answers there.
start_embedded() {
  local bin="$1" password="$2"
  shift 2
  env -u AWS_ENDPOINT_URL -u REDIS_URL -u OES_JWT_SECRET -u OES_PUBLIC_BASE_URL \
    OES_DEMO_PASSWORD="$password" RUST_LOG="${RUST_LOG:-warn}" \
    "$bin" --addr 127.0.0.1:0 --outbox "$WORK/outbox" "$@" \
    >"$WORK/stdout" 2>"$WORK/stderr" &
  SERVER_PID=$!
  for _ in $(seq 1 300); do
    BASE="$(sed -n 's/.* on \(http:\/\/[0-9.:]*\).*/\1/p' "$WORK/stdout" | head -n 1)"
    [ -n "$BASE" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/stderr" >&2; die "oes-local exited"; }
    sleep 0.1
  done
  [ -n "$BASE" ] || die "oes-local did not say where it serves within 30 s"
  curl -fsS --retry 50 --retry-delay 0 --retry-connrefused --max-time 2 -o /dev/null \
    "$BASE/health" || die "oes-local does not answer at $BASE/health"
}

# stop_embedded: SIGTERM; a graceful stop finishes the requests and batches in hand, so it gets
# 15 s before SIGKILL.
stop_embedded() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 150); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
}
