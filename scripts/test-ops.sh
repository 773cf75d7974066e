#!/usr/bin/env bash
# Local file churn across the three demo directories for a while: create,
# append, overwrite, delete, rename, nested directories, mode changes.
#   scripts/test-ops.sh [SECONDS=30] [SEED]
set -uo pipefail  # no -e: an operation that loses a race with the mirror is not fatal
source "$(dirname "$0")/demo-env.sh"
seconds=${1:-30}
RANDOM=${2:-$$}
end=$(($(date +%s) + seconds))
ops=0
while (($(date +%s) < end)); do
  dir=$(files_dir $((RANDOM % 3 + 1)))
  name="f$((RANDOM % 40))"
  if ((RANDOM % 3 == 0)); then name="d$((RANDOM % 4))/$name"; fi
  if ((RANDOM % 5 == 0)); then name="d$((RANDOM % 2))/sub/$name"; fi
  path="$dir/$name"
  case $((RANDOM % 6)) in
    0 | 1) mkdir -p "$(dirname "$path")"; head -c $((RANDOM % 5000)) /dev/urandom >"$path" ;;
    2) if [[ -f $path ]]; then head -c 100 /dev/urandom >>"$path"; fi ;;
    3) rm -f "$path" ;;
    4) if [[ -f $path ]]; then mv -f "$path" "$dir/r$((RANDOM % 40))"; fi ;;
    5) if [[ -f $path ]]; then chmod $((RANDOM % 2 ? 600 : 644)) "$path"; fi ;;
  esac
  ops=$((ops + 1))
  sleep 0.01
done
echo "$ops operations in $seconds s"
