"""atlas-ctl against a real cluster on loopback: a master (no slots) and two
worker nodes with two slots each, sharing one FOUNDATIONS_HOME and one Redis.

atlas-ctl finds the master through REDIS_ADDRESS (or --master) and shows the
cluster secret from the shared config. Checked here: nodes, slots, jobs, job,
queue, actors (text and --json), drain/undrain steering new jobs, watch under
a pseudo-terminal and on a pipe, and one clear line with exit status 1 for an
unreachable or hung master, a wrong secret and an unknown job or node.

Every wait is bounded; every process started is stopped by its pid."""

import json
import os
import pty
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import harness
from harness import free_port, wait_until
from cluster_harness import Cluster, foreign_certificate, issue_certificate

CTL = os.environ.get("ATLAS_CTL", "atlas-ctl")
TERMINAL = {"completed", "failed", "cancelled"}

cluster = Cluster(workers=2, slots=2)
M = cluster.master
A, B = cluster.workers
LONG = "ctl-long"  # runs through most tests, on some worker


def ctl(*args, env=None, timeout=20, check=0):
    """Runs atlas-ctl with the master's environment; returns the result
    (stdout, stderr, returncode, seconds)."""
    started = time.monotonic()
    r = subprocess.run([CTL, *args], env=env or M.env, capture_output=True, text=True,
                       timeout=timeout)
    r.seconds = time.monotonic() - started
    if check is not None:
        assert r.returncode == check, (args, r.returncode, r.stdout, r.stderr)
    return r


def ctl_json(*args):
    return json.loads(ctl(*args, "--json").stdout)


def one_line_failure(r, needle, limit_s):
    """A failure as the issue wants it: exit 1, one line on stderr, quickly."""
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("atlas-ctl: ") and needle in lines[0], lines[0]
    assert r.stdout == "", r.stdout
    assert r.seconds < limit_s, f"took {r.seconds:.1f}s"


def jobs_by_id():
    return {j["job_id"]: j for j in ctl_json("jobs")["jobs"]}


def wait_states(ids, states, timeout):
    def done():
        recs = jobs_by_id()
        return recs if all(recs.get(i, {}).get("state") in states for i in ids) else None
    return wait_until(done, timeout, f"{ids} to reach {states}")


def stop_job(job_id):
    status, raw = M.request("DELETE", f"/running_jobs/{job_id}")
    # 409: it has ended already (its end is what the caller waits for).
    assert status in (200, 204, 404, 409), (status, raw)


# --- tests


def test_help_and_usage():
    r = ctl("--help")
    assert "usage: atlas-ctl" in r.stdout and "watch" in r.stdout, r.stdout
    r = ctl("frobnicate", check=2)
    assert "unknown command" in r.stderr, r.stderr
    ctl("jobs", "--state", "sleeping", check=2)


def test_nodes_lists_all_three_with_their_slot_counts():
    nodes = {n["node_id"]: n for n in ctl_json("nodes")["nodes"]}
    assert set(nodes) == {M.node_id, A.node_id, B.node_id}, nodes.keys()
    assert nodes[M.node_id]["role"] == "master"
    assert nodes[M.node_id]["slots"] == 0
    for w in (A, B):
        n = nodes[w.node_id]
        assert n["role"] == "worker", n
        assert n["slots"] == 2 and n["busy"] + n["free"] == 2, n
        assert n["host_address"] == w.env["HOST_ADDRESS"], n
        assert n["drained"] is False, n
        assert isinstance(n["heartbeat_age_s"], (int, float)) and n["heartbeat_age_s"] < 10, n
        assert n["version"] and isinstance(n["uptime_s"], (int, float)), n
    for key in ("node_id", "role", "host_address", "slots", "busy", "free", "gpus",
                "running_jobs", "heartbeat_age_s", "version", "uptime_s", "drained"):
        assert all(key in n for n in nodes.values()), key
    text = ctl("nodes").stdout
    assert "\x1b[" not in text, "colour on a pipe"
    header, *rows, masters = text.splitlines()
    assert header.split()[:3] == ["NODE", "ROLE", "ADDRESS"], header
    assert len(rows) == 3 and all(any(n in row for row in rows) for n in nodes), text
    assert masters == f"masters: {M.node_id} active (epoch 1); standby: none", text


