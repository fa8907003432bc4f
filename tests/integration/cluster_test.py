"""A real multi-node cluster: a master (NUM_WORKERS=0) and two worker nodes
sharing one FOUNDATIONS_HOME and one Redis, all on 127.0.0.1 (and, where
network namespaces can be made, a second cluster on addresses of the test's
own). Jobs spread over the workers and run exactly once; requests about a job
sent to the master are answered by the node that ran it; a killed or frozen
worker's job is requeued and completes elsewhere; a master killed during a
burst of submissions and a Redis killed during one lose no acknowledged job;
a node without the cluster secret is refused.

The cluster is started once; scenarios that kill a node restart it."""

import base64
import collections
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time

import harness
from harness import wait_until
from cluster_harness import (JOB_PY, TINY_ENTRYPOINT, Cluster, Namespaces, cmdline, foreign_certificate,
                             group_alive, pid_alive, provision_node, timed)

TERMINAL = {"completed", "failed", "cancelled"}
measured = {}  # name -> seconds, printed at the end

cluster = Cluster(workers=2, slots=2)
M = cluster.master
cleanup_dirs = []


def other_worker(node):
    (other,) = [w for w in cluster.workers if w is not node]
    return other


def worker_ids():
    return {w.node_id for w in cluster.workers}


def count_lines(text, needle):
    return sum(1 for line in text.splitlines() if needle in line)


def wait_all(ids, states, timeout, c=None):
    """Waits until every job in `ids` is in one of `states` (read from Redis
    through the master); on timeout says which are not and where they are."""
    c = c or cluster
    deadline = time.monotonic() + timeout
    recs = {}
    while time.monotonic() < deadline:
        try:
            recs = c.records()
        except (OSError, AssertionError):
            recs = {}
        if recs and all(recs.get(i, {}).get("state") in states for i in ids):
            return {i: recs[i] for i in ids}
        time.sleep(0.1)
    stuck = {i: (recs.get(i, {}).get("state", "missing"), recs.get(i, {}).get("node"),
                 recs.get(i, {}).get("retries")) for i in ids
             if recs.get(i, {}).get("state") not in states}
    raise AssertionError(f"timed out after {timeout}s: {len(stuck)} of {len(ids)} jobs not in "
                         f"{states}: {dict(list(stuck.items())[:20])}")


def untar(raw):
    out = {}
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz") as tar:
        for m in tar.getmembers():
            out[m.name] = tar.extractfile(m).read() if m.isfile() else None
    return out


def burst(ids, threads, on_ack, timeout=5):
    """Uploads and queues tiny jobs from several threads; returns the ids
    that got a 201. `on_ack(count)` runs after each 201."""
    acked = set()
    lock = threading.Lock()
    failures = collections.Counter()

    def work(chunk):
        for job_id in chunk:
            try:
                status, _ = cluster.upload(job_id, {"noop.txt": "tiny\n"}, timeout=timeout)
                if status != 200:
                    failures[f"upload {status}"] += 1
                    continue
                status, raw = cluster.queue(job_id, entrypoint=TINY_ENTRYPOINT, timeout=timeout)
            except OSError as e:
                failures[type(e).__name__] += 1
                continue
            if status == 201:
                assert json.loads(raw) == job_id, raw
                with lock:
                    acked.add(job_id)
                    n = len(acked)
                on_ack(n)
            else:
                failures[f"queue {status}"] += 1
    workers = [threading.Thread(target=work, args=(ids[i::threads],)) for i in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in workers), "a submitting thread hung"
    return acked, failures


# --- 1 ---------------------------------------------------------------------

