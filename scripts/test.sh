#!/usr/bin/env bash
# Sets up, builds with -Wall -Wextra -Werror, and runs the whole test suite:
# once in a release build, once under AddressSanitizer + UBSan. Checks format.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
jobs=$(nproc)

echo "== clang-format"
files=$(git ls-files '*.cc' '*.h' 2>/dev/null || find include src apps tests bench -name '*.cc' -o -name '*.h')
clang-format --dry-run -Werror $files

echo "== release build and tests"
# No debug info in the test builds: with Asio's coroutines it is most of the
# compile time (the release build keeps -O2; ASan keeps line tables).
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" >/dev/null
ninja -C build -j "$jobs"
# The fault simulator runs 300 seeds per scenario here (40 under the sanitizers);
# the history checker 4 seeds per test (2 under the sanitizers).
(cd build && WAVEKV_SIM_SEEDS=300 WAVEKV_HISTORY_SEEDS=4 ctest --output-on-failure -j "$jobs")

echo "== AddressSanitizer + UndefinedBehaviorSanitizer build and tests"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" \
  -DWAVEKV_SANITIZE=ON \
  -DWAVEKV_BUILD_BENCH=OFF >/dev/null
ninja -C build-asan -j "$jobs"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --output-on-failure -j "$jobs")