def test_explicit_master_endpoint():
    r = ctl("--master", f"127.0.0.1:{M.caf_port}", "nodes", "--json",
            env={**M.env, "REDIS_ADDRESS": f"127.0.0.1:{free_port()}"})
    assert len(json.loads(r.stdout)["nodes"]) == 3


def test_a_running_job_appears_in_jobs_slots_and_job():
    cluster.submit(LONG, {"SLEEP": "120"})
    recs = wait_states([LONG], {"running"}, 30)
    rec = recs[LONG]
    assert rec["node"] in (A.node_id, B.node_id) and rec["slot"], rec
    assert [h["state"] for h in rec["history"]][-1] == "running", rec["history"]

    text = ctl("jobs", "--state", "running").stdout
    (row,) = [line for line in text.splitlines() if line.startswith(LONG)]
    assert "running" in row and rec["node"] in row, row
    assert LONG not in ctl("jobs", "--state", "completed").stdout
    assert LONG not in ctl("jobs", "--user", "nobody-here").stdout

    slots = ctl_json("slots")["slots"]
    assert len(slots) == 4, slots
    (busy,) = [s for s in slots if s["current_job"] == LONG]
    assert busy["state"] == "busy" and busy["key"] == rec["slot"], busy
    (row,) = [line for line in ctl("slots").stdout.splitlines() if LONG in line]
    assert row.startswith(rec["slot"]) and "busy" in row, row
    only = ctl_json("slots", "--node", rec["node"])["slots"]
    assert len(only) == 2 and all(s["node_id"] == rec["node"] for s in only), only

    text = ctl("job", LONG).stdout
    assert rec["node"] in text and rec["slot"] in text, text
    lifecycle = text.split("lifecycle:")[1].splitlines()[2:]
    assert [line.split()[0] for line in lifecycle] == ["queued", "pending", "running"], text
    assert all(" ago" in line for line in lifecycle), text
    one = ctl_json("job", LONG)
    assert one["job_id"] == LONG and one["state"] == "running", one
    assert [h["state"] for h in one["history"]] == ["queued", "pending", "running"], one

    nodes = {n["node_id"]: n for n in ctl_json("nodes")["nodes"]}
    assert LONG in nodes[rec["node"]]["running_jobs"], nodes


def test_actors_lists_the_master_every_slot_and_every_job_actor():
    actors = ctl_json("actors")["actors"]
    for a in actors:
        for key in ("name", "id", "node", "mailbox", "handled", "last_message", "summary"):
            assert key in a, (key, a)
        assert isinstance(a["mailbox"], int) and a["mailbox"] >= 0, a
        assert isinstance(a["handled"], int) and isinstance(a["id"], int), a
    masters = [a for a in actors if a["name"] == "master"]
    assert len(masters) == 1 and masters[0]["node"] == M.node_id, masters
    slots = [a for a in actors if a["name"] == "worker-slot"]
    assert sorted(a["node"] for a in slots) == sorted([A.node_id] * 2 + [B.node_id] * 2), slots
    # A lifecycle actor per dispatched, unfinished job (a queued job is a
    # record in the master until its dispatch).
    active = [j for j, r in jobs_by_id().items() if r["state"] not in TERMINAL | {"queued"}]
    jobs = [a for a in actors if a["name"] == "job"]
    assert len(jobs) == len(active) and active, (jobs, active)
    assert all(a["node"] == M.node_id for a in jobs), jobs
    assert any(LONG in a["summary"] for a in jobs), jobs
    # One tracking actor per node (the dashboard's data), with its own Redis.
    tracking = [a for a in actors if a["name"] == "tracking"]
    assert sorted(a["node"] for a in tracking) == sorted([M.node_id, A.node_id, B.node_id]), tracking
    assert all("Redis" in a["summary"] for a in tracking), tracking
    only = ctl_json("actors", "--node", A.node_id)["actors"]
    assert only and all(a["node"] == A.node_id for a in only), only
    text = ctl("actors").stdout
    assert text.splitlines()[0].split()[:3] == ["NAME", "ID", "NODE"], text
    assert len(text.splitlines()) > len(slots) + 2 and "worker-slot" in text, text


