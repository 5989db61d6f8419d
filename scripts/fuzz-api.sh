#!/usr/bin/env bash
# Fuzzes every operation of the OpenAPI document with schemathesis against oes-local in its
# embedded mode (in-memory, nothing else running), signed in as each role in turn: no answer may
# be a 5xx, and each must have a documented status and match its schema.
#
#   scripts/fuzz-api.sh            (make test runs it after the cargo tests)
#
# Needs target/debug/oes-local (cargo build -p oes-local) and .venv/bin/schemathesis
# (scripts/services.sh up installs requirements-dev.txt). Settings:
#   FUZZ_EXAMPLES  examples per operation in the examples, coverage and fuzzing phases
#                  (default 15)
#   FUZZ_SCENARIOS scenarios of the stateful phase, which follows the document's links (create
#                  an exam, add a question, publish, start an attempt, save, submit; default 60)
#   FUZZ_SEED      the seed (default: a random one, printed; pass it again to replay a failure)
#   FUZZ_ROLES     the roles to sign in as (default "student instructor admin")
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

BIN="$ROOT/target/debug/oes-local"
ST="$ROOT/.venv/bin/schemathesis"
PY="$ROOT/.venv/bin/python"
EXAMPLES="${FUZZ_EXAMPLES:-15}"
SCENARIOS="${FUZZ_SCENARIOS:-60}"
SEED="${FUZZ_SEED:-$RANDOM$RANDOM}"
# The student first: it sits the seed exam (below) before the instructor and the admin, who may
# change or delete any exam they reach (schemathesis infers links from the ids in answers).
ROLES="${FUZZ_ROLES:-student instructor admin}"
PASSWORD="fuzz-demo-password-$RANDOM"

log() { printf 'fuzz-api: %s\n' "$*"; }
die() { printf 'fuzz-api: error: %s\n' "$*" >&2; exit 1; }

[ -x "$BIN" ] || die "no $BIN: run 'cargo build -p oes-local' first"
[ -x "$ST" ] || die "no $ST: run 'scripts/services.sh up' first"

WORK="$(mktemp -d)"
# shellcheck source=lib/embedded-local.sh
. "$ROOT/scripts/lib/embedded-local.sh"
cleanup() {
  stop_embedded
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

start_embedded "$BIN" "$PASSWORD"

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

# A published exam that students find (GET /exams) and sit: the stateful phase follows the
# links from it to an attempt. Many attempts allowed, so every scenario may start one.
"$PY" - "$BASE" "$(token instructor)" <<'EOF' || die "could not publish the seed exam"
import json, sys, urllib.request
base, token = sys.argv[1:]
def call(method, path, body):
    request = urllib.request.Request(
        base + path, method=method, data=json.dumps(body).encode(),
        headers={"content-type": "application/json", "authorization": "Bearer " + token},
    )
    return json.load(urllib.request.urlopen(request, timeout=10))
exam = call("POST", "/exams", {"title": "Fuzz seed exam", "duration_minutes": 30,
                               "pass_mark_percent": 50, "max_attempts": 100})["exam_id"]
for n in range(3):
    call("POST", f"/exams/{exam}/questions",
         {"text": f"Question {n}", "options": ["yes", "no"], "correct_option": 0, "points": 1})
call("POST", f"/exams/{exam}/publish", {})
EOF

# The stateful phase: positive data only (a 400 ends a scenario before it gets anywhere; the
# other phases send the invalid input), longer scenarios than the default 6 steps.
cat >"$WORK/schemathesis.toml" <<EOF
[generation]
max-examples = $EXAMPLES

[phases.stateful]
max-steps = 12

[phases.stateful.generation]
mode = "positive"
max-examples = $SCENARIOS
EOF

log "oes-local (embedded) at $BASE; seed $SEED; $EXAMPLES examples per operation and phase, $SCENARIOS stateful scenarios"
failed=""
for role in $ROLES; do
  TOKEN="$(token "$role")" || die "could not sign in as $role"
  log "as $role"
  # From the scratch folder: schemathesis keeps a cache (.schemathesis/) where it runs.
  if ! (cd "$WORK" && "$ST" --config-file "$WORK/schemathesis.toml" --no-color run "$BASE/openapi.json" \
      --url "$BASE" \
      --header "Authorization: Bearer $TOKEN" \
      --checks not_a_server_error,status_code_conformance,response_schema_conformance \
      --phases examples,coverage,fuzzing,stateful \
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
