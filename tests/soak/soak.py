#!/usr/bin/env python3
"""Soak and fault campaign (not run in CI).

On loopback: a real redis-server, a master and two worker nodes (the
integration tests' cluster harness). For --duration seconds it submits jobs
without pause (quick, slow, failing, and slow ones the user stops), while at
random intervals it SIGKILLs or SIGSTOPs a worker, SIGKILLs and restarts the
master, restarts Redis, and fires malformed and unauthenticated requests at
every port of every node. With --standby a second master runs as a hot
standby and the campaign also SIGKILLs or SIGSTOPs the active master so that
the standby takes over (the old one then comes back as the standby: started
again after a SIGKILL, resumed after a SIGSTOP, when it steps down by
itself). With --sentinels Redis is a primary, a replica and three
redis-sentinel processes (tests/integration/sentinel_harness.py), the nodes
find the primary through the sentinels (redis.sentinels, min_replica_acks 1),
and the Redis fault is a failover: the primary SIGKILLed, a replica
promoted, the killed one started again as a replica. Then it lets the
cluster settle and checks, from
the job records (Redis, through the master), the master's log and the files
each job run leaves behind, that:

  - every acknowledged job reached exactly one terminal state (lost = 0);
  - no job ran to completion twice (duplicates = 0), except a copy that
    finished on a frozen or killed worker after the master had given it up
    (that is the machine's own copy, reported apart);
  - no node crashed except those killed on purpose;
  - no node's memory grew without bound (RSS sampled every few seconds:
    the late quarter of a node's longest-lived process against its early
    quarter) and no node's RSS spiked (peak above 3x the late level and
    256 MiB more; garbage on the CAF port of a server without its front
    did that, see --skip-caf-port).

It prints one summary table, and writes it as JSON with --json. Exit status
0 only when every check holds.

    python3 tests/soak/soak.py                 # 10 minutes
    python3 tests/soak/soak.py --tiny          # 60 s, faults more often
    python3 tests/soak/soak.py --duration 1800 --json soak.json
    python3 tests/soak/soak.py --standby --lease-ttl-ms 2000 --sentinels

ATLAS_SERVER names the atlas-server binary (default: build/atlas-server of
this checkout); ATLAS_TEST_KEEP=1 keeps the cluster's directory.
"""

import argparse
import collections
import json
import os
import random
import signal
import socket
import statistics
import sys
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
os.environ.setdefault("ATLAS_SERVER", os.path.join(ROOT, "build", "atlas-server"))

import cluster_harness  # noqa: E402
from cluster_harness import Cluster, http  # noqa: E402
from sentinel_harness import (SentinelRedis, active_master, make_master,  # noqa: E402
                              sentinel_available, wait_role)

TERMINAL = {"completed", "failed", "cancelled"}

# Each run leaves a start file in $STARTS and, if it gets to its end, an end
# file in $MARKS (also for the failing kind, which then exits 3). Both are
# named <job>.<pid>.<ns> and hold the HOST_ADDRESS of the node that ran it.
RUN = ('s="$FOUNDATIONS_JOB_ID.$$.$(date +%s%N)"; echo "$HOST_ADDRESS" > "$STARTS/$s"; '
       'sleep "${SLEEP:-0}"; echo "$HOST_ADDRESS $(date +%s.%N)" > "$MARKS/$s"; exit "${CODE:-0}"')
KINDS = {  # kind: (weight, environment)
    "quick": (6, lambda r: {}),
    "slow": (2, lambda r: {"SLEEP": f"{r.uniform(2, 8):.1f}"}),
    "failing": (1, lambda r: {"SLEEP": "0.3", "CODE": "3"}),
    "stopped": (1, lambda r: {"SLEEP": "25"}),
}


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def env_of(pid):
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


