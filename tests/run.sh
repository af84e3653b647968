#!/usr/bin/env bash
# Runs stsmfa's whole test suite: the unit tests, then the end-to-end tests
# against a local MFA-enforcing STS/IAM server (tests/e2e/mfa_bed) with the real
# AWS CLI, boto3, bash/zsh/fish and both Linux credential stores.
#
#   tests/run.sh                 # everything
#   tests/run.sh -k corrupt -x   # extra arguments go to pytest
#   STSMFA_E2E_BIN=$PWD/target/release/stsmfa tests/run.sh   # e2e against another build
#
# On a fresh Debian machine as root it installs what is missing (apt), builds the
# Python venv in target/e2e-venv and the debug binary. The e2e tests run inside a
# private kernel session keyring and a private D-Bus session with its own unlocked
# gnome-keyring, whose HOME and XDG_RUNTIME_DIR are a temporary directory: the
# real user's keyrings are never touched. With CI=true a missing tool or keyring
# is a test failure, never a skip.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

say() { printf 'tests/run.sh: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# ------------------------------------------------------------ system packages
PACKAGES=(gnome-keyring dbus libsecret-tools keyutils fish zsh tmux python3 python3-venv binutils)
# The AWS CLI v2 (Debian's awscli, /usr/bin/aws; the venv's v1 `aws` comes
# first on PATH in the tests, which call v2 by its full path), and man for
# the Debian package's test.
PACKAGES+=(awscli man-db)
# Node.js for the AWS SDK for JavaScript v3 (tests/e2e/js); a node already on
# PATH (nvm, NodeSource) is used as it is.
command -v npm >/dev/null || PACKAGES+=(nodejs npm)
missing_pkgs=()
if command -v dpkg-query >/dev/null; then  # elsewhere: the tool check below says what is missing
    for p in "${PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
            missing_pkgs+=("$p")
        fi
    done
fi
if ((${#missing_pkgs[@]})); then
    say "installing ${missing_pkgs[*]}"
    SUDO=()
    if [[ $(id -u) != 0 ]]; then
        command -v sudo >/dev/null || die "missing packages ${missing_pkgs[*]} and not root (no sudo)"
        SUDO=(sudo)
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get update -q
    "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing_pkgs[@]}"
fi
for tool in gnome-keyring-daemon dbus-run-session secret-tool keyctl fish zsh tmux python3 stdbuf node npm; do
    command -v "$tool" >/dev/null || die "$tool not found (packages: ${PACKAGES[*]})"
done
command -v cargo >/dev/null || die "cargo not found (install Rust with rustup: https://rustup.rs)"
if [[ -e /usr/bin/aws ]]; then  # elsewhere the e2e tests say it is missing
    aws_v2=$(/usr/bin/aws --version 2>&1) || die "/usr/bin/aws --version failed: $aws_v2"
    [[ $aws_v2 == aws-cli/2.* ]] || die "/usr/bin/aws is not the AWS CLI v2: $aws_v2"
fi

# ------------------------------------------------------------ Python venv
VENV=$ROOT/target/e2e-venv
REQ=$ROOT/tests/e2e/requirements.txt
STAMP=$VENV/.requirements.sha256
want=$( { sha256sum "$REQ" | cut -d' ' -f1; python3 --version; } | sha256sum | cut -d' ' -f1)
if [[ ! -x $VENV/bin/python || ! -f $STAMP || $(cat "$STAMP") != "$want" ]]; then
    say "setting up $VENV from tests/e2e/requirements.txt"
    [[ -x $VENV/bin/python ]] || python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQ"
    printf '%s\n' "$want" > "$STAMP"
fi

# ------------------------------------------------------------ JavaScript SDK
JS=$ROOT/tests/e2e/js
JS_STAMP=$JS/node_modules/.package-lock.sha256
want=$(sha256sum "$JS/package-lock.json" | cut -d' ' -f1)
if [[ ! -f $JS_STAMP || $(cat "$JS_STAMP") != "$want" ]]; then
    say "installing the pinned AWS SDK for JavaScript v3 into tests/e2e/js (npm ci)"
    npm ci --prefix "$JS" --no-audit --no-fund --loglevel=error
    printf '%s\n' "$want" > "$JS_STAMP"
fi

# ------------------------------------------------------------ Rust
say "cargo build"
cargo build
# The binary every AWS call starts must not link the AWS SDK: a stray
# dependency of its crate would put it back into every cache hit.
say "checking that the stsmfa binary's crate has no AWS SDK, tokio or HTTP stack"
sdk_in_front=$(cargo tree -p stsmfa -e normal --prefix none --no-dedupe |
    grep -E '^(aws-|tokio|hyper|h2 |reqwest|rustls)' | sort -u || true)
if [[ -n $sdk_in_front ]]; then
    die "the stsmfa binary's dependency tree contains: $(tr '\n' ' ' <<<"$sdk_in_front")"
fi
say "cargo test"
cargo test

# ------------------------------------------------------------ Debian package
# Built from the debug build above (no second, release build), stripped and
# quickly compressed; tests/e2e/test_debian_package.py installs it with dpkg.
# A cargo-deb of that version already on PATH is used; else it is installed
# once into target/cargo-deb (about 2 minutes).
CARGO_DEB_VERSION=3.8.0
CARGO_DEB=$(command -v cargo-deb || true)
if [[ -z $CARGO_DEB || $("$CARGO_DEB" --version 2>/dev/null) != "cargo-deb $CARGO_DEB_VERSION" ]]; then
    CARGO_DEB=$ROOT/target/cargo-deb/bin/cargo-deb
fi
if [[ ! -x $CARGO_DEB || $("$CARGO_DEB" --version) != "cargo-deb $CARGO_DEB_VERSION" ]]; then
    say "installing cargo-deb $CARGO_DEB_VERSION into target/cargo-deb"
    cargo install cargo-deb --locked --version "$CARGO_DEB_VERSION" --root "$ROOT/target/cargo-deb"
fi
say "building the Debian package (cargo deb) from the debug build"
packaging/deb-assets.sh target/debug
rm -rf target/debian
"$CARGO_DEB" -p stsmfa --no-build --profile dev --strip --no-dbgsym --fast --output target/debian/ >/dev/null
ls target/debian/stsmfa_*.deb >/dev/null || die "cargo deb made no target/debian/stsmfa_*.deb"

# ------------------------------------------------------------ e2e, private keyrings
TMP=$(mktemp -d "${TMPDIR:-/tmp}/stsmfa-e2e.XXXXXX")
cleanup() { rm -rf "$TMP"; }
trap cleanup EXIT
mkdir -p "$TMP/home" "$TMP/run" "$TMP/tmp"
chmod 700 "$TMP/home" "$TMP/run"

# The keyutils store also links entries into the user's persistent keyring,
# which outlives a `keyctl session`; a user namespace gets its own, so runs
# never see each other's entries (or the user's).
USERNS=()
if unshare --user --map-root-user true 2>/dev/null; then
    USERNS=(unshare --user --map-root-user)
fi

# e2e BIN [PYTEST ARGS...]: the e2e tests against the stsmfa binary BIN (empty:
# target/debug/stsmfa), inside the private keyrings; returns pytest's status.
e2e() {
    local bin=$1
    shift
    set +e
    env -i \
        PATH=/usr/local/bin:/usr/bin:/bin \
        HOME="$TMP/home" \
        XDG_RUNTIME_DIR="$TMP/run" \
        TMPDIR="$TMP/tmp" \
        LANG=C.UTF-8 \
        TERM="${TERM:-dumb}" \
        CI="${CI:-}" \
        STSMFA_E2E_BIN="$bin" \
        PYTHONDONTWRITEBYTECODE=1 \
        STSMFA_E2E_PRIVATE_KEYRINGS=1 \
        "${USERNS[@]}" keyctl session - \
        dbus-run-session -- \
        bash -c '
            set -e
            printf testpass | gnome-keyring-daemon --unlock --components=secrets >/dev/null
            exec "$0" -m pytest -p no:cacheprovider tests/e2e "$@"
        ' "$VENV/bin/python" "$@" 2>&1 |
        grep --line-buffered -v -e 'Failed to set fd limit' -e 'Activating service name=.org.freedesktop.secrets' \
                -e "Successfully activated service 'org.freedesktop.secrets'" -e '^Joined session keyring: ' \
                -e 'became a monitor' -e 'Monitoring connection .* closed'
    local rc=${PIPESTATUS[0]}
    set -e
    return "$rc"
}

say "e2e tests (private session keyring and D-Bus session with gnome-keyring)"
status=0
e2e "${STSMFA_E2E_BIN:-}" "$@" || status=$?

# The release build users install differs from the debug one in how it is
# linked (install.sh): check its size and relocations, then run the cache and
# store tests against it. Only on a full run (no pytest arguments).
if [[ $status == 0 && $# == 0 && -z ${STSMFA_E2E_BIN:-} ]]; then
    say "the release stsmfa (tests/front-binary.sh), then the cache and store e2e tests against it"
    if ! tests/front-binary.sh; then
        status=1
    elif ! e2e "$ROOT/target/front-check/bin/stsmfa" -q -k 'test_credential_process or test_stores'; then
        say "e2e tests against the release stsmfa FAILED"
        status=1
    fi
fi

if [[ $status == 0 ]]; then
    # The README's try-it-now demo doubles as a smoke test of the whole story.
    say "smoke test: tests/demo.sh"
    if ! tests/demo.sh > "$TMP/demo.log" 2>&1; then
        tail -n 40 "$TMP/demo.log" >&2
        say "tests/demo.sh FAILED"
        status=1
    fi
fi
if [[ $status == 0 ]]; then
    say "all tests passed"
else
    say "e2e tests FAILED (exit $status)"
fi
exit "$status"
