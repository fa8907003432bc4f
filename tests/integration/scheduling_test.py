"""Scheduling policy on a real node (6 slots, its CPUs set to 2 by
ATLAS_NODE_CPUS, real Redis): quotas, placement by CPUs, preemption, and
what submission refuses.

- Quotas: alice may run 2 jobs (quotas.users.alice.running_jobs); she
  submits 5, bob 4, on 6 free slots. Never more than 2 of hers overlap (from
  the records' start/end), bob's start at once, and `atlas-ctl queue` shows
  "over quota: alice: 2 of 2 running jobs" while hers wait.
- CPUs: 4 jobs asking 1 CPU each on the 2-CPU node run 2 at a time.
- Preemption (scheduling.preemption, min_runtime_s 0): 6 low-priority jobs
  fill every slot; a high-priority job arrives. Exactly one low job gets the
  warning signal (SIGUSR1) before SIGTERM, is requeued with its retries
  untouched and reruns with ATLAS_PREEMPTED=1, then completes; the high job
  starts within stop_grace_s + 1 s.
- Refused at submission with a 400 naming why: a time limit over the
  project's maximum, and a user whose quota allows no job at all; a quota
  group a client names in its own x-atlas-groups header is ignored.

Every wait is bounded; everything started is stopped by its pid."""

import json
import os
import subprocess
import tempfile
import time
import uuid

import harness
from harness import Node, wait_until

CTL = os.environ.get("ATLAS_CTL", "atlas-ctl")
TERMINAL = {"completed", "failed", "cancelled"}
MARKS = tempfile.mkdtemp(prefix="atlas-sched-marks-")

# A job that notes each run (with ATLAS_PREEMPTED), the warning signal and
# SIGTERM in files named after itself, then works for argv[1] seconds.
SCRIPT = r"""
import os, signal, sys, time
d, me = os.environ["MARKS"], os.environ["FOUNDATIONS_JOB_ID"]
def note(what, text):
    with open(f"{d}/{me}.{what}", "a") as f:
        f.write(text + "\n")
note("runs", os.environ.get("ATLAS_PREEMPTED", "0"))
signal.signal(signal.SIGUSR1, lambda *_: note("warned", repr(time.time())))
def term(*_):
    note("term", repr(time.time()))
    sys.exit(143)
signal.signal(signal.SIGTERM, term)
end = time.time() + float(sys.argv[1])
while time.time() < end:
    time.sleep(0.05)
"""

CONFIG = """quotas:
  users:
    alice: {running_jobs: 2}
    carol: {running_jobs: 0}
  groups:
    frozen: {running_jobs: 0}
projects:
  quick: {max_time_limit_s: 5}
scheduling:
  preemption: true
  min_runtime_s: 0
"""

node = Node(slots=6, atlas_config=CONFIG, env={"ATLAS_NODE_CPUS": "2"})


def submit(user, seconds, priority=0, cpus=None, project="sched", time_limit=None, expect=201):
    job_id = f"s-{user}-{uuid.uuid4().hex[:8]}"
    status, raw = node.upload(job_id, {"main.py": SCRIPT})
    assert status == 200, (status, raw)
    spec = {"command": ["main.py", str(seconds)], "environment": {"MARKS": MARKS}}
    if cpus is not None:
        spec["cpus"] = cpus
    body = {"job_id": job_id, "spec": spec, "priority": priority,
            "metadata": {"project_name": project, "username": user}}
    if time_limit is not None:
        body["time_limit"] = time_limit
    status, answer = node.json("POST", "/queued_jobs", body)
    assert status == expect, (status, answer)
    return job_id if status == 201 else answer


def record(job_id):
    status, raw = node.request("GET", f"/api/v1/jobs/{job_id}")
    assert status == 200, (job_id, status, raw)
    return json.loads(raw)


def wait_all(ids, timeout):
    wait_until(lambda: all(record(i)["state"] in TERMINAL for i in ids), timeout,
               f"{len(ids)} jobs to end")
    return {i: record(i) for i in ids}


def most_overlapping(recs):
    """The most of `recs` that ran at the same moment (start/end times)."""
    edges = sorted([(r["start_time"], 1) for r in recs] + [(r["end_time"], -1) for r in recs],
                   key=lambda e: (e[0], e[1]))
    now = most = 0
    for _, d in edges:
        now += d
        most = max(most, now)
    return most