def test_drain_keeps_new_jobs_off_a_node_and_undrain_restores_it():
    r = ctl("drain", A.node_id)
    assert A.node_id in r.stdout and "drained" in r.stdout, r.stdout
    nodes = {n["node_id"]: n for n in ctl_json("nodes")["nodes"]}
    assert nodes[A.node_id]["drained"] is True and nodes[B.node_id]["drained"] is False
    assert "drained" in [line for line in ctl("nodes").stdout.splitlines()
                         if line.startswith(A.node_id)][0]
    free_a = [s for s in ctl_json("slots", "--node", A.node_id)["slots"] if not s["current_job"]]
    assert free_a and all(s["state"] == "drained" for s in free_a), free_a

    ids = [f"ctl-drained-{i}" for i in range(4)]
    for i in ids:
        cluster.submit(i, {"SLEEP": "0.5"})
    recs = wait_states(ids, TERMINAL, 60)
    assert all(recs[i]["state"] == "completed" for i in ids), {i: recs[i]["state"] for i in ids}
    assert {recs[i]["node"] for i in ids} == {B.node_id}, {i: recs[i]["node"] for i in ids}

    r = ctl("undrain", A.node_id, "--json")
    assert json.loads(r.stdout) == {"node": A.node_id, "drained": False}, r.stdout
    nodes = {n["node_id"]: n for n in ctl_json("nodes")["nodes"]}
    assert nodes[A.node_id]["drained"] is False, nodes[A.node_id]
    ids = [f"ctl-undrained-{i}" for i in range(4)]
    for i in ids:
        cluster.submit(i, {"SLEEP": "2"})
    recs = wait_states(ids, TERMINAL, 60)
    assert all(recs[i]["state"] == "completed" for i in ids), {i: recs[i]["state"] for i in ids}
    assert A.node_id in {recs[i]["node"] for i in ids}, {i: recs[i]["node"] for i in ids}


def test_drain_of_an_unknown_node_and_an_unknown_job_are_one_line():
    one_line_failure(ctl("drain", "no-such-node", check=None), "no-such-node", 5)
    one_line_failure(ctl("job", "no-such-job", check=None), "no-such-job", 5)


def test_queue_shows_dispatch_order_and_reasons():
    assert ctl_json("queue") == {"queue": []}
    assert "empty" in ctl("queue").stdout
    # Fill every slot, then two more wait with their reasons.
    ctl("drain", B.node_id)
    try:
        fill = ["ctl-fill-a", "ctl-fill-b"]
        for i in fill:
            cluster.submit(i, {"SLEEP": "30"})
        wait_until(lambda: all(s["current_job"] for s in
                               ctl_json("slots", "--node", A.node_id)["slots"]),
                   30, "node A's slots to fill")
        waiting = ["ctl-wait-1", "ctl-wait-2"]
        for i in waiting:
            cluster.submit(i, {"SLEEP": "0.2"})
        queue = wait_until(lambda: (lambda q: q if {e["job_id"] for e in q} >= set(waiting)
                                    else None)(ctl_json("queue")["queue"]), 20, "jobs queued")
        for key in ("position", "job_id", "user", "priority", "reason"):
            assert all(key in e for e in queue), (key, queue)
        assert [e["position"] for e in queue] == list(range(len(queue))), queue
        order = [e["job_id"] for e in queue]
        assert order.index("ctl-wait-1") < order.index("ctl-wait-2"), order
        assert all(e["reason"] for e in queue), queue
        assert all(e["user"] == "alice" for e in queue), queue
        text = ctl("queue").stdout
        assert "ctl-wait-1" in text and queue[0]["reason"] in text, text
    finally:
        ctl("undrain", B.node_id)
    for i in ["ctl-fill-a", "ctl-fill-b"]:
        stop_job(i)
    wait_states(["ctl-wait-1", "ctl-wait-2", "ctl-fill-a", "ctl-fill-b"], TERMINAL, 60)


