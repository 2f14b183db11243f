#!/usr/bin/env bash
# Builds the Debian package: ${CARGO_TARGET_DIR:-target}/debian/iggy-warden_<version>-1_<arch>.deb
# (its path is the last line printed). Extra arguments go to `cargo deb`.
#
# From a clean clone this is all it takes (plain `cargo deb -p iggy-warden` works too:
# the man pages and completions it packages are committed under packaging/generated/).
# This script also installs cargo-deb (3.x, from crates.io) when it is missing, and
# refuses to package man pages or completions that no longer match the binary.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo_deb_major() { cargo deb --version 2>/dev/null | sed -n 's/^cargo-deb \([0-9]*\)\..*/\1/p'; }
if [ "$(cargo_deb_major)" != 3 ]; then
	echo "build-deb: installing cargo-deb 3.x (cargo install --locked)" >&2
	cargo install cargo-deb --locked --version '^3.8' >&2
fi

deb=$(cargo deb -p iggy-warden "$@" | tail -n1)
[ -f "$deb" ] || { echo "build-deb: cargo deb printed no package path" >&2; exit 1; }

# The packaged assets must be what the packaged binary generates.
bin=${CARGO_TARGET_DIR:-target}/release/iggy-warden
fresh=$(mktemp -d)
trap 'rm -rf "$fresh"' EXIT
"$bin" generate-assets "$fresh"
if ! diff -r "$fresh" packaging/generated >&2; then
	echo "build-deb: packaging/generated is stale; refresh it with:" >&2
	echo "  IGGY_WARDEN_UPDATE_ASSETS=1 cargo test -p iggy-warden assets" >&2
	exit 1
fi
echo "$deb"
