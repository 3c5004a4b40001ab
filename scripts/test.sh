#!/usr/bin/env bash
# The whole test suite: install what is missing, build with -Werror under
# AddressSanitizer + UndefinedBehaviorSanitizer, run every CTest test; then
# the fuzz build (clang, RP_FUZZ=ON, in build-fuzz/) and its fuzz_<name>
# CTests, each fuzzing for RP_FUZZ_SECONDS (default 8) seconds; then a
# Release build (-O3 -DNDEBUG, -Werror: what the demo and the benchmarks
# build, where asserts compile away) and its unit tests.
# RP_SKIP_FUZZ=1 skips the fuzz part, RP_SKIP_RELEASE=1 the Release part.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/install-deps.sh"
build=${RP_TEST_BUILD:-$root/build-test}
bash "$root/scripts/build.sh" "$build" -DCMAKE_BUILD_TYPE=Debug -DRP_SANITIZE=ON -DRP_WERROR=ON
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
(cd "$build" && ctest -j2 --output-on-failure --timeout 600 "$@")
if [ "${RP_SKIP_FUZZ:-0}" != 1 ]; then
  fuzz=${RP_FUZZ_BUILD:-$root/build-fuzz}
  cc=$(command -v clang-14 || command -v clang)
  CC=$cc RP_BUILD_TARGETS=fuzz_all bash "$root/scripts/build.sh" "$fuzz" -DCMAKE_BUILD_TYPE=Debug \
    -DRP_FUZZ=ON -DRP_WERROR=ON -DRP_WITH_JEPSEN=OFF -DRP_FUZZ_SECONDS="${RP_FUZZ_SECONDS:-8}"
  (cd "$fuzz" && ctest -j2 -L fuzz --output-on-failure)
fi
if [ "${RP_SKIP_RELEASE:-0}" != 1 ]; then
  release=${RP_RELEASE_BUILD:-$root/build-release}
  bash "$root/scripts/build.sh" "$release" -DCMAKE_BUILD_TYPE=Release -DRP_WERROR=ON \
    -DRP_WITH_JEPSEN=OFF
  (cd "$release" && ctest -j2 -L unit --output-on-failure)
fi
