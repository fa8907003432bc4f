#!/usr/bin/env bash
# A longer fuzzing campaign over every harness of a fuzz build, one after
# the other, each for <seconds>; prints one markdown table row per harness
# (executions, corpus growth, findings) for bench/RESULTS.md. Findings stay
# in <build>/tests/fuzz/work/<name>/findings/.
#   tests/fuzz/campaign.sh [build-fuzz] [seconds per harness, 260] [harness names...]
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
build=${1:-build-fuzz}
seconds=${2:-260}
shift 2 2>/dev/null || shift $#
names=("$@")
echo "| harness | seconds | executions | exec/s | corpus (seeds + new) | findings |"
echo "|---|---|---|---|---|---|"
for exe in "$build"/tests/fuzz/fuzz_*; do
  [ -x "$exe" ] || continue
  name=${exe##*/fuzz_}
  if [ ${#names[@]} -gt 0 ] && [[ ! " ${names[*]} " =~ " $name " ]]; then
    continue
  fi
  work=$build/tests/fuzz/work/$name
  out=$(mktemp)
  tests/fuzz/run_fuzzer.sh "$exe" tests/fuzz/corpus/"$name" "$work" "$seconds" >"$out" 2>&1
  rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$out" | awk '{print $2}')
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$out" | awk '{print $2}')
  corpus=$(ls "$work/corpus" | wc -l)
  seeds=$(ls tests/fuzz/corpus/"$name" | wc -l)
  findings=$(ls "$work/findings" 2>/dev/null | wc -l)
  [ $rc -eq 0 ] || findings="$findings (exit $rc: $(grep -m1 -E 'ERROR|SUMMARY|deadly' "$out" | cut -c1-80))"
  echo "| $name | $seconds | ${execs:-?} | ${rate:-?} | $seeds + $corpus | $findings |"
  cp "$out" "$work/last-campaign.log"
  rm -f "$out"
done
