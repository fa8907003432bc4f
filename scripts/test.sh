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

# A testlog.json left from an earlier run must not be read as this run's.
rm -f build/meson-logs/testlog.json
meson test -C build --no-rebuild --num-processes "$jobs" --print-errorlogs || true

python3 scripts/summarize-tests.py build/meson-logs/testlog.json
