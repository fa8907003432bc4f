#!/usr/bin/env python3
"""Summarizes meson's testlog.json files (one or more builds) for CI.

Prints one line per test that did not pass (and how many were skipped),
then, last, exactly one line `N passed, N failed`. Exits 1
when a test failed or none ran, else 0.

testlog.json holds one JSON object per line, one per test, with "name" and
"result" (OK, EXPECTEDFAIL, SKIP, FAIL, TIMEOUT, ERROR, UNEXPECTEDPASS, ...).
"""

import json
import sys

PASSED = {"OK", "EXPECTEDFAIL"}
SKIPPED = {"SKIP"}


def main(argv):
    if len(argv) < 2:
        print("usage: summarize-tests.py build/meson-logs/testlog.json [more testlog.json...]",
              file=sys.stderr)
        print("0 passed, 1 failed")
        return 1
    passed = failed = skipped = 0
    for path in argv[1:]:
        p, f, s = count(path)
        passed, failed, skipped = passed + p, failed + f, skipped + s
    if passed + failed == 0:
        print(f"summarize-tests: no test ran ({', '.join(argv[1:])})", file=sys.stderr)
    if skipped:
        print(f"{skipped} skipped")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or passed + failed == 0 else 0


def count(path):
    """(passed, failed, skipped) of one testlog.json; prints a line for
    each test that did not pass."""
    passed = failed = skipped = 0
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.readlines()
    except OSError as e:
        # No log means meson test did not get to run anything: count it as
        # a failure so that the summary line cannot read as a clean run.
        print(f"summarize-tests: cannot read {path}: {e.strerror}", file=sys.stderr)
        print(f"FAIL  {path} (no test log)")
        return 0, 1, 0

    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        try:
            test = json.loads(line)
            name = str(test.get("name", "?"))
            result = str(test.get("result", "?")).upper()
        except (ValueError, AttributeError):
            print(f"FAIL  {path}:{number}: not a test record")
            failed += 1
            continue
        if result in PASSED:
            passed += 1
        elif result in SKIPPED:
            skipped += 1
        else:
            failed += 1
            duration = test.get("duration")
            took = f", {duration:.1f}s" if isinstance(duration, (int, float)) else ""
            code = test.get("returncode")
            rc = f", exit {code}" if code not in (None, 0) else ""
            print(f"FAIL  {name} ({result}{rc}{took})")
    return passed, failed, skipped


if __name__ == "__main__":
    sys.exit(main(sys.argv))
