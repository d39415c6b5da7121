#!/usr/bin/env bash
# The project's test command (README, .ci/run): installs what is missing,
# builds Release and runs every test through ctest, then builds the
# ASan+UBSan configuration (clang) and runs the core's tests, a simulator
# batch and every fuzz target under it. Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh

jobs=$(nproc)
export CTEST_OUTPUT_ON_FAILURE=1

echo "== Release build"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$jobs"

echo "== Release tests (every test)"
ctest --test-dir build -j "$jobs" --timeout 900

echo "== ASan+UBSan build (clang-14: core, state machine, simulator, fuzz targets)"
# One sanitizer build serves both the core's tests and the fuzzers (the
# fuzzers need clang); a build-asan/ left by an older GCC configuration is
# replaced.
./scripts/configure-asan.sh
# Only what the sanitizer run executes: the rest would double the build time.
cmake --build build-asan -j "$jobs" --target consensus_tests common_tests controller_core_tests replication_tests scripted_tests controlplane_tests sim_tests tenure-sim fuzz_all

echo "== ASan+UBSan tests (core, a simulator batch, every fuzz target for TENURE_FUZZ_SECONDS)"
ctest --test-dir build-asan -j "$jobs" --timeout 900 -L 'core|sim-asan|fuzz'
