#!/usr/bin/env bash
# Configure and build into $1 (default build/) with extra cmake args after it;
# RP_BUILD_TARGETS="a b" limits the build to those targets.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$root/build}
shift || true
cmake -S "$root" -B "$dir" "$@" >/dev/null
if [ -n "${RP_BUILD_TARGETS:-}" ]; then
  for t in $RP_BUILD_TARGETS; do cmake --build "$dir" -j"$(nproc)" --target "$t"; done
else
  cmake --build "$dir" -j"$(nproc)"
fi
