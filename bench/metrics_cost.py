#!/usr/bin/env python3
"""Driver: what scraping costs the dispatch path. One cluster on loopback (a
master with NUM_WORKERS=0 and worker nodes whose slots use the benchmark-only
runner `bench-sleep`, so no process is spawned per job) runs the same
workload alternately without and with a scraper: a client that GETs /metrics
of every node every --interval seconds (as Prometheus would) and follows the
master's /api/v1/events?follow=1 the whole time. Each round runs both
conditions (the order swaps every round, so the machine's drift hits both
alike); the medians over the rounds are printed side by side with the ratio
with/without.

    bench/metrics_cost.py [--rounds 3] [--jobs 1000] [--latency-samples 30] [--interval 1]
                          [--json out.json]

Per condition and round:
- latency: --latency-samples jobs one at a time on the idle cluster;
  submit->start (client clock before the upload -> the record's start_time)
  and dispatch->running (the record's pending -> running transition);
- throughput: --jobs jobs submitted with --in-flight requests in flight;
  started jobs/s (first submission -> last start) and drained jobs/s (-> last
  end).
The scraper's own figures (scrape time and size per node, events read) are
reported too. Everything started is stopped by its pid."""

import argparse
import json
import os
import socket
import sys
import threading
import time

import bench_common as bc


class Scraper:
    """GET /metrics of every node every `interval` s over keep-alive
    connections, and one follower of the master's event stream."""

    def __init__(self, cluster, interval):
        self.nodes = [cluster.master, *cluster.workers]
        self.master = cluster.master
        self.interval = interval
        self.stopping = threading.Event()
        self.scrapes = []       # (seconds, bytes)
        self.failures = []
        self.stream_bytes = 0
        self.stream_events = 0
        self.threads = [threading.Thread(target=self.scrape_loop, daemon=True),
                        threading.Thread(target=self.follow_loop, daemon=True)]
        self.sock = None

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.stopping.set()
        if self.sock:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self.threads:
            t.join(timeout=10)

    def scrape_loop(self):
        conns = [bc.Conn(*bc.host_port(n.url), timeout=10) for n in self.nodes]
        req = bc.raw_request("GET", "/metrics")
        try:
            while not self.stopping.is_set():
                t_next = time.monotonic() + self.interval
                for conn in conns:
                    t0 = time.monotonic()
                    try:
                        status, body = conn.request(req)
                    except OSError as e:
                        self.failures.append(repr(e))
                        conn.close()
                        continue
                    if status != 200 or b"atlas_build_info" not in body:
                        self.failures.append((status, body[:100]))
                    self.scrapes.append((time.monotonic() - t0, len(body)))
                self.stopping.wait(max(0.0, t_next - time.monotonic()))
        finally:
            for conn in conns:
                conn.close()

    def follow_loop(self):
        host, port = bc.host_port(self.master.url)
        try:
            t0 = time.monotonic()
            self.tail = b""
            with socket.create_connection((host, port), timeout=1) as s:
                self.sock = s
                # From now on (a stream id is "<ms>-<n>"), as a live view follows.
                now_ms = int(time.time() * 1000)
                s.sendall(bc.raw_request("GET", f"/api/v1/events?follow=1&after={now_ms}",
                                         headers={"Accept": "text/event-stream"}))
                while not self.stopping.is_set():
                    try:
                        chunk = s.recv(65536)
                    except socket.timeout:
                        continue
                    if not chunk:
                        if self.stopping.is_set():  # our own shutdown in stop()
                            return
                        self.failures.append(
                            f"the event stream ended after {time.monotonic() - t0:.2f} s, "
                            f"{self.stream_events} events, {self.stream_bytes} bytes; "
                            f"its last bytes: {self.tail!r}")
                        return
                    self.tail = (self.tail + chunk)[-300:]
                    if not self.stream_bytes and not chunk.startswith(b"HTTP/1.1 200"):
                        self.failures.append(f"event stream: {chunk[:200]!r}")
                        return
                    self.stream_bytes += len(chunk)
                    self.stream_events += chunk.count(b"\ndata: ") + chunk.startswith(b"data: ")
        except OSError as e:
            if not self.stopping.is_set():
                self.failures.append(f"event stream: {e!r}")


