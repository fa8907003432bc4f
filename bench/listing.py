#!/usr/bin/env python3
"""Driver: what a job listing costs as a project grows (issue 19). One node
on loopback (runner `bench-sleep`: no process per job) runs --jobs trivial
jobs in one project; then, alternating in every round so that the
machine's drift hits all alike, it times

- page:     the dashboard's first page (job_listing?limit=50), read from
            the project's sorted index;
- deep:     a page near the end (its cursor found by walking the pages once);
- unchanged: the page's poll with ?since=<version> when nothing changed;
- scan:     a filtered page (?user=bench&limit=50), which reads every
            record of the project: what every listing cost before the indexes;
- legacy:   job_listing without limit (capped at 1,000 rows) and
            /completed_jobs without limit (capped the same),

median time and answer size of each. With --retention it then restarts
the node with `retention: {max_jobs: 100}` and reports how fast the
surplus is removed, and the submit->start latency of single jobs while that
runs against after.

    bench/listing.py [--jobs 5000] [--rounds 5] [--retention] [--json out.json]"""

import argparse
import json
import os
import sys
import time
import urllib.request
import uuid

import bench_common as bc
from dashboard_jobs import submit
from harness import Node, wait_until


def timed_get(url):
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as r:
        body = r.read()
        headers = dict(r.headers)
    return time.perf_counter() - t0, body, headers


def submit_jobs(node, n, in_flight=8):
    reqs = []
    for _ in range(n):
        job_id = "b-" + uuid.uuid4().hex[:12]
        reqs.append((bc.bundle_request(job_id), bc.queue_request(job_id, "t")))
    secs, _ = bc.submit_all(node.gateway, reqs, in_flight)
    return secs


def completed_total(node):
    _, _, headers = timed_get(node.gateway + "/completed_jobs?limit=1")
    return int(headers.get("X-Total-Count", "0"))


def measure(node, rounds):
    base = node.url + "/api/v2beta/projects/bench/job_listing"
    # The cursor of a page near the end, found once.
    cursor, last_cursor = None, None
    while True:
        _, body, _ = timed_get(base + "?limit=1000" + (f"&cursor={cursor}" if cursor else ""))
        page = json.loads(body)
        if page["next_cursor"] is None:
            break
        last_cursor, cursor = cursor, page["next_cursor"]
    deep = base + "?limit=50" + (f"&cursor={last_cursor}" if last_cursor else "")
    version = json.loads(timed_get(base + "?limit=1")[1])["version"]
    cases = {
        "page (limit=50)": base + "?limit=50",
        "deep page (limit=50)": deep,
        "unchanged (since=)": base + f"?limit=50&since={version}",
        "scan (user filter, limit=50)": base + "?user=bench&limit=50",
        "legacy job_listing (cap 1000)": base,
        "legacy /completed_jobs (cap 1000)": node.gateway + "/completed_jobs",
    }
    times, bodies = bc.timed_gets(cases, rounds)
    return {k: (bc.median(v), len(bodies[k])) for k, v in times.items()}


def latency_samples(node, n):
    """submit->start of `n` single jobs, one at a time (client clock before the upload)."""
    out = []
    for _ in range(n):
        t0 = time.time()
        job_id = submit(node, "", project="latency")
        rec = wait_until(lambda: (lambda j: j if j.get("start_time") else None)(
            json.loads(node.request("GET", f"/api/v1/jobs/{job_id}")[1])), 30, "the job to start")
        out.append(rec["start_time"] - t0)
    return out


def run(a):
    node = Node(slots=8, atlas_config="runner: bench-sleep\nlog_level: warning\n").start()
    result = {"jobs": a.jobs}
    try:
        result["submit_s"] = submit_jobs(node, a.jobs)
        wait_until(lambda: completed_total(node) >= a.jobs, 600, "every job to complete")
        wait_until(lambda: json.loads(timed_get(node.url + "/api/v2beta/projects/bench/job_listing?limit=1")[1])
                   .get("total") == a.jobs, 120, "the indexes")
        result["listing"] = measure(node, a.rounds)
        bc.table(f"job listing, {a.jobs:,} jobs in one project (median of {a.rounds}; {bc.machine_line()})",
                 [(k, v[0] * 1000, f"ms  {v[1]:>10,} bytes") for k, v in result["listing"].items()])
        page, scan = result["listing"]["page (limit=50)"][0], result["listing"]["scan (user filter, limit=50)"][0]
        print(f"  scan / page: {scan / page:.1f}x")
        if a.retention:
            result["retention"] = retention(node, a)
    finally:
        node.cleanup()
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=2)


def retention(node, a):
    before = latency_samples(node, a.latency_samples)
    node.stop_server()
    keep = min(100, a.jobs // 2)
    with open(node.home + "/config/atlas.config.yaml", "a") as f:
        f.write(f"retention:\n  max_jobs: {keep}\n")
    started = time.time()
    node.start()
    during = latency_samples(node, a.latency_samples)
    # (the latency jobs are in a project of their own, kept whole)
    wait_until(lambda: completed_total(node) <= keep + 2 * a.latency_samples, 3600, "retention to finish")
    removed_s = time.time() - started
    out = {"removed": a.jobs - keep, "seconds": removed_s,
           "latency_before_ms": bc.median(before) * 1000, "latency_during_ms": bc.median(during) * 1000}
    bc.table(f"retention (max_jobs: {keep})", [
        ("jobs removed", out["removed"], ""),
        ("time to remove them (with the node's start)", removed_s, "s"),
        ("removal rate", out["removed"] / removed_s, "jobs/s"),
        ("submit->start, median, before", out["latency_before_ms"], "ms"),
        ("submit->start, median, during removal", out["latency_during_ms"], "ms"),
    ])
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--retention", action="store_true")
    ap.add_argument("--latency-samples", type=int, default=10)
    ap.add_argument("--json")
    run(ap.parse_args())
