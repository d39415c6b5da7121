#!/usr/bin/env bash
# Configures build-asan/: clang-14, ASan+UBSan, the libFuzzer targets, no
# benchmarks. Shared by scripts/test.sh and scripts/fuzz.sh so both build in
# (and reuse) one tree. A build-asan/ configured with another compiler is
# replaced (CMake cannot switch a tree's compiler).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -f build-asan/CMakeCache.txt ] && ! grep -q '^CMAKE_CXX_COMPILER:[A-Z]*=.*clang' build-asan/CMakeCache.txt; then
  rm -rf build-asan
fi
CC=clang-14 CXX=clang++-14 cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DTENURE_SANITIZE=ON -DTENURE_FUZZ=ON -DTENURE_BUILD_BENCH=OFF >/dev/null
