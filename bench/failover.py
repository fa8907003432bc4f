#!/usr/bin/env python3
"""Driver 5: failover times (a benchmark, not a test).

Master takeover (default): an external redis-server (the cluster harness's),
an active master and a hot-standby master (both `--role master`,
NUM_WORKERS=0, cluster.lease_ttl_ms = --ttl) and one worker node, on
loopback, with tiny jobs submitted steadily (--rate per second, to whichever
master is active). Each run SIGKILLs the active master (odd runs: SIGSTOPs
it) and measures

  - kill -> the standby's /healthz says role "master" (takeover),
  - kill -> the worker's slots listed on the new master (rejoin),
  - kill -> the first job dispatched (queued -> pending in its record's
    history) after the kill, which only the new master can have done,

then brings the old one back as the next run's standby: a SIGKILLed master
is started again; a SIGSTOPped one gets SIGCONT, finds its lease taken and
starts again as a standby in the same process (measured: SIGCONT -> its
/healthz says "standby").

    bench/failover.py [--runs 10] [--ttl 2000[,5000]] [--rate 10]

--redis: Redis behind three sentinels (tests/integration/sentinel_harness.py:
a primary, one replica, sentinels with down-after 1500 ms), one master and
one worker configured with `redis: {sentinels, master_name: atlas,
min_replica_acks: 1}`; each run SIGKILLs the Redis primary and measures kill
-> the sentinels name the replica, kill -> the first job dispatched after
it, kill -> the first submission acknowledged after it; the killed one is
started again as a replica (with min_replica_acks 1 and one replica, writes
wait for it).

    bench/failover.py --redis [--runs 5]

Prints min / p50 / p90 / max per figure and the raw figures; every
acknowledged job must complete (printed: lost). ATLAS_SERVER names the
atlas-server binary (default: build/atlas-server of this checkout)."""

import argparse
import json
import os
import signal
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
os.environ.setdefault("ATLAS_SERVER", os.path.join(ROOT, "build", "atlas-server"))

import bench_common as bc  # noqa: E402  (sets the path to tests/integration)
from cluster_harness import TINY_ENTRYPOINT, Cluster  # noqa: E402
from sentinel_harness import (SentinelRedis, make_master, sentinel_available,  # noqa: E402
                              wait_role)


class Submitter:
    """Tiny jobs at a steady rate from `threads` threads, each to the
    master that answered last (then the other ones); remembers when each was
    acknowledged (201)."""

    def __init__(self, cluster, masters, rate, prefix, timeout, threads=1):
        self.cluster = cluster
        self.masters = masters
        self.rate = rate
        self.prefix = prefix
        self.timeout = timeout
        self.threads_n = threads
        self.acked = {}  # job id -> time.time() of the 201
        self.sent = {}   # job id -> time.time() its upload was sent
        self.refused = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.preferred = masters[0]
        self.n = 0
        self.threads = []

    def start(self):
        self.threads = [threading.Thread(target=self.loop, daemon=True)
                        for _ in range(self.threads_n)]
        for t in self.threads:
            t.start()
        return self

    def next_id(self):
        with self.lock:
            self.n += 1
            return f"{self.prefix}{self.n:06d}"

    def submit_one(self, node, job_id):
        c = self.cluster
        status, _ = c.upload(job_id, {"noop.txt": "tiny\n"}, base=node.url, timeout=self.timeout)
        if status != 200:
            return False
        status, raw = c.queue(job_id, entrypoint=TINY_ENTRYPOINT, base=node.url,
                              timeout=self.timeout)
        return status == 201

    def loop(self):
        gap = self.threads_n / self.rate
        while not self.stop.is_set():
            t0 = time.monotonic()
            first = self.preferred
            for node in [first] + [m for m in self.masters if m is not first]:
                if not node.running():
                    continue
                job_id = self.next_id()
                self.sent[job_id] = time.time()
                try:
                    ok = self.submit_one(node, job_id)
                except OSError:
                    ok = False
                if ok:
                    with self.lock:
                        self.acked[job_id] = time.time()
                    self.preferred = node
                    break
                with self.lock:
                    self.refused += 1
            self.stop.wait(max(0.0, gap - (time.monotonic() - t0)))

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=120)

    def acked_between(self, t0, t1):
        with self.lock:
            return [j for j, t in self.acked.items() if t0 <= t <= t1]

    def first_ack_after(self, t):
        """Seconds from t to the first 201 of a submission sent after t."""
        with self.lock:
            later = [a for j, a in self.acked.items() if self.sent[j] > t]
        return min(later) - t if later else None


