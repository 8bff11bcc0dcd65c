#!/usr/bin/env bash
# Measures the one-time build of the tools (cargo-leptos and wasm-bindgen) the ways that
# install-tools.sh knows (PROMIO_TOOLS_BUILD: upstream, lean), one after the other, each from an
# empty target folder into a scratch folder that is removed afterwards; what is installed for the
# project stays as it is. The crates come from cargo's registry cache (the first run on a machine
# downloads them). Usage: scripts/measure-tool-install.sh [upstream] [optimised] [lean]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
builds=("$@")
[ ${#builds[@]} -gt 0 ] || builds=(upstream lean)
for build in "${builds[@]}"; do
  root="$scratch/$build"
  mkdir -p "$root/bin"
  start=$(date +%s)
  cpu_before=$(awk '{print $14 + $15 + $16 + $17}' /proc/$$/stat)
  if ! PATH="$root/bin:$PATH" PROMIO_TOOLS_BUILD="$build" PROMIO_TOOLS_ROOT="$root" \
      PROMIO_TOOLS_FORCE=1 PROMIO_TOOLS_DIR="$scratch/$build-tools" \
      bash "$here/install-tools.sh" >"$scratch/$build.log" 2>&1; then
    tail -n 30 "$scratch/$build.log" >&2
    echo "measure-tool-install: the $build build failed" >&2
    exit 1
  fi
  secs=$(( $(date +%s) - start ))
  # CPU time of the finished children (user and system, in clock ticks): comparable even when the
  # machine was busy with other work, which wall time is not.
  ticks=$(( $(awk '{print $14 + $15 + $16 + $17}' /proc/$$/stat) - cpu_before ))
  cpu=$(( ticks / $(getconf CLK_TCK) ))
  printf '%-9s %4d s wall (%d min %02d s), %5d s CPU (%d min)\n' "$build" "$secs" \
    $((secs / 60)) $((secs % 60)) "$cpu" $((cpu / 60))
done
