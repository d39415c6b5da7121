#!/usr/bin/env bash
# Installs every Debian package Tenure needs to build, test and run locally.
# Idempotent: packages already present are skipped, and apt-get runs only when
# something is missing.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git
  libboost-dev libboost-system-dev
  libsqlite3-dev sqlite3
  nlohmann-json3-dev
  prometheus-cpp-dev
  libyaml-cpp-dev
  libssl-dev openssl
  libgtest-dev libgmock-dev googletest
  libbenchmark-dev
  libjemalloc-dev
  clang-14 libclang-rt-14-dev
  curl python3 prometheus
  # The chaos suite's clock faults (tests/chaos/clocks.py).
  libfaketime
  # The .deb (cpack runs dpkg-shlibdeps) and its units' check (systemd-analyze).
  dpkg-dev systemd
  # The web console's browser test (tests/ui): Debian's chromium, driven from node.
  chromium nodejs
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
# npm: Debian's package, unless the installed nodejs brings its own (NodeSource's
# does, and conflicts with Debian's). The web console's test needs it (tests/ui).
command -v npm >/dev/null 2>&1 || missing+=(npm)

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
