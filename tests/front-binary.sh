#!/usr/bin/env bash
# Keeps what the cache-hit work won, without timing anything (timings belong
# to bench/run.sh): builds `stsmfa` as install.sh does (release) into
# target/front-check/bin, with `stsmfa-sts` of the debug build beside it, and
# checks the properties a fast hit rests on:
#
#   - on Linux/glibc a static PIE: randomised by ASLR (ELF type DYN), no
#     program interpreter and no shared libraries, so no dynamic loader work;
#   - at most MAX_RELOCS dynamic relocations (each is work at every start);
#   - at most MAX_BYTES bytes (what a hit maps and may fault in).
#
# The limits sit about 10% above the figures in README's benchmark table;
# raise them only together with a new benchmark run that shows the hit still
# meets its targets.
set -euo pipefail
cd "$(dirname "$0")/.."

MAX_BYTES=4500000
MAX_RELOCS=3900

say() { printf 'tests/front-binary.sh: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

command -v readelf >/dev/null || die "readelf not found (Debian: binutils)"
out=$PWD/target/front-check
say "release build of stsmfa as install.sh makes it"
./install.sh --front-only --root "$out" --quiet
bin=$out/bin/stsmfa
[[ -x $bin ]] || die "install.sh left no $bin"
cp target/debug/stsmfa-sts "$out/bin/stsmfa-sts"

host=$(rustc -vV | sed -n 's/^host: //p')
case $host in
*-linux-gnu)
    type=$(readelf -h "$bin" | sed -n 's/^ *Type: *\([A-Z]*\).*/\1/p')
    [[ $type == DYN ]] || die "$bin is ELF type '$type', not a position-independent executable (ASLR)"
    if readelf -l "$bin" | grep -q 'Requesting program interpreter'; then
        die "$bin has a program interpreter: it is not a static PIE (see install.sh)"
    fi
    needed=$(readelf -d "$bin" | grep -c '(NEEDED)' || true)
    ((needed == 0)) || die "$bin needs $needed shared libraries: $(readelf -d "$bin" | grep '(NEEDED)' | tr -s ' ')"
    ;;
esac

bytes=$(stat -c %s "$bin")
relocs=$(readelf -r -W "$bin" | grep -cE '^[0-9a-f]+ +[0-9a-f]+ +R_' || true)
say "stsmfa: $bytes bytes (limit $MAX_BYTES), $relocs dynamic relocations (limit $MAX_RELOCS)"
((bytes <= MAX_BYTES)) || die "stsmfa grew to $bytes bytes (limit $MAX_BYTES): what entered the hit path's crate? (cargo tree -p stsmfa)"
((relocs <= MAX_RELOCS)) || die "stsmfa has $relocs dynamic relocations (limit $MAX_RELOCS)"
"$bin" --version >/dev/null || die "$bin does not run"
say "ok"
