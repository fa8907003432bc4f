#!/usr/bin/env python3
"""Driver: a store of a million finished jobs (issue 19): Redis memory per
job, the master's memory with them, and what a job listing page costs in a
project that large against one of a thousand jobs.

A node runs a few real jobs (the subprocess runner: each logs a metric
`loss` and a parameter `depth` through the SDK). Their Redis entries are
then the templates of clones written straight into Redis through
`redis-cli --pipe`: every key, set, sorted set and hash entry that names a
template job is written again for a new id, with its own submission order,
end time and metric value. A clone is therefore stored exactly as the
server stores a finished job (records, state sets, routing table, listing,
status, ended and metric indexes, tracking hashes), without running a
million processes. The event stream is left out (it is capped by length),
and so is the end's once-marker (a key that expires a day after the end).

Measured, with `INFO memory` (used_memory) before and after each fill:
- Redis bytes per finished job, without and with tracking data;
- Redis bytes per queued job (real submissions to a node whose only slot
  a long job holds);
- the master's RSS with --jobs finished jobs in Redis, started on them;
- job listing requests in the big project and in a project of 1,000 jobs,
  alternating, median and p99 of --rounds each, with answer sizes.

- with --browser, the dashboard's job table in Debian's Chromium
  (bench/dashboard_pages.mjs): first rows visible, each older page, and
  the size of every listing answer, in both projects.

    bench/million.py [--jobs 1000000] [--rounds 200] [--browser] [--json out.json]"""

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

import bench_common as bc
from dashboard_jobs import submit
from harness import Node, wait_until

TEMPLATE_MAIN = """import foundations
foundations.log_metric('loss', {loss})
foundations.log_param('depth', {depth})
"""


def cli(node, *args):
    r = subprocess.run(["redis-cli", "-p", str(node.redis.port), "--raw", *args],
                       capture_output=True, text=True, timeout=120, check=True)
    return r.stdout.rstrip("\n")


def used_memory(node):
    info = cli(node, "INFO", "memory")
    return int(re.search(r"^used_memory:(\d+)", info, re.M).group(1))


def resp(args):
    out = [f"*{len(args)}\r\n"]
    for a in args:
        b = a if isinstance(a, str) else str(a)
        out.append(f"${len(b.encode())}\r\n{b}\r\n")
    return "".join(out)


def recipe(node, template):
    """What the store holds of `template`, as (kind, key, detail) steps."""
    steps = []
    for key in cli(node, "--scan").split("\n"):
        if not key:
            continue
        kind = cli(node, "TYPE", key)
        if template in key and int(cli(node, "TTL", key)) > 0:
            continue  # the end's once-marker: gone a day after the end
        if template in key:
            if kind == "string":
                steps.append(("string", key, cli(node, "GET", key)))
            elif kind == "hash":
                pairs = cli(node, "HGETALL", key).split("\n")
                steps.append(("hash", key, list(zip(pairs[::2], pairs[1::2]))))
            elif kind == "list":
                steps.append(("list", key, cli(node, "LRANGE", key, "0", "-1").split("\n")))
        elif kind == "set" and cli(node, "SISMEMBER", key, template) == "1":
            steps.append(("member", key, None))
        elif kind == "zset":
            score = cli(node, "ZSCORE", key, template)
            if score:
                steps.append(("scored", key, float(score)))
        elif kind == "hash" and cli(node, "HEXISTS", key, template) == "1":
            steps.append(("field", key, cli(node, "HGET", key, template)))
    return steps


def clone_commands(steps, template, project_from, project_to, new_id, seq, end_us, loss, tracking):
    def fix(text):
        text = text.replace(template, new_id)
        return re.sub(r'"seq":\d+', f'"seq":{seq}', text) if '"seq":' in text else text

    def fix_key(key):
        return key.replace(":" + project_from, ":" + project_to)

    out = []
    for kind, key, detail in steps:
        tracking_key = kind in ("hash", "list") or (kind == "string" and key.endswith(":secret"))
        if not tracking and (tracking_key or ":index:column:" in key):
            continue
        if kind == "string":
            value = detail.replace(f'"project_name":"{project_from}"', f'"project_name":"{project_to}"')
            out.append(("SET", key.replace(template, new_id), fix(value)))
        elif kind == "hash":
            flat = [x for pair in detail for x in pair]
            out.append(("HSET", key.replace(template, new_id), *[fix(x) for x in flat]))
        elif kind == "list":
            out.append(("RPUSH", key.replace(template, new_id), *[fix(x) for x in detail]))
        elif kind == "member":
            out.append(("SADD", fix_key(key) if ":index:" in key else key, new_id))
        elif kind == "scored":
            if ":index:column:" in key:
                score = loss if ":metric:" in key else seq % 97
                key = key.replace(f":{len(project_from)}:{project_from}:", f":{len(project_to)}:{project_to}:")
            elif ":ended:" in key or ":list:" in key:
                score = end_us
            else:
                score = seq
            out.append(("ZADD", fix_key(key) if ":index:" in key and ":list:" not in key else key,
                        repr(score) if isinstance(score, float) else score, new_id))
        elif kind == "field":
            out.append(("HSET", key, new_id, fix(detail)))
    return out


