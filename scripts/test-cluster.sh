#!/usr/bin/env bash
# Starts three filesync demo nodes in a tmux session (one window each), with a
# minimal chain of --peers: node 2 knows node 1, node 3 knows node 2; they
# discover the rest. Directories: $FILESYNC_DEMO/node{1,2,3}/files.
#   scripts/test-cluster.sh [--fresh]     --fresh: wipe the demo directories first
# Attach with `tmux attach -t filesync-demo`; stop with scripts/stop-cluster.sh.
set -euo pipefail
source "$(dirname "$0")/demo-env.sh"
need_bin
command -v tmux >/dev/null || { echo "tmux is not installed: apt-get install -y tmux" >&2; exit 2; }
if tmux has-session -t "$session" 2>/dev/null; then
  echo "already running: tmux attach -t $session (or scripts/stop-cluster.sh)" >&2
  exit 1
fi
[[ ${1:-} == --fresh ]] && rm -rf "$demo"
for n in 1 2 3; do mkdir -p "$(files_dir $n)" "$(data_dir $n)"; done
tmux new-session -d -s "$session" -n node1 "$(node_cmd 1)"
sleep 0.5
tmux new-window -t "$session" -n node2 "$(node_cmd 2)"
tmux new-window -t "$session" -n node3 "$(node_cmd 3)"
for n in 1 2 3; do
  for _ in $(seq 50); do
    curl -sf "127.0.0.1:$(http_port $n)/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
done
echo "three nodes mirroring:"
for n in 1 2 3; do echo "  node$n  $(files_dir $n)   status: curl 127.0.0.1:$(http_port $n)/v1/status"; done
echo "attach: tmux attach -t $session"
