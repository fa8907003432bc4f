"""One active master, hot standbys, takeover (real processes, a real Redis).

The cluster's Redis is a redis-server of the test's own (harness.Redis), not
one a master runs, so that killing a master leaves Redis up. Every master
uses a short lease (cluster.lease_ttl_ms: 2000).

(a) master A and worker W; master B started on the same Redis stands by: its
    start line, /healthz and the 503 (naming A) on every port; `atlas-ctl
    nodes` shows A active with its epoch and B standing by; W restarted joins
    A; a job submitted to A completes. Any upload to a standby, even one the
    active master would refuse (not multipart, above limits.max_body_kb), is
    a 503 naming A too.
(b) with cluster.standby: false a third master exits 1 with one line.
(c) SIGKILL of the active master under a steady submission load: the standby
    says "master" within the lease TTL + 2 s; the worker rejoins it; every
    acknowledged job (some queued, some running at the kill) completes, and
    no job is started twice or runs twice (start and end mark files).
(d) SIGSTOP of the active master under load: the standby takes over; the old
    master, resumed, steps down ("stepping down" in its log, /healthz says
    standby, same pid); no job runs twice.

Every wait is bounded; everything started is stopped by its pid."""

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import harness
from harness import SERVER, wait_until
from cluster_harness import Cluster, ClusterNode, pid_alive, timed

CTL = os.environ.get("ATLAS_CTL", "atlas-ctl")
TTL_MS = 2000
TTL = TTL_MS / 1000
TERMINAL = {"completed", "failed", "cancelled"}
CLUSTER_CONFIG = f"cluster:\n  lease_ttl_ms: {TTL_MS}\n"  # last: (b) appends to it

# The load's job: a start mark in STARTS, a short run (so that some jobs are
# running, and some queued, when the master goes), then the end mark in MARKS
# as TINY_ENTRYPOINT leaves it (cluster.mark_counts counts those).
LOAD_ENTRYPOINT = ["/bin/sh", "-c", 'touch "$STARTS/$FOUNDATIONS_JOB_ID.$$"; sleep 0.3; '
                   'echo "$HOST_ADDRESS" > "$MARKS/$FOUNDATIONS_JOB_ID.$$.$(date +%s%N)"']

cluster = Cluster(workers=1, slots=2, atlas_config=CLUSTER_CONFIG)
STARTS = cluster.home + "/starts"
os.makedirs(STARTS)
A = cluster.master
(W,) = cluster.workers
B = cluster.node("master-b", role="master", slots=0)
measured = {}  # name -> seconds, printed at the end
cleanup_dirs = []


# --- helpers

def health(node, timeout=2):
    """/healthz of `node`, or None when it does not answer."""
    try:
        status, raw = node.request("GET", "/healthz", timeout=timeout)
    except OSError:
        return None
    if status != 200:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def redis_get(key):
    """GET `key` from the cluster's Redis: the string, or None."""
    with socket.create_connection(("127.0.0.1", cluster.redis.port), timeout=5) as s:
        s.sendall(f"*2\r\n$3\r\nGET\r\n${len(key)}\r\n{key}\r\n".encode())
        data = b""
        while True:
            head, sep, rest = data.partition(b"\r\n")
            if sep and head == b"$-1":
                return None
            if sep and head.startswith(b"$") and len(rest) >= int(head[1:]) + 2:
                return rest[:int(head[1:])].decode()
            assert not sep or head.startswith(b"$"), data
            chunk = s.recv(4096)
            assert chunk, data
            data += chunk


def role_of(node):
    h = health(node)
    return h and h.get("role")


