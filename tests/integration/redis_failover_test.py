"""Redis behind Redis Sentinel: a master (--role master, NUM_WORKERS=0) and a
worker with slots find the Redis primary through three real sentinels
(sentinel_harness), never through REDIS_ADDRESS (unset on both). The master
reads the sentinels from atlas.config.yaml (`redis: {sentinels, master_name:
atlas, min_replica_acks: 1, wait_timeout_ms: 1000}`), the worker from
REDIS_SENTINELS, which overrides the file's list (given in another order, so
that its start line tells which list it took).

The primary is SIGKILLed in the middle of a burst of submissions; the
sentinels promote the replica; the killed one is started again as a replica
(with min_replica_acks: 1 and one replica, the new primary confirms writes
only once it has a replica again). Then: every acknowledged job completed
exactly once (one mark file each, see cluster_harness.TINY_ENTRYPOINT), no
atlas-server process restarted or exited (same pids, /healthz answers with
the same role), and new work runs. The time from the kill to the first job
dispatched after it (the job records' history) is printed."""

import collections
import json
import signal
import sys
import threading
import time

import harness
from cluster_harness import TINY_ENTRYPOINT, Cluster, cmdline, pid_alive
from sentinel_harness import SentinelRedis, command, sentinel_available

TERMINAL = {"completed", "failed", "cancelled"}
measured = {}

why = sentinel_available()
if why:
    print(f"skipped: {why}", flush=True)
    sys.exit(77)

redis = SentinelRedis(replicas=1)
cluster = None


def setup():
    global cluster
    redis.start()
    addrs = redis.addresses()
    config = ("redis:\n"
              f"  sentinels: [{', '.join(addrs)}]\n"
              "  master_name: atlas\n"
              "  min_replica_acks: 1\n"
              "  wait_timeout_ms: 1000\n")
    cluster = Cluster(workers=1, slots=2, atlas_config=config)
    cluster.redis.stop()   # the harness's own redis-server is not used here
    cluster.redis = redis  # Cluster.stop() stops the sentinels' set too
    for node in (cluster.master, *cluster.workers):
        node.env.pop("REDIS_ADDRESS", None)
    # The worker: the sentinels from the environment, in reverse order.
    cluster.workers[0].env["REDIS_SENTINELS"] = ",".join(reversed(addrs))
    cluster.start()


def wait_all(ids, states, timeout):
    deadline = time.monotonic() + timeout
    recs = {}
    while time.monotonic() < deadline:
        try:
            recs = cluster.records()
        except (OSError, AssertionError, ValueError):
            recs = {}
        if recs and all(recs.get(i, {}).get("state") in states for i in ids):
            return {i: recs[i] for i in ids}
        time.sleep(0.2)
    stuck = {i: recs.get(i, {}).get("state", "missing") for i in ids
             if recs.get(i, {}).get("state") not in states}
    raise AssertionError(f"timed out after {timeout}s: {len(stuck)} of {len(ids)} jobs not in "
                         f"{states}: {dict(list(stuck.items())[:20])}")


def sentinel_list_in(line_text, addrs):
    """True when the ports of `addrs` appear in this order in the text."""
    at = -1
    for a in addrs:
        at = line_text.find(a, at + 1)
        if at < 0:
            return False
    return True


def start_line(node):
    for line in node.node_log().splitlines():
        if " serving: " in line:
            return line
    return ""


def test_both_nodes_find_the_primary_through_the_sentinels():
    addrs = redis.addresses()
    m_line, w_line = start_line(cluster.master), start_line(cluster.workers[0])
    assert "sentinels" in m_line and sentinel_list_in(m_line, addrs), m_line
    # REDIS_SENTINELS wins over the file: the worker names them reversed.
    assert "sentinels" in w_line and sentinel_list_in(w_line, list(reversed(addrs))), w_line
    ids = [cluster.submit(f"sent-{i}", tiny=True) for i in range(3)]
    wait_all(ids, {"completed"}, 30)
    assert cluster.mark_counts("sent-") == {i: 1 for i in ids}
    # The record reached the replica (min_replica_acks: 1 asked for it).
    (replica,) = redis.replicas()
    for i in ids:
        raw = command(replica.port, "GET", f"atlas:job:{i}")
        assert raw and json.loads(raw)["job_id"] == i, (i, raw)


