#!/usr/bin/env bash
# Installs what WaveKV needs to build and test, from Debian's packages only.
set -euo pipefail
PACKAGES=(
  build-essential cmake ninja-build pkg-config clang-format
  libcli11-dev nlohmann-json3-dev libxxhash-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libasio-dev redis-tools libhttp-parser-dev
  libssl-dev libtomlplusplus-dev
  python3-redis  # tests/client_libraries_test.cc runs redis-py against a node
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

# ioredis and node-redis for tests/client_libraries_test.cc, from npm when it
# is there (versions pinned in tests/clients/package.json); without them that
# test skips and says so.
clients="$(cd "$(dirname "$0")/.." && pwd)/tests/clients"
if command -v npm >/dev/null && [ ! -d "$clients/node_modules/ioredis" ]; then
  (cd "$clients" && npm ci --no-audit --no-fund --silent) ||
    echo "setup: npm could not install tests/clients' node modules; their test will skip" >&2
fi
