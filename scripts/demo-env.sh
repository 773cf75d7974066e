# Shared settings of the filesync demo scripts (sourced, not run).
# FILESYNC_DEMO: where the three nodes keep their directories (default /tmp/filesync-demo).
# FILESYNC_BIN:  the filesync binary (default build/filesync).
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
demo=${FILESYNC_DEMO:-/tmp/filesync-demo}
bin=${FILESYNC_BIN:-$root/build/filesync}
session=filesync-demo
peer_port() { echo $((7500 + $1)); }  # node 1..3
http_port() { echo $((8500 + $1)); }
files_dir() { echo "$demo/node$1/files"; }
data_dir() { echo "$demo/node$1/data"; }
# The command that runs node N; node 2 knows node 1, node 3 knows node 2.
# A second argument names the seed instead (HOST:PORT).
node_cmd() {
  local n=$1 peers=""
  [[ $n -gt 1 ]] && peers="--peers 127.0.0.1:$(peer_port $((n - 1)))"
  [[ -n ${2:-} ]] && peers="--peers $2"
  echo "$bin run --watch-dir $(files_dir "$n") --data-dir $(data_dir "$n")" \
    "--listen 127.0.0.1:$(peer_port "$n") --http 127.0.0.1:$(http_port "$n") $peers" \
    "2>&1 | tee -a $demo/node$n.log"
}
need_bin() {
  [[ -x $bin ]] || { echo "no $bin: build first (cmake -S . -B build -G Ninja && ninja -C build filesync)" >&2; exit 2; }
}
