#!/usr/bin/env bash
# Installs what the full benchmark runs need beyond scripts/install-deps.sh:
# the Slurm peer (one-node Slurm on localhost, Debian 12 packages), wrk, and
# the profilers. Not part of CI's install: the tests run the drivers on tiny
# sizes and skip the Slurm half when Slurm is not installed. Idempotent.
set -euo pipefail
packages=(slurm-wlm slurmctld slurmd slurm-client munge wrk linux-perf valgrind redis-tools)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "bench/setup.sh: all ${#packages[@]} packages already installed"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=120 -y -q update >/dev/null
apt-get -o DPkg::Lock::Timeout=120 -y -q install "${missing[@]}" >/dev/null
echo "bench/setup.sh: installed ${missing[*]}"