def record(node, job_id):
    """The job's record through `node`, None when it does not answer (a
    master's reads wait behind its writes while Redis is away)."""
    try:
        status, raw = node.request("GET", f"/api/v1/jobs/{job_id}", timeout=10)
    except OSError:
        return None
    return json.loads(raw) if status == 200 else None


def log_count(node, needle):
    return sum(1 for line in node.node_log().splitlines() if needle in line)


def first_dispatch_after(node, sub, t_kill, timeout=30):
    """Seconds from t_kill (wall) to the first queued -> pending step after
    it in the records of the jobs acknowledged from 10 s before the kill on:
    (of any of them, of one submitted after the kill). Waits until a job
    submitted after the kill has been dispatched (None on timeout). A
    dispatch in flight at the kill can count as "any" a few ms after it."""
    deadline = time.monotonic() + timeout
    while True:
        ids = sub.acked_between(t_kill - 10, time.time())
        recs = [r for r in (record(node, j) for j in ids) if r]
        steps = [(h["time"], sub.sent[r["job_id"]] > t_kill) for r in recs
                 for h in r.get("history", [])
                 if h.get("state") == "pending" and h.get("time", 0) > t_kill]
        later = [t for t, after in steps if after]
        if later:
            return min(t for t, _ in steps) - t_kill, min(later) - t_kill
        if time.monotonic() > deadline:
            return (min(t for t, _ in steps) - t_kill if steps else None), None
        time.sleep(0.3)


def settle(cluster, node, submitter, timeout=90):
    """Every acknowledged job completed? Returns the ids that did not."""
    ids = list(submitter.acked)
    deadline = time.monotonic() + timeout
    open_ids = ids
    while time.monotonic() < deadline:
        open_ids = [j for j in open_ids
                    if (lambda r: not r or r.get("state") not in ("completed", "failed",
                                                                   "cancelled"))(
                        record(node, j))]
        if not open_ids:
            return []
        time.sleep(1)
    return open_ids


def takeover_runs(ttl, runs, rate, warmup):
    config = f"cluster:\n  lease_ttl_ms: {ttl}\n"
    cluster = Cluster(workers=1, slots=4, atlas_config=config)
    cluster.master = make_master(cluster, "master-a")
    cluster.extra.remove(cluster.master)
    b = make_master(cluster, "master-b")
    a = cluster.master
    worker = cluster.workers[0]
    figures = []
    sub = None
    try:
        a.start(expect=("master",))
        b.start(expect=("standby",))
        worker.start()
        cluster.wait_joined(worker)
        active, standby = a, b
        took = {a.name: log_count(a, "took over as the active master"), b.name: 0}
        stepped = {a.name: 0, b.name: 0}
        sub = Submitter(cluster, [a, b], rate, f"fo{ttl}-", timeout=1.0).start()
        for run in range(runs):
            sig = signal.SIGKILL if run % 2 == 0 else signal.SIGSTOP
            time.sleep(warmup)
            fig = {"run": run + 1, "ttl_ms": ttl, "signal": signal.Signals(sig).name,
                   "victim": active.name}
            t_kill = time.time()
            t0 = time.monotonic()
            if sig == signal.SIGKILL:
                active.kill()
            else:
                active.signal(signal.SIGSTOP)
            try:
                t_master = wait_role(standby, "master", ttl / 1000 + 30)
                fig["takeover_s"] = t_master - t0
                cluster.master = standby
                sub.preferred = standby
                bc.wait_until(lambda: len(cluster.slots_of(worker)) == cluster.slots_per_worker,
                              30, "the worker to rejoin the new master")
                fig["rejoin_s"] = time.monotonic() - t0
                fig["first_dispatch_any_s"], fig["first_dispatch_s"] = \
                    first_dispatch_after(standby, sub, t_kill)
                fig["first_ack_s"] = sub.first_ack_after(t_kill)
            finally:
                if sig == signal.SIGSTOP:
                    t_cont = time.monotonic()
                    active.signal(signal.SIGCONT)
            if sig == signal.SIGKILL:
                t_r = time.monotonic()
                active.start(expect=("standby",))
                fig["restart_to_standby_s"] = time.monotonic() - t_r
            else:
                pid = active.pid
                fig["cont_to_standby_s"] = wait_role(active, "standby", 60) - t_cont
                assert active.running() and active.pid == pid, "the stepped-down master exited"
                bc.wait_until(lambda: log_count(active, "lost the master lease to")
                              > stepped[active.name], 10,
                              f"{active.name} to log that it lost the lease")
                stepped[active.name] += 1
            takeovers = log_count(standby, "took over as the active master")
            assert takeovers == took[standby.name] + 1, \
                f"{standby.name} logged {takeovers} takeovers, expected {took[standby.name] + 1}"
            took[standby.name] = takeovers
            active, standby = standby, active
            figures.append(fig)
            print("  " + json.dumps({k: (round(v, 3) if isinstance(v, float) else v)
                                     for k, v in fig.items()}), flush=True)
        sub.finish()
        lost = settle(cluster, active, sub)
        summary = {"acknowledged": len(sub.acked), "lost": len(lost), "lost_ids": lost[:10],
                   "refused_or_unanswered": sub.refused}
    except Exception:
        for n in (a, b, worker):
            print(f"--- {n.name} log (tail)\n{n.node_log()[-2500:]}", file=sys.stderr)
        raise
    finally:
        if sub:
            sub.finish()
        # Both masters stopped whichever is active now.
        cluster.extra = [m for m in (a, b) if m is not cluster.master]
        cluster.cleanup()
    return figures, summary


