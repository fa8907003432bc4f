#!/usr/bin/env bash
# Installs dependencies, builds everything in build/ and runs every test.
# The last line printed is always `N passed, N failed` (what CI reads); the
# exit status is non-zero when anything failed or no test ran.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1

jobs=$(nproc 2>/dev/null || echo 2)

# Prints why the run stopped before any test ran, then the summary line.
give_up() {
  echo "test.sh: $1" >&2
  echo "0 passed, 1 failed"
  exit 1
}

bash scripts/install-deps.sh || give_up "installing dependencies failed"

log=$(mktemp)
trap 'rm -f "$log"' EXIT
if [ -d build/meson-private ]; then
  # A build dir from another meson version may refuse to reconfigure: wipe it.
  meson setup --reconfigure build >"$log" 2>&1 || meson setup --wipe build >"$log" 2>&1
else
  meson setup build >"$log" 2>&1
fi || { cat "$log" >&2; give_up "meson setup failed"; }

# Keep compiler messages (errors, warnings), drop ninja's progress lines.
ninja -C build -j "$jobs" 2>&1 | grep -v -E '^\[[0-9]+/[0-9]+\] |^ninja: Entering'
[ "${PIPESTATUS[0]}" -eq 0 ] || give_up "build failed"

# original_client_test runs the original `foundations` client from its public
# source (dessa-oss/atlas, archived since 2020), which is not in this
# repository: ATLAS_ORIGINAL_SOURCE names a copy, else one in the shared
# folder beside the checkout is used, else the pinned commit is fetched into
# build/original-atlas. Offline, the test is skipped (and says so).
original_commit=8aca652d7e647b4e88530b93e265b536de7055ed
fetch_original() {
  local dir=build/original-atlas
  [ -d "$dir/.git" ] && [ "$(git -C "$dir" rev-parse HEAD 2>/dev/null)" = "$original_commit" ] && return 0
  rm -rf "$dir" && mkdir -p "$dir" && git -C "$dir" init -q &&
    GIT_TERMINAL_PROMPT=0 timeout 300 git -C "$dir" fetch -q --depth 1 \
      "${ATLAS_ORIGINAL_URL:-https://github.com/dessa-oss/atlas}" "$original_commit" 2>/dev/null &&
    git -C "$dir" -c advice.detachedHead=false checkout -q FETCH_HEAD && return 0
  rm -rf "$dir"
  echo "test: cannot fetch the original Atlas source; original_client_test is skipped" >&2
  return 1
}
if [ -z "${ATLAS_ORIGINAL_SOURCE:-}" ]; then
  if [ -d ../shared/original-atlas ]; then
    export ATLAS_ORIGINAL_SOURCE="$PWD/../shared/original-atlas"
  elif fetch_original; then
    export ATLAS_ORIGINAL_SOURCE="$PWD/build/original-atlas"
  fi
fi

# A testlog.json left from an earlier run must not be read as this run's.
rm -f build/meson-logs/testlog.json
meson test -C build --no-rebuild --num-processes "$jobs" --print-errorlogs || true

logs=(build/meson-logs/testlog.json)

# --- Hardening (tests/fuzz/README.md): the unit tests again under
# AddressSanitizer + UndefinedBehaviorSanitizer, then every fuzz harness for
# ATLAS_FUZZ_SECONDS (20) on its corpus; each counts as a test. The actor
# and adapter unit tests also run under ThreadSanitizer (ATLAS_TSAN=0 skips
# them). ATLAS_HARDENING=0 skips all of it. Sanitizer builds are -O0 -g1:
# they build in about half the time of -O2 -g and every test stays well
# inside its timeout (bench/RESULTS.md, Hardening).
# A build dir that cannot be set up or built counts as one failed test.
failed_step() { # <name> <log json> : records a failed pseudo-test
  mkdir -p "$(dirname "$2")"
  printf '{"name": "%s", "result": "FAIL"}\n' "$1" >"$2"
}
setup() { # <dir> <meson options...>
  local dir=$1
  shift
  if [ -d "$dir/meson-private" ]; then
    meson setup --reconfigure "$dir" "$@" >"$log" 2>&1 || meson setup --wipe "$dir" "$@" >"$log" 2>&1
  else
    meson setup "$dir" "$@" >"$log" 2>&1
  fi || { cat "$log" >&2; return 1; }
}
sanitized_tests() { # <dir> <label> <b_sanitize> <meson test selectors...>
  local dir=$1 label=$2 sanitize=$3
  shift 3
  rm -f "$dir/meson-logs/testlog.json"
  if ! setup "$dir" -Db_sanitize="$sanitize" -Doptimization=0 -Ddebug=false -Dcpp_args=-g1; then
    failed_step "$label (meson setup)" "$dir/meson-logs/testlog.json"
  else
    # meson test builds what the selected tests need, nothing else.
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1:suppressions=$PWD/tests/sanitizers/ubsan.supp} \
    TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/tests/sanitizers/tsan.supp} \
      meson test -C "$dir" --num-processes "$jobs" --print-errorlogs "$@" 2>&1 |
      grep -v -E '^\[[0-9]+/[0-9]+\] |^ninja: Entering'
    if [ -f "$dir/meson-logs/testlog.json" ]; then
      # Names as "<label>/<test>" so the summary tells the runs apart.
      sed -i "s|\"name\": \"|\"name\": \"$label/|" "$dir/meson-logs/testlog.json"
    else
      failed_step "$label (build)" "$dir/meson-logs/testlog.json"
    fi
  fi
  logs+=("$dir/meson-logs/testlog.json")
}
if [ "${ATLAS_HARDENING:-1}" != 0 ]; then
  t0=$SECONDS
  sanitized_tests build-asan asan address,undefined --suite unit
  echo "test.sh: ASan+UBSan unit tests took $((SECONDS - t0)) s"
  if [ "${ATLAS_TSAN:-1}" = 1 ]; then
    t0=$SECONDS
    sanitized_tests build-tsan tsan thread json archive process http_server redis_client \
      messages actors caf_front
    echo "test.sh: TSan unit tests took $((SECONDS - t0)) s"
  fi
  t0=$SECONDS
  rm -f build-fuzz/meson-logs/testlog.json
  if ! CC=clang CXX=clang++ setup build-fuzz -Dfuzz=true \
         -Dfuzz_seconds="${ATLAS_FUZZ_SECONDS:-20}"; then
    failed_step "fuzz (meson setup)" build-fuzz/meson-logs/testlog.json
  elif ! ninja -C build-fuzz -j "$jobs" >"$log" 2>&1; then
    grep -E 'error|warning' "$log" | head -n 40 >&2
    failed_step "fuzz (build)" build-fuzz/meson-logs/testlog.json
  else
    meson test -C build-fuzz --no-rebuild --suite fuzz --print-errorlogs || true
  fi
  logs+=(build-fuzz/meson-logs/testlog.json)
  echo "test.sh: fuzzing took $((SECONDS - t0)) s"
fi

python3 scripts/summarize-tests.py "${logs[@]}"
