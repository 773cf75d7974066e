#!/usr/bin/env bash
# redis-benchmark -t set,get, side by side in one run, against:
#   redis-plain   Debian's redis-server, plain TCP
#   redis-tls     the same with --tls-port (Debian's redis is built with TLS)
#   wavekv-plain  wavekv serve, RESP over plain TCP
#   wavekv-tls    wavekv serve, RESP over TLS (--tls-cert-file/--tls-key-file)
# each in two durability classes, one after the other:
#   durable       WaveKV --durability always,   Redis appendfsync always
#   interval      WaveKV --durability interval, Redis appendfsync everysec
# Certificates come from `wavekv cert` (a CA and a node certificate for
# 127.0.0.1). The ratios show what TLS costs each, and WaveKV against Redis
# on the same transport and durability.
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

start_wavekv() {  # name durability [extra serve flags...]
  local name=$1 durability=$2
  shift 2
  build/wavekv serve --data-dir "$work/$name" --listen 127.0.0.1:0 --http '' \
    --resp 127.0.0.1:0 --durability "$durability" --ready-file "$work/$name.ready" "$@" \
    2>"$work/$name.log" >/dev/null &
  pids+=($!)
  resp_port "$work/$name.ready"
}
start_redis() {  # name port appendfsync [extra flags...]
  local name=$1 port=$2 fsync=$3
  shift 3
  mkdir -p "$work/$name"
  redis-server --port "$port" --dir "$work/$name" --appendonly yes --appendfsync "$fsync" \
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
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

declare -A conn set get
# Redis: fixed ports, as Redis cannot report an ephemeral one.
redis_port=16421
for class in durable interval; do
  if [[ $class == durable ]]; then wdur=always rfsync=always; else wdur=interval rfsync=everysec; fi
  start_redis "redis-plain-$class" $redis_port $rfsync
  wait_ping -p $redis_port
  conn[redis-plain]="-p $redis_port"
  start_redis "redis-tls-$class" 0 $rfsync --tls-port $((redis_port + 1)) --tls-cert-file "$cert" \
    --tls-key-file "$key" --tls-ca-cert-file "$ca" --tls-auth-clients no
  wait_ping -p $((redis_port + 1)) "${tls_args[@]}"
  conn[redis-tls]="-p $((redis_port + 1)) ${tls_args[*]}"
  redis_port=$((redis_port + 2))
  conn[wavekv-plain]="-p $(start_wavekv "wavekv-plain-$class" $wdur)"
  # shellcheck disable=SC2086 # conn holds several arguments
  wait_ping ${conn[wavekv-plain]}
  port=$(start_wavekv "wavekv-tls-$class" $wdur --tls-cert-file "$cert" --tls-key-file "$key")
  conn[wavekv-tls]="-p $port ${tls_args[*]}"
  # shellcheck disable=SC2086
  wait_ping ${conn[wavekv-tls]}

  echo "== $class (WaveKV --durability $wdur, Redis appendfsync $rfsync)"
  printf "%-34s %12s %12s\n" "target (100-byte values, $clients clients)" "SET op/s" "GET op/s"
  for name in redis-plain redis-tls wavekv-plain wavekv-tls; do
    # shellcheck disable=SC2086
    set[$name]=$(rps set ${conn[$name]})
    # shellcheck disable=SC2086
    get[$name]=$(rps get ${conn[$name]})
    printf "%-34s %12.0f %12.0f\n" "$name" "${set[$name]}" "${get[$name]}"
    $json && printf '{"class":"%s","target":"%s","set_rps":%s,"get_rps":%s,"requests":%s,"clients":%s}\n' \
      "$class" "$name" "${set[$name]}" "${get[$name]}" "$requests" "$clients"
  done
  echo "ratios:"
  echo "  redis TLS / plain:       SET $(ratio "${set[redis-tls]}" "${set[redis-plain]}")  GET $(ratio "${get[redis-tls]}" "${get[redis-plain]}")"
  echo "  wavekv TLS / plain:      SET $(ratio "${set[wavekv-tls]}" "${set[wavekv-plain]}")  GET $(ratio "${get[wavekv-tls]}" "${get[wavekv-plain]}")"
  echo "  wavekv / redis (plain):  SET $(ratio "${set[wavekv-plain]}" "${set[redis-plain]}")  GET $(ratio "${get[wavekv-plain]}" "${get[redis-plain]}")"
  echo "  wavekv / redis (TLS):    SET $(ratio "${set[wavekv-tls]}" "${set[redis-tls]}")  GET $(ratio "${get[wavekv-tls]}" "${get[redis-tls]}")"
  echo
  # Stop this class's servers before the next, so they do not share the CPU.
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
done