def redis_runs(runs, rate, warmup, replicas, down_after_ms):
    redis = SentinelRedis(replicas=replicas, down_after_ms=down_after_ms)
    cluster = None
    figures = []
    sub = None
    try:
        redis.start()
        config = ("redis:\n"
                  f"  sentinels: [{', '.join(redis.addresses())}]\n"
                  "  master_name: atlas\n  min_replica_acks: 1\n  wait_timeout_ms: 1000\n")
        cluster = Cluster(workers=1, slots=4, atlas_config=config)
        cluster.redis.stop()
        cluster.redis = redis
        for n in (cluster.master, *cluster.workers):
            n.env.pop("REDIS_ADDRESS", None)
        cluster.start()
        # Submissions wait for Redis during a failover: several threads keep
        # some coming.
        sub = Submitter(cluster, [cluster.master], rate, "fr-", timeout=60, threads=4).start()
        epoch = redis.config_epoch()
        for run in range(runs):
            time.sleep(warmup)
            r = redis.failover(signal.SIGKILL, restart=True, timeout=30)
            t_kill = r["killed_at"]
            fig = {"run": run + 1, "old": r["old"], "new": r["new"],
                   "promoted_s": r["promoted_s"], "replica_back_s": r["replica_back_s"]}
            fig["first_dispatch_any_s"], fig["first_dispatch_s"] = \
                first_dispatch_after(cluster.master, sub, t_kill)
            fig["first_ack_s"] = sub.first_ack_after(t_kill)
            redis.wait_settled(redis.primary_port(), 30)
            # A failover the sentinels made on their own (see sentinel_harness).
            # (counted from the end of the run before: one between runs too)
            now_epoch = redis.config_epoch()
            fig["extra_failovers"] = now_epoch - epoch - 1
            epoch = now_epoch
            figures.append(fig)
            print("  " + json.dumps({k: (round(v, 3) if isinstance(v, float) else v)
                                     for k, v in fig.items()}), flush=True)
        sub.finish()
        lost = settle(cluster, cluster.master, sub)
        pids_ok = all(n.running() for n in (cluster.master, *cluster.workers))
        summary = {"acknowledged": len(sub.acked), "lost": len(lost), "lost_ids": lost[:10],
                   "refused_or_unanswered": sub.refused, "nodes_still_running": pids_ok}
    except Exception:
        if cluster:
            for n in (cluster.master, *cluster.workers):
                print(f"--- {n.name} log (tail)\n{n.node_log()[-2500:]}", file=sys.stderr)
        raise
    finally:
        if sub:
            sub.finish()
        if cluster:
            cluster.cleanup()
        redis.cleanup()
    return figures, summary


