#!/usr/bin/env bash
# Kills demo node N (SIGKILL), wipes its data and its files, starts it again
# in its tmux window, and waits until it has re-bootstrapped: its directory
# agrees with the others again.
#   scripts/restart-node.sh [N=3] [WAIT_SECONDS=60]
set -euo pipefail
source "$(dirname "$0")/demo-env.sh"
n=${1:-3}
limit=${2:-60}
need_bin
pkill -KILL -f -- "^$bin run --watch-dir $(files_dir "$n") " 2>/dev/null || true
sleep 0.3
rm -rf "$(files_dir "$n")" "$(data_dir "$n")"
mkdir -p "$(files_dir "$n")" "$(data_dir "$n")"
# Node 1 has no seed of its own; after a wipe it must be told about a member.
seed=""
[[ $n -eq 1 ]] && seed="127.0.0.1:$(peer_port 2)"
cmd=$(node_cmd "$n" "$seed")
if tmux has-session -t "$session" 2>/dev/null; then
  tmux kill-window -t "$session:node$n" 2>/dev/null || true
  tmux new-window -t "$session" -n "node$n" "$cmd"
else
  nohup bash -c "$cmd" >/dev/null 2>&1 &
fi
echo "node$n wiped and restarted; waiting for it to catch up"
exec "$(dirname "$0")/check-consistency.sh" --wait "$limit"