def workers_jobs_run(cluster):
    return sum(s["jobs_run"] for s in cluster.workers_view().values())


def transition_time(rec, state):
    times = [h["time"] for h in rec.get("history", []) if h["state"] == state]
    return times[-1] if times else None


def latency(cluster, prefix, samples, timeout=60):
    host, port = bc.host_port(cluster.master.url)
    conn = bc.Conn(host, port)
    submit_start, dispatch = [], []
    try:
        for i in range(samples):
            job_id = f"{prefix}-lat-{i:03d}"
            bundle, queue = bc.bundle_request(job_id), bc.queue_request(job_id, cluster.token)
            get = bc.raw_request("GET", f"/api/v1/jobs/{job_id}")
            t0 = time.time()
            s1, _ = conn.request(bundle)
            s2, raw = conn.request(queue)
            assert s1 == 200 and s2 == 201, (s1, s2, raw[:200])
            deadline = time.monotonic() + timeout
            while True:
                status, raw = conn.request(get)
                rec = json.loads(raw) if status == 200 else {}
                if rec.get("state") in ("completed", "failed", "cancelled"):
                    break
                assert time.monotonic() < deadline, f"{job_id} did not end"
                time.sleep(0.002)
            assert rec["state"] == "completed", rec
            submit_start.append(rec["start_time"] - t0)
            pending, running = transition_time(rec, "pending"), transition_time(rec, "running")
            if pending is not None and running is not None:
                dispatch.append(running - pending)
    finally:
        conn.close()
    return submit_start, dispatch


def throughput(cluster, prefix, n, in_flight, timeout):
    ids = [f"{prefix}-tp-{i:05d}" for i in range(n)]
    requests = [(bc.bundle_request(j), bc.queue_request(j, cluster.token)) for j in ids]
    base = workers_jobs_run(cluster)
    t0 = time.time()
    submit_s, _ = bc.submit_all(cluster.master.url, requests, in_flight)
    bc.wait_until(lambda: workers_jobs_run(cluster) - base >= n, timeout, f"{n} jobs to finish")
    recs = cluster.records(f"{prefix}-tp-")
    assert len(recs) == n, f"{len(recs)} records of {n}"
    bad = [r for r in recs.values() if r["state"] != "completed"]
    assert not bad, f"{len(bad)} jobs did not complete: {bad[:1]}"
    last_start = max(r["start_time"] for r in recs.values())
    last_end = max(r["end_time"] for r in recs.values())
    waits = [r["start_time"] - r["queued_time"] for r in recs.values()]
    return {"submit_per_s": n / submit_s, "started_per_s": n / (last_start - t0),
            "drained_per_s": n / (last_end - t0),
            "queued_to_start_p50_ms": bc.percentile(waits, 50) * 1e3,
            "queued_to_start_p99_ms": bc.percentile(waits, 99) * 1e3}


def one_condition(cluster, prefix, a, scrape):
    scraper = Scraper(cluster, a.interval).start() if scrape else None
    try:
        if scraper:  # the first scrape and the stream's backlog are behind us
            bc.wait_until(lambda: len(scraper.scrapes) >= len(scraper.nodes)
                          and scraper.stream_bytes, 15, "the first scrape and the stream's head")
        lat, disp = latency(cluster, prefix, a.latency_samples)
        tp = throughput(cluster, prefix, a.jobs, a.in_flight, max(120, a.jobs / 5))
    finally:
        if scraper:
            scraper.stop()
    figures = {"submit_to_start_p50_ms": bc.percentile(lat, 50) * 1e3,
               "dispatch_to_running_p50_ms": bc.percentile(disp, 50) * 1e3, **tp}
    if scraper:
        assert not scraper.failures, scraper.failures[:3]
        assert scraper.stream_events > 0, "the event stream carried nothing"
        times = [t for t, _ in scraper.scrapes]
        figures.update({"scrape_p50_ms": bc.percentile(times, 50) * 1e3,
                        "scrape_max_ms": max(times) * 1e3,
                        "scrape_bytes_p50": bc.percentile([b for _, b in scraper.scrapes], 50),
                        "scrapes": len(scraper.scrapes),
                        "stream_events": scraper.stream_events})
    return figures


