#!/usr/bin/env bash
# Installs stsmfa's two binaries, which belong together: `stsmfa` (the small
# one every AWS call starts) and `stsmfa-sts` (the one it runs on a cache
# miss). Extra arguments go to both `cargo install` runs, e.g. --root DIR.
#
#   ./install.sh                 # into ~/.cargo/bin
#   ./install.sh --root DIR      # into DIR/bin
#   ./install.sh --front-only …  # only `stsmfa` (the benchmark and CI's size check)
#
# On Linux with glibc, `stsmfa` is linked as a static PIE: still randomised by
# ASLR, but with no dynamic loader work at start-up, which was 40% of a cache
# hit's instructions (README: "Benchmarks"). `stsmfa-sts` stays an ordinary
# dynamically linked program (it resolves host names through glibc's NSS).
set -euo pipefail
cd "$(dirname "$0")"
front_only=false
if [[ ${1-} == --front-only ]]; then
    front_only=true
    shift
fi

host=$(rustc -vV | sed -n 's/^host: //p')
front=()
front_flags=${RUSTFLAGS-}
case $host in
x86_64-unknown-linux-gnu | aarch64-unknown-linux-gnu)
    # --target keeps the flags off build scripts and proc macros.
    front=(--target "$host")
    front_flags="${front_flags:+$front_flags }-C target-feature=+crt-static"
    ;;
esac

$front_only || cargo install --locked --path crates/stsmfa-sts "$@"
RUSTFLAGS=$front_flags cargo install --locked --path crates/stsmfa "${front[@]}" "$@"
