#!/usr/bin/env bash
# The whole test suite: install what is missing, build with -Werror under
# AddressSanitizer + UndefinedBehaviorSanitizer, run every CTest test.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/install-deps.sh"
build=${RP_TEST_BUILD:-$root/build-test}
bash "$root/scripts/build.sh" "$build" -DCMAKE_BUILD_TYPE=Debug -DRP_SANITIZE=ON -DRP_WERROR=ON
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd "$build"
ctest -j2 --output-on-failure --timeout 600 "$@"
