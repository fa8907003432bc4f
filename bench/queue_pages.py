#!/usr/bin/env python3
"""Driver: what reading the queue costs as it grows (issue 19). One node on
loopback, one slot held by a long `bench-sleep` job, so that every job
submitted after it stays queued; at each --sizes length of the queue it
times, alternating in every round so that the machine's drift hits all
alike,

- first:  the scheduler's first page, /queued_jobs?limit=50;
- deep:   the page at the queue's end, /queued_jobs?limit=50&cursor=<n-50>;
- one:    one position, /queued_jobs/<n/2> (what the original client reads);
- legacy: /queued_jobs without a limit (capped at 1,000 entries),

median and p99 time and answer size of each. The master sends the gateway
only the page asked for; it still orders the queue up to the page's end.

    bench/queue_pages.py [--sizes 1000,100000] [--rounds 50] [--json out.json]"""

import argparse
import json
import os

import bench_common as bc
from harness import Node


def fill(node, bundle, first, count):
    requests = [(None, bc.queue_request(f"q-{i:07d}", "", bundle=bundle))
                for i in range(first, first + count)]
    secs, _ = bc.submit_all(node.url, requests, in_flight=8)
    return count / secs


def run(a):
    os.environ["ATLAS_BENCH_SLEEP_MS"] = str(3_600_000)  # the first job holds the slot
    node = Node(slots=1, atlas_config="runner: bench-sleep\nlog_level: warning\n").start()
    results = {"machine": bc.machine_line(), "sizes": {}}
    try:
        bundle = bc.store_bundle(node.url)  # every job links it
        submitted = 0  # the first runs: n queued are n + 1 submitted
        for n in a.sizes:
            rate = fill(node, bundle, submitted, n + 1 - submitted)
            submitted = n + 1
            g = node.gateway
            cases = {"first": f"{g}/queued_jobs?limit=50",
                     "deep": f"{g}/queued_jobs?limit=50&cursor={n - 50}",
                     "one": f"{g}/queued_jobs/{n // 2}",
                     "legacy": f"{g}/queued_jobs"}
            times, bodies = bc.timed_gets(cases, a.rounds)
            assert len(json.loads(bodies["first"])) == 50 and len(json.loads(bodies["deep"])) == 50
            assert json.loads(bodies["one"])["position"] == n // 2
            results["sizes"][n] = {"submit_per_s": rate, **{
                k: {"p50_ms": 1e3 * bc.median(v), "p99_ms": 1e3 * bc.percentile(v, 99),
                    "bytes": len(bodies[k])} for k, v in times.items()}}
            row = results["sizes"][n]
            bc.table(f"queue of {n:,} jobs, {a.rounds} rounds ({results['machine']})",
                     [(k, row[k]["p50_ms"], f"ms  p99 {row[k]['p99_ms']:.1f} ms  {row[k]['bytes']:>9,} bytes")
                      for k in cases] + [("submitted at", rate, "jobs/s")])
    finally:
        node.cleanup()
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[1000, 100_000])
    ap.add_argument("--rounds", type=int, default=50)
    ap.add_argument("--json")
    run(ap.parse_args())