def stats_table(title, figures, keys):
    """min / p50 / p90 / max of each figure, by signal when the runs used
    several, then the raw figures in run order."""
    print(f"\n{title}")
    print(f"  {'figure (s)':<54} {'n':>3} {'min':>7} {'p50':>7} {'p90':>7} {'max':>7}")
    signals = sorted({f["signal"] for f in figures if "signal" in f})
    groups = [(f" ({s})", s) for s in signals] + ([(" (all)", None)] if len(signals) > 1 else [])
    groups = groups or [("", None)]
    for key, label in keys:
        for suffix, sig in groups:
            vals = [f[key] for f in figures if f.get(key) is not None
                    and (sig is None or f.get("signal") == sig)]
            if not vals or (sig is None and suffix and len(
                    {f["signal"] for f in figures if f.get(key) is not None}) < 2):
                continue
            print(f"  {label + suffix:<54} {len(vals):>3} {min(vals):>7.2f} "
                  f"{bc.percentile(vals, 50):>7.2f} {bc.percentile(vals, 90):>7.2f} "
                  f"{max(vals):>7.2f}")
    print("  raw, in run order" + (" (" + ", ".join(f["signal"] for f in figures) + ")"
                                   if signals else "") + ":")
    for key, label in keys:
        if any(f.get(key) is not None for f in figures):
            print(f"    {label}: " + ", ".join("-" if f.get(key) is None else f"{f[key]:.2f}"
                                              for f in figures))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=None,
                    help="failovers (default 10 takeovers per TTL, 5 with --redis)")
    ap.add_argument("--ttl", default="2000",
                    help="cluster.lease_ttl_ms values, comma-separated (e.g. 2000,5000)")
    ap.add_argument("--rate", type=float, default=10, help="submissions per second")
    ap.add_argument("--warmup", type=float, default=2.0,
                    help="seconds of steady submissions before each fault")
    ap.add_argument("--redis", action="store_true",
                    help="Redis primary SIGKILLs behind sentinels instead of master takeovers")
    ap.add_argument("--replicas", type=int, default=1, help="--redis: Redis replicas")
    ap.add_argument("--down-after-ms", type=int, default=1500,
                    help="--redis: the sentinels' down-after-milliseconds (see sentinel_harness "
                         "for why not 1000)")
    ap.add_argument("--json", help="also write every figure to this file")
    a = ap.parse_args()
    print(bc.machine_line())
    print(f"server: {os.environ['ATLAS_SERVER']}")
    out = {}
    ok = True
    if a.redis:
        why = sentinel_available()
        if why:
            print(f"skipped: {why}")
            return
        runs = a.runs or 5
        print(f"Redis failover behind sentinels: {runs} runs, {a.rate:g} submissions/s")
        figures, summary = redis_runs(runs, a.rate, a.warmup, a.replicas, a.down_after_ms)
        stats_table(f"Redis primary SIGKILL, sentinels (down-after {a.down_after_ms} ms), "
                    f"{a.replicas} replica(s), min_replica_acks 1: {runs} runs", figures,
                    [("promoted_s", "kill -> sentinels name replica"),
                     ("replica_back_s", "kill -> old primary a replica"),
                     ("first_ack_s", "kill -> 201 of first sent after"),
                     ("first_dispatch_s", "kill -> first dispatch (job sent after)"),
                     ("first_dispatch_any_s", "kill -> first dispatch (any job)"),
                     ("extra_failovers", "failovers the sentinels made alone")])
        print(f"  jobs: {summary}")
        out["redis"] = {"figures": figures, "summary": summary}
        ok = summary["lost"] == 0 and summary["nodes_still_running"]
    else:
        runs = a.runs or 10
        for ttl in [int(x) for x in a.ttl.split(",") if x]:
            print(f"\nmaster takeover, cluster.lease_ttl_ms {ttl}: {runs} runs "
                  f"(SIGKILL and SIGSTOP alternately), {a.rate:g} submissions/s")
            figures, summary = takeover_runs(ttl, runs, a.rate, a.warmup)
            stats_table(f"master takeover, lease TTL {ttl} ms (target: TTL + 2 s = "
                        f"{ttl / 1000 + 2:g} s): {runs} runs", figures,
                        [("takeover_s", "kill -> standby is master"),
                         ("rejoin_s", "kill -> worker on new master"),
                         ("first_dispatch_s", "kill -> first dispatch (job sent after)"),
                         ("first_dispatch_any_s", "kill -> first dispatch (any job)"),
                         ("first_ack_s", "kill -> 201 of first sent after"),
                         ("restart_to_standby_s", "restart -> standby"),
                         ("cont_to_standby_s", "SIGCONT -> stepped down")])
            print(f"  jobs: {summary}")
            out[f"takeover_{ttl}"] = {"figures": figures, "summary": summary}
            ok = ok and summary["lost"] == 0
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
