#!/usr/bin/env python3
"""Driver 2: the same N trivial jobs on the same 8 slots, Atlas and a
one-node Slurm on localhost, in the same session, one after the other;
prints both and the ratios.

    bench/vs_slurm.py --peers DIR [--jobs 1000] [--runs 1] [--profile tuned_epilog]

DIR holds the Slurm peer scripts (slurm_up.sh, slurm_throughput.sh,
slurm_down.sh; also read from $ATLAS_BENCH_PEERS). Install Slurm with
bench/setup.sh. Without Slurm or without DIR only the Atlas half runs and
the Slurm half prints that it was skipped. Slurm is measured with its
`sbatch` loop (N calls) and, where its MaxArraySize allows, one job array;
the faster of the two is compared."""

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile

import bench_common as bc
import throughput


def slurm_missing(peers):
    if not peers:
        return "no peers dir (--peers or ATLAS_BENCH_PEERS)"
    for script in ("slurm_up.sh", "slurm_throughput.sh", "slurm_down.sh"):
        if not os.path.isfile(os.path.join(peers, script)):
            return f"{script} not in {peers}"
    for b in ("sbatch", "slurmctld", "slurmd", "munged"):
        if shutil.which(b) is None:
            return f"{b} not installed (bash bench/setup.sh)"
    return None


def run_slurm(peers, n, runs, profile, cpus, latency_samples, timeout, modes):
    """Medians of the Slurm peer's rows: {mode: {metric: value}}."""
    work = tempfile.mkdtemp(prefix="atlas-bench-slurm-")
    env = dict(os.environ, SLURM_BENCH_DIR=work + "/slurm", RESULTS_DIR=work + "/results",
               WORK_DIR=work + "/work", LAT_SAMPLES=str(latency_samples),
               BENCH_TIMEOUT=str(int(timeout)))
    env["SLURM_CONF"] = work + "/slurm/etc/slurm.conf"
    try:
        subprocess.run([os.path.join(peers, "slurm_up.sh"), profile, str(cpus)], env=env,
                       check=True, timeout=120, stdout=subprocess.DEVNULL)
        subprocess.run([os.path.join(peers, "slurm_throughput.sh"), str(n), str(runs), modes],
                       env=env, check=True, timeout=timeout * (2 * runs + 1),
                       stdout=subprocess.DEVNULL)
        rows = {}
        with open(work + "/results/slurm.csv") as f:
            for r in csv.DictReader(f):
                rows.setdefault(r["mode"], {}).setdefault(r["metric"], []).append(float(r["value"]))
        return {m: {k: bc.median(v) for k, v in metrics.items()} for m, metrics in rows.items()}
    finally:
        subprocess.run([os.path.join(peers, "slurm_down.sh")], env=env, timeout=60,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--peers", default=os.environ.get("ATLAS_BENCH_PEERS"))
    ap.add_argument("--jobs", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--profile", default="tuned_epilog")
    ap.add_argument("--in-flight", type=int, default=8)
    ap.add_argument("--latency-samples", type=int, default=20)
    ap.add_argument("--slurm-modes", default="loop,array",
                    help="Slurm submission modes to measure (loop: N sbatch calls; array: one "
                         "sbatch --array); the faster one is compared")
    a = ap.parse_args()
    print(bc.machine_line())

    atlas_runs = [throughput.run(a.jobs, a.in_flight, a.latency_samples if i == 0 else 0)
                  for i in range(a.runs)]
    best = max(atlas_runs, key=lambda r: r["completed_per_s"])
    throughput.print_result(best)

    why = slurm_missing(a.peers)
    if why:
        print(f"\nslurm: SKIPPED ({why})")
        return
    modes = a.slurm_modes + (",latency" if a.latency_samples else "")
    s = run_slurm(os.path.abspath(a.peers), a.jobs, a.runs, a.profile, 8, a.latency_samples,
                  max(300, a.jobs), modes)
    candidates = {m: s[m] for m in ("loop", "array") if m in s}
    fastest = max(candidates, key=lambda m: candidates[m]["jobs_per_s"])
    sl = candidates[fastest]
    lat = s.get("latency", {})
    slurm_jobs_s = sl["jobs_per_s"]
    slurm_p50_ms = lat.get("start_median_s", float("nan")) * 1e3
    print(f"\nside by side: {a.jobs} trivial jobs, 8 slots, Slurm profile {a.profile}, "
          f"Slurm's faster mode: {fastest}")
    print(f"  {'':<28}{'atlas':>12}{'slurm':>12}{'ratio':>10}")

    def line(name, ours, theirs, better_high=True):
        ratio = ours / theirs if better_high else theirs / ours
        print(f"  {name:<28}{ours:>12.4g}{theirs:>12.4g}{ratio:>9.1f}x")
    if "loop" in candidates:  # one sbatch per job; an array is one call for all
        line("submissions/s (sbatch loop)", best["submit_per_s"], candidates["loop"]["submit_per_s"])
    line("jobs/s (to last start)", best["jobs_per_s"], slurm_jobs_s)
    line("makespan s (lower better)", best["makespan_s"], sl["makespan_s"], better_high=False)
    line("jobs/s (all completed)", best["completed_per_s"], a.jobs / sl["drained_s"])
    line("submit->start p50 ms", best["latency_p50_ms"], slurm_p50_ms, better_high=False)
    print(f"  (Slurm's drained time is polled with squeue every 0.25 s; latency p90 "
          f"{lat.get('start_p90_s', float('nan')) * 1e3:.0f} ms)")
    for m, metrics in sorted(s.items()):
        print(f"  slurm {m}: " + ", ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items())))


if __name__ == "__main__":
    sys.exit(main())