def burst(ids, threads, on_ack, timeout):
    acked = {}  # job id -> time.time() of its 201
    sent = {}   # job id -> time.time() its queue request was sent
    lock = threading.Lock()
    failures = collections.Counter()

    def work(chunk):
        for job_id in chunk:
            try:
                status, _ = cluster.upload(job_id, {"noop.txt": "tiny\n"}, timeout=timeout)
                if status != 200:
                    failures[f"upload {status}"] += 1
                    continue
                sent[job_id] = time.time()
                status, raw = cluster.queue(job_id, entrypoint=TINY_ENTRYPOINT, timeout=timeout)
            except OSError as e:
                failures[type(e).__name__] += 1
                continue
            if status == 201:
                assert json.loads(raw) == job_id, raw
                with lock:
                    acked[job_id] = time.time()
                    n = len(acked)
                on_ack(n)
            else:
                failures[f"queue {status}"] += 1
    workers = [threading.Thread(target=work, args=(ids[i::threads],)) for i in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(timeout=240)
    assert not any(t.is_alive() for t in workers), "a submitting thread hung"
    return acked, sent, failures


def test_sigkill_of_the_redis_primary_during_a_burst_loses_no_acknowledged_job():
    nodes = [cluster.master, *cluster.workers]
    pids = {n.name: n.pid for n in nodes}
    roles = {n.name: n.json("GET", "/healthz")[1]["role"] for n in nodes}
    ids = [f"fburst-{i:03d}" for i in range(120)]
    epoch = redis.config_epoch()
    state = {"lock": threading.Lock(), "fault": None, "error": None}

    def fault():
        try:
            state["fault"] = redis.failover(signal.SIGKILL, restart=True, timeout=30)
        except Exception as e:  # noqa: BLE001 - asserted below
            state["error"] = e

    def on_ack(n):
        with state["lock"]:
            if n >= 30 and "thread" not in state:
                state["thread"] = threading.Thread(target=fault)
                state["thread"].start()
    # A submission may wait for the new primary: the lookup's retry budget
    # (>= 30 s with sentinels) bounds it.
    acked, sent, failures = burst(ids, 4, on_ack, timeout=60)
    assert "thread" in state, f"the burst ended before the kill: {len(acked)} acknowledged"
    state["thread"].join(timeout=90)
    assert not state["thread"].is_alive(), "the failover did not end"
    assert state["error"] is None, state["error"]
    f = state["fault"]
    t_kill = f["killed_at"]
    measured["Redis primary SIGKILL -> sentinels name the replica"] = f["promoted_s"]
    measured["Redis primary SIGKILL -> old primary back as a replica"] = f["replica_back_s"]
    print(f"     primary {f['old']} SIGKILLed after 30 acknowledged; {f['new']} promoted "
          f"{f['promoted_s']:.2f}s later; {len(acked)} of {len(ids)} acknowledged "
          f"(failures: {dict(failures)})", flush=True)
    extra = redis.config_epoch() - epoch - 1
    if extra:  # the sentinels' own doing (sentinel_harness: SentinelRedis)
        print(f"     note: the sentinels made {extra} failover(s) besides the one of the "
              f"kill; now primary {redis.primary_port()}", flush=True)
    after = sorted(t for j, t in acked.items() if sent[j] > t_kill)
    if after:
        measured["Redis primary SIGKILL -> first submission sent after it acknowledged"] = \
            after[0] - t_kill
    recs = wait_all(sorted(acked), {"completed"}, 90)
    counts = cluster.mark_counts("fburst-")
    assert all(counts.get(i) == 1 for i in acked), \
        {i: counts.get(i, 0) for i in acked if counts.get(i) != 1}
    assert all(c == 1 for c in counts.values()), {i: c for i, c in counts.items() if c != 1}
    # The first job dispatched (queued -> pending) after the kill, of those
    # submitted after it (a dispatch in flight at the kill is not the point).
    dispatched = sorted(h["time"] for r in recs.values() if sent[r["job_id"]] > t_kill
                        for h in r.get("history", [])
                        if h.get("state") == "pending" and h.get("time", 0) > t_kill)
    assert dispatched, "no job submitted after the kill was dispatched"
    measured["Redis primary SIGKILL -> first job submitted after it dispatched"] = \
        dispatched[0] - t_kill
    # Nobody restarted, exited or changed role.
    assert {n.name: n.pid for n in nodes} == pids, "an atlas-server was restarted"
    assert all(n.running() for n in nodes), "an atlas-server exited"
    assert {n.name: n.json("GET", "/healthz")[1]["role"] for n in nodes} == roles
    for n in nodes:
        log = n.node_log()
        assert "stepping down" not in log, f"{n.name}: {log[-3000:]}"
    new = [cluster.submit(f"after-failover-{i}", tiny=True) for i in range(3)]
    wait_all(new, {"completed"}, 30)
    assert cluster.mark_counts("after-failover-") == {i: 1 for i in new}
    assert len(cluster.workers_view()) == 2


def test_nothing_is_left_running():
    print("measured:", flush=True)
    for name, seconds in measured.items():
        print(f"     {name}: {seconds:.2f}s", flush=True)
    nodes = {n.pid for n in [cluster.master, *cluster.workers] if n.running()}
    left = [(pid, cmdline(pid)) for pid in cluster.token_processes()
            if pid not in nodes and pid_alive(pid)]
    cluster.kill_leftovers(keep=nodes)
    assert not left, f"processes still running besides the nodes: {left}"


signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
try:
    setup()
    harness.run_tests([
        test_both_nodes_find_the_primary_through_the_sentinels,
        test_sigkill_of_the_redis_primary_during_a_burst_loses_no_acknowledged_job,
        test_nothing_is_left_running,
    ])
finally:
    pids = redis.pids()
    if cluster:
        cluster.cleanup()
    redis.cleanup()
    left = [p for p in pids if pid_alive(p)]
    if left:
        print(f"redis processes left running: {left}", flush=True)