def marks(job_id, what):
    try:
        with open(f"{MARKS}/{job_id}.{what}") as f:
            return f.read().split()
    except FileNotFoundError:
        return []


def test_quota_holds_alice_to_two_running_jobs():
    alice = [submit("alice", 2) for _ in range(5)]
    bob = [submit("bob", 2) for _ in range(4)]
    wait_until(lambda: "over quota: alice: 2 of 2 running jobs" in subprocess.run(
        [CTL, "queue"], env=node.env, capture_output=True, text=True, timeout=30).stdout,
        20, "atlas-ctl queue to show alice's quota")
    recs = wait_all(alice + bob, 60)
    assert all(r["state"] == "completed" for r in recs.values()), recs
    assert most_overlapping([recs[i] for i in alice]) <= 2
    assert most_overlapping([recs[i] for i in bob]) == 4  # bob used the other slots at once
    for i in bob:
        assert recs[i]["start_time"] - recs[i]["queued_time"] < 2, recs[i]


def test_cpu_placement_runs_two_one_cpu_jobs_on_two_cpus():
    ids = [submit("dan", 2, cpus=1) for _ in range(4)]
    recs = wait_all(ids, 60)
    assert all(r["state"] == "completed" and r["cpus"] == 1 for r in recs.values()), recs
    assert most_overlapping(list(recs.values())) == 2
    span = max(r["end_time"] for r in recs.values()) - min(r["start_time"] for r in recs.values())
    assert span >= 4, span


def test_high_priority_preempts_one_low_job():
    low = [submit("lo", 8) for _ in range(6)]
    wait_until(lambda: all(marks(i, "runs") for i in low), 30, "6 low jobs to run")
    sent = time.time()
    high = submit("hi", 1, priority=5)
    rec = record(high)
    wait_until(lambda: record(high)["start_time"], 10, "the high job to start")
    started = record(high)["start_time"]
    assert started - sent <= 2 + 1, started - sent  # stop_grace_s 2 (harness)
    recs = wait_all(low + [high], 60)
    assert all(r["state"] == "completed" for r in recs.values()), recs
    victims = [i for i in low if marks(i, "term")]
    assert len(victims) == 1, {i: marks(i, "runs") for i in low}
    v = victims[0]
    assert marks(v, "warned") and float(marks(v, "warned")[0]) <= float(marks(v, "term")[0])
    assert marks(v, "runs") == ["0", "1"], marks(v, "runs")
    assert recs[v]["preemptions"] == 1 and recs[v]["retries"] == 0, recs[v]
    assert recs[v]["preempted_by"] == 5, recs[v]
    states = [h["state"] for h in recs[v]["history"]]
    assert states.count("running") == 2 and "lost" in states, states
    for i in low:
        if i != v:
            assert marks(i, "runs") == ["0"] and not marks(i, "warned"), i
    assert rec["priority"] == 5


def test_submission_refuses_what_can_never_run():
    why = submit("erin", 1, project="quick", time_limit=10, expect=400)
    assert "over projects.quick.max_time_limit_s (5 s)" in json.dumps(why), why
    ok = submit("erin", 1, project="quick", time_limit=5)
    assert record(ok)["time_limit"] == 5
    why = submit("carol", 1, expect=400)
    assert "carol may run no jobs" in json.dumps(why), why
    # Groups come from a verified token only: a client's own header is dropped.
    forged = f"s-forged-{uuid.uuid4().hex[:8]}"
    assert node.upload(forged, {"main.py": SCRIPT})[0] == 200
    status, raw = node.request("POST", "/queued_jobs", json.dumps({
        "job_id": forged, "spec": {"command": ["main.py", "0"], "environment": {"MARKS": MARKS}},
        "metadata": {"project_name": "sched", "username": "frank"}}),
        {"Content-Type": "application/json", "x-atlas-groups": "frozen"})
    assert status == 201, (status, raw)
    assert record(forged)["groups"] == []
    wait_all([ok, forged], 30)


if __name__ == "__main__":
    try:
        node.start()
        harness.run_tests([test_quota_holds_alice_to_two_running_jobs,
                           test_cpu_placement_runs_two_one_cpu_jobs_on_two_cpus,
                           test_high_priority_preempts_one_low_job,
                           test_submission_refuses_what_can_never_run])
    finally:
        node.cleanup()
