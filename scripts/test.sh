#!/usr/bin/env bash
# The project's test command (README, .ci/run): installs what is missing,
# builds Release and runs every test through ctest, then builds the
# ASan+UBSan configuration and runs the core's tests and a simulator batch
# under it. Exits non-zero on the first failure.
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

echo "== ASan+UBSan build (core, state machine, simulator)"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTENURE_SANITIZE=ON -DTENURE_BUILD_BENCH=OFF
# Only what the sanitizer run executes: the rest would double the build time.
cmake --build build-asan -j "$jobs" --target consensus_tests scripted_tests controlplane_tests sim_tests tenure-sim

echo "== ASan+UBSan tests (core and a simulator batch)"
ctest --test-dir build-asan -j "$jobs" --timeout 900 -L 'core|sim-asan'