def run(a):
    os.environ["ATLAS_BENCH_SLEEP_MS"] = str(a.job_ms)  # the nodes inherit it (bench/runner/)
    cluster = bc.cluster_harness.Cluster(workers=a.nodes, slots=a.slots,
                                         atlas_config="runner: bench-sleep\nlog_level: warning\n")
    runs = {"without": [], "with": []}
    try:
        cluster.start()
        latency(cluster, "warm", 2)  # connections, caches: not measured
        for r in range(a.rounds):
            order = ("without", "with") if r % 2 == 0 else ("with", "without")
            for cond in order:
                figures = one_condition(cluster, f"r{r}-{cond}", a, cond == "with")
                runs[cond].append(figures)
                print(f"round {r + 1}/{a.rounds} {cond} scraping: "
                      f"started {figures['started_per_s']:.0f} jobs/s, submit->start p50 "
                      f"{figures['submit_to_start_p50_ms']:.1f} ms", file=sys.stderr, flush=True)
    except Exception:
        print(f"--- master log (tail)\n{cluster.master.node_log()[-3000:]}", file=sys.stderr)
        raise
    finally:
        cluster.cleanup()
    med = {cond: {k: bc.median([x[k] for x in rs]) for k in rs[0]} for cond, rs in runs.items()}
    ratio = {k: (med["with"][k] / med["without"][k] if med["without"][k] else float("nan"))
             for k in med["without"]}
    return {"nodes": a.nodes, "slots": a.slots, "jobs": a.jobs, "rounds": a.rounds,
            "latency_samples": a.latency_samples, "interval_s": a.interval,
            "without": med["without"], "with": med["with"], "ratio": ratio, "runs": runs}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=1000,
                    help="jobs per throughput run (a run should last several scrape intervals)")
    ap.add_argument("--latency-samples", type=int, default=30)
    ap.add_argument("--nodes", type=int, default=2)
    ap.add_argument("--slots", type=int, default=4)
    ap.add_argument("--job-ms", type=int, default=0, help="how long a bench-sleep job runs")
    ap.add_argument("--in-flight", type=int, default=4)
    ap.add_argument("--interval", type=float, default=1.0, help="seconds between scrapes")
    ap.add_argument("--json", help="also write the figures to this file")
    a = ap.parse_args()
    print(bc.machine_line())
    r = run(a)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(r, f, indent=1)
    print(f"\nmetrics cost: {a.nodes} worker nodes x {a.slots} slots (bench-sleep {a.job_ms} ms), "
          f"{a.jobs} jobs + {a.latency_samples} latency samples per run, median of "
          f"{a.rounds} alternating rounds; scraper every {a.interval:g} s + an event follower")
    print(f"  {'figure':<30} {'without':>12} {'with':>12} {'with/without':>13}")
    for k in r["without"]:
        print(f"  {k:<30} {r['without'][k]:>12.2f} {r['with'][k]:>12.2f} {r['ratio'][k]:>13.3f}")
    for k in ("scrape_p50_ms", "scrape_max_ms", "scrape_bytes_p50", "scrapes", "stream_events"):
        print(f"  {'scraper: ' + k:<30} {r['with'][k]:>12.2f}")


if __name__ == "__main__":
    main()
