#!/usr/bin/env bash
# Stops the filesync demo nodes (SIGTERM: each closes its store cleanly).
set -euo pipefail
source "$(dirname "$0")/demo-env.sh"
pkill -TERM -f -- "^$bin run --watch-dir $demo/node" 2>/dev/null || true
for _ in $(seq 50); do
  pgrep -f -- "^$bin run --watch-dir $demo/node" >/dev/null || break
  sleep 0.1
done
tmux kill-session -t "$session" 2>/dev/null || true
echo "stopped"