def fill(node, steps, template, project_from, project_to, count, tracking, first_seq):
    """Writes `count` clones of `template` into `project_to`; returns the seconds taken."""
    t0 = time.time()
    proc = subprocess.Popen(["redis-cli", "-p", str(node.redis.port), "--pipe"],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    rng = random.Random(first_seq)
    chunk = []
    for i in range(count):
        new_id = f"c{first_seq + i:012d}"
        seq = first_seq + i
        cmds = clone_commands(steps, template, project_from, project_to, new_id, seq,
                              1_700_000_000_000_000 + seq, round(rng.uniform(0, 10), 6), tracking)
        chunk.extend(resp(c) for c in cmds)
        if len(chunk) > 20000:
            proc.stdin.write("".join(chunk))
            chunk = []
    chunk.append(resp(("SADD", "atlas:index:projects", project_to)))
    proc.stdin.write("".join(chunk))
    proc.stdin.close()
    proc.wait(timeout=3600)
    return time.time() - t0


def timed_get(url):
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=300) as r:
        body = r.read()
    return time.perf_counter() - t0, body


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0


def deep_cursor(node, project, descending):
    """The cursor of the row in the middle of a project's loss index."""
    key = f"atlas:index:column:{len(project)}:{project}:metric:loss"
    size = int(cli(node, "ZCARD", key))
    at = size // 2
    cmd = "ZREVRANGE" if descending else "ZRANGE"
    member, score = cli(node, cmd, key, str(at), str(at), "WITHSCORES").split("\n")
    return f"{float(score)!r}:{member}" if float(score) != int(float(score)) else f"{int(float(score))}:{member}"


