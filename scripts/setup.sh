#!/usr/bin/env bash
# Installs what WaveKV needs to build and test, from Debian's packages only.
set -euo pipefail
PACKAGES=(
  build-essential cmake ninja-build pkg-config clang-format
  libcli11-dev nlohmann-json3-dev libxxhash-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libasio-dev redis-tools libhttp-parser-dev
  libssl-dev libtomlplusplus-dev
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
