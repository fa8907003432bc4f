#!/usr/bin/env python3
"""Driver 3: `wrk` (keep-alive) against GET /jobs/<id> on the node that ran
the job (direct), and through the master for that job (the master forwards
the request to the owning worker's gateway over CAF: the proxied path).

    bench/http_wrk.py [--duration 30] [--connections 16] [--threads 2]

Prints requests/s and latency p50/p99 of each, and proxied/direct."""

import argparse
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys

import bench_common as bc

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def parse_wrk(text):
    """requests/s, p50 ms, p99 ms, non-2xx count from `wrk --latency` output."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    lat = {}
    for pct, num, unit in re.findall(r"^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", text, re.M):
        lat[pct] = float(num) * UNITS[unit]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errors = re.search(r"Socket errors:.*", text)
    return {"rps": rps, "p50_ms": lat.get("50"), "p99_ms": lat.get("99"),
            "non_2xx": int(bad.group(1)) if bad else 0,
            "socket_errors": errors.group(0) if errors else ""}


def cpu_s(pid):
    """CPU seconds (user + system) a process has used, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        x = f.read().rsplit(") ", 1)[1].split()
    return (int(x[11]) + int(x[12])) / os.sysconf("SC_CLK_TCK")


def measured(cluster, run):
    """Runs wrk via `run`; adds each process's CPU microseconds per request
    (where the time of a request goes: the bound on a shared machine)."""
    pids = {"master": cluster.master.pid, "worker": cluster.workers[0].pid,
            "redis": cluster.redis.pid()}
    before = {k: cpu_s(p) for k, p in pids.items()}
    wrk_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = run()
    wrk_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    n = max(1.0, r["rps"] * r["seconds"])
    r["cpu_us"] = {k: (cpu_s(p) - before[k]) * 1e6 / n for k, p in pids.items()}
    r["cpu_us"]["wrk"] = ((wrk_after.ru_utime + wrk_after.ru_stime)
                          - (wrk_before.ru_utime + wrk_before.ru_stime)) * 1e6 / n
    return r


def wrk(url, duration, connections, threads):
    r = subprocess.run(["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s",
                        "--latency", "--timeout", "10s", url],
                       capture_output=True, text=True, timeout=duration + 60)
    assert r.returncode == 0, r.stderr
    out = parse_wrk(r.stdout)
    out["seconds"] = duration
    return out


def start_perf(pid, directory, name):
    return subprocess.Popen(["perf", "record", "-q", "-e", "cpu-clock", "-F", "999", "-g",
                             "-p", str(pid), "-o", f"{directory}/{name}.perf"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_perf(proc):
    if proc:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=int, default=30)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--actor-threads", type=int, default=0,
                    help="the nodes' limits.actor_threads (0: one per core)")
    ap.add_argument("--no-tls", action="store_true",
                    help="cluster.tls: false (plaintext between nodes, loopback only)")
    ap.add_argument("--perf", metavar="DIR",
                    help="record perf profiles (cpu-clock) of the node under load into DIR")
    a = ap.parse_args()
    if shutil.which("wrk") is None:
        print("wrk not installed (bash bench/setup.sh)", file=sys.stderr)
        return 1
    print(bc.machine_line())
    config = (f"limits:\n  actor_threads: {a.actor_threads}\n" if a.actor_threads else "")
    config += "cluster:\n  tls: false\n" if a.no_tls else ""
    cluster = bc.cluster_harness.Cluster(workers=1, slots=1, atlas_config=config)
    try:
        cluster.start()
        job_id = "wrk-job"
        conn = bc.Conn(*bc.host_port(cluster.master.url))
        assert conn.request(bc.bundle_request(job_id))[0] == 200
        assert conn.request(bc.queue_request(job_id, cluster.token,
                                             ("/bin/sh", "-c", "echo hello from the job")))[0] == 201
        conn.close()
        cluster.wait_record(job_id, lambda r: r["status"] == "completed", 30, "complete")
        worker = cluster.workers[0]
        status, raw = worker.request("GET", f"/jobs/{job_id}")
        body = json.loads(raw)
        assert status == 200 and "hello from the job" in body["logs"], (status, raw)
        status, raw = cluster.master.request("GET", f"/jobs/{job_id}")
        assert status == 200 and json.loads(raw)["logs"] == body["logs"], (status, raw)
        perf = start_perf(worker.pid, a.perf, "direct") if a.perf else None
        direct = measured(cluster, lambda: wrk(f"{worker.url}/jobs/{job_id}", a.duration,
                                               a.connections, a.threads))
        stop_perf(perf)
        perf = start_perf(cluster.master.pid, a.perf, "proxied-master") if a.perf else None
        proxied = measured(cluster, lambda: wrk(f"{cluster.master.url}/jobs/{job_id}",
                                                a.duration, a.connections, a.threads))
        stop_perf(perf)
    finally:
        cluster.cleanup()
    for name, r in (("direct", direct), ("proxied", proxied)):
        assert r["non_2xx"] == 0, (name, r)
        bc.table(f"GET /jobs/<id> {name} ({a.connections} connections, {a.threads} wrk threads, "
                 f"{a.duration} s, keep-alive)", [
                     ("requests/s", r["rps"], "req/s"),
                     ("latency p50", r["p50_ms"], "ms"),
                     ("latency p99", r["p99_ms"], "ms")]
                 + [(f"CPU per request, {k}", v, "us") for k, v in r["cpu_us"].items()])
        if r["socket_errors"]:
            print("  " + r["socket_errors"])
    print(f"\nproxied/direct: {proxied['rps'] / direct['rps']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
