#!/usr/bin/env bash
# Local file churn across the three demo directories for a while: create,
# append, overwrite, delete, rename, nested directories, mode changes.
#   scripts/test-ops.sh [SECONDS=30] [SEED]
set -euo pipefail
source "$(dirname "$0")/demo-env.sh"
seconds=${1:-30}
RANDOM=${2:-$$}
end=$(($(date +%s) + seconds))
ops=0
while (($(date +%s) < end)); do
  dir=$(files_dir $((RANDOM % 3 + 1)))
  name="f$((RANDOM % 40))"
  ((RANDOM % 3 == 0)) && name="d$((RANDOM % 4))/$name"
  ((RANDOM % 5 == 0)) && name="d$((RANDOM % 2))/sub/$name"
  path="$dir/$name"
  case $((RANDOM % 6)) in
    0 | 1) mkdir -p "$(dirname "$path")"; head -c $((RANDOM % 5000)) /dev/urandom >"$path" ;;
    2) [[ -f $path ]] && head -c 100 /dev/urandom >>"$path" ;;
    3) rm -f "$path" ;;
    4) [[ -f $path ]] && mv -f "$path" "$dir/r$((RANDOM % 40))" ;;
    5) [[ -f $path ]] && chmod $((RANDOM % 2 ? 600 : 644)) "$path" ;;
  esac
  ops=$((ops + 1))
  sleep 0.01
done
echo "$ops operations in $seconds s"
