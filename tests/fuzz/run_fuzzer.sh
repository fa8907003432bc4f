#!/usr/bin/env bash
# Runs one libFuzzer harness for a bounded time on its checked-in seed
# corpus plus a work corpus of its own (new inputs go there, never into the
# seeds). A crash, leak, sanitizer report or timeout fails the run and leaves
# the input under <work>/findings/.
#   run_fuzzer.sh <harness> <seed dir> <work dir> <seconds> [libFuzzer flags...]
set -euo pipefail
exe=$1 seeds=$2 work=$3 seconds=$4
shift 4
mkdir -p "$work/corpus" "$work/findings"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
# libFuzzer's own failure codes (77, 70) would read as "skipped" to meson:
# every finding exits 1.
exec "$exe" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
  -error_exitcode=1 -timeout_exitcode=1 \
  -print_final_stats=1 -artifact_prefix="$work/findings/" "$@" "$work/corpus" "$seeds"
