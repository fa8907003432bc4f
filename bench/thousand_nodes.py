#!/usr/bin/env python3
"""Driver 9: the control plane against many nodes, simulated. The real
master (NUM_WORKERS=0) faces --nodes worker nodes of --slots slots run by
`atlas-sim-nodes` processes (up to --per-process nodes each): every node is
a whole worker node with its own actor system, certificate, link to the
master, heartbeats and slots, joining and speaking the real protocol; only
its jobs are simulated (runner `bench-sleep`: a job "runs" for --job-ms
without a process).

    bench/thousand_nodes.py [--nodes 10,100,500,1000] [--slots 8] [--jobs 100000]

For each node count, on a fresh cluster:
1. --jobs jobs are submitted over HTTP while no node is up (the queue holds
   them all), and the master is stopped;
2. the simulated nodes start and wait for a master; the master starts again
   (reading the queue back from Redis, as after a restart), every node
   joins, and the queue drains. Reported: the time until every slot was
   registered, dispatched jobs/s over the steady part (every node joined,
   until 90 % done), and the master's CPU per dispatched job over it, hence
   dispatched jobs/s per master CPU;
3. with every node idle for --idle-s: the master's CPU and the BASP bytes on
   its cluster port (heartbeats: CAF's and each node's own once a second),
   per node; the master's RSS, and the simulated processes' RSS per node.
Ended jobs are counted in Redis (SCARD), not by asking the master."""

import argparse
import json
import math
import os
import socket
import subprocess
import sys
import time
import urllib.request

import bench_common as bc
from control_plane import cpu_seconds, status_kb  # /proc readers

SIM = os.environ.get("ATLAS_SIM_NODES") or os.path.join(
    os.path.dirname(os.path.abspath(bc.cluster_harness.SERVER)), "atlas-sim-nodes")


def redis_zcard(port, key):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"*2\r\n$5\r\nZCARD\r\n${len(key)}\r\n{key}\r\n".encode())
        reply = b""
        while not reply.endswith(b"\r\n"):
            chunk = s.recv(64)
            assert chunk, "Redis closed the connection"
            reply += chunk
    assert reply.startswith(b":"), reply
    return int(reply[1:])


def ended(port):
    """Jobs in a final state: done, whichever way (the scheduler's two lists)."""
    return sum(redis_zcard(port, f"atlas:index:list:{s}") for s in ("completed_jobs", "failed_jobs"))


def metrics(master):
    """{(name, labels): value} of the master's /metrics."""
    with urllib.request.urlopen(master.url + "/metrics", timeout=60) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def slots_registered(master):
    return sum(v for k, v in metrics(master).items() if k.startswith("atlas_slots{"))


def free_range(count):
    """A first port of `count` consecutive free loopback ports."""
    for first in range(20000, 60000 - count, 997):
        socks = []
        try:
            for p in range(first, first + count):
                s = socket.socket()
                s.bind(("127.0.0.1", p))
                socks.append(s)
            return first
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise AssertionError(f"no {count} consecutive free ports")