def ctl(*args, env=None, timeout=30):
    r = subprocess.run([CTL, *args], env=env or W.env, capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, (args, r.returncode, r.stdout, r.stderr)
    return r.stdout


def lines_with(text, needle):
    return [line for line in text.splitlines() if needle in line]


def slots_on(master, node):
    try:
        return [s for s in cluster.workers_view(master).values() if s["node"] == node.node_id]
    except (OSError, AssertionError, ValueError):
        return []


def wait_joined(master, node, timeout=30):
    wait_until(lambda: len(slots_on(master, node)) == cluster.slots_per_worker, timeout,
               f"{node.name}'s slots to appear on {master.name}")


def wait_all_completed(ids, master, timeout):
    """Every job of `ids` completed (records read through `master`); on a
    timeout, says which are not and where they are."""
    deadline = time.monotonic() + timeout
    recs = {}
    while time.monotonic() < deadline:
        try:
            recs = cluster.records(node=master)
        except (OSError, AssertionError, ValueError):
            recs = {}
        if recs and all(recs.get(i, {}).get("state") in TERMINAL for i in ids):
            break
        time.sleep(0.2)
    bad = {i: (recs.get(i, {}).get("state", "missing"), recs.get(i, {}).get("reason"))
           for i in ids if recs.get(i, {}).get("state") != "completed"}
    assert not bad, f"{len(bad)} of {len(ids)} acknowledged jobs did not complete: " \
                    f"{dict(list(bad.items())[:20])}"
    return {i: recs[i] for i in ids}


class Load:
    """A thread submitting tiny jobs, one after the other, to the first
    master in `masters` that takes them: a refused or unanswered submission
    (503 from a standby, connection refused, time-out) moves on to the next
    master; only a 201 counts as acknowledged."""

    def __init__(self, prefix, masters, gap=0.1, timeout=2):
        self.prefix = prefix
        self.masters = list(masters)
        self.gap = gap
        self.timeout = timeout
        self.acked = {}       # job id -> (master name, monotonic time of the 201)
        self.tried = []       # every job id sent
        self.refused = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.lock = threading.Lock()

    def start(self):
        self.thread.start()
        return self

    def run(self):
        i, target = 0, 0
        while not self.stopping.is_set():
            node = self.masters[target]
            job_id = f"{self.prefix}-{i:04d}"
            i += 1
            self.tried.append(job_id)
            ok = False
            try:
                status, _ = cluster.upload(job_id, {"noop.txt": "tiny\n"}, base=node.gateway,
                                           timeout=self.timeout)
                if status == 200:
                    status, raw = cluster.queue(job_id, {"STARTS": STARTS},
                                                entrypoint=LOAD_ENTRYPOINT,
                                                base=node.gateway, timeout=self.timeout)
                    ok = status == 201 and json.loads(raw) == job_id
            except (OSError, ValueError):
                ok = False
            if ok:
                with self.lock:
                    self.acked[job_id] = (node.name, time.monotonic())
                time.sleep(self.gap)
            else:
                self.refused += 1
                target = (target + 1) % len(self.masters)
                time.sleep(0.05)

    def count(self, on=None):
        with self.lock:
            return sum(1 for name, _ in self.acked.values() if on is None or name == on.name)

    def first_ack_after(self, t, on):
        with self.lock:
            times = [when for name, when in self.acked.values() if name == on.name and when > t]
        return min(times) if times else None

    def stop(self):
        self.stopping.set()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "the submitting thread hung"


def start_counts(prefix):
    """{job id: starts} from the load's start marks."""
    counts = {}
    for name in os.listdir(STARTS):
        job = name.split(".")[0]
        if job.startswith(prefix):
            counts[job] = counts.get(job, 0) + 1
    return counts


def check_exactly_once(load, master, what):
    """Every acknowledged job completed and ran exactly once; no job sent
    (acknowledged or not) was started twice or ran twice."""
    ids = sorted(load.acked)
    recs = wait_all_completed(ids, master, 60)
    time.sleep(1)  # a second run, if any, would leave its mark by now
    counts = cluster.mark_counts(load.prefix + "-")
    starts = start_counts(load.prefix + "-")
    missing = [i for i in ids if counts.get(i, 0) == 0]
    twice = {i: n for i, n in counts.items() if n > 1}
    started_twice = {i: n for i, n in starts.items() if n > 1}
    assert not missing, f"{what}: acknowledged, completed, but no run: {missing[:20]}"
    assert not twice, f"{what}: jobs that ran more than once: {twice}"
    assert not started_twice, f"{what}: jobs dispatched more than once: {started_twice}"
    retried = {i: r.get("retries") for i, r in recs.items() if r.get("retries")}
    unacked_ran = sorted(set(counts) - set(ids))
    print(f"     {what}: {len(ids)} acknowledged ({load.count(A)} by A, {load.count(B)} by B), "
          f"{len(load.tried)} sent, {load.refused} refused or unanswered, "
          f"{len(unacked_ran)} unacknowledged that ran once anyway, requeued: {retried}",
          flush=True)


def failover(load_prefix, active, standby, how):
    """Steady load on `active`, then `how` (SIGKILL or SIGSTOP) on it; the
    standby must say "master" within TTL + 2 s. Returns (load, epoch before,
    the time of the signal)."""
    epoch_before = health(standby)["epoch"]
    assert health(standby)["active_master"] == active.node_id, health(standby)
    load = Load(load_prefix, [active, standby]).start()
    try:
        wait_until(lambda: load.count(active) >= 10, 30, f"10 jobs acknowledged by {active.name}")
        t0 = time.monotonic()
        if how == "SIGKILL":
            active.kill()
        else:
            active.signal(signal.SIGSTOP)
        with load.lock:
            acked = set(load.acked)
        started = set(start_counts(load_prefix + "-"))
        ended = set(cluster.mark_counts(load_prefix + "-"))
        print(f"     {how}: at the signal, of {len(acked)} acknowledged jobs "
              f"{len(acked - started)} were queued, {len((acked & started) - ended)} running",
              flush=True)
        h, seen = timed(lambda: (lambda h: h if h and h["role"] == "master" else None)(
            health(standby, timeout=1)), TTL + 15, f"{standby.name} to take over", interval=0.05)
        took = seen - t0
        measured[f"{how}: standby says master after"] = took
        assert h["node"] == standby.node_id and h["epoch"] == epoch_before + 1, (h, epoch_before)
        assert took <= TTL + 2, f"{standby.name} took over {took:.2f}s after the {how} " \
                                f"(lease TTL {TTL}s + 2s)"
        log = standby.node_log()
        assert lines_with(log, f"took over as the active master (epoch {epoch_before + 1})"), \
            log[-3000:]
        wait_joined(standby, W, 30)
        measured[f"{how}: worker joined the new master after"] = time.monotonic() - t0
        wait_until(lambda: load.count(standby) >= 10, 30,
                   f"10 jobs acknowledged by {standby.name} after the takeover")
        first = load.first_ack_after(t0, standby)
        measured[f"{how}: first submission acknowledged by the new master after"] = first - t0
    finally:
        load.stop()
    return load, epoch_before, t0


# --- (a) ----------------------------------------------------------------------

def test_a_second_master_stands_by_and_the_first_stays_active():
    epoch = health(A)["epoch"]
    assert epoch >= 1 and int(redis_get("atlas:master:epoch")) == epoch, epoch
    lease = redis_get("atlas:master:lease")
    assert lease == f"{epoch} {A.node_id} {A.env['HOST_ADDRESS']}", lease
    started = time.monotonic()
    B.start(expect_role="standby")
    measured["standby start"] = time.monotonic() - started
    log = B.node_log()
    line = f"standby master: active master is {A.node_id} (epoch {epoch})"
    assert lines_with(log, line), log[-3000:]
    h = health(B)
    want = {"node": B.node_id, "role": "standby", "active_master": A.node_id,
            "active_address": A.env["HOST_ADDRESS"], "epoch": epoch}
    assert h and {k: h.get(k) for k in want} == want, h
    # Every other request on its API, gateway and dashboard ports: 503 naming A.
    for base in (B.url, B.gateway, f"http://{B.host}:{B.dashboard_port}"):
        for method, path in (("GET", "/queued_jobs"), ("GET", "/api/v1/jobs"),
                             ("DELETE", "/running_jobs/x"), ("GET", "/")):
            status, raw = B.request(method, path, base=base)
            assert status == 503, (base, method, path, status, raw)
            body = json.loads(raw)
            assert "standby" in body["error"] and body["active_master"] == A.node_id \
                and body["active_address"] == A.env["HOST_ADDRESS"] and body["epoch"] == epoch, \
                (base, path, body)
        # The client's upload, as `foundations submit` sends it.
        status, raw = cluster.upload("ha-to-standby", base=base)
        assert status == 503 and json.loads(raw)["active_master"] == A.node_id, (base, status, raw)
    assert role_of(A) == "master"
    assert health(A).get("epoch") == epoch, health(A)

    # atlas-ctl nodes: A active with its epoch, B standing by.
    text = ctl("nodes")
    (masters,) = lines_with(text, "masters:")
    assert A.node_id in masters and B.node_id in masters and "active" in masters \
        and "standby" in masters and str(epoch) in masters, text
    view = json.loads(ctl("nodes", "--json"))
    got = {m["node"]: m for m in view["masters"]}
    assert got[A.node_id]["role"] == "active" and got[A.node_id]["epoch"] == epoch, got
    assert got[A.node_id]["address"] == A.env["HOST_ADDRESS"], got
    assert got[B.node_id]["role"] == "standby", got
    assert set(got) == {A.node_id, B.node_id}, got

    # W restarted joins A, not the standby.
    W.stop()
    W.start()
    wait_joined(A, W)
    assert B.request("GET", "/workers")[0] == 503
    job = cluster.submit("ha-a-1", base=A.gateway, tiny=True)
    wait_all_completed([job], A, 30)
    assert cluster.mark_counts("ha-a-") == {job: 1}
    assert role_of(B) == "standby" and role_of(A) == "master"


def test_a2_a_standby_answers_503_to_any_upload_too():
    # "every other request on its API, gateway and dashboard ports answers
    # 503": also an upload the active master would refuse as malformed, and
    # one above limits.max_body_kb (a project of a few MiB) -- the client is
    # to learn where the active master is, not that its upload is wrong.
    # Random bytes in base64: about 2 MiB once gzipped, above the 1 MiB default.
    big = {"main.py": "print(1)\n", "data.txt": base64.b64encode(os.urandom(2 << 20)).decode()}
    seen = {}
    for base in (B.url, B.gateway):
        seen[(base, "POST /job_bundle, not multipart")] = B.request(
            "POST", "/job_bundle", "{}", {"Content-Type": "application/json"}, base=base)
        seen[(base, "2 MiB upload")] = cluster.upload("ha-big-to-standby", big, base=base)
    wrong = {k: v for k, v in seen.items() if v[0] != 503
             or json.loads(v[1]).get("active_master") != A.node_id}
    assert not wrong, f"a standby's answers that are not 503 naming {A.node_id}: {wrong}"


# --- (b) ----------------------------------------------------------------------

def test_b_a_third_master_with_standby_false_exits_1_with_one_line():
    home = tempfile.mkdtemp(prefix="atlas-ha-nostandby-")
    cleanup_dirs.append(home)
    shutil.copytree(cluster.home + "/config", home + "/config")
    with open(home + "/config/atlas.config.yaml") as f:
        text = f.read()
    assert text.endswith(CLUSTER_CONFIG), text
    with open(home + "/config/atlas.config.yaml", "w") as f:
        f.write(text + "  standby: false\n")
    C = ClusterNode("master-c", home, "master", 0, cluster.redis_address, cluster.token)
    epoch = health(A)["epoch"]
    r = subprocess.run([SERVER, "start", "--role", "master"], env=C.env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert r.stdout == "", r.stdout
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert lines == [f"atlas-server: another master is active: {A.node_id} (epoch {epoch}), "
                     "and cluster.standby is false"], r.stderr
    # It is gone, took nothing, and serves nothing.
    assert health(C, timeout=1) is None
    assert role_of(A) == "master" and health(A)["epoch"] == epoch
    assert role_of(B) == "standby"
    wait_until(lambda: not [p for p in cluster.token_processes() if C.env["HOST_ADDRESS"]
                            in environ_of(p)], 10, "the refused master's process to be gone")


def environ_of(pid):
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return ""


# --- (c) ----------------------------------------------------------------------

def test_c_sigkill_of_the_active_master_under_load():
    load, epoch_before, _ = failover("ha-kill", A, B, "SIGKILL")
    check_exactly_once(load, B, "SIGKILL")
    # Back to two masters: A comes back as B's standby.
    A.start(expect_role="standby")
    h = health(A)
    assert h["active_master"] == B.node_id and h["epoch"] == epoch_before + 1, h
    assert lines_with(A.node_log(), f"standby master: active master is {B.node_id} "
                                    f"(epoch {epoch_before + 1})"), A.node_log()[-3000:]


# --- (d) ----------------------------------------------------------------------

def test_d_sigstop_of_the_active_master_under_load_then_it_steps_down():
    pid = B.pid
    load, epoch_before, t0 = failover("ha-stop", B, A, "SIGSTOP")
    new_epoch = epoch_before + 1
    resumed = time.monotonic()
    B.signal(signal.SIGCONT)
    needle = f"lost the master lease to {A.node_id} (epoch {new_epoch}): stepping down"
    _, seen = timed(lambda: lines_with(B.node_log(), needle), 15,
                    f"{B.name}'s log to say it steps down", interval=0.1)
    measured["SIGSTOP: old master logged stepping down after SIGCONT"] = seen - resumed
    h, seen = timed(lambda: (lambda h: h if h and h["role"] == "standby" else None)(
        health(B, timeout=1)), 20, f"{B.name} to stand by", interval=0.1)
    measured["SIGSTOP: old master says standby after SIGCONT"] = seen - resumed
    assert h["node"] == B.node_id and h["active_master"] == A.node_id \
        and h["epoch"] == new_epoch, h
    assert B.running() and B.pid == pid and pid_alive(pid), "not the same process"
    assert role_of(A) == "master" and health(A)["epoch"] == new_epoch
    status, raw = B.request("GET", "/queued_jobs", base=B.gateway)
    assert status == 503 and json.loads(raw)["active_master"] == A.node_id, (status, raw)
    check_exactly_once(load, A, "SIGSTOP")
    # The cluster still works: W on A, a job completes.
    wait_joined(A, W)
    job = cluster.submit("ha-d-after", base=A.gateway, tiny=True)
    wait_all_completed([job], A, 30)
    assert cluster.mark_counts("ha-d-") == {job: 1}


def test_nothing_is_left_running():
    print("measured:", flush=True)
    for name, seconds in measured.items():
        print(f"     {name}: {seconds:.2f}s", flush=True)
    nodes = {n.pid for n in [A, B, W] if n.running()}
    left = [p for p in cluster.token_processes() if p not in nodes and pid_alive(p)]
    cluster.kill_leftovers(keep=nodes)
    assert not left, f"processes still running besides the nodes: {left}"


# A runner's timeout (SIGTERM) still stops every node and Redis.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
try:
    started = time.monotonic()
    cluster.start()
    measured["cluster start"] = time.monotonic() - started
    harness.run_tests([
        test_a_second_master_stands_by_and_the_first_stays_active,
        test_a2_a_standby_answers_503_to_any_upload_too,
        test_b_a_third_master_with_standby_false_exits_1_with_one_line,
        test_c_sigkill_of_the_active_master_under_load,
        test_d_sigstop_of_the_active_master_under_load_then_it_steps_down,
        test_nothing_is_left_running,
    ])
finally:
    for n in (A, B, W):
        if n.proc and n.proc.poll() is None:
            try:
                n.proc.send_signal(signal.SIGCONT)
            except ProcessLookupError:
                pass
    cluster.cleanup()
    for d in cleanup_dirs:
        shutil.rmtree(d, ignore_errors=True)
