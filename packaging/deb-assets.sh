#!/usr/bin/env bash
# Generates what the Debian package ships besides the binaries, from the
# built binaries themselves: the man page and the bash/zsh/fish completions,
# into target/deb-assets/. cargo-deb then picks them up (see
# [package.metadata.deb] in crates/stsmfa/Cargo.toml).
#
#   packaging/deb-assets.sh target/release   # before `cargo deb -p stsmfa --no-build`
#   packaging/deb-assets.sh target/debug     # what tests/run.sh packages
#
# The completion scripts call the binary back by the path that printed them;
# in the package that is /usr/bin/stsmfa.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN_DIR=$(cd "${1:-target/release}" && pwd)
OUT=target/deb-assets
INSTALLED=/usr/bin/stsmfa
for b in stsmfa stsmfa-sts; do
    [[ -x $BIN_DIR/$b ]] || { echo "packaging/deb-assets.sh: $BIN_DIR/$b not built" >&2; exit 1; }
done
rm -rf "$OUT"
mkdir -p "$OUT"
"$BIN_DIR/stsmfa" man | gzip -9n > "$OUT/stsmfa.1.gz"
for shell in bash zsh fish; do
    "$BIN_DIR/stsmfa" completions "$shell" | sed "s|$BIN_DIR/stsmfa|$INSTALLED|g" > "$OUT/completions.$shell"
    if grep -q "$BIN_DIR" "$OUT/completions.$shell"; then
        echo "packaging/deb-assets.sh: the $shell completions still name $BIN_DIR" >&2
        exit 1
    fi
done
echo "packaging/deb-assets.sh: man page and completions in $OUT" >&2
