#!/usr/bin/env python3
"""Driver 1: trivial-job throughput and submit-to-start latency of a real
cluster on loopback (a master with NUM_WORKERS=0 and two worker nodes with 4
slots each, process runner). N jobs (entrypoint /bin/true, a tiny bundle) are
submitted over HTTP by a client with a few requests in flight.

    bench/throughput.py [--jobs 1000] [--in-flight 8] [--latency-samples 20] [--shared-bundle]
                        [--spawn-limit] [--json out.json]

Submission = POST /job_bundle + POST /queued_jobs (201 = persisted in Redis).
Makespan = first submission -> last job start (as the Slurm peer measures);
drained = first submission -> last job completed (recorded by the master).
Latency = client clock before the upload -> the job's start_time, one job at
a time on an idle cluster."""

import argparse
import json
import os
import signal
import subprocess
import sys
import time

import bench_common as bc


TICKS = os.sysconf("SC_CLK_TCK")


def cpu_of(pid):
    """(own CPU s, CPU s of reaped children) of a process, from /proc."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            x = f.read().rsplit(") ", 1)[1].split()
    except OSError:
        return 0.0, 0.0
    return (int(x[11]) + int(x[12])) / TICKS, (int(x[13]) + int(x[14])) / TICKS


def cpu_snapshot(cluster):
    snap = {"master": cpu_of(cluster.master.pid)[0], "redis": cpu_of(cluster.redis.pid())[0],
            "client": sum(os.times()[:2])}
    own = kids = 0.0
    for w in cluster.workers:
        a, b = cpu_of(w.pid)
        own, kids = own + a, kids + b
    snap["workers"], snap["jobs"] = own, kids
    return snap


def workers_jobs_run(cluster):
    return sum(s["jobs_run"] for s in cluster.workers_view().values())


def latency_samples(cluster, samples, timeout):
    host, port = bc.host_port(cluster.master.url)
    conn = bc.Conn(host, port)
    lat, ack = [], []
    try:
        for i in range(samples):
            job_id = f"lat-{i:04d}-{os.getpid()}"
            bundle, queue = bc.bundle_request(job_id), bc.queue_request(job_id, cluster.token)
            record_req = bc.raw_request("GET", f"/api/v1/jobs/{job_id}")
            t0 = time.time()
            s1, _ = conn.request(bundle)
            s2, raw = conn.request(queue)
            t1 = time.time()
            assert s1 == 200 and s2 == 201, (s1, s2, raw)
            deadline = time.monotonic() + timeout
            while True:
                status, raw = conn.request(record_req)
                rec = json.loads(raw) if status == 200 else {}
                if rec.get("status") in ("completed", "failed"):
                    break
                assert time.monotonic() < deadline, f"latency sample {job_id} timed out"
                time.sleep(0.001)
            assert rec["status"] == "completed", rec
            lat.append(rec["start_time"] - t0)
            ack.append(t1 - t0)
    finally:
        conn.close()
    return lat, ack


def spawn_limit(n, parallel):
    """Jobs/s of a bare loop that starts /bin/true `parallel` at a time and
    reaps each (posix_spawn, as the workers do): what the machine allows for
    real processes with no scheduler at all."""
    running, started = set(), 0
    t0 = time.perf_counter()
    while started < n or running:
        while started < n and len(running) < parallel:
            running.add(os.posix_spawn("/bin/true", ["/bin/true"], os.environ))
            started += 1
        pid, _ = os.wait()
        running.discard(pid)
    return n / (time.perf_counter() - t0)


def throughput(cluster, n, in_flight, timeout, shared=False):
    prefix = f"tp-{os.getpid()}-"
    ids = [f"{prefix}{i:06d}" for i in range(n)]
    if shared:  # as a sweep submits: one bundle, many jobs
        h = bc.store_bundle(cluster.master.url)
        requests = [(None, bc.queue_request(j, cluster.token, bundle=h)) for j in ids]
    else:
        requests = [(bc.bundle_request(j), bc.queue_request(j, cluster.token)) for j in ids]
    base = workers_jobs_run(cluster)
    perf_dir = os.environ.get("ATLAS_BENCH_PERF_DIR")  # profiles of the master and a worker
    perfs = [subprocess.Popen(["perf", "record", "-q", "-e", "cpu-clock", "-F", "999", "-g",
                               "-p", str(node.pid), "-o", f"{perf_dir}/{node.name}.perf"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for node in (cluster.master, cluster.workers[0])] if perf_dir else []
    cpu0 = cpu_snapshot(cluster)
    t0 = time.time()
    submit_s, _ = bc.submit_all(cluster.master.url, requests, in_flight)
    bc.wait_until(lambda: workers_jobs_run(cluster) - base >= n, timeout, f"{n} jobs to finish")
    t_seen = time.time()
    cpu1 = cpu_snapshot(cluster)
    for p in perfs:
        p.send_signal(signal.SIGINT)
        p.wait(timeout=60)
    recs = cluster.records(prefix)
    assert len(recs) == n, f"{len(recs)} records of {n}"
    bad = [r for r in recs.values() if r["status"] != "completed"]
    assert not bad, f"{len(bad)} jobs did not complete: {bad[:2]}"
    starts = sorted(r["start_time"] for r in recs.values())
    ends = sorted(r["end_time"] for r in recs.values())
    return {
        "jobs": n,
        "in_flight": in_flight,
        "submit_s": submit_s,
        "submit_per_s": n / submit_s,
        "first_start_s": starts[0] - t0,
        "makespan_s": starts[-1] - t0,
        "jobs_per_s": n / (starts[-1] - t0),
        "drained_s": ends[-1] - t0,
        "completed_per_s": n / (ends[-1] - t0),
        "observed_s": t_seen - t0,
        "cpu_ms_per_job": {k: (cpu1[k] - cpu0[k]) / n * 1e3 for k in cpu0},
    }


def run(n, in_flight, samples, workers=2, slots=4, timeout=None, shared=False, limit=False):
    timeout = timeout or max(120, n / 5)
    cluster = bc.cluster_harness.Cluster(workers=workers, slots=slots)
    try:
        cluster.start()
        lat, ack = latency_samples(cluster, samples, 60) if samples else ([], [])
        tp = throughput(cluster, n, in_flight, timeout, shared)
    except Exception:
        for node in [cluster.master, *cluster.workers]:
            print(f"--- {node.name} log (tail)\n{node.node_log()[-3000:]}", file=sys.stderr)
        raise
    finally:
        cluster.cleanup()
    tp.update({
        "slots": workers * slots,
        "latency_samples": len(lat),
        "latency_p50_ms": bc.percentile(lat, 50) * 1e3,
        "latency_p99_ms": bc.percentile(lat, 99) * 1e3,
        "latency_min_ms": min(lat) * 1e3 if lat else float("nan"),
        "ack_p50_ms": bc.percentile(ack, 50) * 1e3,
        "shared_bundle": shared,
    })
    for k, v in tp["cpu_ms_per_job"].items():  # flat, for alternate.py
        tp[f"cpu_ms_{k}"] = v
    if limit:  # the same machine, right after
        tp["spawn_limit_per_s"] = spawn_limit(n, workers * slots)
        tp["share_of_spawn_limit"] = tp["completed_per_s"] / tp["spawn_limit_per_s"]
    return tp


def print_result(r):
    bc.table(f"atlas: {r['jobs']} trivial jobs on {r['slots']} slots "
             f"({r['in_flight']} requests in flight)", [
                 ("submissions/s", r["submit_per_s"], "jobs/s"),
                 ("submit all", r["submit_s"], "s"),
                 ("first start", r["first_start_s"], "s"),
                 ("makespan (last start)", r["makespan_s"], "s"),
                 ("started jobs/s", r["jobs_per_s"], "jobs/s"),
                 ("drained (last end)", r["drained_s"], "s"),
                 ("completed jobs/s", r["completed_per_s"], "jobs/s"),
                 (f"submit->start p50 ({r['latency_samples']} idle)", r["latency_p50_ms"], "ms"),
                 ("submit->start p99", r["latency_p99_ms"], "ms"),
                 ("submit->start min", r["latency_min_ms"], "ms"),
                 ("submit ack p50", r["ack_p50_ms"], "ms"),
             ])
    if "spawn_limit_per_s" in r:
        print(f"  fork+exec limit (a bare loop, {r['slots']} at a time): "
              f"{r['spawn_limit_per_s']:,.0f} jobs/s; Atlas completed "
              f"{r['share_of_spawn_limit'] * 100:.0f} % of it")
    cpu = r["cpu_ms_per_job"]
    print("  CPU ms per job (throughput phase): "
          + ", ".join(f"{k} {v:.2f}" for k, v in cpu.items())
          + f"; total {sum(cpu.values()):.2f} (the machine has {os.cpu_count()} CPUs)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=1000)
    ap.add_argument("--in-flight", type=int, default=8)
    ap.add_argument("--latency-samples", type=int, default=20)
    ap.add_argument("--shared-bundle", action="store_true",
                    help="every job uses one bundle of the content store, as a sweep does")
    ap.add_argument("--spawn-limit", action="store_true",
                    help="also measure the fork+exec limit of this machine, and the share of it")
    ap.add_argument("--json", help="also write the figures to this file")
    a = ap.parse_args()
    print(bc.machine_line())
    r = run(a.jobs, a.in_flight, a.latency_samples, shared=a.shared_bundle, limit=a.spawn_limit)
    print_result(r)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(r, f, indent=1)


if __name__ == "__main__":
    main()
