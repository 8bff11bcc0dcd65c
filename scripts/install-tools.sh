#!/usr/bin/env bash
# Installs the build tools that `make run` and `make test` need, skipping what is already there.
# Every step names what it installs; a step that cannot succeed stops with a message naming it.
# Why the detours: see TOOLCHAIN notes in the README ("Build tools").
#
# How the two tools built from source are built (PROMIO_TOOLS_BUILD):
#   lean (default)  one target folder for both ($TOOLS_DIR/target, kept: a version bump rebuilds
#                   only what changed); the release profile without link-time optimisation
#                   (cargo-leptos's own profile asks for fat LTO with one codegen unit) and at
#                   opt-level 1; only the `wasm-bindgen` binary, without the TLS stack its test
#                   runner downloads with. The tools' own work (driving cargo, wasm-bindgen's pass
#                   over the module) is small beside the compiler's; their build is not.
#   optimised       lean, but at the release profile's opt-level 3.
#   upstream        as a plain `cargo install --locked` builds them (each in a fresh temporary
#                   target folder, the crates' own profiles and features).
# scripts/measure-tool-install.sh compares them; the figures are in README ("Build tools").
# PROMIO_TOOLS_ROOT installs somewhere else than ~/.cargo (its bin/ must then be on PATH), and
# PROMIO_TOOLS_FORCE=1 rebuilds what is there; both are for that measurement.
set -euo pipefail

CARGO_LEPTOS_VERSION=0.3.11
# Must equal the wasm-bindgen version in Cargo.lock (cargo-leptos refuses any other and would try to
# download one, which these machines cannot).
WASM_BINDGEN_VERSION=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/,""); print; exit}' "$(dirname "$0")/../Cargo.lock" 2>/dev/null || true)
WASM_BINDGEN_VERSION=${WASM_BINDGEN_VERSION:-0.2.130}
BINARYEN_VERSION=132.0.0
TOOLS_DIR=${PROMIO_TOOLS_DIR:-$HOME/.cache/promio-connect/tools}
BUILD=${PROMIO_TOOLS_BUILD:-lean}
ROOT=${PROMIO_TOOLS_ROOT:-$HOME/.cargo}
FORCE=${PROMIO_TOOLS_FORCE:-0}

step() { printf '\n==> %s\n' "$*"; }
die() { printf 'install-tools: %s\n' "$*" >&2; exit 1; }

command -v cargo >/dev/null || die "cargo is missing: install Rust with rustup first"
command -v rustup >/dev/null || die "rustup is missing: it is needed for the wasm32 target"

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  step "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

# Unpacks a crate's published source into a scratch folder (via cargo's own registry cache) and
# prints the folder.
unpack_crate() {
  local name=$1 version=$2 src
  cargo info "$name@$version" >/dev/null 2>&1 || die "cannot fetch $name $version from crates.io"
  src=$(ls -d "$HOME"/.cargo/registry/src/*/"$name-$version" 2>/dev/null | head -n 1)
  [ -n "$src" ] || die "$name $version was fetched but its source was not found in ~/.cargo/registry/src"
  local dir
  dir=$(mktemp -d)/"$name-$version"
  cp -r "$src" "$dir"
  printf '%s' "$dir"
}

# `cargo install` from an unpacked source folder, built as PROMIO_TOOLS_BUILD says; the remaining
# arguments go to cargo install.
install_from() {
  local dir=$1
  shift
  local opt_level
  case "$BUILD" in
    lean) opt_level=1 ;;
    optimised) opt_level=3 ;;
    upstream) ;;
    *) die "PROMIO_TOOLS_BUILD is '$BUILD'; expected lean, optimised or upstream" ;;
  esac
  case "$BUILD" in
    lean | optimised)
      CARGO_TARGET_DIR="$TOOLS_DIR/target" CARGO_PROFILE_RELEASE_LTO=false \
        CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_PROFILE_RELEASE_DEBUG=false \
        CARGO_PROFILE_RELEASE_OPT_LEVEL="$opt_level" \
        cargo install --locked --force --root "$ROOT" --path "$dir" "$@"
      ;;
    upstream)
      # Only the arguments that say what to install count here, not the lean choices.
      env -u CARGO_TARGET_DIR cargo install --locked --force --root "$ROOT" --path "$dir"
      ;;
  esac
}

if [ "$FORCE" = 1 ] || ! cargo leptos --version 2>/dev/null | grep -q "$CARGO_LEPTOS_VERSION"; then
  step "installing cargo-leptos $CARGO_LEPTOS_VERSION ($BUILD build; built once per machine)"
  dir=$(unpack_crate cargo-leptos "$CARGO_LEPTOS_VERSION")
  # Its lock pins cargo-util-schemas 0.14.2, which needs a newer rustc than this toolchain.
  (cd "$dir" && cargo update -p cargo-util-schemas --precise 0.14.1)
  # no_downloads: a missing tool is named as missing instead of being downloaded (nothing can be
  # downloaded here; the other tools come from this script).
  install_from "$dir" --features no_downloads
fi

if [ "$FORCE" = 1 ] || ! wasm-bindgen --version 2>/dev/null | grep -q "$WASM_BINDGEN_VERSION"; then
  step "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION ($BUILD build)"
  dir=$(unpack_crate wasm-bindgen-cli "$WASM_BINDGEN_VERSION")
  # Its lock wants a webpki-roots release that the registry mirror here lacks.
  if grep -q 'name = "webpki-roots"' "$dir/Cargo.lock" 2>/dev/null; then
    (cd "$dir" && cargo update -p webpki-roots@1.0.11 --precise 1.0.10 2>/dev/null || true)
  fi
  install_from "$dir" --bin wasm-bindgen --no-default-features
fi

# wasm-opt from npm's binaryen; Debian's binaryen produces modules that fail to hydrate.
if ! "$TOOLS_DIR/node_modules/.bin/wasm-opt" --version 2>/dev/null | grep -q "${BINARYEN_VERSION%%.*}"; then
  command -v npm >/dev/null || die "npm is missing: install Debian's nodejs and npm"
  step "installing wasm-opt (npm binaryen $BINARYEN_VERSION) into $TOOLS_DIR"
  mkdir -p "$TOOLS_DIR"
  npm install --silent --no-audit --no-fund --prefix "$TOOLS_DIR" "binaryen@$BINARYEN_VERSION"
fi

printf 'tools ready: %s; wasm-bindgen %s; wasm-opt in %s\n' \
  "$(cargo leptos --version)" "$WASM_BINDGEN_VERSION" "$TOOLS_DIR/node_modules/.bin"