class Campaign:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        config = "  max_retries: 3\n"  # under limits:
        if args.lease_ttl_ms:
            config += f"cluster:\n  lease_ttl_ms: {args.lease_ttl_ms}\n"
        self.sentinels = None
        if args.sentinels:
            why = sentinel_available()
            if why:
                raise SystemExit(f"--sentinels: {why}")
            self.sentinels = SentinelRedis(replicas=1).start()
            config += (f"redis:\n  sentinels: [{', '.join(self.sentinels.addresses())}]\n"
                       f"  master_name: atlas\n  min_replica_acks: 1\n  wait_timeout_ms: 1000\n")
        try:
            self.cluster = Cluster(workers=2, slots=2, atlas_config=config)
        except BaseException:
            if self.sentinels:
                self.sentinels.cleanup()
            raise
        c = self.cluster
        self.masters = [c.master]
        if args.standby:  # both may come up active or standing by
            first = make_master(c, "master")
            c.extra.remove(first)
            c.master = first
            self.masters = [first, make_master(c, "master-b")]
        if self.sentinels:
            c.redis.stop()            # the harness's own redis-server is not used
            c.redis = self.sentinels  # pid(), port and stop() as harness.Redis
            for node in [*self.masters, *c.workers]:
                node.env.pop("REDIS_ADDRESS", None)
        self.ttl_s = (args.lease_ttl_ms or 5000) / 1000
        self.timings = collections.defaultdict(list)  # what a fault measured, seconds
        self.starts = c.home + "/starts"
        os.makedirs(self.starts)
        self.lock = threading.Lock()      # jobs, counters
        self.node_lock = threading.Lock() # a node being faulted or restarted
        self.stop = threading.Event()
        self.jobs = {}                    # job_id -> {kind, acked, submitted_at, stop_sent}
        self.unknown = set()              # queue call with no answer: may exist
        self.submit_failures = collections.Counter()
        self.faults = collections.Counter()
        self.fault_windows = collections.defaultdict(list)  # HOST_ADDRESS -> [(t0, t1, kind)]
        self.on_purpose = set()           # pids killed on purpose
        self.crashes = []
        self.rss = collections.defaultdict(list)  # name -> [(t, pid, kb)]
        self.malformed = collections.Counter()    # answer class -> count
        self.malformed_5xx = []
        self.errors = []
        self.malformed_at = []            # seconds into the run of each volley
        self.t0 = time.time()

    # --- nodes

    def nodes(self):
        return [*self.masters, *self.cluster.workers]

    def refresh_active(self, timeout=None):
        """With a standby: points cluster.master (where requests go) at the
        master whose /healthz says it is the active one, waiting for one."""
        if len(self.masters) < 2:
            return self.cluster.master
        active = cluster_harness.wait_until(lambda: active_master(self.masters), timeout or
                                            self.ttl_s + 30, "an active master")
        self.cluster.master = active
        return active

    def cleanup(self):
        c = self.cluster
        c.extra = [n for n in c.extra if n not in self.masters] + \
            [m for m in self.masters if m is not c.master]
        try:
            c.cleanup()
        finally:
            if self.sentinels:
                self.sentinels.cleanup()

    def restart(self, node):
        for _ in range(3):
            try:
                node.start(timeout=60)
                return
            except AssertionError as e:
                self.errors.append(f"{node.name} did not restart: {str(e)[:200]}")
                if node.running():
                    self.on_purpose.add(node.pid)
                    node.kill()
        raise RuntimeError(f"{node.name} cannot be restarted")

    def kill_jobs_of(self, node):
        """The jobs of a SIGKILLed worker die with its machine."""
        needle = f"HOST_ADDRESS={node.env['HOST_ADDRESS']}".encode()
        token = f"ATLAS_TEST_TOKEN={self.cluster.token}".encode()
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                env = env_of(int(entry))
                if needle in env and token in env:
                    try:
                        os.killpg(int(entry), signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass

    # --- threads

    def submitter(self):
        c = self.cluster
        kinds = list(KINDS)
        weights = [KINDS[k][0] for k in kinds]
        n = 0
        while not self.stop.is_set():
            with self.lock:
                open_jobs = sum(1 for j in self.jobs.values() if j["acked"] and not j.get("done"))
            if open_jobs >= self.args.in_flight:
                time.sleep(0.2)
                continue
            kind = self.rng.choices(kinds, weights)[0]
            n += 1
            job_id = f"soak-{kind}-{n:05d}-{uuid.uuid4().hex[:6]}"
            env = {"STARTS": self.starts, **KINDS[kind][1](self.rng)}
            job = {"kind": kind, "acked": False, "submitted_at": time.time(), "stop_sent": False}
            with self.lock:
                self.jobs[job_id] = job
            try:
                status, raw = c.upload(job_id, {"noop.txt": "soak\n"}, timeout=10)
                if status != 200:
                    self.submit_failures[f"upload {status}"] += 1
                    time.sleep(0.3)
                    continue
            except OSError as e:
                self.submit_failures[f"upload {type(e).__name__}"] += 1
                time.sleep(0.3)
                continue
            try:
                status, raw = c.queue(job_id, env, ["/bin/sh", "-c", RUN], timeout=10)
            except OSError as e:
                self.submit_failures[f"queue {type(e).__name__}"] += 1
                with self.lock:
                    self.unknown.add(job_id)
                time.sleep(0.3)
                continue
            if status == 201:
                with self.lock:
                    job["acked"] = True
            else:
                self.submit_failures[f"queue {status}"] += 1
                if status >= 500:
                    with self.lock:
                        self.unknown.add(job_id)
                time.sleep(0.3)

    def stopper(self):
        """Stops the 'stopped' kind 1-4 s after acknowledgement (the user
        changed their mind), retrying while the master is away; also marks
        jobs done from the records so the submitter keeps a bounded load."""
        while not self.stop.is_set():
            time.sleep(1)
            try:
                recs = self.cluster.records("soak-")
            except (OSError, AssertionError, ValueError):
                continue
            now = time.time()
            with self.lock:
                todo = []
                for job_id, j in self.jobs.items():
                    r = recs.get(job_id)
                    if r and r["state"] in TERMINAL:
                        j["done"] = True
                    if (j["kind"] == "stopped" and j["acked"] and not j["stop_sent"]
                            and not j.get("done") and now - j["submitted_at"] > j.setdefault(
                                "stop_after", self.rng.uniform(1, 4))):
                        todo.append((job_id, j))
            for job_id, j in todo:
                try:
                    status, raw = self.cluster.master.request(
                        "DELETE", f"/running_jobs/{job_id}", timeout=5)
                except OSError:
                    continue
                if status < 300 or status == 404 and b"finished" in raw:
                    j["stop_sent"] = True
                    j["stop_status"] = status

    def sampler(self):
        while not self.stop.is_set():
            t = time.time()
            with self.node_lock:
                for node in self.nodes():
                    if node.proc is None:
                        continue
                    rc = node.proc.poll()
                    if rc is not None and node.pid not in self.on_purpose:
                        self.crashes.append(f"{node.name} pid {node.pid} exited {rc}")
                        log(f"CRASH: {node.name} pid {node.pid} exited {rc}")
                        self.on_purpose.add(node.pid)
                        try:
                            node.log.close()
                            self.restart(node)
                        except Exception as e:  # noqa: BLE001
                            self.errors.append(f"restart after crash: {e}")
                    elif rc is None:
                        kb = rss_kb(node.pid)
                        if kb:
                            self.rss[node.name].append((t, node.pid, kb))
                pid = self.cluster.redis.pid()
                kb = rss_kb(pid) if pid else None
                if kb:
                    self.rss["redis"].append((t, pid, kb))
            self.stop.wait(self.args.sample_s)

    def fault_loop(self):
        lo, hi = self.args.fault_gap
        choices = ["kill-worker", "stop-worker", "kill-master",
                   "redis-failover" if self.sentinels else "restart-redis", "malformed"]
        weights = [3, 2, 2, 2, 3]
        if len(self.masters) > 1:
            choices.append("takeover")
            weights.append(3)
        while not self.stop.wait(self.rng.uniform(lo, hi)):
            kind = self.rng.choices(choices, weights)[0]
            try:
                self.inject(kind)
            except Exception as e:  # noqa: BLE001 - report and go on
                self.errors.append(f"{kind}: {type(e).__name__}: {str(e)[:300]}")
                log(f"fault {kind} went wrong: {e}")

    def inject(self, kind):
        c = self.cluster
        rng = self.rng
        if kind == "malformed":
            self.fire_malformed()
            self.faults[kind] += 1
            return
        with self.node_lock:
            t0 = time.time()
            if kind == "kill-worker":
                w = rng.choice(c.workers)
                self.on_purpose.add(w.pid)
                w.kill()
                self.kill_jobs_of(w)
                time.sleep(rng.uniform(1, 4))
                self.restart(w)
                self.fault_windows[w.env["HOST_ADDRESS"]].append((t0, time.time(), kind))
            elif kind == "stop-worker":
                w = rng.choice(c.workers)
                w.signal(signal.SIGSTOP)
                time.sleep(rng.uniform(1, 8))  # below and beyond the 3 s timeout
                w.signal(signal.SIGCONT)
                self.fault_windows[w.env["HOST_ADDRESS"]].append((t0, time.time(), kind))
            elif kind == "kill-master":
                m = c.master
                self.on_purpose.add(m.pid)
                m.kill()
                time.sleep(rng.uniform(0.2, 3))
                self.restart(m)
                if len(self.masters) > 1:  # it took its lease back, or the standby did
                    self.refresh_active()
            elif kind == "takeover":
                kind = self.takeover(rng.choice([signal.SIGKILL, signal.SIGSTOP]))
            elif kind == "redis-failover":
                epoch = c.redis.config_epoch()
                r = c.redis.failover(signal.SIGKILL, restart=True, timeout=60)
                self.timings["redis failover: kill -> replica promoted"].append(r["promoted_s"])
                c.redis.wait_settled(c.redis.primary_port(), 30)
                extra = (c.redis.config_epoch() or 0) - (epoch or 0) - 1
                if extra > 0:
                    self.faults["failovers the sentinels made alone"] += extra
            elif kind == "restart-redis":
                pid = c.redis.pid()
                sig = rng.choice([signal.SIGKILL, signal.SIGTERM])
                os.kill(pid, sig)
                cluster_harness.wait_until(lambda: not cluster_harness.pid_alive(pid), 15,
                                           "redis-server to end")
                time.sleep(rng.uniform(0.5, 3))
                c.redis.start()
                kind += "-" + ("kill" if sig == signal.SIGKILL else "term")
            self.faults[kind] += 1
            log(f"fault: {kind} ({time.time() - t0:.1f}s)")

    def takeover(self, sig):
        """The active master SIGKILLed or SIGSTOPped while the standby runs:
        the standby takes over once the lease lapses; then the old one comes
        back as the standby (started again, or resumed: it finds its lease
        taken and starts again as a standby in the same process)."""
        c = self.cluster
        old = self.refresh_active()
        (other,) = [m for m in self.masters if m is not old]
        t0 = time.monotonic()
        if sig == signal.SIGKILL:
            self.on_purpose.add(old.pid)
            old.kill()
        else:
            old.signal(signal.SIGSTOP)
        try:
            t1 = wait_role(other, "master", self.ttl_s + 30)
            c.master = other
            self.timings["takeover: fault -> standby active"].append(t1 - t0)
            time.sleep(self.rng.uniform(0.5, 3))
        finally:
            if sig == signal.SIGSTOP:
                pid = old.pid
                t2 = time.monotonic()
                old.signal(signal.SIGCONT)
        if sig == signal.SIGKILL:
            self.restart(old)
        else:
            t3 = wait_role(old, "standby", 60)
            self.timings["takeover: SIGCONT -> old master standing by"].append(t3 - t2)
            if not old.running() or old.pid != pid:
                self.errors.append(f"{old.name} did not step down in its own process")
        self.refresh_active()
        if c.master is not other:
            self.errors.append(f"after the takeover {c.master.name} is active, not {other.name}")
        return "takeover-" + ("kill" if sig == signal.SIGKILL else "stop")

    # --- malformed and unauthenticated requests

    def malformed_requests(self):
        rng = self.rng
        garbage = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 3000)))
        boundary = "b" + uuid.uuid4().hex
        bad_tar = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"job_bundle\"; "
                   f"filename=\"x.tgz\"\r\n\r\n").encode() + garbage[:200] + \
            f"\r\n--{boundary}--\r\n".encode()
        evil = cluster_harness.bundle_bytes("evil", {"../../escape.txt": "x"})
        evil_body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"job_bundle\"; "
                     f"filename=\"evil.tgz\"\r\n\r\n").encode() + evil + \
            f"\r\n--{boundary}--\r\n".encode()

        def req(head, body=b""):
            return head.encode() + body
        return [
            ("garbage", garbage),
            ("no-version", b"GET /\r\n\r\n"),
            ("bad-method", b"BREW /queued_jobs HTTP/1.1\r\nHost: x\r\n\r\n"),
            ("huge-length", b"POST /queued_jobs HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n{}"),
            ("short-body", b"POST /queued_jobs HTTP/1.1\r\nContent-Length: 50\r\n\r\n{\"job_id\":"),
            ("bad-chunk", b"POST /queued_jobs HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nxx\r\n"),
            ("both-framings", b"POST /queued_jobs HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            ("big-header", b"GET /healthz HTTP/1.1\r\nX-A: " + b"a" * 100000 + b"\r\n\r\n"),
            ("bad-escape", b"GET /jobs/%zz%00 HTTP/1.1\r\n\r\n"),
            ("nul-path", b"GET /jobs/a%00b HTTP/1.1\r\n\r\n"),
            ("traversal-id", b"GET /jobs/..%2f..%2fetc%2fpasswd HTTP/1.1\r\n\r\n"),
            ("bad-json", req("POST /queued_jobs HTTP/1.1\r\nContent-Type: application/json\r\n"
                             "Content-Length: 12\r\n\r\n", b"{not json!!}")),
            ("wrong-json", req("POST /queued_jobs HTTP/1.1\r\nContent-Type: application/json\r\n"
                               "Content-Length: 30\r\n\r\n", b'{"job_id":[1,2],"spec":"x"}   ')),
            ("deep-json", req("POST /queued_jobs HTTP/1.1\r\nContent-Length: 20000\r\n\r\n",
                              b"[" * 10000 + b"]" * 10000)),
            ("bad-multipart", req(f"POST /job_bundle HTTP/1.1\r\nContent-Type: multipart/form-data; "
                                  f"boundary={boundary}\r\nContent-Length: {len(bad_tar)}\r\n\r\n",
                                  bad_tar)),
            ("no-boundary", req("POST /job_bundle HTTP/1.1\r\nContent-Type: multipart/form-data\r\n"
                                "Content-Length: 5\r\n\r\nhello")),
            ("evil-bundle", req(f"POST /job_bundle HTTP/1.1\r\nContent-Type: multipart/form-data; "
                                f"boundary={boundary}\r\nContent-Length: {len(evil_body)}\r\n\r\n",
                                evil_body)),
            ("bad-bearer", b"GET /api/v2beta/auth/verify HTTP/1.1\r\nAuthorization: Bearer "
                           b"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.\r\n\r\n"),
            ("spoofed-admin", b"DELETE /running_jobs/no-such-job HTTP/1.1\r\nx-atlas-user: root\r\n"
                              b"x-atlas-admin: 1\r\nAuthorization: Bearer x\r\n\r\n"),
            ("stop-unknown", b"DELETE /running_jobs/..%2f HTTP/1.1\r\n\r\n"),
            ("tracking-no-secret", req("POST /api/v1/jobs/soak-x/tracking HTTP/1.1\r\n"
                                       "Content-Length: 2\r\n\r\n", b"[]")),
            ("half-request", b"GET /healthz HTTP/1.1\r\nHost: "),
            ("pipelined-junk", b"GET /healthz HTTP/1.1\r\n\r\n" + garbage[:100]),
        ]

    def send_raw(self, host, port, data, timeout=3):
        """Sends `data`, reads the answer; returns its status or a word."""
        try:
            with socket.create_connection((host, port), timeout=timeout) as s:
                s.settimeout(timeout)
                try:
                    s.sendall(data)
                    s.shutdown(socket.SHUT_WR)
                except OSError:
                    pass  # the server may close early on a refused request
                got = b""
                while len(got) < 65536:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    got += chunk
        except socket.timeout:
            return "timeout"
        except ConnectionResetError:
            return "reset"
        except OSError as e:
            return f"oserror {e.errno}"
        if got.startswith(b"HTTP/1."):
            return got[9:12].decode(errors="replace")
        return "closed" if not got else "other"

    def fire_malformed(self):
        self.malformed_at.append(round(time.time() - self.t0, 1))
        ports = []
        for node in self.nodes():
            ports += [(node.name, "http", node.http_port), (node.name, "gateway", node.gateway_port),
                      (node.name, "caf", node.caf_port)]
        for name, what, port in ports:
            reqs = self.malformed_requests()
            if what == "caf":
                if self.args.skip_caf_port:
                    continue
                reqs = [r for r in reqs if r[0] in ("garbage", "half-request", "big-header")]
            for label, data in reqs:
                answer = self.send_raw("127.0.0.1", port, data)
                self.malformed[f"{what}:{answer}"] += 1
                if answer.startswith("5") and answer != "503":
                    self.malformed_5xx.append(f"{name}/{what} {label}: {answer}")

    # --- the run

    def run(self):
        c = self.cluster
        c.start(timeout=60)
        for m in self.masters[1:]:
            m.start(timeout=60, expect=("standby",))
        log(f"cluster up in {c.home}: master {c.master.url}"
            + "".join(f", standby {m.url}" for m in self.masters[1:]) + ", workers "
            f"{[w.url for w in c.workers]}, redis {c.redis.port}")
        threads = [threading.Thread(target=f, daemon=True, name=f.__name__)
                   for f in (self.submitter, self.stopper, self.sampler, self.fault_loop)]
        t0 = self.t0 = time.time()
        for t in threads:
            t.start()
        last = t0
        while time.time() - t0 < self.args.duration:
            time.sleep(1)
            if time.time() - last >= 30:
                last = time.time()
                with self.lock:
                    acked = sum(1 for j in self.jobs.values() if j["acked"])
                    done = sum(1 for j in self.jobs.values() if j.get("done"))
                log(f"{int(last - t0)}s: {len(self.jobs)} submitted, {acked} acknowledged, "
                    f"{done} finished; faults {dict(self.faults)}")
        log("duration over: no new jobs or faults; settling")
        self.stop.set()
        for t in threads:
            t.join(timeout=120)
        # Every node up (a fault may have been interrupted), then wait.
        for node in self.nodes():
            if not node.running():
                self.restart(node)
        self.refresh_active()
        for w in c.workers:
            c.wait_joined(w, 60)
        return self.settle(t0)

    def settle(self, t0):
        c = self.cluster
        with self.lock:
            acked = [i for i, j in self.jobs.items() if j["acked"]]
        # Stops that never got through are sent now.
        for i in acked:
            j = self.jobs[i]
            if j["kind"] == "stopped" and not j["stop_sent"]:
                try:
                    c.master.request("DELETE", f"/running_jobs/{i}", timeout=10)
                except OSError:
                    pass
        deadline = time.time() + self.args.settle_s
        recs = {}
        while time.time() < deadline:
            try:
                recs = c.records("soak-")
            except (OSError, AssertionError, ValueError):
                recs = {}
            if recs and all(recs.get(i, {}).get("state") in TERMINAL for i in acked):
                break
            time.sleep(1)
        self.stop_sampling_at = time.time()
        return self.check(acked, recs, time.time() - t0)

    # --- checks

    def files(self, directory):
        out = collections.defaultdict(list)  # job -> [(host, t)]
        for name in os.listdir(directory):
            job = name.split(".")[0]
            try:
                with open(os.path.join(directory, name)) as f:
                    words = f.read().split()
            except OSError:
                continue
            host = words[0] if words else "?"
            when = float(words[1]) if len(words) > 1 else 0.0
            out[job].append((host, when))
        return out

    def explained(self, job, runs):
        """A second completed run is the frozen or killed worker's own copy
        when that worker had a fault while the job lived."""
        j = self.jobs[job]
        for host, _ in runs:
            for a, _b, _k in self.fault_windows.get(host, []):
                if a >= j["submitted_at"] - 1:
                    return True
        return False

    def check(self, acked, recs, elapsed):
        marks = self.files(self.cluster.marks)
        starts = self.files(self.starts)
        finished = collections.Counter()      # over all masters
        finished_by = collections.defaultdict(set)
        for m in self.masters:
            for line in m.node_log().splitlines():
                if "job finished job_id=soak-" in line:
                    job = line.split("job_id=")[1].split()[0]
                    finished[job] += 1
                    finished_by[job].add(m.name)
        # A master the lease went to another from may have logged an end
        # that its fenced write never recorded; the record's history says.
        both_masters = [i for i, names in finished_by.items() if len(names) > 1]
        states = collections.Counter()
        failed_by = collections.Counter()
        lost, dupes, explained, multi_term, wrong, multi_start = [], [], [], [], [], []
        requeued = 0
        for i in acked:
            r = recs.get(i)
            kind = self.jobs[i]["kind"]
            if not r or r.get("state") not in TERMINAL:
                lost.append((i, r.get("state") if r else "missing"))
                continue
            states[r["state"]] += 1
            if r["state"] != "completed":
                reason = r.get("reason", "")
                failed_by[f"{r['state']}: {reason[:60]}"] += 1
            if r.get("retries", 0) > 0:
                requeued += 1
            # Exactly one terminal state: in the record's history (and as its
            # last step), and one "job finished" line in the master's log.
            history = r.get("history", [])
            terminal_steps = [h for h in history if h.get("state") in TERMINAL]
            if (len(terminal_steps) != 1 or history[-1].get("state") != r["state"]
                    or finished[i] > 1 and i not in both_masters):
                multi_term.append((i, r["state"], [h.get("state") for h in history][-4:],
                                   finished[i]))
            expected = {"quick": {"completed"}, "slow": {"completed"},
                        "failing": {"failed"}, "stopped": {"cancelled", "completed"}}[kind]
            if r["state"] not in expected and not r.get("reason", "").startswith("lost"):
                wrong.append((i, kind, r["state"], r.get("reason")))
            runs = marks.get(i, [])
            if len(runs) > 1:
                (explained if self.explained(i, runs) else dupes).append((i, runs))
            if len(starts.get(i, [])) > 1 and not self.explained(i, starts[i]):
                multi_start.append((i, len(starts[i]), r.get("retries")))
            if r["state"] == "completed" and kind != "stopped" and not runs:
                wrong.append((i, kind, "completed without its end file", r.get("reason")))
        unknown_present = sum(1 for i in self.unknown if i in recs)
        unknown_open = [i for i in self.unknown if i in recs and recs[i]["state"] not in TERMINAL]
        growth = self.memory_growth()
        crash_lines = [l for n in self.nodes() for l in n.node_log().splitlines()
                       if any(w in l for w in ("Sanitizer", "terminate called", "Segmentation",
                                               "Assertion", "core dumped"))]
        summary = collections.OrderedDict([
            ("duration_s", round(elapsed)),
            ("submitted", len(self.jobs)),
            ("acknowledged", len(acked)),
            ("unanswered submissions (may exist)", f"{len(self.unknown)} "
             f"({unknown_present} exist, {len(unknown_open)} not terminal)"),
            ("completed", states["completed"]),
            ("failed", states["failed"]),
            ("cancelled (stopped by user)", states["cancelled"]),
            ("requeued (retries > 0)", requeued),
            ("lost (must be 0)", len(lost)),
            ("duplicates (must be 0)", len(dupes)),
            ("not exactly one terminal state (must be 0)", len(multi_term)),
            ("unexpected end state", len(wrong)),
            ("second copy finished on a frozen/killed worker", len(explained)),
            ("started twice without a worker fault", len(multi_start)),
            ("crashes (must be 0)", len(self.crashes) + len(crash_lines)),
            ("malformed requests answered 5xx", len(self.malformed_5xx)),
        ])
        if len(self.masters) > 1:
            summary["job end logged by both masters (one record)"] = len(both_masters)
        for k, v in sorted(self.timings.items()):
            summary[f"{k} (s)"] = (f"n {len(v)}, min {min(v):.2f}, median "
                                   f"{statistics.median(v):.2f}, max {max(v):.2f}")
        for k, v in sorted(failed_by.items()):
            summary[f"  end reason {k}"] = v
        for k, v in sorted(self.faults.items()):
            summary[f"fault {k}"] = v
        summary["malformed requests sent"] = sum(self.malformed.values())
        for k, v in sorted(self.submit_failures.items()):
            summary[f"submission refused {k}"] = v
        spikes = []
        for name, (peak, first, last, flag) in growth.items():
            peak_at = max(self.rss[name], key=lambda x: x[2])[0] - self.t0
            spike = peak > 3 * last and peak - last > 256 * 1024
            if spike:
                spikes.append(f"{name}: {peak / 1024:.0f} MiB at {peak_at:.0f}s")
            summary[f"peak RSS {name} (MiB)"] = (
                f"{peak / 1024:.1f} at {peak_at:.0f}s (early {first / 1024:.1f}, late "
                f"{last / 1024:.1f}{', GROWING' if flag else ''}{', SPIKE' if spike else ''})")
        ok = not (lost or dupes or multi_term or wrong or self.crashes or crash_lines
                  or unknown_open or any(g[3] for g in growth.values()) or self.malformed_5xx
                  or spikes)
        summary["result"] = "PASS" if ok else "FAIL"
        width = max(len(k) for k in summary)
        print("\n" + "-" * (width + 30))
        for k, v in summary.items():
            print(f"{k:<{width}}  {v}")
        print("-" * (width + 30))
        details = {"both_masters": both_masters[:20], "lost": lost[:20], "duplicates": dupes[:20], "multi_terminal": multi_term[:20],
                   "unexpected": wrong[:20], "crashes": self.crashes + crash_lines[:20],
                   "started_twice": multi_start[:20], "explained": explained[:10],
                   "unknown_open": unknown_open[:20], "malformed_5xx": self.malformed_5xx[:20],
                   "malformed_answers": dict(self.malformed), "errors": self.errors[:20],
                   "rss_spikes": spikes, "malformed_at": self.malformed_at,
                   "rss_samples": {n: [(round(t - self.t0, 1), pid, kb) for t, pid, kb in v]
                                   for n, v in self.rss.items()}}
        for k, v in details.items():
            if v and k not in ("explained", "malformed_answers", "rss_samples", "malformed_at",
                               "both_masters"):
                print(f"{k}: {v}")
        if self.args.json:
            with open(self.args.json, "w") as f:
                json.dump({"summary": summary, "details": details}, f, indent=1, default=str)
        return ok

    def memory_growth(self):
        """name -> (peak, early median, late median, growing?) over each
        node's longest-lived process; growing = the late quarter's median is
        above twice the early quarter's and 64 MiB more."""
        out = {}
        for name, samples in self.rss.items():
            by_pid = collections.defaultdict(list)
            for t, pid, kb in samples:
                by_pid[pid].append((t, kb))
            longest = max(by_pid.values(), key=lambda s: s[-1][0] - s[0][0])
            kbs = [kb for _, kb in longest]
            q = max(1, len(kbs) // 4)
            early, late = statistics.median(kbs[:q]), statistics.median(kbs[-q:])
            growing = len(kbs) >= 20 and late > 2 * early and late - early > 64 * 1024
            out[name] = (max(kb for _, _, kb in samples), early, late, growing)
        return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=600, help="seconds of load and faults")
    ap.add_argument("--tiny", action="store_true", help="60 s, a fault every 4-10 s")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--in-flight", type=int, default=10, help="unfinished jobs at most")
    ap.add_argument("--sample-s", type=float, default=3)
    ap.add_argument("--settle-s", type=float, default=240)
    ap.add_argument("--json", help="also write the summary here")
    ap.add_argument("--skip-caf-port", action="store_true",
                    help="send no garbage to the CAF ports (for servers built before the "
                         "CAF port front: CAF 0.17 alone allocates a peer-announced payload "
                         "before any check; bench/RESULTS.md, Hardening, finding 2)")
    ap.add_argument("--standby", action="store_true",
                    help="a second master as a hot standby; adds the takeover fault (the "
                         "active master SIGKILLed or SIGSTOPped, the standby takes over)")
    ap.add_argument("--lease-ttl-ms", type=int, default=0,
                    help="cluster.lease_ttl_ms (default: the server's, 5000)")
    ap.add_argument("--sentinels", action="store_true",
                    help="Redis behind three sentinels with a replica (redis-sentinel "
                         "installed); its fault is a failover instead of a restart")
    args = ap.parse_args()
    args.fault_gap = (8, 30)
    if args.tiny:
        args.duration, args.fault_gap = 60, (4, 10)
    if args.seed is None:
        args.seed = random.randrange(1 << 30)
    log(f"soak: {args.duration:.0f}s, seed {args.seed}, server {os.environ['ATLAS_SERVER']}"
        + (", a standby master" if args.standby else "")
        + (f", lease TTL {args.lease_ttl_ms} ms" if args.lease_ttl_ms else "")
        + (", Redis behind sentinels" if args.sentinels else ""))
    campaign = Campaign(args)
    try:
        ok = campaign.run()
    finally:
        campaign.stop.set()
        campaign.cleanup()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
