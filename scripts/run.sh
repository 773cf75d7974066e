#!/usr/bin/env bash
# Sets up, builds, and shows WaveKV at work on a fresh data directory:
# writes, reads, a prefix scan, an integrity check and a short durable-write
# benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build wavekv_cli
bin=build/wavekv
dir=$(mktemp -d /tmp/wavekv-demo-XXXXXX)
trap 'rm -rf "$dir"' EXIT
set -x
"$bin" put --data-dir "$dir/db" user:1 alice
"$bin" put --data-dir "$dir/db" user:2 bob
"$bin" put --data-dir "$dir/db" config:mode fast
"$bin" get --data-dir "$dir/db" user:1
"$bin" del --data-dir "$dir/db" user:2
"$bin" scan --data-dir "$dir/db" user:
"$bin" check --data-dir "$dir/db"
"$bin" bench --data-dir "$dir/bench" --ops 20000 --concurrency 64 --durability always
