#!/usr/bin/env bash
# Runs one libFuzzer target for a fixed time under ASan+UBSan.
#
#   scripts/fuzz.sh TARGET SECONDS          configure and build build-asan/ (clang-14,
#                                           -DTENURE_FUZZ=ON -DTENURE_SANITIZE=ON), then run
#   scripts/fuzz.sh --bin PATH TARGET SECONDS   run an already built fuzzer (ctest does this)
#   scripts/fuzz.sh --list                  names every target
#   options: --merge  minimize what the run found into fuzz/corpus/TARGET (to commit)
#
# The run works on a scratch copy of fuzz/corpus/TARGET, so the checked-in
# seeds change only with --merge. A crash leaves its input in
# build-asan/fuzz-artifacts/TARGET/ and exits non-zero; turn it into a unit test.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

bin=""
merge=0
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin=$2; shift 2 ;;
    --merge) merge=1; shift ;;
    --list) sed -n 's/^tenure_fuzz_target(\([a-z0-9_]*\).*/\1/p' fuzz/CMakeLists.txt; exit 0 ;;
    -h|--help) sed -n 2,13p "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown flag $1" >&2; exit 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
if [ ${#args[@]} -ne 2 ]; then
  echo "fuzz.sh: usage: scripts/fuzz.sh [--bin PATH] TARGET SECONDS" >&2
  exit 2
fi
target=${args[0]}
seconds=${args[1]}
case "$seconds" in ''|*[!0-9]*) echo "fuzz.sh: SECONDS must be a whole number, got '$seconds'" >&2; exit 2 ;; esac
corpus="$root/fuzz/corpus/$target"
if [ ! -d "$corpus" ]; then
  echo "fuzz.sh: no target '$target' (no fuzz/corpus/$target; see --list)" >&2
  exit 2
fi

if [ -z "$bin" ]; then
  ./scripts/configure-asan.sh
  cmake --build build-asan --target "fuzz_$target"
  bin="$root/build-asan/bin/fuzz_$target"
fi

artifacts="$root/build-asan/fuzz-artifacts/$target"
mkdir -p "$artifacts"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus"
cp -r "$corpus/." "$work/corpus/"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
echo "fuzz.sh: $target for ${seconds}s ($(ls "$corpus" | wc -l) seeds)"
status=0
"$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
  -artifact_prefix="$artifacts/" "$work/corpus" 2>"$work/log" || status=$?
grep -E '^(stat::|#[0-9]+[[:space:]]+DONE)|ERROR|SUMMARY|Test unit written' "$work/log" || true
if [ $status -ne 0 ]; then
  echo "fuzz.sh: $target FAILED (exit $status); the last 60 lines of its log:"
  tail -n 60 "$work/log"
  echo "fuzz.sh: inputs that failed are in $artifacts/"
  exit 1
fi
if [ $merge -eq 1 ]; then
  "$bin" -merge=1 "$corpus" "$work/corpus" 2>/dev/null
  echo "fuzz.sh: merged into fuzz/corpus/$target ($(ls "$corpus" | wc -l) files)"
fi
echo "fuzz.sh: $target passed"
