#!/usr/bin/env bash
# redis-benchmark -t set,get, side by side in one run, against:
#   redis-plain   Debian's redis-server, plain TCP
#   redis-tls     the same with --tls-port (Debian's redis is built with TLS)
#   wavekv-plain  wavekv serve, RESP over plain TCP
#   wavekv-tls    wavekv serve, RESP over TLS (--tls-cert-file/--tls-key-file;
#                 skipped, and said so, while `wavekv serve` has no such flags)
# Certificates come from `wavekv cert` (a CA and a node certificate for
# 127.0.0.1). Both servers run with the same durability class (WaveKV
# --durability interval, Redis appendonly everysec), so the ratios show what
# TLS costs each, and WaveKV against Redis on the same transport.
# Prints a table with ratios, and JSON lines with --json (for BENCHMARKS.md).
# Needs: build/wavekv, redis-server, redis-benchmark (redis-tools).
# Usage: bench/tls_compare.sh [REQUESTS] [CLIENTS] [--json]
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

certs="$work/certs"
build/wavekv cert init-ca --dir "$certs" >/dev/null
build/wavekv cert node --dir "$certs" --name bench --node-id 1 --host 127.0.0.1,localhost >/dev/null
cert="$certs/node.bench.crt" key="$certs/node.bench.key" ca="$certs/ca.crt"
tls_args=(--tls --cacert "$ca")

wait_ping() {  # redis-cli arguments...
  for _ in $(seq 100); do redis-cli "$@" PING >/dev/null 2>&1 && return; sleep 0.1; done
  echo "no answer from redis-cli $*" >&2
  exit 1
}

# The port a wavekv serve bound (it takes port 0 and says so in its ready file).
resp_port() {  # ready-file
  for _ in $(seq 100); do
    [[ -s "$1" ]] && { sed -n 's/.*"resp":"[^"]*:\([0-9]*\)".*/\1/p' "$1"; return; }
    sleep 0.1
  done
  echo "wavekv never wrote $1" >&2
  exit 1
}

start_wavekv() {  # name [extra serve flags...]
  local name=$1
  shift
  build/wavekv serve --data-dir "$work/$name" --listen 127.0.0.1:0 --http '' \
    --resp 127.0.0.1:0 --durability interval --ready-file "$work/$name.ready" "$@" \
    2>"$work/$name.log" >/dev/null &
  pids+=($!)
  resp_port "$work/$name.ready"
}
start_redis() {  # name port [extra flags...]
  local name=$1 port=$2
  shift 2
  mkdir -p "$work/$name"
  redis-server --port "$port" --dir "$work/$name" --appendonly yes --appendfsync everysec \
    --save '' --daemonize no "$@" >"$work/$name.log" 2>&1 &
  pids+=($!)
}

# op/s for one test: redis-benchmark --csv prints "test","rps",...
rps() {  # test redis-benchmark-connection-args...
  local t=$1
  shift
  redis-benchmark "$@" -t "$t" -n "$requests" -c "$clients" -d 100 -r 100000 --csv 2>/dev/null |
    awk -F'"' -v t="$(echo "$t" | tr a-z A-Z)" '$2==t {print $4}'
}

declare -A conn
# Redis: fixed ports, as Redis cannot report an ephemeral one.
start_redis redis-plain 16421
wait_ping -p 16421
conn[redis-plain]="-p 16421"
start_redis redis-tls 0 --tls-port 16422 --tls-cert-file "$cert" --tls-key-file "$key" \
  --tls-ca-cert-file "$ca" --tls-auth-clients no
wait_ping -p 16422 "${tls_args[@]}"
conn[redis-tls]="-p 16422 ${tls_args[*]}"
conn[wavekv-plain]="-p $(start_wavekv wavekv-plain)"
wait_ping ${conn[wavekv-plain]}
targets=(redis-plain redis-tls wavekv-plain)
if build/wavekv serve --help 2>&1 | grep -q -- --tls-cert-file; then
  port=$(start_wavekv wavekv-tls --tls-cert-file "$cert" --tls-key-file "$key")
  conn[wavekv-tls]="-p $port ${tls_args[*]}"
  wait_ping ${conn[wavekv-tls]}
  targets+=(wavekv-tls)
else
  echo "wavekv-tls: skipped (this wavekv serve has no --tls-cert-file)" >&2
fi

printf "%-34s %12s %12s\n" "target (100-byte values, $clients clients)" "SET op/s" "GET op/s"
declare -A set get
for name in "${targets[@]}"; do
  # shellcheck disable=SC2086 # conn holds several arguments
  set[$name]=$(rps set ${conn[$name]})
  # shellcheck disable=SC2086
  get[$name]=$(rps get ${conn[$name]})
  printf "%-34s %12.0f %12.0f\n" "$name" "${set[$name]}" "${get[$name]}"
  $json && printf '{"target":"%s","set_rps":%s,"get_rps":%s,"requests":%s,"clients":%s}\n' \
    "$name" "${set[$name]}" "${get[$name]}" "$requests" "$clients"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo
echo "ratios:"
echo "  redis TLS / plain:       SET $(ratio "${set[redis-tls]}" "${set[redis-plain]}")  GET $(ratio "${get[redis-tls]}" "${get[redis-plain]}")"
echo "  wavekv / redis (plain):  SET $(ratio "${set[wavekv-plain]}" "${set[redis-plain]}")  GET $(ratio "${get[wavekv-plain]}" "${get[redis-plain]}")"
if [[ -n "${set[wavekv-tls]:-}" ]]; then
  echo "  wavekv TLS / plain:      SET $(ratio "${set[wavekv-tls]}" "${set[wavekv-plain]}")  GET $(ratio "${get[wavekv-tls]}" "${get[wavekv-plain]}")"
  echo "  wavekv / redis (TLS):    SET $(ratio "${set[wavekv-tls]}" "${set[redis-tls]}")  GET $(ratio "${get[wavekv-tls]}" "${get[redis-tls]}")"
fi