def test_forty_jobs_spread_over_both_workers_each_run_once():
    ids = [f"spread-{i:02d}" for i in range(40)]
    errors = []

    def submit(chunk):
        for job_id in chunk:
            try:  # through the master's gateway port
                cluster.submit(job_id, {"SLEEP": "0.2"}, base=M.gateway)
            except Exception as e:  # noqa: BLE001 - asserted below
                errors.append(e)
    threads = [threading.Thread(target=submit, args=(ids[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    recs = wait_all(ids, TERMINAL, 90)
    assert all(r["state"] == "completed" for r in recs.values()), \
        {i: (r["state"], r["reason"]) for i, r in recs.items() if r["state"] != "completed"}
    per_node = collections.Counter(r["node"] for r in recs.values())
    print(f"     40 jobs per node: {dict(per_node)}", flush=True)
    assert set(per_node) <= worker_ids(), f"a job ran off the workers: {per_node}"
    assert M.node_id not in per_node, "a job ran on the master (NUM_WORKERS=0)"
    assert all(per_node[w.node_id] > 0 for w in cluster.workers), f"a worker stayed idle: {per_node}"
    assert all(r["retries"] == 0 for r in recs.values())
    # Exactly one run each, on the node its record names.
    assert cluster.mark_counts("spread-") == {i: 1 for i in ids}, "a job ran twice or not at all"
    for i, r in recs.items():
        (where,) = cluster.runs(i).values()
        assert where == r["host_address"], (i, where, r["host_address"])
    status, done = M.json("GET", "/completed_jobs")
    assert status == 200 and set(ids) <= set(done), status
    slots = cluster.workers_view()
    assert len(slots) == 4 and {s["node"] for s in slots.values()} == worker_ids(), slots
    assert sum(s["jobs_run"] for s in slots.values()) >= 40, slots


# --- 2 ---------------------------------------------------------------------

def test_logs_status_and_stop_through_the_master_match_the_worker():
    done_id = cluster.submit("fwd-done", {"LINES": "50"})
    rec = cluster.wait_record(done_id, lambda r: r["state"] in TERMINAL, 30, "to finish")
    assert rec["state"] == "completed", rec
    owner = cluster.by_node_id(rec["node"])
    assert owner in cluster.workers, rec["node"]
    for path in (f"/jobs/{done_id}", f"/api/v1/jobs/{done_id}/logs",
                 f"/completed_jobs/{done_id}/logs", f"/api/v1/jobs/{done_id}"):
        via_master = M.request("GET", path)
        direct = owner.request("GET", path)
        assert via_master[0] == 200 and direct[0] == 200, (path, via_master, direct)
        if path.startswith("/jobs/") or path.endswith(done_id):
            assert json.loads(via_master[1]) == json.loads(direct[1]), (path, via_master, direct)
        else:
            assert via_master[1] == direct[1], (path, via_master, direct)
    logs = owner.request("GET", f"/api/v1/jobs/{done_id}/logs")[1].decode()
    assert count_lines(logs, f"{done_id} line ") == 50 and owner.env["HOST_ADDRESS"] in logs, logs
    status, followed = M.request("GET", f"/api/v1/jobs/{done_id}/logs?follow=1", timeout=20)
    assert status == 200 and followed.decode() == logs
    # Artifacts through the master: the same files as from the worker.
    status, via_master = M.request("GET", f"/job_bundle/{done_id}")
    status2, direct = owner.request("GET", f"/job_bundle/{done_id}")
    assert status == 200 and status2 == 200, (status, status2, via_master[:200])
    files = untar(via_master)
    assert files == untar(direct)
    assert any(name.endswith("result.txt") and owner.env["HOST_ADDRESS"].encode() in data
               for name, data in files.items() if data), sorted(files)

    # A running job, followed through the master, then stopped through it.
    stop_id = cluster.submit("fwd-stop", {"LINES": "2000", "GAP": "0.05"})
    rec = cluster.wait_record(stop_id, lambda r: r["state"] == "running", 30, "to run")
    owner2 = cluster.by_node_id(rec["node"])
    assert owner2 in cluster.workers, rec["node"]
    (pgid,) = wait_until(lambda: cluster.pgids_of(stop_id), 10, "the job's process group")
    stream = {}

    def follow():
        try:
            stream["reply"] = M.request("GET", f"/api/v1/jobs/{stop_id}/logs?follow=1",
                                        timeout=30)
        except Exception as e:  # noqa: BLE001 - asserted below
            stream["error"] = e
    follower = threading.Thread(target=follow)
    follower.start()
    wait_until(lambda: count_lines(owner2.request("GET", f"/api/v1/jobs/{stop_id}/logs")[1]
                                   .decode(), "line ") >= 10, 15, "some log lines")
    assert group_alive(pgid)
    status, raw = M.request("DELETE", f"/running_jobs/{stop_id}")
    assert status in (200, 202, 204), (status, raw)
    rec = cluster.wait_record(stop_id, lambda r: r["state"] in TERMINAL, 15, "to stop")
    assert rec["state"] == "cancelled" and rec["node"] == owner2.node_id, rec
    wait_until(lambda: not group_alive(pgid), 10, "the job's process group to be gone")
    assert f"stopping job job_id={stop_id}" in owner2.node_log()
    follower.join(timeout=30)
    assert not follower.is_alive(), "the followed log did not end after the job stopped"
    assert "error" not in stream, stream
    status, body = stream["reply"]
    direct = owner2.request("GET", f"/api/v1/jobs/{stop_id}/logs")[1]
    assert status == 200 and body == direct and count_lines(body.decode(), "line ") >= 10, \
        (status, len(body), len(direct))
    assert json.loads(M.request("GET", f"/jobs/{stop_id}")[1]) == \
        json.loads(owner2.request("GET", f"/jobs/{stop_id}")[1])

    # Deleting through the master deletes on the worker.
    status, raw = M.request("DELETE", f"/completed_jobs/{done_id}")
    assert status in (200, 204), (status, raw)
    assert M.request("GET", f"/jobs/{done_id}")[0] == 404
    assert owner.request("GET", f"/jobs/{done_id}")[0] == 404
    assert M.request("GET", f"/api/v1/jobs/{done_id}/logs")[0] == 404


# --- 6 ---------------------------------------------------------------------

def test_a_worker_without_the_cluster_secret_or_certificate_is_refused():
    wrong = cluster.node("wrong-secret", env={"ATLAS_CLUSTER_SECRET": "wrong"})
    own_home = tempfile.mkdtemp(prefix="atlas-nosecret-")
    cleanup_dirs.append(own_home)
    stranger = cluster.node("no-secret", home=own_home)  # its own home: no secret, no CA
    # Another cluster's CA: its certificate is not ours.
    other_home = tempfile.mkdtemp(prefix="atlas-other-ca-")
    cleanup_dirs.append(other_home)
    foreign_certificate(f"{other_home}/config/tls", "x", "worker")  # leaves its ca.crt, ca.key
    outsider = cluster.node("other-ca", home=other_home,
                            env={"ATLAS_CLUSTER_SECRET": open(cluster.home + "/config/cluster.secret").read().strip()})
    for n in (wrong, stranger, outsider):
        n.start()
    try:
        wait_until(lambda: f"node refused: wrong cluster secret node={wrong.node_id}"
                   in M.node_log(), 15, "the master to refuse the wrong secret")
        wait_until(lambda: "no cluster CA at" in stranger.node_log(), 15,
                   "the node without a CA to say so")
        wait_until(lambda: "TLS handshake: certificate refused" in outsider.node_log(), 15,
                   "the node of another CA to be refused")
        # They keep trying; none of their slots ever shows up.
        wait_until(lambda: count_lines(wrong.node_log(), "cannot join the master") >= 2, 10,
                   "the refused worker to retry")
        nodes = {s["node"] for s in cluster.workers_view().values()}
        for n in (wrong, stranger, outsider):
            assert n.node_id not in nodes, nodes
        assert worker_ids() <= nodes
        assert wrong.request("POST", "/queued_jobs", "{}")[0] == 503
        with open(cluster.home + "/config/cluster.secret") as f:
            secret = f.read().strip()
        assert len(secret) >= 32
        for n in (M, wrong, stranger, outsider):
            assert secret not in n.node_log(), f"{n.name}'s log shows the cluster secret"
    finally:
        for n in (wrong, stranger, outsider):
            n.stop()
    nodes = {s["node"] for s in cluster.workers_view().values()}
    for n in (wrong, stranger, outsider):
        assert n.node_id not in nodes, nodes


def test_a_worker_without_the_shared_file_system_fetches_bundles_over_caf():
    own_home = tempfile.mkdtemp(prefix="atlas-own-fs-")
    cleanup_dirs.append(own_home)
    with open(cluster.home + "/config/cluster.secret") as f:
        secret = f.read().strip()
    # Its own FOUNDATIONS_HOME: it cannot see the master's job store.
    loner = cluster.node("own-fs", slots=2, home=own_home, env={"ATLAS_CLUSTER_SECRET": secret})
    provision_node(cluster.home, loner, own_home)  # its certificate, as an operator would copy it
    loner.start()
    try:
        wait_until(lambda: len(cluster.slots_of(loner)) == 2, 15, "the loner's slots")
        # Fill every slot of the cluster so that some jobs land on the loner.
        # Each bundle is ~2.8 MB of incompressible bytes: three chunks of at
        # most 1 MiB each (messages/job.hpp: bundle_chunk).
        ids = []
        for i in range(8):
            job = f"own-fs-{i}"
            big = base64.b64encode(os.urandom(2 << 20)).decode()
            status, raw = cluster.upload(job, {"main.py": JOB_PY, "weights.txt": big}, timeout=60)
            assert status == 200, (job, status, raw)
            status, raw = cluster.queue(job, {"SLEEP": "1.5"})
            assert status == 201, (job, status, raw)
            ids.append(job)
        wait_all(ids, {"completed"}, 90)
        on_loner = [i for i in ids if cluster.record(i)["node"] == loner.node_id]
        assert on_loner, "no job ran on the node without the shared file system"
        for job in on_loner:
            fetched = f"{own_home}/job_data/job_store/{job}.tgz"
            assert os.path.exists(fetched), "bundle not fetched"
            with open(fetched, "rb") as f, open(f"{cluster.home}/job_data/job_store/{job}.tgz", "rb") as g:
                got, sent = f.read(), g.read()
            assert len(sent) > 2 << 20 and got == sent, ("fetched bundle differs", len(got), len(sent))
            assert not os.path.exists(f"{cluster.home}/job_data/archive/{job}"), \
                "the loner wrote into the shared home"
            via_master = M.request("GET", f"/api/v1/jobs/{job}/logs")
            direct = loner.request("GET", f"/api/v1/jobs/{job}/logs")
            assert via_master == direct and direct[0] == 200 and direct[1], (via_master, direct)
        assert cluster.mark_counts("own-fs-") == {i: 1 for i in ids}
    finally:
        loner.stop()


# --- 3 ---------------------------------------------------------------------

def test_sigkill_of_a_worker_requeues_its_job_on_the_other():
    job = cluster.submit("kill-worker", {"SLEEP": "3"})
    rec = cluster.wait_record(job, lambda r: r["state"] == "running", 30, "to run")
    victim = cluster.by_node_id(rec["node"])
    other = other_worker(victim)
    wait_until(lambda: cluster.pgids_of(job), 10, "the job's process group")
    # Through the master: its gateway keeps the victim's gateway for the next
    # forwarded request.
    assert M.request("GET", f"/jobs/{job}")[0] == 200
    t_kill = time.monotonic()
    victim.kill()
    # Its copy lives on in its own process group: end it, it must not finish.
    cluster.kill_job_groups(job)
    r1, t_seen = timed(lambda: (lambda r: r if r["retries"] >= 1 else None)(cluster.record(job)),
                       10, "the job to be requeued")
    r2, t_run = timed(lambda: (lambda r: r if r["state"] == "running"
                               and r["node"] == other.node_id else None)(cluster.record(job)),
                      20, "the job to run on the other worker")
    measured["SIGKILL worker: detection (kill -> requeued)"] = t_seen - t_kill
    measured["SIGKILL worker: requeued -> running elsewhere"] = t_run - t_seen
    print(f"     SIGKILL: requeued {t_seen - t_kill:.2f}s after the kill (state {r1['state']}), "
          f"running on the other worker {t_run - t_seen:.2f}s later", flush=True)
    assert t_seen - t_kill < 5
    final = cluster.wait_record(job, lambda r: r["state"] in TERMINAL, 20, "to finish")
    assert final["state"] == "completed" and final["node"] == other.node_id, final
    assert final["retries"] == 1, final
    assert list(cluster.runs(job).values()) == [other.env["HOST_ADDRESS"]], cluster.runs(job)
    assert f"job lost, requeued job_id={job} retry=1" in M.node_log()
    assert victim.node_id not in {s["node"] for s in cluster.workers_view().values()}
    # Back with the same environment: it rejoins.
    t = time.monotonic()
    victim.start()
    cluster.wait_joined(victim, 20)
    measured["restarted worker: start -> slots on the master"] = time.monotonic() - t
    # A job that ran on it, asked through the master, whose gateway still
    # holds the old (dead) gateway: it asks the master for the new one.
    ran_there = [i for i, r in cluster.records("spread-").items() if r["node"] == victim.node_id]
    assert ran_there
    path = f"/jobs/{ran_there[0]}"
    via_master, direct = M.request("GET", path), victim.request("GET", path)
    assert via_master[0] == 200 and direct[0] == 200, (via_master, direct)
    assert json.loads(via_master[1]) == json.loads(direct[1])


def sigstop_scenario(job, sleep, label):
    """Freezes the worker running `job` (SIGSTOP), waits until the master
    has requeued the job through heartbeats and it runs on the other worker,
    then lets the frozen worker go on (SIGCONT) and waits until it rejoined.
    Returns (victim, other, stale process group, final record)."""
    cluster.submit(job, {"SLEEP": str(sleep)})
    rec = cluster.wait_record(job, lambda r: r["state"] == "running", 30, "to run")
    victim = cluster.by_node_id(rec["node"])
    other = other_worker(victim)
    (stale_pgid,) = wait_until(lambda: cluster.pgids_of(job), 10, "the job's process group")
    time.sleep(0.2)
    t_stop = time.monotonic()
    victim.signal(signal.SIGSTOP)
    try:
        r1, t_seen = timed(lambda: (lambda r: r if r["retries"] >= 1 else None)(
            cluster.record(job)), 15, "the frozen worker's job to be requeued")
        r2, t_run = timed(lambda: (lambda r: r if r["state"] == "running"
                                   and r["node"] == other.node_id else None)(cluster.record(job)),
                          20, "the job to run on the other worker")
        gone = not cluster.slots_of(victim)
    finally:
        victim.signal(signal.SIGCONT)
    t_cont = time.monotonic()
    measured[f"SIGSTOP worker ({label}): detection (stop -> requeued)"] = t_seen - t_stop
    measured[f"SIGSTOP worker ({label}): requeued -> running elsewhere"] = t_run - t_seen
    print(f"     SIGSTOP ({label}): requeued {t_seen - t_stop:.2f}s after the stop "
          f"(state {r1['state']}), running on the other worker {t_run - t_seen:.2f}s later",
          flush=True)
    assert 1.0 <= t_seen - t_stop <= 6, t_seen - t_stop
    assert gone, "the frozen worker's slots were still listed after its job was requeued"
    # The frozen node comes back and rejoins; its stale copy is not heard.
    cluster.wait_joined(victim, 20)
    measured[f"SIGSTOP worker ({label}): SIGCONT -> slots on the master"] = \
        time.monotonic() - t_cont
    final = cluster.wait_record(job, lambda r: r["state"] in TERMINAL, 30, "to finish")
    wait_until(lambda: all(not s["current_job"] for s in cluster.slots_of(victim)), 15,
               "the rejoined worker's slots to be free")
    time.sleep(1)
    again = cluster.record(job)
    for key in ("state", "node", "slot", "end_time", "retries", "return_code"):
        assert again[key] == final[key], (key, final, again)
    assert count_lines(M.node_log(), f"job finished job_id={job} ") == 1, \
        "the job finished twice in the master's log"
    assert final["node"] == other.node_id and final["retries"] == 1, final
    return victim, other, stale_pgid, final


def assert_rerun_completed_with_its_artifacts(job, other, final):
    assert final["state"] == "completed", (final["state"], final["reason"])
    assert other.env["HOST_ADDRESS"] in cluster.runs(job).values(), cluster.runs(job)
    status, raw = M.request("GET", f"/job_bundle/{job}")
    assert status == 200, (status, raw[:300])
    results = [d for n, d in untar(raw).items() if n.endswith("result.txt") and d]
    assert len(results) == 1 and results[0].startswith(other.env["HOST_ADDRESS"].encode()), results


def test_sigstop_of_a_worker_is_detected_and_its_running_copy_discarded():
    # The job outlives the freeze: when the worker comes back, its copy still
    # runs and is killed as discarded.
    job = "stop-worker-running"
    victim, other, stale_pgid, final = sigstop_scenario(job, 5, "copy still running")
    wait_until(lambda: not group_alive(stale_pgid), 10, "the discarded copy to be killed")
    assert f"killing discarded copy job_id={job}" in victim.node_log()
    assert list(cluster.runs(job).values()) == [other.env["HOST_ADDRESS"]], cluster.runs(job)
    assert_rerun_completed_with_its_artifacts(job, other, final)


def test_sigstop_of_a_worker_whose_copy_ended_while_frozen():
    # The job ends while its worker is frozen: the worker comes back holding
    # a completion nobody wants any more. It must not count, and must not
    # disturb the rerun that now owns the job's working directory.
    job = "stop-worker-ended"
    victim, other, stale_pgid, final = sigstop_scenario(job, 2.5, "copy ended while frozen")
    assert victim.env["HOST_ADDRESS"] in cluster.runs(job).values(), cluster.runs(job)
    assert_rerun_completed_with_its_artifacts(job, other, final)


# --- 4 ---------------------------------------------------------------------

def test_sigkill_of_the_master_during_a_burst_loses_no_acknowledged_job():
    ids = [f"mburst-{i:03d}" for i in range(200)]
    kill = {"lock": threading.Lock(), "at": None}

    def on_ack(n):
        with kill["lock"]:
            if n >= 60 and kill["at"] is None:
                kill["at"] = time.monotonic()
                M.kill()
    acked, failures = burst(ids, 4, on_ack)
    assert kill["at"] is not None, f"the burst ended before the kill: {len(acked)} acknowledged"
    print(f"     master killed after {len(acked)} acknowledged of 200 "
          f"(failures: {dict(failures)})", flush=True)
    worker_pids = [w.pid for w in cluster.workers]
    t = time.monotonic()
    M.start()
    measured["master restart: start -> serving"] = time.monotonic() - t
    for w in cluster.workers:
        cluster.wait_joined(w, 25)
    measured["master restart: start -> both workers rejoined"] = time.monotonic() - t
    # Jobs nobody reported for get rejoin_grace_s (10 s) before they are requeued.
    wait_all(sorted(acked), {"completed"}, 40)
    measured["master restart: start -> every acknowledged job completed"] = time.monotonic() - t
    counts = cluster.mark_counts("mburst-")
    assert all(counts.get(i, 0) >= 1 for i in acked), \
        {i: counts.get(i, 0) for i in acked if not counts.get(i)}
    # The issue asks that every acknowledged job completes. A job whose slot
    # did not confirm it within cluster.rejoin_grace_s is requeued, so a
    # process may (rarely, under load) have started twice; its record still
    # finishes once. Reported, not failed: the soak campaign (issue 9) owns
    # exactly-once execution across master crashes.
    reruns = {i: c for i, c in counts.items() if c != 1}
    if reruns:
        print(f"     note: processes started more than once across the master crash: {reruns}",
              flush=True)
    log = M.node_log()
    twice = [i for i in ids if count_lines(log, f"job finished job_id={i} ") > 1]
    assert not twice, f"finished twice: {twice}"
    assert [w.pid for w in cluster.workers] == worker_pids and all(
        w.running() for w in cluster.workers), "a worker restarted"
    # New work after the restart.
    new = [cluster.submit(f"after-master-{i}", tiny=True) for i in range(3)]
    wait_all(new, {"completed"}, 30)


# --- 5 ---------------------------------------------------------------------

def test_redis_killed_and_restarted_during_a_burst_loses_no_acknowledged_job():
    ids = [f"rburst-{i:03d}" for i in range(120)]
    state = {"lock": threading.Lock(), "killed": None, "back": None}
    pids = {n.name: n.pid for n in [M, *cluster.workers]}

    def restart():
        cluster.redis.start()
        state["back"] = time.monotonic()

    def on_ack(n):
        with state["lock"]:
            if n >= 30 and state["killed"] is None:
                pid = cluster.redis.pid()
                os.kill(pid, signal.SIGKILL)
                wait_until(lambda: not pid_alive(pid), 10, "redis-server to die")
                state["killed"] = time.monotonic()
                threading.Timer(2.0, restart).start()
    acked, failures = burst(ids, 4, on_ack, timeout=25)
    assert state["killed"] is not None, f"the burst ended before the kill: {len(acked)}"
    wait_until(lambda: state["back"], 15, "redis-server to be restarted")
    print(f"     Redis down {state['back'] - state['killed']:.1f}s; {len(acked)} of 120 "
          f"acknowledged (failures: {dict(failures)})", flush=True)
    wait_all(sorted(acked), {"completed"}, 60)
    measured["Redis restart: back -> every acknowledged job completed"] = \
        time.monotonic() - state["back"]
    counts = cluster.mark_counts("rburst-")
    assert all(counts.get(i) == 1 for i in acked), \
        {i: counts.get(i, 0) for i in acked if counts.get(i) != 1}
    assert all(c == 1 for c in counts.values()), {i: c for i, c in counts.items() if c != 1}
    # Nobody was restarted, and everything works again.
    assert {n.name: n.pid for n in [M, *cluster.workers]} == pids
    assert all(n.running() for n in [M, *cluster.workers])
    new = [cluster.submit(f"after-redis-{i}", tiny=True) for i in range(3)]
    wait_all(new, {"completed"}, 30)
    assert len(cluster.workers_view()) == 4


# --- 7 ---------------------------------------------------------------------

def test_cluster_in_network_namespaces():
    why = Namespaces.available()
    if why:
        print(f"     skipped: {why}", flush=True)
        return
    ns = Namespaces()
    c = None
    try:
        ns.create()
        c = Cluster(workers=2, slots=1, hosts=ns.hosts, netns=ns.names)
        c.start()
        assert c.master.node_id == f"{ns.hosts[0]}-{c.master.http_port}"
        assert [w.node_id for w in c.workers] == [f"{h}-{w.http_port}"
                                                 for h, w in zip(ns.hosts[1:], c.workers)]
        assert f"master endpoint {ns.hosts[0]}:{c.master.caf_port} recorded" in c.master.node_log()
        ids = [c.submit(f"netns-{i}", {"SLEEP": "0.5", "LINES": "3"}) for i in range(4)]
        recs = wait_all(ids, TERMINAL, 60, c)
        assert all(r["state"] == "completed" for r in recs.values()), recs
        nodes = {r["node"] for r in recs.values()}
        assert nodes == {w.node_id for w in c.workers}, nodes
        for i, r in recs.items():
            owner = c.by_node_id(r["node"])
            assert list(c.runs(i).values()) == [owner.env["HOST_ADDRESS"]]
            via_master = c.master.request("GET", f"/api/v1/jobs/{i}/logs")
            assert via_master == owner.request("GET", f"/api/v1/jobs/{i}/logs"), via_master
            assert f"done {i} on http://{owner.host}:".encode() in via_master[1], via_master
        assert json.loads(c.master.request("GET", f"/jobs/{ids[0]}")[1]) == json.loads(
            c.by_node_id(recs[ids[0]]["node"]).request("GET", f"/jobs/{ids[0]}")[1])
        slots = c.workers_view().values()
        assert {s["host_address"] for s in slots} == {w.env["HOST_ADDRESS"] for w in c.workers}
        # Redis is on the master's namespace address only: nothing on 127.0.0.1.
        probe = subprocess.run(
            ["ip", "netns", "exec", ns.names[0], sys.executable, "-c",
             f"import socket; socket.create_connection(('127.0.0.1', {c.redis.port}), 2)"],
            capture_output=True, text=True, timeout=20)
        assert probe.returncode != 0 and "Connection refused" in probe.stderr, probe
    finally:
        if c:
            c.cleanup()
        ns.cleanup()


def summary():
    print("measured:", flush=True)
    for name, seconds in measured.items():
        print(f"     {name}: {seconds:.2f}s", flush=True)


def test_a_worker_that_joined_stops_its_actor_system_cleanly():
    # remote_actor() (run on libuv's thread pool) left a reference to CAF's
    # logger in that thread, so ~actor_system never returned on workers: each
    # stop ran out its 2 s bound and exited without destructors.
    node = cluster.node("clean-stop", slots=cluster.slots_per_worker)
    node.start()
    try:
        cluster.wait_joined(node)
    finally:
        node.stop()
    log = node.node_log()
    assert node.proc.returncode == 0, (node.proc.returncode, log)
    assert "node stopped" in log, log
    assert "did not stop within" not in log, log


def test_nothing_is_left_running():
    summary()
    nodes = {n.pid for n in [M, *cluster.workers] if n.running()}
    left = [(pid, cmdline(pid)) for pid in cluster.token_processes()
            if pid not in nodes and pid_alive(pid)]
    cluster.kill_leftovers(keep=nodes)
    assert not left, f"processes still running besides the nodes: {left}"


# `cluster_test.py word...` runs only the tests whose names contain a word.
only = sys.argv[1:]
# A runner's timeout (SIGTERM) still stops every node, Redis and namespace.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
try:
    cluster.start()
    harness.run_tests([t for t in [
        test_forty_jobs_spread_over_both_workers_each_run_once,
        test_logs_status_and_stop_through_the_master_match_the_worker,
        test_a_worker_without_the_cluster_secret_or_certificate_is_refused,
        test_a_worker_without_the_shared_file_system_fetches_bundles_over_caf,
        test_sigkill_of_a_worker_requeues_its_job_on_the_other,
        test_sigstop_of_a_worker_is_detected_and_its_running_copy_discarded,
        test_sigstop_of_a_worker_whose_copy_ended_while_frozen,
        test_sigkill_of_the_master_during_a_burst_loses_no_acknowledged_job,
        test_redis_killed_and_restarted_during_a_burst_loses_no_acknowledged_job,
        test_cluster_in_network_namespaces,
        test_a_worker_that_joined_stops_its_actor_system_cleanly,
        test_nothing_is_left_running,
    ] if not only or any(w in t.__name__ for w in only) or t is test_nothing_is_left_running])
finally:
    cluster.cleanup()
    for d in cleanup_dirs:
        shutil.rmtree(d, ignore_errors=True)