def run_in_pty(args, env, timeout, interrupt_after=None, then=None):
    """Runs atlas-ctl on a pseudo-terminal; returns (output, exit status).
    Once the text `interrupt_after` was written, SIGINT is sent, or `then()`
    is called on a thread of its own when given."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: atlas-ctl on the terminal
        try:
            os.execve(CTL, [CTL, *args], env)
        finally:
            os._exit(127)
    out = b""
    deadline = time.monotonic() + timeout
    sent = False
    helper = None
    status = None
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:  # EIO: the child closed the terminal
                    chunk = b""
                if not chunk:
                    break
                out += chunk
            if interrupt_after and not sent and interrupt_after.encode() in out:
                if then:
                    helper = threading.Thread(target=then)
                    helper.start()
                else:
                    os.kill(pid, signal.SIGINT)
                sent = True
        end = time.monotonic() + 5
        while status is None and time.monotonic() < end:
            done, st = os.waitpid(pid, os.WNOHANG)
            if done:
                status = os.waitstatus_to_exitcode(st)
            else:
                time.sleep(0.05)
    finally:
        if status is None:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
    if helper:
        helper.join(timeout=60)
    assert status is not None, f"atlas-ctl did not exit within {timeout}s: {out[-2000:]!r}"
    return out.decode(errors="replace"), status


def test_watch_refreshes_in_place_on_a_terminal():
    env = {k: v for k, v in M.env.items() if k != "NO_COLOR"}
    out, status = run_in_pty(["watch", "--count", "3", "--interval", "0.3"], env, 20)
    assert status == 0, (status, out)
    assert out.count("\x1b[H\x1b[2J") == 3, repr(out[:500])
    frames = out.split("\x1b[H\x1b[2J")[1:]
    for frame in frames:
        for section in ("NODES", "SLOTS", "QUEUE"):
            assert section in frame, frame
        assert M.node_id in frame and A.node_id in frame and B.node_id in frame, frame
    assert "\x1b[1m" in out, "no colour on a terminal"
    assert out.rstrip().endswith("\x1b[?25h"), "the cursor is not shown again"
    # Without --count it runs until Ctrl-C.
    started = time.monotonic()
    out, status = run_in_pty(["watch"], env, 20, interrupt_after="QUEUE")
    assert status == 0 and "\x1b[?25h" in out, (status, out[-300:])
    assert time.monotonic() - started < 10


def test_watch_on_a_pipe_prints_one_frame_per_refresh():
    r = ctl("watch", "--count", "2", "--interval", "0.2")
    assert "\x1b[" not in r.stdout, repr(r.stdout[:200])
    assert r.stdout.count("atlas-ctl watch") == 2 and r.stdout.count("NODES") == 2, r.stdout
    r = ctl("watch", "--count", "2", "--interval", "0.2", "--json")
    frames = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(frames) == 2, r.stdout
    assert len(frames[0]["nodes"]) == 3 and len(frames[0]["slots"]) == 4, frames[0]
    assert "queue" in frames[0]


def test_an_unreachable_master_is_one_line_and_exit_1():
    port = free_port()
    one_line_failure(ctl("--master", f"127.0.0.1:{port}", "nodes", check=None),
                     f"cannot reach the master at 127.0.0.1:{port}", 5)
    # A Redis that cannot be reached: nothing tells where the master is.
    env = {**M.env, "REDIS_ADDRESS": f"127.0.0.1:{free_port()}"}
    one_line_failure(ctl("nodes", env=env, check=None), "Redis", 5)


def test_a_hung_master_is_one_line_and_exit_1_within_seconds():
    # Accepts connections (the kernel does) but never says a word.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        port = s.getsockname()[1]
        one_line_failure(ctl("--master", f"127.0.0.1:{port}", "nodes", check=None),
                         f"127.0.0.1:{port}", 8)


def test_a_frozen_master_is_one_line_and_exit_1_within_seconds():
    M.signal(signal.SIGSTOP)
    try:
        r = ctl("nodes", check=None, timeout=30)
    finally:
        M.signal(signal.SIGCONT)
    one_line_failure(r, f"127.0.0.1:{M.caf_port}", 8)
    # Thawed, it answers again, and the workers, which took it for dead
    # while it was frozen, join it again.
    wait_until(lambda: ctl("nodes", "--json", check=None).returncode == 0, 20,
               "the thawed master to answer")
    every_node = {M.node_id, A.node_id, B.node_id}
    wait_until(lambda: {n["node_id"] for n in ctl_json("nodes")["nodes"]} == every_node, 30,
               "both workers to rejoin the thawed master")


def test_a_certificate_that_is_not_an_operators_is_refused_with_one_line():
    # Someone else's CA, even with the cluster secret: no TLS session at all.
    d = tempfile.mkdtemp(prefix="atlas-ctl-cert-")
    ca, cert, key = foreign_certificate(f"{d}/other", "mallory", "operator")
    env = {**M.env, "ATLAS_CTL_CERT": cert, "ATLAS_CTL_KEY": key}
    one_line_failure(ctl("nodes", env=env, check=None), "certificate", 5)
    # Our CA, but a worker's certificate: the door wants an operator.
    _, cert, key = issue_certificate(cluster.home, "not-an-operator", "worker", f"{d}/ours")
    env = {**M.env, "ATLAS_CTL_CERT": cert, "ATLAS_CTL_KEY": key}
    one_line_failure(ctl("drain", A.node_id, env=env, check=None), "refused", 5)
    nodes = {n["node_id"]: n for n in ctl_json("nodes")["nodes"]}
    assert nodes[A.node_id]["drained"] is False
    # An operator's certificate issued for a machine without the shared home.
    _, cert, key = issue_certificate(cluster.home, "ops-laptop", "operator", f"{d}/ops")
    env = {**M.env, "ATLAS_CTL_CERT": cert, "ATLAS_CTL_KEY": key}
    assert A.node_id in ctl("nodes", env=env).stdout
    shutil.rmtree(d, ignore_errors=True)
    assert "operator ops-laptop connected" in M.node_log()


def test_schedules_lists_each_scheduled_job_with_state_and_next_run():
    assert ctl("schedules").stdout == "no scheduled jobs\n"
    for sid, schedule in (("ctl-nightly", "0 3 * * *"), ("ctl-held", {})):
        assert cluster.upload(sid, {"main.py": "print('hi')\n"})[0] == 200
        body = {"job_id": sid, "spec": {"command": ["main.py"]},
                "metadata": {"project_name": "ctl-sched", "username": "alice"},
                "schedule": schedule}
        status, raw = M.request("POST", "/scheduled_jobs", json.dumps(body),
                                {"Content-Type": "application/json"})
        assert status == 201, (sid, status, raw)
    out = ctl("schedules").stdout
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["ID", "PROJECT", "OWNER"], out
    held = next(line for line in lines if line.startswith("ctl-held"))
    nightly = next(line for line in lines if line.startswith("ctl-nightly"))
    assert lines.index(held) < lines.index(nightly), out  # by id
    assert "0 3 * * *" in nightly and "active" in nightly and "ctl-sched" in nightly, nightly
    assert "paused" in held or "no schedule" in held, held
    got = {s["id"]: s for s in ctl_json("schedules")["schedules"]}
    assert set(got) == {"ctl-nightly", "ctl-held"}, got
    n = got["ctl-nightly"]
    assert n["cron"] == "0 3 * * *" and n["status"] == "active" and n["runs"] == 0, n
    # The next 03:00 UTC, within a day.
    assert 0 < n["next_run"] - time.time() <= 86400 and time.gmtime(n["next_run"]).tm_hour == 3, n
    assert got["ctl-held"]["next_run"] is None, got["ctl-held"]
    # Pausing shows at once.
    status, _ = M.request("PUT", "/scheduled_jobs/ctl-nightly", json.dumps({"status": "paused"}),
                          {"Content-Type": "application/json"})
    assert status in (200, 204), status
    assert {s["id"]: s["status"] for s in ctl_json("schedules")["schedules"]}["ctl-nightly"] == "paused"
    for sid in ("ctl-nightly", "ctl-held"):
        assert M.request("DELETE", f"/scheduled_jobs/{sid}")[0] in (200, 204)
    assert ctl("schedules").stdout == "no scheduled jobs\n"


def test_workers_added_and_removed_on_worker_nodes_through_the_master():
    before = len(cluster.slots_of(A))
    # Asked on worker A's port: A forwards it to the master, which asks A's node.
    status, raw = A.request("POST", "/workers")
    assert status == 201, (status, raw)
    key = json.loads(raw)
    assert key.startswith(A.node_id + "/"), key
    wait_until(lambda: len(cluster.slots_of(A)) == before + 1, 20, "A's new slot")
    # Named in the body, on the master's port: a slot on B.
    status, raw = M.request("POST", "/workers", json.dumps({"node": B.node_id}),
                            {"Content-Type": "application/json"})
    assert status == 201 and json.loads(raw).startswith(B.node_id + "/"), (status, raw)
    key_b = json.loads(raw)
    wait_until(lambda: key_b in cluster.workers_view(), 20, "B's new slot")
    declared = {n["node_id"]: n["declared_slots"] for n in ctl_json("nodes")["nodes"]}
    assert declared[A.node_id] == before + 1, declared

    def slot_actors(node):
        return sum(a["name"] == "worker-slot" for a in ctl_json("actors", "--node", node.node_id)["actors"])
    assert slot_actors(A) == before + 1
    # Removed by the original's bare index on A's own port, and by key on the master's.
    status, raw = A.request("DELETE", "/workers/" + key.split("/")[1])
    assert status == 204, (status, raw)
    status, raw = M.request("DELETE", f"/workers/{key_b}")
    assert status == 204, (status, raw)
    wait_until(lambda: len(cluster.slots_of(A)) == before and key_b not in cluster.workers_view(),
               20, "the added slots to go")
    assert M.request("DELETE", f"/workers/{key_b}")[0] == 404
    assert slot_actors(A) == before and slot_actors(B) == 2  # the nodes stopped them


def test_a_master_that_went_away_is_one_line():
    stop_job(LONG)
    wait_states([LONG], TERMINAL, 60)
    # A watch on a terminal ends with one line, exit 1 and its cursor back.
    env = {k: v for k, v in M.env.items() if k != "NO_COLOR"}
    out, status = run_in_pty(["watch", "--interval", "0.2"], env, 60, interrupt_after="QUEUE",
                             then=M.stop)
    assert status == 1, (status, out[-500:])
    last = out.replace("\x1b[?25h", "").rstrip().splitlines()[-1]
    assert "atlas-ctl: " in last and "master" in last, repr(last)
    assert "\x1b[?25h" in out, repr(out[-300:])
    started = time.monotonic()
    r = ctl("nodes", check=None, timeout=30)
    assert time.monotonic() - started < 8
    # Its endpoint is still in Redis; nothing listens there any more.
    one_line_failure(r, "cannot reach the master", 8)


# A runner's timeout (SIGTERM) still stops every node and Redis.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
try:
    cluster.start()
    harness.run_tests([
        test_help_and_usage,
        test_nodes_lists_all_three_with_their_slot_counts,
        test_explicit_master_endpoint,
        test_a_running_job_appears_in_jobs_slots_and_job,
        test_actors_lists_the_master_every_slot_and_every_job_actor,
        test_drain_keeps_new_jobs_off_a_node_and_undrain_restores_it,
        test_drain_of_an_unknown_node_and_an_unknown_job_are_one_line,
        test_queue_shows_dispatch_order_and_reasons,
        test_watch_refreshes_in_place_on_a_terminal,
        test_watch_on_a_pipe_prints_one_frame_per_refresh,
        test_an_unreachable_master_is_one_line_and_exit_1,
        test_a_hung_master_is_one_line_and_exit_1_within_seconds,
        test_a_frozen_master_is_one_line_and_exit_1_within_seconds,
        test_a_certificate_that_is_not_an_operators_is_refused_with_one_line,
        test_schedules_lists_each_scheduled_job_with_state_and_next_run,
        test_workers_added_and_removed_on_worker_nodes_through_the_master,
        test_a_master_that_went_away_is_one_line,
    ])
finally:
    cluster.cleanup()
