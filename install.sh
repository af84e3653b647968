#!/usr/bin/env bash
# Installs stsmfa's two binaries, which belong together: `stsmfa` (the small
# one every AWS call starts) and `stsmfa-sts` (the one it runs on a cache
# miss). Extra arguments go to both `cargo install` runs, e.g. --root DIR.
set -euo pipefail
cd "$(dirname "$0")"
cargo install --locked --path crates/stsmfa-sts "$@"
cargo install --locked --path crates/stsmfa "$@"
