#!/usr/bin/env bash
# redis-benchmark -t set,get against a WaveKV node and against Debian's
# redis-server (appendonly, appendfsync always; and everysec), side by side in
# one run. Prints a table with ratios, and JSON lines with --json.
# Needs: build/wavekv, redis-server, redis-benchmark (redis-tools).
# Usage: bench/resp_compare.sh [REQUESTS] [CLIENTS] [--json]
set -euo pipefail
cd "$(dirname "$0")/.."
requests=${1:-50000}
clients=${2:-50}
json=false
[[ " $* " == *" --json "* ]] && json=true
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

wait_port() { for _ in $(seq 100); do redis-cli -p "$1" PING >/dev/null 2>&1 && return; sleep 0.1; done; echo "port $1 never answered" >&2; exit 1; }

start_wavekv() {  # port durability
  build/wavekv serve --data-dir "$work/wavekv-$2" --listen 127.0.0.1:0 --http '' \
    --resp "127.0.0.1:$1" --durability "$2" 2>"$work/wavekv-$2.log" &
  pids+=($!); wait_port "$1"
}
start_redis() {  # port appendfsync
  mkdir -p "$work/redis-$2"
  redis-server --port "$1" --dir "$work/redis-$2" --appendonly yes --appendfsync "$2" \
    --save '' --daemonize no >"$work/redis-$2.log" 2>&1 &
  pids+=($!); wait_port "$1"
}

# op/s for one test: redis-benchmark --csv prints "test","rps",...
rps() {  # port test
  redis-benchmark -p "$1" -t "$2" -n "$requests" -c "$clients" -d 100 -r 100000 --csv 2>/dev/null |
    awk -F'"' -v t="$(echo "$2" | tr a-z A-Z)" '$2==t {print $4}'
}

start_wavekv 16401 always
start_wavekv 16402 interval
start_redis 16411 always
start_redis 16412 everysec

printf "%-34s %12s %12s\n" "target (100-byte values, $clients clients)" "SET op/s" "GET op/s"
declare -A set get
for t in "wavekv-always 16401" "redis-always 16411" "wavekv-interval 16402" "redis-everysec 16412"; do
  read -r name port <<<"$t"
  set[$name]=$(rps "$port" set)
  get[$name]=$(rps "$port" get)
  printf "%-34s %12.0f %12.0f\n" "$name" "${set[$name]}" "${get[$name]}"
  $json && printf '{"target":"%s","set_rps":%s,"get_rps":%s,"requests":%s,"clients":%s}\n' \
    "$name" "${set[$name]}" "${get[$name]}" "$requests" "$clients"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo
echo "ratios (WaveKV / Redis, same durability class):"
echo "  SET always:   $(ratio "${set[wavekv-always]}" "${set[redis-always]}")"
echo "  GET always:   $(ratio "${get[wavekv-always]}" "${get[redis-always]}")"
echo "  SET interval/everysec: $(ratio "${set[wavekv-interval]}" "${set[redis-everysec]}")"
echo "  GET interval/everysec: $(ratio "${get[wavekv-interval]}" "${get[redis-everysec]}")"
