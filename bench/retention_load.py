#!/usr/bin/env python3
"""Driver: retention removing --old finished jobs while jobs are submitted at
--rate jobs/s (issue 19). One node, 8 slots of the runner `bench-sleep`.

1. Before: jobs are submitted at --rate for --seconds; each job's dispatch
   latency is its record's start_time - queued_time (the master's clock).
2. --old finished jobs (a real job's clones, with a metric and a parameter:
   bench/million.py's fill) are written into project `old`, ended in 2023.
3. The node restarts with `retention: {max_age: 30d}` and jobs are
   submitted at --rate again until retention has removed every old job.
4. Redis is then scanned: no key, set member, sorted-set member or hash
   field may name a removed job.

    bench/retention_load.py [--old 100000] [--rate 500] [--seconds 20] [--json out.json]"""

import argparse
import json
import subprocess
import threading
import time
import uuid

import bench_common as bc
import million
from dashboard_jobs import submit
from harness import Node, wait_until

CLONE_FIRST = 300_000_000
CLONE_PREFIX = "c000300"  # every clone id starts so (c + 12 digits from CLONE_FIRST)
CLONES_ENDED_BY = "1750000000000000"  # µs: the clones' end times are all before (2025)


def paced_submit(node, rate, seconds=None, until=None, in_flight=8, give_up_s=1800):
    """Submits at `rate` jobs/s for `seconds` (or until `until()`, at most
    `give_up_s`); returns the ids and the seconds taken."""
    host, port = bc.host_port(node.gateway)
    ids, lock, stop = [], threading.Lock(), threading.Event()
    start = time.time()
    counter = iter(range(10**9))

    def worker():
        conn = bc.Conn(host, port)
        try:
            while not stop.is_set():
                with lock:
                    i = next(counter)
                due = start + i / rate
                if seconds is not None and due - start >= seconds:
                    return
                time.sleep(max(0.0, due - time.time()))
                job_id = "r-" + uuid.uuid4().hex[:12]
                s1, _ = conn.request(bc.bundle_request(job_id))
                s2, _ = conn.request(bc.queue_request(job_id, "t"))
                if s1 == 200 and s2 == 201:
                    with lock:
                        ids.append(job_id)
        finally:
            conn.close()

    threads = [threading.Thread(target=worker) for _ in range(in_flight)]
    for t in threads:
        t.start()
    if until is not None:
        deadline = time.time() + give_up_s
        try:
            while not until():  # checked twice a second: the check costs a redis-cli
                if time.time() > deadline:
                    raise AssertionError(f"retention did not finish in {give_up_s} s")
                time.sleep(0.5)
        finally:
            stop.set()
    for t in threads:
        t.join(timeout=3600)
    return ids, time.time() - start


def latencies(node, ids):
    """start_time - queued_time of each job (ms), read from its record."""
    out = []
    for i in range(0, len(ids), 500):
        raw = million.cli(node, "MGET", *[f"atlas:job:{j}" for j in ids[i:i + 500]])
        for line in raw.split("\n"):
            if line.startswith("{"):
                rec = json.loads(line)
                if rec.get("start_time") and rec.get("queued_time"):
                    out.append((rec["start_time"] - rec["queued_time"]) * 1000)
    return out


# Every key that names a clone, or holds one as a member or field: one
# pass inside Redis (a bench's store; KEYS blocks it for a moment).
LEFTOVERS_LUA = """
local found = {}
for _, k in ipairs(redis.call('KEYS', '*')) do
  if string.find(k, ARGV[1], 1, true) then
    table.insert(found, k)
  else
    local t = redis.call('TYPE', k).ok
    local items = nil
    if t == 'set' then items = redis.call('SMEMBERS', k)
    elseif t == 'zset' then items = redis.call('ZRANGE', k, 0, -1)
    elseif t == 'hash' then items = redis.call('HKEYS', k) end
    for _, m in ipairs(items or {}) do
      if string.find(m, ARGV[1], 1, true) then table.insert(found, k) break end
    end
  end
end
return found
"""


