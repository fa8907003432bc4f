"""POST /workers and DELETE /workers/<id> (the original scheduler's slot
routes) on a real node started with one slot, real Redis:

- POST adds a slot at run time (201, its id "<node>/<index>"): two jobs then
  run at once, and GET /workers, `atlas-ctl slots` and the node's slot count
  (`atlas-ctl nodes --json`) show it.
- DELETE of an idle slot removes it at once (204; also by the original's
  bare index, /workers/<index>); of a busy slot answers 202, its job
  completes, then the slot is gone and took no new job meanwhile.
- An unknown id is 404 with a JSON error; a body that is not understood 400.

Non-admins in -p mode are refused in auth_test.py. Every wait is bounded;
everything started is stopped by its pid."""

import json
import os
import subprocess
import time
import uuid

import harness
from harness import Node, wait_until

CTL = os.environ.get("ATLAS_CTL", "atlas-ctl")
TERMINAL = {"completed", "failed", "cancelled"}
SLEEPER = "import sys, time\ntime.sleep(float(sys.argv[1]))\n"

node = Node(slots=1)


def node_id():
    status, body = node.json("GET", "/healthz")
    assert status == 200, (status, body)
    return body["node"]


def workers():
    status, body = node.json("GET", "/workers")
    assert status == 200, (status, body)
    return body


def submit(seconds):
    job_id = f"w-{uuid.uuid4().hex[:10]}"
    status, raw = node.upload(job_id, {"main.py": SLEEPER})
    assert status == 200, (status, raw)
    status, body = node.json("POST", "/queued_jobs", {
        "job_id": job_id, "spec": {"command": ["main.py", str(seconds)]},
        "metadata": {"project_name": "workers", "username": "tester"}})
    assert status == 201, (status, body)
    return job_id


def record(job_id):
    status, raw = node.request("GET", f"/api/v1/jobs/{job_id}")
    assert status == 200, (status, raw)
    return json.loads(raw)


def wait_done(ids, timeout):
    return wait_until(lambda: (lambda recs: recs if all(r["status"] in TERMINAL for r in recs)
                               else None)([record(i) for i in ids]), timeout,
                      f"jobs {ids} to end")


def ctl(*args):
    r = subprocess.run([CTL, *args], env=node.env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, (args, r.returncode, r.stdout, r.stderr)
    return r.stdout


def declared_slots():
    nodes = json.loads(ctl("nodes", "--json"))
    nodes = nodes.get("nodes", nodes) if isinstance(nodes, dict) else nodes
    return {n["node_id"]: n["declared_slots"] for n in nodes}


def test_an_added_slot_runs_a_second_job_at_once():
    me = node_id()
    assert list(workers()) == [f"{me}/0"], workers()
    status, key = node.json("POST", "/workers")
    assert status == 201, (status, key)
    assert key == f"{me}/1", key
    wait_until(lambda: key in workers(), 10, "the new slot in GET /workers")
    assert key in ctl("slots")
    assert declared_slots()[me] == 2, declared_slots()
    a, b = submit(3), submit(3)
    recs = wait_done([a, b], 30)
    assert all(r["status"] == "completed" for r in recs), recs
    assert {r["slot"] for r in recs} == {f"{me}/0", key}, [r["slot"] for r in recs]
    # Both ran at once: each started before the other ended.
    ra, rb = recs
    assert ra["start_time"] < rb["end_time"] and rb["start_time"] < ra["end_time"], recs


def test_deleting_an_idle_slot_removes_it_at_once():
    me = node_id()
    status, key = node.json("POST", "/workers")
    assert status == 201, (status, key)
    wait_until(lambda: key in workers(), 10, "the new slot in GET /workers")
    before = declared_slots()[me]
    status, raw = node.request("DELETE", f"/workers/{key}")
    assert status == 204, (status, raw)
    assert key not in workers(), workers()
    assert declared_slots()[me] == before - 1
    # The original's form: a bare index names a slot of the answering node.
    status, key = node.json("POST", "/workers")
    assert status == 201, (status, key)
    wait_until(lambda: key in workers(), 10, "the new slot in GET /workers")
    status, raw = node.request("DELETE", "/workers/" + key.split("/")[1])
    assert status == 204, (status, raw)
    wait_until(lambda: key not in ctl("slots"), 10, "the slot gone from atlas-ctl slots")


def test_deleting_a_busy_slot_drains_it():
    me = node_id()
    slots = sorted(workers())
    assert len(slots) == 2, slots  # /0 and the one the first test added
    busy = submit(4)
    wait_until(lambda: record(busy)["status"] == "running", 20, "the job to run")
    key = record(busy)["slot"]
    status, raw = node.request("DELETE", f"/workers/{key}")
    assert status == 202, (status, raw)
    assert json.loads(raw)["worker"] == key
    assert key in workers()  # still there while its job runs
    # It takes no new work meanwhile: the next jobs go to the other slot.
    others = [submit(0.2), submit(0.2)]
    recs = wait_done([busy] + others, 40)
    assert recs[0]["status"] == "completed", recs[0]
    assert all(r["slot"] != key for r in recs[1:]), [r["slot"] for r in recs]
    wait_until(lambda: key not in workers(), 10, "the drained slot to go")
    assert declared_slots()[me] == 1, declared_slots()
    # The node still runs jobs on what is left.
    assert wait_done([submit(0.1)], 20)[0]["status"] == "completed"


def test_unknown_or_malformed_ids_are_404_and_bad_bodies_400():
    me = node_id()
    for path in (f"/workers/{me}/99", "/workers/99", "/workers/nope/7", "/workers/x"):
        status, raw = node.request("DELETE", path)
        assert status == 404, (path, status, raw)
        assert "error" in json.loads(raw), raw
    status, raw = node.request("POST", "/workers", '{"node": "no-such-node"}',
                               {"Content-Type": "application/json"})
    assert status == 404 and "no-such-node" in json.loads(raw)["error"], (status, raw)
    status, raw = node.request("POST", "/workers", "[1]", {"Content-Type": "application/json"})
    assert status == 400, (status, raw)
    assert len(workers()) == 1, workers()


if __name__ == "__main__":
    try:
        node.start()
        harness.run_tests([test_an_added_slot_runs_a_second_job_at_once,
                           test_deleting_an_idle_slot_removes_it_at_once,
                           test_deleting_a_busy_slot_drains_it,
                           test_unknown_or_malformed_ids_are_404_and_bad_bodies_400])
    finally:
        node.cleanup()
