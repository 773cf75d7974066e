#!/usr/bin/env bash
# Runs `wavekv bench` for concurrency 1, 4, 16, 64 in each durability mode and
# both client modes, in one run, and prints a table plus a JSON line per cell.
# Usage: bench/storage_matrix.sh [BUILD_DIR] [OPS]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
ops=${2:-40000}
bin="$build/wavekv"
[ -x "$bin" ] || { echo "build first: cmake -S . -B $build -G Ninja && ninja -C $build" >&2; exit 2; }
tmp=$(mktemp -d /tmp/wavekv-bench-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
json="$tmp/results.jsonl"
for durability in always interval none; do
  for mode in threads async; do
    for c in 1 4 16 64; do
      n=$ops
      # One fsync per write at concurrency 1: keep that run short.
      [ "$durability" = always ] && [ "$c" = 1 ] && n=$((ops / 4))
      rm -rf "$tmp/db"
      "$bin" bench --data-dir "$tmp/db" --ops "$n" --concurrency "$c" --value-size 100 \
        --durability "$durability" --mode "$mode" --json >>"$json"
    done
  done
done
python3 - "$json" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
base = {(r["durability"], r["mode"]): r["ops_per_sec"] for r in rows if r["concurrency"] == 1}
print(f"{'durability':10} {'mode':8} {'conc':>5} {'ops/s':>10} {'x conc1':>8} {'p50_us':>9} {'p99_us':>9} {'p999_us':>9} {'fsyncs':>8}")
for r in rows:
    ratio = r["ops_per_sec"] / base[(r["durability"], r["mode"])]
    print(f"{r['durability']:10} {r['mode']:8} {r['concurrency']:>5} {r['ops_per_sec']:>10.0f} {ratio:>8.1f} {r['p50_us']:>9.1f} {r['p99_us']:>9.1f} {r['p999_us']:>9.1f} {r['fsyncs']:>8}")
print()
for r in rows:
    print(json.dumps(r, sort_keys=True))
PY