def leftovers(node):
    """Every place in Redis that still names a clone."""
    out = million.cli(node, "EVAL", LEFTOVERS_LUA, "0", CLONE_PREFIX)
    return [k for k in out.split("\n") if k]


def run(a):
    node = Node(slots=8, atlas_config="log_level: warning\n").start()
    result = {"old": a.old, "rate": a.rate, "machine": bc.machine_line()}
    try:
        # The template runs as a process (its SDK writes the tracking data),
        # then the node runs `bench-sleep` (no process per job).
        template = submit(node, million.TEMPLATE_MAIN.format(loss=0.5, depth=3), project="old")
        node.wait_for_status(template, ["completed"], timeout=60)
        steps = million.recipe(node, template)  # while the store is small
        node.stop_server()
        with open(node.home + "/config/atlas.config.yaml", "a") as f:
            f.write("runner: bench-sleep\n")
        node.start(timeout=120)
        before_ids, _ = paced_submit(node, a.rate, seconds=a.seconds)
        time.sleep(2)
        before = latencies(node, before_ids)
        million.fill(node, steps, template, "old", "old", a.old, True, CLONE_FIRST)
        # (not vacuous: the clones are there, each under its own id)
        assert million.cli(node, "EXISTS", f"atlas:job:c{CLONE_FIRST + a.old - 1:012d}") == "1"
        old_key = "atlas:index:ended:old"
        assert int(million.cli(node, "ZCARD", old_key)) >= a.old
        node.stop_server()
        with open(node.home + "/config/atlas.config.yaml", "a") as f:
            f.write("retention:\n  max_age: 30d\n  interval_s: 1\n")
        node.start(timeout=120)
        t0 = time.time()
        # (the template ended now, not in 2023: it stays)
        during_ids, during_s = paced_submit(
            node, a.rate, until=lambda: int(million.cli(node, "ZCOUNT", old_key, "-inf", CLONES_ENDED_BY)) == 0)
        removed_s = time.time() - t0
        time.sleep(2)
        during = latencies(node, during_ids)
        result.update({
            "submitted_before": len(before_ids), "submitted_during": len(during_ids),
            "dispatch_p50_before_ms": bc.median(before), "dispatch_p99_before_ms": bc.percentile(before, 99),
            "dispatch_p50_during_ms": bc.median(during), "dispatch_p99_during_ms": bc.percentile(during, 99),
            "removal_s": removed_s, "removal_rate": a.old / removed_s,
            "submit_rate_during": len(during_ids) / during_s,
        })
        result["leftovers"] = leftovers(node)
    finally:
        node.cleanup()
    bc.table(f"retention of {a.old:,} finished jobs under {a.rate} submissions/s ({result['machine']})", [
        ("jobs submitted before / during", f"{result['submitted_before']:,} / {result['submitted_during']:,}", ""),
        ("submission rate while removing", result["submit_rate_during"], "jobs/s"),
        ("dispatch latency p50, before", result["dispatch_p50_before_ms"], "ms"),
        ("dispatch latency p50, during removal", result["dispatch_p50_during_ms"], "ms"),
        ("dispatch latency p99, before / during",
         f"{result['dispatch_p99_before_ms']:.2f} / {result['dispatch_p99_during_ms']:.2f}", "ms"),
        ("time to remove them (with the node's start)", result["removal_s"], "s"),
        ("removal rate", result["removal_rate"], "jobs/s"),
        ("Redis keys still naming a removed job", len(result["leftovers"]), ""),
    ])
    if result["leftovers"]:
        print("left:", result["leftovers"][:20])
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=2)
    return 1 if result["leftovers"] else 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old", type=int, default=100_000)
    ap.add_argument("--rate", type=float, default=500)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--json")
    raise SystemExit(run(ap.parse_args()))
