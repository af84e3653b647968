#!/usr/bin/env bash
# Benchmarks stsmfa on Linux: the cache-hit path against the raw keyring tools
# (a source profile's hit and a role profile's), 256 hits at once against 256 raw
# reads at once, the peak memory of one hit, and the cold path with 256 parallel
# `credential-process` calls against the MFA test bed (tests/e2e/mfa_bed). Every
# figure is min/median/max; targets are ratios of medians from one hyperfine
# invocation. Writes a JSON summary. Not part of CI.
#
#   bench/run.sh                     # from the repository root
#
# Needs cargo, hyperfine, keyctl (keyutils), gnome-keyring, dbus, secret-tool
# (libsecret-tools) and python3 (the e2e venv is created when missing).
# Knobs: BENCH_RUNS (default 200), BENCH_WARMUP (20), BENCH_COLD_ROUNDS (5),
# BENCH_FANOUT (256 cold calls at once), BENCH_HIT_FANOUT (256 hits at once),
# BENCH_FANOUT_RUNS (20), BENCH_JSON (bench/last-run.json), BENCH_BIN (a prebuilt
# stsmfa with its stsmfa-sts beside it, instead of install.sh's release build),
# BENCH_BASELINE_BIN (another build timed in the same runs). Everything lives in
# one temporary directory that is removed at the end, together with the test bed,
# the private D-Bus session and gnome-keyring; keyutils keys live in a private
# session keyring (`keyctl session -`), and stsmfa's own entries are cleared
# before leaving.
set -euo pipefail

RUNS=${BENCH_RUNS:-200}
WARMUP=${BENCH_WARMUP:-20}
COLD_ROUNDS=${BENCH_COLD_ROUNDS:-5}
FANOUT=${BENCH_FANOUT:-256}
HIT_FANOUT=${BENCH_HIT_FANOUT:-256}
BENCH_JSON=${BENCH_JSON:-bench/last-run.json}
FANOUT_RUNS=${BENCH_FANOUT_RUNS:-20}

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }
# Single-quotes a word for sh.
shq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

# ---------------------------------------------------------------- inside
# Runs inside `keyctl session -` and `dbus-run-session`, with a private HOME.

py() { "$BENCH_ROOT/target/e2e-venv/bin/python" "$BENCH_ROOT/bench/bed.py" "$@"; }