class SimProcesses:
    """The atlas-sim-nodes processes of one run, stopped by pid."""

    def __init__(self, cluster, nodes, slots, per_process):
        self.procs, self.logs = [], []
        env = {k: v for k, v in cluster.master.env.items()
               if k not in ("HOST_ADDRESS", "ATLAS_CAF_PORT", "ATLAS_GATEWAY_PORT",
                            "ATLAS_DASHBOARD_PORT")}
        env["NUM_WORKERS"] = str(slots)
        first = free_range(nodes)
        for start in range(0, nodes, per_process):
            count = min(per_process, nodes - start)
            log = open(f"{cluster.home}/test-logs/sim-{start}.log", "ab")
            self.logs.append(log)
            self.procs.append(subprocess.Popen(
                [SIM, "--nodes", str(count), "--first-port", str(first + start)], env=env,
                stdout=subprocess.PIPE, stderr=log, start_new_session=True))

    def wait_up(self, timeout):
        """Every process printed "ok N nodes" (its nodes are up, joining)."""
        deadline = time.monotonic() + timeout
        for p in self.procs:
            line = b""
            while not line.startswith(b"ok "):
                assert time.monotonic() < deadline, "simulated nodes did not come up in time"
                line = p.stdout.readline()
                assert line or p.poll() is None, f"atlas-sim-nodes exited ({p.poll()}): see sim logs"

    def rss_kb(self):
        return sum(status_kb(p.pid, "VmRSS") for p in self.procs if p.poll() is None)

    def cpu_s(self):
        return sum(cpu_seconds(p.pid) for p in self.procs if p.poll() is None)

    def stop(self, timeout=120):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        deadline = time.monotonic() + timeout
        for p in self.procs:
            try:
                p.wait(timeout=max(1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=30)
        for log in self.logs:
            log.close()


def run(nodes, slots, jobs, job_ms, per_process, idle_s, in_flight, tls, perf_out=None,
        timeout_ms=30000, heartbeat_ms=500):
    # Every simulated node shares the machine's CPUs with the master: under
    # a rejoin storm they answer heartbeats late, which a node on a machine
    # of its own would not; a longer timeout keeps them from being dropped.
    config = ("runner: bench-sleep\nlog_level: warn\n"
              f"cluster:\n  connection_timeout_ms: {timeout_ms}\n  heartbeat_ms: {heartbeat_ms}\n")
    if not tls:
        config += "  tls: false\n"
    os.environ["ATLAS_BENCH_SLEEP_MS"] = str(job_ms)  # the nodes inherit it (bench/runner/)
    cluster = bc.cluster_harness.Cluster(workers=0, slots=slots, atlas_config=config)
    sims = None
    try:
        master = cluster.master
        master.start()
        ids = [f"tn-{i:06d}" for i in range(jobs)]
        requests = [(bc.bundle_request(j), bc.queue_request(j, cluster.token)) for j in ids]
        submit_s, _ = bc.submit_all(master.url, requests, in_flight)
        master.stop()

        sims = SimProcesses(cluster, nodes, slots, per_process)
        sims.wait_up(timeout=max(120, nodes))
        sim_rss_waiting = sims.rss_kb()
        t_master = time.time()
        master.start(timeout=120)
        mpid, rport = master.pid, cluster.redis.port
        total_slots = nodes * slots
        # Until every slot is registered: the join storm of a restarted master.
        deadline = time.monotonic() + max(120, nodes)
        while slots_registered(master) < total_slots:
            assert time.monotonic() < deadline, "not every node joined the master"
            time.sleep(0.5)
        t_joined = time.time()
        perf = subprocess.Popen(["perf", "record", "-q", "-e", "cpu-clock", "-F", "999", "-g",
                                 "-p", str(mpid), "-o", perf_out], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL) if perf_out else None
        done0, cpu0 = ended(rport), cpu_seconds(mpid)
        assert done0 < jobs * 0.8, (
            f"{done0} of {jobs} jobs were done before every node had joined: use more --jobs")
        # Steady part: from every node joined until 90 % done.
        deadline = time.monotonic() + max(300, jobs / 50)
        done = done0
        while done < jobs * 0.9:
            assert time.monotonic() < deadline, f"only {done} of {jobs} jobs done"
            time.sleep(0.1)
            done = ended(rport)
        t90, cpu90 = time.time(), cpu_seconds(mpid)
        if perf:
            perf.send_signal(2)  # SIGINT: perf writes its file and exits
            perf.wait(timeout=60)
        while done < jobs:
            assert time.monotonic() < deadline, f"only {done} of {jobs} jobs done"
            time.sleep(0.1)
            done = ended(rport)
        # Idle: heartbeats only.
        time.sleep(2)
        m0, c0, s0, t0 = metrics(master), cpu_seconds(mpid), sims.cpu_s(), time.time()
        time.sleep(idle_s)
        m1, c1, s1, t1 = metrics(master), cpu_seconds(mpid), sims.cpu_s(), time.time()
        key_in, key_out = ('atlas_cluster_bytes_total{direction="in"}',
                           'atlas_cluster_bytes_total{direction="out"}')
        idle = t1 - t0
        result = {
            "nodes": nodes, "slots": slots, "jobs": jobs, "job_ms": job_ms,
            "heartbeat_ms": heartbeat_ms,
            "sim_processes": len(sims.procs),
            "failed": redis_zcard(rport, "atlas:index:list:failed_jobs"),
            "submit_per_s": jobs / submit_s,
            "rejoin_s": t_joined - t_master,
            "steady_jobs": jobs * 0.9 - done0,
            "dispatch_per_s": (jobs * 0.9 - done0) / (t90 - t_joined),
            "master_cpu_us_per_job": (cpu90 - cpu0) / (jobs * 0.9 - done0) * 1e6,
            "idle_master_cpu_pct": (c1 - c0) / idle * 100,
            "idle_sim_cpu_pct": (s1 - s0) / idle * 100,
            "heartbeat_bytes_in_per_node_s": (m1[key_in] - m0[key_in]) / idle / nodes,
            "heartbeat_bytes_out_per_node_s": (m1[key_out] - m0[key_out]) / idle / nodes,
            "master_rss_mb": status_kb(mpid, "VmRSS") / 1024,
            "master_peak_rss_mb": status_kb(mpid, "VmHWM") / 1024,
            "master_fds": len(os.listdir(f"/proc/{mpid}/fd")),
            "sim_rss_mb_per_node": sims.rss_kb() / 1024 / nodes,
            "sim_rss_mb_per_node_before_join": sim_rss_waiting / 1024 / nodes,
        }
        result["dispatch_per_master_cpu_s"] = 1e6 / result["master_cpu_us_per_job"]
        return result
    except Exception:
        print(f"--- master log (tail)\n{cluster.master.node_log()[-3000:]}", file=sys.stderr)
        for name in sorted(os.listdir(cluster.home + "/test-logs")):
            if name.startswith("sim-"):
                with open(f"{cluster.home}/test-logs/{name}", errors="replace") as f:
                    print(f"--- {name} (tail)\n{f.read()[-1500:]}", file=sys.stderr)
        raise
    finally:
        if sims:
            sims.stop()
        cluster.cleanup()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", default="10,100,500,1000", help="node counts, comma-separated")
    ap.add_argument("--slots", type=int, default=8)
    ap.add_argument("--jobs", type=int, default=100000)
    ap.add_argument("--job-ms", type=int, default=0)
    ap.add_argument("--per-process", type=int, default=100,
                    help="simulated nodes per atlas-sim-nodes process")
    ap.add_argument("--idle-s", type=float, default=10)
    ap.add_argument("--heartbeat-ms", type=int, default=500,
                    help="cluster.heartbeat_ms of every node (default 500)")
    ap.add_argument("--connection-timeout-ms", type=int, default=30000,
                    help="cluster.connection_timeout_ms of every node (default 3000)")
    ap.add_argument("--in-flight", type=int, default=8)
    ap.add_argument("--no-tls", action="store_true",
                    help="cluster.tls: false (plaintext between nodes, loopback only)")
    ap.add_argument("--perf", help="profile the master over the steady part into this file "
                                    "(with one node count)")
    ap.add_argument("--json", help="also write the figures to this file")
    a = ap.parse_args()
    print(bc.machine_line())
    results = []
    for n in [int(x) for x in a.nodes.split(",")]:
        r = run(n, a.slots, a.jobs, a.job_ms, a.per_process, a.idle_s, a.in_flight, not a.no_tls,
                a.perf, a.connection_timeout_ms, a.heartbeat_ms)
        results.append(r)
        bc.table(f"{n} nodes x {a.slots} slots, {a.jobs} jobs ({r['sim_processes']} sim processes, "
                 f"heartbeat {a.heartbeat_ms} ms)", [
            ("submissions/s (queue filled, no node up)", r["submit_per_s"], "/s"),
            ("every slot registered after the master's start", r["rejoin_s"], "s"),
            ("dispatched, steady (all joined -> 90 %)", r["dispatch_per_s"], "jobs/s"),
            ("master CPU per dispatched job", r["master_cpu_us_per_job"], "us"),
            ("dispatched jobs/s per master CPU", r["dispatch_per_master_cpu_s"], "/s"),
            ("idle: master CPU", r["idle_master_cpu_pct"], "%"),
            ("idle: BASP bytes in per node", r["heartbeat_bytes_in_per_node_s"], "B/s"),
            ("idle: BASP bytes out per node", r["heartbeat_bytes_out_per_node_s"], "B/s"),
            ("master RSS (idle) / peak", f"{r['master_rss_mb']:.1f} / {r['master_peak_rss_mb']:.1f}", "MB"),
            ("master open descriptors", r["master_fds"], ""),
            ("simulated node RSS (per node)", r["sim_rss_mb_per_node"], "MB"),
            ("jobs failed (should be none)", r["failed"], ""),
        ])
    assert all(math.isfinite(r["dispatch_per_master_cpu_s"]) for r in results)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
