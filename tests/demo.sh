#!/usr/bin/env bash
# A try-it-now demo of stsmfa that needs no AWS account.
#
#   tests/demo.sh
#
# It starts a local STS/IAM server that enforces MFA (tests/e2e/mfa_bed), creates
# an IAM user under AWS's DenyAllExceptListedIfNoMFA policy, enrolls a virtual MFA
# device with `stsmfa enroll`, then makes real `aws` CLI calls through
# `credential_process = stsmfa credential-process work`, printing every step.
#
# Nothing outside this checkout is touched: HOME is a temporary directory (removed
# at exit) and sessions go to a private kernel keyring (`keyctl session -`, in a
# new user namespace when the system allows one).
# Exits non-zero if a step fails, so it doubles as a smoke test.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

say() { printf 'tests/demo.sh: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

command -v keyctl >/dev/null ||
    die "keyctl not found: install keyutils (Debian/Ubuntu: sudo apt-get install keyutils; Fedora: sudo dnf install keyutils)"
command -v python3 >/dev/null || die "python3 not found (Debian/Ubuntu: sudo apt-get install python3 python3-venv)"

# ------------------------------------------------------------ the stsmfa binary
if [[ ! -x $ROOT/target/debug/stsmfa ]]; then
    command -v cargo >/dev/null || die "cargo not found (install Rust with rustup: https://rustup.rs)"
    say "building target/debug/stsmfa (cargo build)"
    cargo build
fi

# ------------------------------------------------------------ Python venv (as tests/run.sh)
VENV=$ROOT/target/e2e-venv
REQ=$ROOT/tests/e2e/requirements.txt
STAMP=$VENV/.requirements.sha256
want=$( { sha256sum "$REQ" | cut -d' ' -f1; python3 --version; } | sha256sum | cut -d' ' -f1)
if [[ ! -x $VENV/bin/python || ! -f $STAMP || $(cat "$STAMP") != "$want" ]]; then
    say "setting up $VENV from tests/e2e/requirements.txt (moto, awscli)"
    [[ -x $VENV/bin/python ]] || python3 -m venv "$VENV" ||
        die "cannot create a venv (Debian/Ubuntu: sudo apt-get install python3-venv)"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQ"
    printf '%s\n' "$want" > "$STAMP"
fi

# ------------------------------------------------------------ a private HOME and keyring
TMP=$(mktemp -d "${TMPDIR:-/tmp}/stsmfa-demo.XXXXXX")
cleanup() { rm -rf "$TMP"; }
trap cleanup EXIT
mkdir -p "$TMP/home" "$TMP/tmp"
chmod 700 "$TMP/home"

# stsmfa's keyutils store also links each entry into the user's persistent keyring,
# which outlives `keyctl session -` and is shared by all the user's sessions. A new
# user namespace has a persistent keyring of its own: use one when the system allows.
PRIVATE=()
if unshare --user --map-root-user true 2>/dev/null; then
    PRIVATE=(unshare --user --map-root-user)
else
    say "note: no user namespaces (unshare --user): the demo's sessions (for a local test"
    say "server, useless elsewhere) stay in your kernel persistent keyring until they expire"
fi

# A clean environment: no AWS_* variables, D-Bus or keyring of the real user leak in.
set +e
env -i \
    PATH=/usr/local/bin:/usr/bin:/bin \
    HOME="$TMP/home" \
    TMPDIR="$TMP/tmp" \
    LANG=C.UTF-8 \
    TERM="${TERM:-dumb}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    STSMFA_STORE=keyutils \
    STSMFA_DEMO_ROOT="$ROOT" \
    "${PRIVATE[@]}" keyctl session - "$VENV/bin/python" "$ROOT/tests/demo.py" \
    2> >(grep --line-buffered -v '^Joined session keyring: ' >&2)
status=$?
set -e
if [[ $status == 0 ]]; then
    say "demo finished: every step worked"
else
    say "demo FAILED (exit $status)"
fi
exit "$status"
