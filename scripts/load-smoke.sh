#!/usr/bin/env bash
# The load test's smoke run: starts oes-local in its embedded mode (in-memory, a class of
# seeded students, mail to an outbox in a temporary folder, a free port), plays a short exam
# day against it with oes-load, and fails unless oes-load's hard checks hold: no 5xx but
# `503 busy`, every submitted attempt exactly one result email (job records and outbox), every
# student sat the exam. oes-local is stopped (SIGTERM, then SIGKILL) however the run ends.
#
#   scripts/load-smoke.sh          (make load-smoke builds the binaries first)
#
# Needs target/$LOAD_PROFILE/oes-local and oes-load (cargo build -p oes-local -p oes-load).
# Settings:
#   LOAD_STUDENTS     students (default 30)
#   LOAD_ARRIVE_OVER  their sign-in window (default 5s)
#   LOAD_SAVES        answer saves per student (default 2)
#   LOAD_SAVE_EVERY   time between saves (default 1s)
#   LOAD_PROFILE      the build to run, debug or release (default debug)
#   LOAD_OUT          where the report and chart go (default target/oes-load-smoke)
#   LOAD_ARGS         more oes-load arguments (e.g. "--seed 7 --arrival random")
#
# The same script plays a full exam day with the release builds, e.g. the figures of
# docs/BENCHMARKS.md: LOAD_PROFILE=release LOAD_STUDENTS=300 LOAD_ARRIVE_OVER=60s LOAD_SAVES=4
# LOAD_SAVE_EVERY=5s scripts/load-smoke.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PROFILE="${LOAD_PROFILE:-debug}"
LOCAL="$ROOT/target/$PROFILE/oes-local"
LOAD="$ROOT/target/$PROFILE/oes-load"
STUDENTS="${LOAD_STUDENTS:-30}"
ARRIVE_OVER="${LOAD_ARRIVE_OVER:-5s}"
SAVES="${LOAD_SAVES:-2}"
SAVE_EVERY="${LOAD_SAVE_EVERY:-1s}"
OUT="${LOAD_OUT:-$ROOT/target/oes-load-smoke}"
PASSWORD="load-smoke-password-$RANDOM$RANDOM"

log() { printf 'load-smoke: %s\n' "$*" >&2; }
die() { printf 'load-smoke: error: %s\n' "$*" >&2; exit 1; }

[ -x "$LOCAL" ] || die "no $LOCAL: run 'cargo build -p oes-local' first"
[ -x "$LOAD" ] || die "no $LOAD: run 'cargo build -p oes-load' first"

WORK="$(mktemp -d)"
# shellcheck source=lib/embedded-local.sh
. "$ROOT/scripts/lib/embedded-local.sh"
cleanup() {
  stop_embedded
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

STARTED=$SECONDS
start_embedded "$LOCAL" "$PASSWORD" --seed-students "$STUDENTS"

log "oes-local (embedded, $STUDENTS seeded students) at $BASE; $STUDENTS students arrive over $ARRIVE_OVER"
status=0
# shellcheck disable=SC2086 # LOAD_ARGS is a list of arguments
OES_DEMO_PASSWORD="$PASSWORD" "$LOAD" \
  --base-url "$BASE" \
  --students "$STUDENTS" \
  --arrive-over "$ARRIVE_OVER" \
  --saves "$SAVES" --save-every "$SAVE_EVERY" \
  --request-timeout 20s --drain-timeout 60s \
  --settle 135s \
  --outbox "$WORK/outbox" \
  --out "$OUT" \
  ${LOAD_ARGS:-} || status=$?

# oes-local's peak resident memory over the run (argon2's hashing is bounded; this shows it).
PEAK="$(sed -n 's/^VmHWM:[[:space:]]*//p' "/proc/$SERVER_PID/status" 2>/dev/null || true)"
[ -n "$PEAK" ] && log "oes-local's peak resident memory: $PEAK"

if [ "$status" -ne 0 ]; then
  printf '%s\n' "--- oes-local's log (errors):" >&2
  grep -iE '"level":"(ERROR|WARN)"|panicked' "$WORK/stdout" "$WORK/stderr" | tail -n 40 >&2 || true
  die "oes-load failed (exit $status); the report is in $OUT"
fi
log "passed in $((SECONDS - STARTED)) s; the report and chart are in $OUT"
