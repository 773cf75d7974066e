#!/usr/bin/env bash
# WaveKV vs Redis vs etcd in one run on loopback: durable writes, reads,
# pipelined writes, three nodes (throughput, visibility), memory per key and
# restart time at 1M keys. Installs nothing; skips Redis/etcd when missing.
# Needs build/wavekv and build/kv_load:  ninja -C build wavekv_cli kv_load
# Usage: bench/compare.sh [--quick] [--json] [--repeats N] [--seconds S] [--build DIR]
#        (bench/compare.py --help lists every option)
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 bench/compare.py "$@"
