#!/usr/bin/env bash
# Runs `filesync check` over the three demo directories.
#   scripts/check-consistency.sh            once; exit 0 only if they agree
#   scripts/check-consistency.sh --watch    every second until interrupted
#   scripts/check-consistency.sh --wait S   until they agree, at most S seconds
set -uo pipefail
source "$(dirname "$0")/demo-env.sh"
need_bin
dirs="$(files_dir 1),$(files_dir 2),$(files_dir 3)"
case "${1:-}" in
  --watch)
    while true; do
      clear
      date
      "$bin" check --dirs "$dirs" | tail -20
      sleep 1
    done
    ;;
  --wait)
    limit=${2:-60}
    start=$(date +%s)
    while true; do
      if out=$("$bin" check --dirs "$dirs"); then
        echo "$out" | tail -1
        echo "agreed after $(($(date +%s) - start)) s"
        exit 0
      fi
      if (($(date +%s) - start >= limit)); then
        echo "$out"
        echo "no agreement within $limit s" >&2
        exit 1
      fi
      sleep 0.5
    done
    ;;
  *) exec "$bin" check --dirs "$dirs" ;;
esac