def pages(node, rounds):
    cases = {}
    for project in ("million", "thousand"):
        base = node.url + f"/api/v2beta/projects/{project}/job_listing"
        version = json.loads(timed_get(base + "?limit=1")[1])["version"]
        cases[f"{project}: newest 50"] = base + "?limit=50"
        cases[f"{project}: sort=-loss, first 50"] = base + "?sort=-loss&limit=50"
        cases[f"{project}: sort=-loss, mid-project 50"] = (
            base + "?sort=-loss&limit=50&cursor=" + urllib.parse.quote(deep_cursor(node, project, True)))
        cases[f"{project}: sort=param:depth, first 50"] = base + "?sort=param:depth&limit=50"
        cases[f"{project}: status=completed, first 50"] = base + "?status=completed&limit=50"
        cases[f"{project}: unchanged poll (since=)"] = base + f"?limit=50&since={version}"
    times, bodies = bc.timed_gets(cases, rounds)
    for name, body in bodies.items():
        if "loss" in name:  # a sorted page is a whole page
            assert len(json.loads(body)["jobs"]) == 50, name
    # A filter no index serves: the project's newest 10,000 records are read.
    scans = {f"{p}: user=alice (no index: newest 10,000 read)":
             node.url + f"/api/v2beta/projects/{p}/job_listing?user=alice&limit=50"
             for p in ("million", "thousand")}
    scan_times, scan_bodies = bc.timed_gets(scans, max(3, rounds // 20))
    for name, body in scan_bodies.items():
        answer = json.loads(body)
        assert len(answer["jobs"]) == 50 and answer["scanned_jobs"] <= 10_000, (name, answer["scanned_jobs"])
    times.update(scan_times)
    bodies.update(scan_bodies)
    return {k: {"p50_ms": bc.median(v) * 1000, "p99_ms": bc.percentile(v, 99) * 1000,
                "bytes": len(bodies[k])} for k, v in times.items()}


def browser_pages(node, projects, runs=3, pages=5):
    """bench/dashboard_pages.mjs in Debian's Chromium, for each project."""
    here = os.path.dirname(os.path.abspath(__file__))
    deps = tempfile.mkdtemp(prefix="atlas-bench-browser-")
    try:
        for name in ["package.json", "package-lock.json"]:
            shutil.copy(os.path.join(here, "..", "tests", "browser", name), deps)
        shutil.copy(os.path.join(here, "dashboard_pages.mjs"), deps)
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=deps, check=True,
                       capture_output=True, timeout=300)
        out = {}
        for project in projects:
            r = subprocess.run(["node", os.path.join(deps, "dashboard_pages.mjs"), node.dashboard,
                                project, str(runs), str(pages)],
                               capture_output=True, text=True, timeout=600, check=True)
            out[project] = json.loads(r.stdout.strip().splitlines()[-1])
        return out
    finally:
        shutil.rmtree(deps, ignore_errors=True)


def queued_cost(a):
    """Redis bytes per queued job: real submissions to a node whose only slot
    is held by a long job, so every one stays queued."""
    node = Node(slots=1, atlas_config="log_level: warning\n").start()
    try:
        blocker = submit(node, "import time\ntime.sleep(600)\n", project="queued")
        node.wait_for_status(blocker, ["running"], timeout=60)
        before = used_memory(node)
        for _ in range(a.queued):
            submit(node, "print('hi')\n", project="queued")
        after = used_memory(node)
        return (after - before) / a.queued
    finally:
        node.cleanup()


def run(a):
    result = {"jobs": a.jobs, "machine": bc.machine_line()}
    result["redis_bytes_per_queued_job"] = queued_cost(a)
    node = Node(slots=4, atlas_config="log_level: warning\n").start()
    try:
        templates = [submit(node, TEMPLATE_MAIN.format(loss=0.5, depth=3), project="million")
                     for _ in range(3)]
        for t in templates:
            node.wait_for_status(t, ["completed"], timeout=60)
        wait_until(lambda: cli(node, "GET", "atlas:index:built") == "2", 60, "the indexes")
        template = templates[0]
        steps = recipe(node, template)
        print(f"template {template}: {len(steps)} entries", file=sys.stderr)

        base = used_memory(node)
        n = a.sample
        fill(node, steps, template, "million", "bare", n, False, 10_000_000)
        bare = used_memory(node)
        fill(node, steps, template, "million", "tracked", n, True, 20_000_000)
        tracked = used_memory(node)
        result["redis_bytes_per_finished_job"] = (bare - base) / n
        result["redis_bytes_per_finished_job_tracked"] = (tracked - bare) / n

        secs = fill(node, steps, template, "million", "million", a.jobs - len(templates), True, 100_000_000)
        fill(node, steps, template, "million", "thousand", 1000, True, 50_000_000)
        result["fill_seconds"] = secs
        result["redis_used_memory_mb"] = used_memory(node) / 1e6
        result["master_rss_mb_running"] = rss_mb(node.proc.pid)
        node.stop_server()
        t0 = time.time()
        node.start(timeout=600)
        result["master_start_s"] = time.time() - t0
        result["master_rss_mb_started"] = rss_mb(node.proc.pid)
        total = json.loads(timed_get(node.url + "/api/v2beta/projects/million/job_listing?limit=1")[1])["total"]
        assert total == a.jobs, total
        result["pages"] = pages(node, a.rounds)
        result["master_rss_mb_after_pages"] = rss_mb(node.proc.pid)
        if a.browser:
            result["browser"] = browser_pages(node, ["million", "thousand"])
    finally:
        node.cleanup()
    bc.table(f"a store of {a.jobs:,} finished jobs ({result['machine']})", [
        ("Redis bytes per queued job", result["redis_bytes_per_queued_job"], "B"),
        ("Redis bytes per finished job, no tracking data", result["redis_bytes_per_finished_job"], "B"),
        ("Redis bytes per finished job, a metric and a parameter",
         result["redis_bytes_per_finished_job_tracked"], "B"),
        ("Redis used_memory, all jobs", result["redis_used_memory_mb"], "MB"),
        ("master RSS, running while they were written", result["master_rss_mb_running"], "MB"),
        ("master start on them", result["master_start_s"], "s"),
        ("master RSS, started on them", result["master_rss_mb_started"], "MB"),
        ("master RSS, after the page requests", result["master_rss_mb_after_pages"], "MB"),
    ])
    bc.table(f"job listing pages, median of {a.rounds} (p99; answer size)",
             [(k, v["p50_ms"], f"ms  p99 {v['p99_ms']:.1f} ms  {v['bytes']:>8,} bytes")
              for k, v in result["pages"].items()])
    for project, b in result.get("browser", {}).items():
        bc.table(f"dashboard in Chromium, project {project} ({b['page_info']})", [
            ("first rows visible (median of runs)", bc.median(b["first_rows_ms"]), "ms"),
            ("an older page (median)", bc.median(b["older_page_ms"]), "ms"),
            ("largest job_listing answer", max(b["listing_bytes"]), "bytes"),
            ("rows shown", b["rows_shown"], ""),
        ])
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=1_000_000)
    ap.add_argument("--sample", type=int, default=20_000, help="clones per memory figure")
    ap.add_argument("--queued", type=int, default=1000, help="jobs queued for the queued-job figure")
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--browser", action="store_true", help="also time the page in Chromium")
    ap.add_argument("--json")
    run(ap.parse_args())