# Writes ~/.aws/{credentials,config} from the per-profile fragments.
write_aws() {
    mkdir -p "$HOME/.aws"
    cat "$BENCH_TMP"/aws/*.cred >"$HOME/.aws/credentials"
    cat "$BENCH_TMP"/aws/*.conf >"$HOME/.aws/config"
}

# new_profile PROFILE USER: a new bed user with an MFA device, as PROFILE;
# its mfa_process appends to $BENCH_TMP/tools/PROFILE.codes.log (emptied here).
new_profile() {
    local profile=$1 user=$2 key secret serial made
    made=$(py user "$BENCH_ENDPOINT" "$user" "$BENCH_TMP/tools") || die "could not create bed user $user"
    read -r key secret serial <<<"$made"
    local codes="$BENCH_TMP/tools/$profile.codes.log"
    : >"$codes"
    mkdir -p "$BENCH_TMP/aws"
    printf '[%s]\naws_access_key_id = %s\naws_secret_access_key = %s\n\n' \
        "$profile" "$key" "$secret" >"$BENCH_TMP/aws/$profile.cred"
    printf '[profile %s]\nmfa_serial = %s\nregion = us-east-1\nmfa_process = %s %s %s %s\n\n' \
        "$profile" "$serial" "$(shq "$(command -v python3)")" \
        "$(shq "$BENCH_ROOT/bench/mfa_code.py")" \
        "$(shq "$BENCH_TMP/tools/$user.seed")" "$(shq "$codes")" >"$BENCH_TMP/aws/$profile.conf"
    write_aws
}

# bench_keys KEYRING: "ID DESCRIPTION" of stsmfa's keyutils entries for this
# script's profiles, searching linked keyrings (the persistent one) too.
bench_keys() {
    local id d
    for id in $(keyctl rlist "$1" 2>/dev/null); do
        d=$(keyctl rdescribe "$id" 2>/dev/null) || continue
        case $d in
        keyring\;*) bench_keys "$id" ;;
        user\;*\;"keyring:session|$BENCH_PREFIX"* | user\;*\;"keyring:role|$BENCH_PREFIX"*) printf '%s %s\n' "$id" "${d##*;}" ;;
        esac
    done
}

# Leaves none of this run's entries in the user's persistent keyring.
clear_keyutils() {
    local id
    STSMFA_STORE=keyutils "$BENCH_BIN" clear "$KU" >/dev/null 2>&1 || true
    STSMFA_STORE=keyutils "$BENCH_BIN" clear "$COLD" >/dev/null 2>&1 || true
    STSMFA_STORE=keyutils "$BENCH_BIN" clear "$KUK" >/dev/null 2>&1 || true
    for id in $(bench_keys @s | cut -d' ' -f1); do
        keyctl invalidate "$id" 2>/dev/null || true
    done
}

# clear_cache STORE PROFILE: `stsmfa clear`, quiet unless it fails.
clear_cache() {
    local msg
    msg=$(STSMFA_STORE=$1 "$BENCH_BIN" clear "$2" 2>&1) || die "stsmfa clear $2 ($1): $msg"
}

# new_role_profile PROFILE SOURCE USER: a bed role trusting USER with MFA, as
# PROFILE (role_arn + source_profile = SOURCE).
new_role_profile() {
    local profile=$1 source=$2 user=$3 arn
    arn=$(py role "$BENCH_ENDPOINT" "$profile" "$user") || die "could not create bed role $profile"
    printf '[profile %s]\nrole_arn = %s\nsource_profile = %s\nregion = us-east-1\n\n' \
        "$profile" "$arn" "$source" >"$BENCH_TMP/aws/$profile.conf"
    write_aws
}

codes_asked() { wc -l <"$BENCH_TMP/tools/$1.codes.log" | tr -d ' '; }

# cold STORE N ROUND: clears the cache, gives profile $COLD a fresh user (so
# its current TOTP step is unused), starts N calls at once; prints
# "STORE N ROUND WALL_S OK CODES STS".
cold() {
    local store=$1 n=$2 round=$3 user="cold-$1-$3-n$2" res wall ok
    new_profile "$COLD" "$user"
    clear_cache "$store" "$COLD"
    res=$(STSMFA_STORE=$store py fanout "$n" "$BENCH_BIN" credential-process "$COLD") ||
        die "parallel run failed"
    read -r wall ok <<<"$res"
    printf '%s %s %s %s %s %s %s\n' "$store" "$n" "$round" "$wall" "$ok" \
        "$(codes_asked "$COLD")" "$(py sts "$BENCH_ENDPOINT" "$user")"
    clear_cache "$store" "$COLD"
}

inside() {
    cd "$BENCH_ROOT"
    # This run's own profile names: keyutils entries are also linked into the
    # user's persistent keyring, which every session of the user sees.
    KU=${BENCH_PREFIX}ku SS=${BENCH_PREFIX}ss COLD=${BENCH_PREFIX}cold
    KUR=${BENCH_PREFIX}ku-role SSR=${BENCH_PREFIX}ss-role KUK=${BENCH_PREFIX}ku-keys
    local bin=$BENCH_BIN gkd out=$BENCH_TMP

    # gnome-keyring in this D-Bus session, its login collection unlocked.
    printf 'stsmfa-bench' | gnome-keyring-daemon --foreground --unlock --components=secrets \
        >"$out/gnome-keyring.log" 2>&1 &
    gkd=$!
    # shellcheck disable=SC2064
    trap "clear_keyutils; kill $gkd 2>/dev/null; wait $gkd 2>/dev/null || true" EXIT
    local i
    for i in $(seq 250); do
        dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
            org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null |
            grep -q 'boolean true' && break
        ((i < 250)) || die "gnome-keyring did not come up: $(cat "$out/gnome-keyring.log")"
        sleep 0.02
    done

    # Raw items of ~1 KiB (1,024 base64 characters) for the baselines.
    head -c 768 /dev/urandom | base64 -w0 >"$out/raw-1k"
    local kid
    kid=$(keyctl padd user stsmfa-bench-raw @s <"$out/raw-1k")
    [[ $(keyctl print "$kid") == "$(cat "$out/raw-1k")" ]] || die "keyutils key not readable"
    secret-tool store --label=stsmfa-bench-raw service stsmfa-bench-raw username y <"$out/raw-1k"
    [[ $(secret-tool lookup service stsmfa-bench-raw username y) == "$(cat "$out/raw-1k")" ]] ||
        die "Secret Service item not readable"

    # One session per store: a cold call each, then everything is a hit.
    log "priming the cache (one code and one STS call per store)"
    new_profile "$KU" hit-keyutils
    new_profile "$SS" hit-secret-service
    new_role_profile "$KUR" "$KU" hit-keyutils
    new_role_profile "$SSR" "$SS" hit-secret-service
    clear_cache keyutils "$KU"
    clear_cache secret-service "$SS"
    STSMFA_STORE=keyutils "$bin" credential-process "$KU" >"$out/ku.json"
    STSMFA_STORE=secret-service "$bin" credential-process "$SS" >"$out/ss.json"
    # The role profiles' sessions, from the MFA sessions just cached: no code.
    STSMFA_STORE=keyutils "$bin" credential-process "$KUR" >"$out/kur.json"
    STSMFA_STORE=secret-service "$bin" credential-process "$SSR" >"$out/ssr.json"
    # A profile whose long-term key is in the key store (the encrypted file),
    # not in ~/.aws/credentials: its hit must cost what a file-key hit costs.
    new_profile "$KUK" hit-key-store
    STSMFA_KEY_STORE=file STSMFA_FILE_PASSPHRASE=stsmfa-bench "$bin" import "$KUK" >/dev/null ||
        die "stsmfa import $KUK failed"
    : >"$BENCH_TMP/aws/$KUK.cred"
    write_aws
    ! grep -q "^\[$KUK\]" "$HOME/.aws/credentials" || die "$KUK still has keys in ~/.aws/credentials"
    clear_cache keyutils "$KUK"
    STSMFA_FILE_PASSPHRASE=stsmfa-bench STSMFA_STORE=keyutils "$bin" credential-process "$KUK" >"$out/kuk.json"
    local ku_entry
    ku_entry=$(bench_keys @s | grep -F "|$KU|" | head -n1 | cut -d' ' -f1)
    [[ -n $ku_entry ]] || die "no keyutils entry for $KU after the first call"
    keyctl pipe "$ku_entry" | wc -c | tr -d ' ' >"$out/entry-bytes"

    # BENCH_BASELINE_BIN: another build's stsmfa (e.g. of an earlier commit), timed
    # on the same cached sessions in the same run, so a change can be judged
    # against noise rather than against figures from another day.
    local baseline=()
    if [[ -n ${BENCH_BASELINE_BIN-} ]]; then
        baseline=(
            -n 'keyutils: baseline hit' "$(shq "$BENCH_BASELINE_BIN") credential-process --store keyutils $KU"
            -n 'secret-service: baseline hit' "$(shq "$BENCH_BASELINE_BIN") credential-process --store secret-service $SS"
        )
    fi
    log "hyperfine: $RUNS runs each after $WARMUP warmup runs"
    hyperfine -N --style basic --warmup "$WARMUP" --runs "$RUNS" --time-unit millisecond \
        --export-markdown "$out/hyperfine.md" --export-json "$out/hyperfine.json" \
        -n '/bin/true' '/bin/true' \
        -n 'keyutils: keyctl print (1 KiB)' "keyctl print $kid" \
        -n 'keyutils: stsmfa hit' "$(shq "$bin") credential-process --store keyutils $KU" \
        -n 'keyutils: stsmfa role hit' "$(shq "$bin") credential-process --store keyutils $KUR" \
        -n 'keyutils: stsmfa hit, key in the key store' "$(shq "$bin") credential-process --store keyutils $KUK" \
        -n 'secret-service: secret-tool lookup (1 KiB)' 'secret-tool lookup service stsmfa-bench-raw username y' \
        -n 'secret-service: stsmfa hit' "$(shq "$bin") credential-process --store secret-service $SS" \
        -n 'secret-service: stsmfa role hit' "$(shq "$bin") credential-process --store secret-service $SSR" \
        -n 'stsmfa --help' "$(shq "$bin") --help" \
        "${baseline[@]}"

    # Many hits at once, as `terraform plan` or `make -j` start them: N hits
    # against N raw reads, each batch through the same xargs, in one invocation.
    log "hyperfine: $HIT_FANOUT parallel hits against $HIT_FANOUT parallel raw reads, $FANOUT_RUNS runs each"
    hyperfine --style basic --warmup 2 --runs "$FANOUT_RUNS" --time-unit millisecond \
        --export-json "$out/fanout.json" \
        -n "keyutils: $HIT_FANOUT parallel keyctl print" \
        "seq $HIT_FANOUT | xargs -P $HIT_FANOUT -I{} keyctl print $kid" \
        -n "keyutils: $HIT_FANOUT parallel stsmfa hits" \
        "seq $HIT_FANOUT | xargs -P $HIT_FANOUT -I{} $(shq "$bin") credential-process --store keyutils $KU"

    # Peak resident memory of one hit (and of the raw read, for scale), in KiB.
    # GNU time forks from itself, so the child's figure is not a Python parent's.
    /usr/bin/time -f %M -o "$out/rss-hit" "$bin" credential-process --store keyutils "$KU" >/dev/null
    /usr/bin/time -f %M -o "$out/rss-raw" keyctl print "$kid" >/dev/null
    printf '%s %s\n' "$(tail -n1 "$out/rss-hit")" "$(tail -n1 "$out/rss-raw")" >"$out/rss"

    # Every hit stayed a hit: still one code asked, one GetSessionToken and
    # one AssumeRole per store.
    codes_asked "$KUK" >"$out/key-store-codes"
    printf '%s %s %s %s %s %s\n' "$(codes_asked "$KU")" "$(py sts "$BENCH_ENDPOINT" hit-keyutils)" \
        "$(codes_asked "$SS")" "$(py sts "$BENCH_ENDPOINT" hit-secret-service)" \
        "$(py assumed "$BENCH_ENDPOINT" hit-keyutils)" "$(py assumed "$BENCH_ENDPOINT" hit-secret-service)" \
        >"$out/hit-checks"

    log "cold calls: $COLD_ROUNDS rounds of 1 call and of $FANOUT parallel calls, each on a new user"
    local store r
    : >"$out/cold.txt"
    for store in keyutils secret-service; do
        for r in $(seq "$COLD_ROUNDS"); do
            cold "$store" 1 "$r" >>"$out/cold.txt"
            cold "$store" "$FANOUT" "$r" >>"$out/cold.txt"
        done
    done
}

if [[ ${1-} == --inside ]]; then
    inside
    exit
fi

# ---------------------------------------------------------------- outside

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
for tool in cargo hyperfine keyctl gnome-keyring-daemon dbus-run-session dbus-send secret-tool python3 /usr/bin/time; do
    command -v "$tool" >/dev/null || die "$tool is missing (Debian: cargo hyperfine keyutils gnome-keyring dbus libsecret-tools python3-venv time)"
done

if [[ -n ${BENCH_BIN-} ]]; then
    # A build made elsewhere (its stsmfa-sts beside it), e.g. to compare link flags.
    bin=$(realpath "$BENCH_BIN")
else
    # What users run: install.sh's release build (the static front on Linux/glibc).
    log "./install.sh --root target/bench-install (release build)"
    ./install.sh --root "$root/target/bench-install" --quiet
    bin=$root/target/bench-install/bin/stsmfa
fi
[[ -x $bin ]] || die "no $bin after the build"
# Which sources were built (read-only git calls).
if rev=$(git rev-parse --short HEAD 2>/dev/null); then
    git diff --quiet HEAD -- crates Cargo.toml Cargo.lock || rev="$rev + uncommitted changes"
else
    rev=unknown
fi

if ! target/e2e-venv/bin/python -c 'import moto' 2>/dev/null; then
    log "creating target/e2e-venv"
    python3 -m venv target/e2e-venv
    target/e2e-venv/bin/pip install -q -r tests/e2e/requirements.txt
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/stsmfa-bench.XXXXXX")
bed_pid=
cleanup() {
    if [[ -n $bed_pid ]]; then
        kill "$bed_pid" 2>/dev/null || true
        wait "$bed_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$tmp/home" "$tmp/run" "$tmp/tmp" "$tmp/tools" "$tmp/state"
chmod 700 "$tmp/run"

log "starting the MFA test bed"
env -u AWS_CA_BUNDLE TMPDIR="$tmp/tmp" target/e2e-venv/bin/python bench/bed.py serve "$tmp" &
bed_pid=$!
for _ in $(seq 300); do
    [[ -s $tmp/endpoint ]] && break
    kill -0 "$bed_pid" 2>/dev/null || die "the test bed did not start"
    sleep 0.1
done
[[ -s $tmp/endpoint ]] || die "the test bed did not start within 30 s"

# A tag of this run for profile names, e.g. bench-Xy12ab-ku.
prefix="bench-${tmp##*.}-"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
# A clean environment: no AWS_*, STSMFA_* or desktop variables from the caller.
env -i PATH="$PATH" LANG=C.UTF-8 HOME="$tmp/home" XDG_RUNTIME_DIR="$tmp/run" TMPDIR="$tmp/tmp" \
    AWS_ENDPOINT_URL="$(cat "$tmp/endpoint")" AWS_EC2_METADATA_DISABLED=true \
    AWS_CONFIG_FILE="$tmp/home/.aws/config" AWS_SHARED_CREDENTIALS_FILE="$tmp/home/.aws/credentials" \
    STSMFA_STATE_DIR="$tmp/state" \
    BENCH_ROOT="$root" BENCH_BIN="$bin" BENCH_TMP="$tmp" BENCH_ENDPOINT="$(cat "$tmp/endpoint")" BENCH_PREFIX="$prefix" \
    BENCH_BASELINE_BIN="${BENCH_BASELINE_BIN-}" BENCH_RUNS="$RUNS" BENCH_WARMUP="$WARMUP" BENCH_COLD_ROUNDS="$COLD_ROUNDS" BENCH_FANOUT="$FANOUT" \
    BENCH_HIT_FANOUT="$HIT_FANOUT" BENCH_FANOUT_RUNS="$FANOUT_RUNS" \
    keyctl session - dbus-run-session -- bash "$root/bench/run.sh" --inside
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

echo
echo "## hyperfine (--export-markdown)"
echo
cat "$tmp/hyperfine.md"
echo
echo "## summary"
echo
python3 "$root/bench/summary.py" "$tmp" "$BENCH_JSON" "$FANOUT" "$HIT_FANOUT" \
    "$load_before" "$load_after" "$rev"
