#!/usr/bin/env python3
"""Driver 4: the control plane at scale. A master (NUM_WORKERS=0) and many
worker node processes on loopback whose slots use the benchmark-only runner
`bench-sleep` (a job "runs" for --job-ms without any process being spawned),
so that what is measured is the master, Redis and the CAF traffic.

    bench/control_plane.py [--nodes 50] [--slots 16] [--jobs 100000] [--job-ms 0]

Phases: (1) every job is submitted over HTTP while no worker is up, so the
queue holds all of them; (2) all worker nodes start at once and the queue is
drained. Reports dispatched jobs/s (from the slots' completed-job counters,
sampled every 0.25 s), master CPU time per job (utime+stime from /proc),
master peak RSS (VmHWM) with every job record held, and Redis commands per
job (INFO commandstats deltas over the whole lifecycle)."""

import argparse
import json
import os
import subprocess
import sys
import time

import bench_common as bc

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(") ", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def status_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def commandstats(port):
    out = subprocess.run(["redis-cli", "-p", str(port), "INFO", "commandstats"],
                         capture_output=True, text=True, timeout=10, check=True).stdout
    stats = {}
    for line in out.splitlines():
        if line.startswith("cmdstat_"):
            name, _, rest = line.partition(":")
            calls = int(rest.split(",")[0].split("=")[1])
            stats[name[len("cmdstat_"):]] = calls
    return stats


def delta(after, before):
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def completed(cluster):
    return sum(s["jobs_run"] for s in cluster.workers_view().values())


def start_perf(pid, out):
    """perf sampling (cpu-clock: no hardware counters needed) of `pid`."""
    return subprocess.Popen(["perf", "record", "-q", "-e", "cpu-clock", "-F", "999", "-g",
                             "-p", str(pid), "-o", out], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def stop_perf(proc):
    if proc and proc.poll() is None:
        proc.send_signal(2)  # SIGINT: perf writes its file and exits
        proc.wait(timeout=60)


def run(nodes, slots, jobs, job_ms, in_flight, runner="bench-sleep", perf_out=None,
        log_level="info", tls=True, fill_only=False, actor_threads=0):
    config = ("runner: bench-sleep\n" if runner == "bench-sleep" else "") + f"log_level: {log_level}\n"
    os.environ["ATLAS_BENCH_SLEEP_MS"] = str(job_ms)  # the nodes inherit it (bench/runner/)
    if actor_threads:
        config += f"limits:\n  actor_threads: {actor_threads}\n"
    if not tls:
        config += "cluster:\n  tls: false\n"
    cluster = bc.cluster_harness.Cluster(workers=nodes, slots=slots, atlas_config=config)
    perf = None
    try:
        cluster.master.start()
        mpid = cluster.master.pid
        rpid = redis_pid(cluster)
        ids = [f"cp-{i:06d}" for i in range(jobs)]
        requests = [(bc.bundle_request(j), bc.queue_request(j, cluster.token)) for j in ids]
        perf = start_perf(mpid, perf_out) if perf_out else None
        redis0, cpu0 = commandstats(cluster.redis.port), cpu_seconds(mpid)
        submit_s, _ = bc.submit_all(cluster.master.url, requests, in_flight)
        cpu1 = cpu_seconds(mpid)
        rss_queued = status_kb(mpid, "VmRSS")
        if fill_only:  # no worker starts: the figures of the full queue only
            stop_perf(perf)
            return {
                "nodes": nodes, "slots": slots, "jobs": jobs, "job_ms": job_ms,
                "submit_per_s": jobs / submit_s,
                "master_cpu_submit_us": (cpu1 - cpu0) / jobs * 1e6,
                "master_rss_queued_mb": rss_queued / 1024,
                "master_peak_rss_mb": status_kb(mpid, "VmHWM") / 1024,
            }

        rcpu1 = cpu_seconds(rpid)
        t_start = time.time()
        for w in cluster.workers:  # all at once; each joins as soon as it is up
            _launch(w)
        samples = [(time.time(), 0)]
        deadline = time.monotonic() + max(300, jobs / 50)
        done = 0
        while done < jobs:
            assert time.monotonic() < deadline, f"only {done} of {jobs} jobs done"
            time.sleep(0.25)
            try:
                done = completed(cluster)
            except (OSError, AssertionError):
                continue
            samples.append((time.time(), done))
        t_end = time.time()
        cpu2 = cpu_seconds(mpid)
        rcpu2 = cpu_seconds(rpid)
        workers_cpu = sum(cpu_seconds(w.pid) for w in cluster.workers)
        stop_perf(perf)
        redis1 = commandstats(cluster.redis.port)
        hwm = status_kb(mpid, "VmHWM")
        if runner == "bench-sleep" and log_level in ("trace", "debug", "info"):  # really used
            used = [w for w in cluster.workers if "runner=bench-sleep" in w.node_log()]
            assert used, "no worker ran a job with runner=bench-sleep"
            assert not any("runner=process" in w.node_log() for w in cluster.workers)
        worker_rss = sum(status_kb(w.pid, "VmRSS") for w in cluster.workers)
    except Exception:
        print(f"--- master log (tail)\n{cluster.master.node_log()[-3000:]}", file=sys.stderr)
        raise
    finally:
        stop_perf(perf)
        cluster.cleanup()
    first = next(t for t, d in samples if d > 0)
    lo, hi = jobs * 0.1, jobs * 0.9
    t10 = next(t for t, d in samples if d >= lo)
    t90 = next(t for t, d in samples if d >= hi)
    steady = (hi - lo) / (t90 - t10) if t90 > t10 else float("nan")
    cmds = delta(redis1, redis0)
    return {
        "nodes": nodes, "slots": slots, "jobs": jobs, "job_ms": job_ms,
        "submit_per_s": jobs / submit_s,
        "dispatch_per_s": jobs / (t_end - first),
        "dispatch_steady_per_s": steady,
        "workers_up_to_first_s": first - t_start,
        "master_cpu_submit_us": (cpu1 - cpu0) / jobs * 1e6,
        "master_cpu_dispatch_us": (cpu2 - cpu1) / jobs * 1e6,
        "master_cpu_us": (cpu2 - cpu0) / jobs * 1e6,
        "workers_cpu_us": workers_cpu / jobs * 1e6,
        "redis_cpu_dispatch_us": (rcpu2 - rcpu1) / jobs * 1e6,
        "master_rss_queued_mb": rss_queued / 1024,
        "master_peak_rss_mb": hwm / 1024,
        "workers_rss_mb": worker_rss / 1024,
        "redis_cmds_per_job": sum(cmds.values()) / jobs,
        "redis_cmds": {k: v / jobs for k, v in sorted(cmds.items(), key=lambda kv: -kv[1])},
    }


def redis_pid(cluster):
    with open(cluster.home + "/test-redis/redis.pid") as f:
        return int(f.read().strip())


def _launch(node):
    """Starts a node without waiting for it (Node.start waits for each)."""
    node.log = open(node.log_path, "ab")
    node.proc = subprocess.Popen([bc.cluster_harness.SERVER, "start", "--foreground", "--role",
                                  node.role], env=node.env, stdout=node.log,
                                 stderr=subprocess.STDOUT, start_new_session=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, default=50)
    ap.add_argument("--slots", type=int, default=16)
    ap.add_argument("--jobs", type=int, default=100000)
    ap.add_argument("--job-ms", type=int, default=0)
    ap.add_argument("--in-flight", type=int, default=8)
    ap.add_argument("--runner", default="bench-sleep", choices=["bench-sleep", "process"],
                    help="process: every job runs /bin/true (for comparison)")
    ap.add_argument("--perf", help="record a perf profile of the master into this file")
    ap.add_argument("--log-level", default="info", help="the nodes' log_level")
    ap.add_argument("--no-tls", action="store_true",
                    help="cluster.tls: false (plaintext between nodes, loopback only)")
    ap.add_argument("--actor-threads", type=int, default=0,
                    help="limits.actor_threads of every node (0: one per core)")
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--fill-only", action="store_true",
                    help="stop once every job is queued (no worker starts): submission "
                         "figures and the master's RSS with the full queue only")
    a = ap.parse_args()
    print(bc.machine_line())
    r = run(a.nodes, a.slots, a.jobs, a.job_ms, a.in_flight, a.runner, a.perf, a.log_level,
            not a.no_tls, a.fill_only, a.actor_threads)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(r, f, indent=1)
    if a.fill_only:
        bc.table(f"control plane, queue filled only: {a.jobs} jobs", [
            ("submissions/s (queue filling)", r["submit_per_s"], "jobs/s"),
            ("master CPU per job, submit", r["master_cpu_submit_us"], "us"),
            ("master RSS, all jobs queued", r["master_rss_queued_mb"], "MB"),
            ("master peak RSS", r["master_peak_rss_mb"], "MB")])
        return
    bc.table(f"control plane: {a.nodes} worker nodes x {a.slots} slots, {a.jobs} jobs, "
             f"runner {a.runner}" + (f" {a.job_ms} ms" if a.runner == "bench-sleep" else ""), [
                 ("submissions/s (queue filling)", r["submit_per_s"], "jobs/s"),
                 ("dispatched jobs/s (whole drain)", r["dispatch_per_s"], "jobs/s"),
                 ("dispatched jobs/s (10%-90%)", r["dispatch_steady_per_s"], "jobs/s"),
                 ("master CPU per job, submit", r["master_cpu_submit_us"], "us"),
                 ("master CPU per job, dispatch+end", r["master_cpu_dispatch_us"], "us"),
                 ("master CPU per job, total", r["master_cpu_us"], "us"),
                 ("worker nodes CPU per job (all of them)", r["workers_cpu_us"], "us"),
                 ("Redis CPU per job, dispatch+end", r["redis_cpu_dispatch_us"], "us"),
                 ("master RSS, all jobs queued", r["master_rss_queued_mb"], "MB"),
                 ("master peak RSS", r["master_peak_rss_mb"], "MB"),
                 ("worker nodes RSS, total", r["workers_rss_mb"], "MB"),
                 ("Redis commands per job", r["redis_cmds_per_job"], "")])
    print("  Redis commands per job by name: "
          + ", ".join(f"{k} {v:.2f}" for k, v in r["redis_cmds"].items()))


if __name__ == "__main__":
    main()
