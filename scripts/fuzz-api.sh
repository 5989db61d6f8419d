#!/usr/bin/env bash
# Fuzzes every operation of the OpenAPI document with schemathesis against oes-local in its
# embedded mode (in-memory, nothing else running), signed in as each role in turn: no answer may
# be a 5xx, and each must have a documented status and match its schema.
#
#   scripts/fuzz-api.sh            (make test runs it after the cargo tests)
#
# Needs target/debug/oes-local (cargo build -p oes-local) and .venv/bin/schemathesis
# (scripts/services.sh up installs requirements-dev.txt). Settings:
#   FUZZ_EXAMPLES  examples per operation and phase (default 15)
#   FUZZ_SEED      the seed (default: a random one, printed; pass it again to replay a failure)
#   FUZZ_ROLES     the roles to sign in as (default "instructor admin student")
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

BIN="$ROOT/target/debug/oes-local"
ST="$ROOT/.venv/bin/schemathesis"
PY="$ROOT/.venv/bin/python"
EXAMPLES="${FUZZ_EXAMPLES:-15}"
SEED="${FUZZ_SEED:-$RANDOM$RANDOM}"
# The instructor first: the exams it creates and publishes are what the others find.
ROLES="${FUZZ_ROLES:-instructor admin student}"
PASSWORD="fuzz-demo-password-$RANDOM"

log() { printf 'fuzz-api: %s\n' "$*"; }
die() { printf 'fuzz-api: error: %s\n' "$*" >&2; exit 1; }

[ -x "$BIN" ] || die "no $BIN: run 'cargo build -p oes-local' first"
[ -x "$ST" ] || die "no $ST: run 'scripts/services.sh up' first"

WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# Embedded mode: none of the services' variables; port 0, so the kernel picks a free one.
env -u AWS_ENDPOINT_URL -u REDIS_URL -u OES_JWT_SECRET -u OES_PUBLIC_BASE_URL \
  OES_DEMO_PASSWORD="$PASSWORD" RUST_LOG="${RUST_LOG:-warn}" \
  "$BIN" --addr 127.0.0.1:0 --outbox "$WORK/outbox" >"$WORK/stdout" 2>"$WORK/stderr" &
SERVER_PID=$!

BASE=""
for _ in $(seq 1 300); do
  BASE="$(sed -n 's/.* on \(http:\/\/[0-9.:]*\).*/\1/p' "$WORK/stdout" | head -n 1)"
  [ -n "$BASE" ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/stderr" >&2; die "oes-local exited"; }
  sleep 0.1
done
[ -n "$BASE" ] || die "oes-local did not say where it serves within 30 s"

# Waits until it answers, then signs in: prints the access token of $1.
"$PY" - "$BASE" <<'EOF' || die "oes-local does not answer at $BASE"
import sys, time, urllib.request
deadline = time.time() + 30
while True:
    try:
        urllib.request.urlopen(sys.argv[1] + "/openapi.json", timeout=2)
        break
    except Exception:
        if time.time() > deadline:
            raise
        time.sleep(0.2)
EOF
token() {
  "$PY" - "$BASE" "$1@example.com" "$PASSWORD" <<'EOF'
import json, sys, urllib.request
base, email, password = sys.argv[1:]
request = urllib.request.Request(
    base + "/auth/login",
    data=json.dumps({"email": email, "password": password}).encode(),
    headers={"content-type": "application/json"},
)
print(json.load(urllib.request.urlopen(request, timeout=10))["access_token"])
EOF
}

log "oes-local (embedded) at $BASE; seed $SEED, $EXAMPLES examples per operation and phase"
failed=""
for role in $ROLES; do
  TOKEN="$(token "$role")" || die "could not sign in as $role"
  log "as $role"
  # From the scratch folder: schemathesis keeps a cache (.schemathesis/) where it runs.
  if ! (cd "$WORK" && "$ST" --no-color run "$BASE/openapi.json" \
      --url "$BASE" \
      --header "Authorization: Bearer $TOKEN" \
      --checks not_a_server_error,status_code_conformance,response_schema_conformance \
      --phases examples,coverage,fuzzing,stateful \
      --max-examples "$EXAMPLES" \
      --seed "$SEED" \
      --workers 1 \
      --request-timeout 10 \
      --generation-database none \
      --generation-with-security-parameters false \
      --output-sanitize true \
      --suppress-health-check all); then
    failed="$failed $role"
  fi
done

if [ -n "$failed" ]; then
  printf '%s\n' "--- oes-local's log (errors):" >&2
  grep -iE '"level":"(ERROR|WARN)"|panicked' "$WORK/stdout" "$WORK/stderr" | tail -n 40 >&2 || true
  die "schemathesis found failures as:$failed (replay: FUZZ_SEED=$SEED FUZZ_ROLES=\"$failed\" scripts/fuzz-api.sh)"
fi
log "no failures as any of: $ROLES (seed $SEED)"
