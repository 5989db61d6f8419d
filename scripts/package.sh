#!/usr/bin/env bash
# Builds the deployable Lambda packages: one `bootstrap.zip` per function, for arm64
# (provided.al2023), with cargo-lambda and Zig, then reports their sizes against Lambda's limits.
#
#   scripts/package.sh           (or `make package`)
#   scripts/package.sh --tools   (or `make deploy-tools`): only install what a build needs
#
# Installs what it needs, project-locally, first: cargo-lambda and Zig (both pinned in
# requirements-dev.txt, from PyPI into .venv, seconds) and the aarch64 Rust target (rustup). Run
# `--tools` once before `sam build`: a build that adds the target itself raced the others when
# SAM built the functions in parallel (`can't find crate for core` while compiling libc), and
# samconfig.toml now builds them one at a time but a `sam build --parallel` still would. The
# release profile (fat LTO, one codegen unit) makes the build itself slow on small machines.
# `sam build` uses the same build method (Metadata: BuildMethod: rust-cargolambda).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

VENV="$ROOT/.venv"
PACKAGES=(auth-api exam-api admin-api email-worker)
# Every binary of those packages is a function (exam-api also builds the attempt sweeper).
FUNCTIONS=(auth-api exam-api attempt-sweeper admin-api email-worker)
ZIP_LIMIT=$((50 * 1024 * 1024))        # direct upload of a .zip
UNZIPPED_LIMIT=$((250 * 1024 * 1024))  # function code, unzipped

log() { printf 'package: %s\n' "$*"; }

# cargo-lambda and Zig: the venv of scripts/services.sh, with requirements-dev.txt.
"$ROOT/scripts/services.sh" venv
if ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
  log "adding the aarch64-unknown-linux-gnu Rust target"
  rustup target add aarch64-unknown-linux-gnu
fi
if [ "${1:-}" = "--tools" ]; then
  log "ready for 'sam build': $("$VENV/bin/cargo-lambda" lambda --version), Zig $("$VENV/bin/python" -m ziglang version), aarch64 target"
  log "put .venv/bin on PATH for sam build: export PATH=\"$VENV/bin:\$PATH\""
  exit 0
fi

# cargo-lambda finds Zig through `python3 -m ziglang` on PATH.
export PATH="$VENV/bin:$PATH"
# One crate at a time, as `sam build` builds each function in its own CodeUri: cargo resolves
# each crate's features alone, so no function carries another's (or the tests') code.
log "building ${FUNCTIONS[*]} for arm64 (release)"
for p in "${PACKAGES[@]}"; do
  cargo lambda build --release --arm64 --output-format zip -p "$p"
done

# Sizes against Lambda's limits, and the binary really is an arm64 ELF named bootstrap.
"$VENV/bin/python" - "$ZIP_LIMIT" "$UNZIPPED_LIMIT" "${FUNCTIONS[@]}" <<'PY'
import sys, zipfile
zip_limit, unzipped_limit, functions = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
failed = False
print(f"{'function':<16} {'zip':>10} {'unzipped':>10}")
for f in functions:
    path = f"target/lambda/{f}/bootstrap.zip"
    archive = zipfile.ZipFile(path)
    info = archive.getinfo("bootstrap")  # KeyError if missing: fails the script
    zipped = sum(i.compress_size for i in archive.infolist())
    unzipped = sum(i.file_size for i in archive.infolist())
    header = archive.read("bootstrap")[:20]
    arm64 = header[:4] == b"\x7fELF" and int.from_bytes(header[18:20], "little") == 0xB7
    print(f"{f:<16} {zipped / 2**20:>7.1f} MB {unzipped / 2**20:>7.1f} MB{'' if arm64 else '  NOT arm64'}")
    if zipped > zip_limit or unzipped > unzipped_limit or not arm64 or not info.external_attr >> 16 & 0o111:
        print(f"package: error: {path}: over Lambda's limits, not arm64, or not executable")
        failed = True
sys.exit(1 if failed else 0)
PY
