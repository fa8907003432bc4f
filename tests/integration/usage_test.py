"""Usage accounting (`atlas-ctl usage`, GET /api/v1/usage) on a real node
in GPU mode (`-g`; a stand-in `nvidia-smi` earlier on PATH describes 4 GPUs
of one model, as in gpu_test.py).

alice runs two 3-second jobs on one GPU each (project "vision"), bob one
2-second job without a GPU (project "nlp"); the user of a job is its
submission's metadata.username (no -p here). Then: per user, alice's
GPU-seconds are the sum of her jobs' start->end (and within [6, 8]), bob's
are 0 and his slot-seconds within [2, 3.5]; GPU-seconds are named by the
model; --by project and --by day add up the same; the HTTP route answers
the CLI's rows; an empty window and a bad --by are handled. Deleting the jobs
and restarting the node changes no total.

Every wait is bounded; everything started is stopped by its pid."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone

import harness
from harness import GpuNode, stand_in_nvidia_smi, wait_until

CTL = os.environ.get("ATLAS_CTL", "atlas-ctl")
MODEL = "NVIDIA Stand-in H100 80GB HBM3"
TAG = uuid.uuid4().hex[:6]
TERMINAL = {"completed", "failed", "cancelled"}

bin_dir, gpu_env = stand_in_nvidia_smi(MODEL, tag="bbbb")

node = GpuNode(env=gpu_env)
jobs = {}  # job id -> (user, project, GPUs, seconds)


def submit(job_id, user, project, gpus, seconds):
    status, raw = node.upload(job_id, {"noop.txt": "tiny\n"})
    assert status == 200, (status, raw)
    status, answer = node.json("POST", "/queued_jobs", {
        "job_id": job_id, "spec": {"entrypoint": ["sh", "-c"], "command": [f"sleep {seconds}"]},
        "metadata": {"project_name": project, "username": user},
        "gpu_spec": {"num_gpus": gpus}})
    assert status == 201 and answer == job_id, (status, answer)
    jobs[job_id] = (user, project, gpus, seconds)
    return job_id


def record(job_id):
    status, raw = node.request("GET", f"/api/v1/jobs/{job_id}")
    assert status == 200, (job_id, status, raw)
    return json.loads(raw)


def ctl(*args, check=0, timeout=30):
    r = subprocess.run([CTL, *args], env=node.env, capture_output=True, text=True,
                       timeout=timeout)
    if check is not None:
        assert r.returncode == check, (args, r.returncode, r.stdout, r.stderr)
    return r


def usage(by=None, since=None, until=None):
    """GET /api/v1/usage."""
    q = "&".join(f"{k}={v}" for k, v in (("by", by), ("since", since), ("until", until)) if v)
    status, raw = node.request("GET", "/api/v1/usage" + (f"?{q}" if q else ""))
    assert status == 200, (q, status, raw[:300])
    doc = json.loads(raw)
    assert set(doc) >= {"by", "since", "until", "rows"}, doc
    return doc


def cli_usage(*args):
    """atlas-ctl usage ... --json."""
    doc = json.loads(ctl("usage", *args, "--json").stdout)
    assert set(doc) >= {"by", "since", "until", "rows"}, doc
    return doc


def rows_by(doc, key):
    out = {}
    for row in doc["rows"]:
        assert row[key] not in out, f"two rows for {key}={row[key]}: {doc['rows']}"
        assert set(row) >= {"jobs", "slot_seconds", "gpu_seconds", "gpu_seconds_by_model",
                            "cpu_seconds", "peak_memory_bytes"}, row
        out[row[key]] = row
    return out


def close(a, b, tol=0.01):
    return abs(a - b) <= tol


def same_rows(a, b):
    """Two row lists equal up to float printing."""
    assert len(a) == len(b), (a, b)
    for x, y in zip(a, b):
        assert set(x) == set(y), (x, y)
        for k in x:
            if isinstance(x[k], float) or isinstance(y[k], float):
                assert close(x[k], y[k], 1e-6), (k, x, y)
            elif isinstance(x[k], dict):
                assert set(x[k]) == set(y[k]) and all(close(x[k][m], y[k][m], 1e-6) for m in x[k]), (k, x, y)
            else:
                assert x[k] == y[k], (k, x, y)


state = {}


# --- tests

def test_jobs_of_two_users_run_on_gpus_and_without():
    a1 = submit(f"ua{TAG}-1", "alice", "vision", 1, 3)
    a2 = submit(f"ua{TAG}-2", "alice", "vision", 1, 3)
    b1 = submit(f"ub{TAG}-1", "bob", "nlp", 0, 2)
    recs = {j: wait_until(lambda j=j: (lambda r: r if r["state"] in TERMINAL else None)(record(j)),
                          60, f"{j} to end") for j in (a1, a2, b1)}
    for j, r in recs.items():
        assert r["state"] == "completed", r
    assert len(recs[a1]["gpus"]) == 1 and len(recs[a2]["gpus"]) == 1 and recs[b1]["gpus"] == [], recs
    assert recs[a1]["gpu_model"] == MODEL, recs[a1]["gpu_model"]
    state["recs"] = recs


def test_usage_by_user_counts_slot_and_gpu_seconds():
    recs = state["recs"]
    doc = usage(by="user")
    assert doc["by"] == "user", doc
    assert usage()["rows"] == doc["rows"], "by=user is the default"
    rows = rows_by(doc, "user")
    assert set(rows) == {"alice", "bob"}, rows
    alice, bob = rows["alice"], rows["bob"]
    ran = {u: sum(r["end_time"] - r["start_time"] for j, r in recs.items() if jobs[j][0] == u)
           for u in ("alice", "bob")}
    assert alice["jobs"] == 2 and bob["jobs"] == 1, (alice, bob)
    # GPU-seconds are start->end on the slot times the GPUs held: exactly
    # what the records say (to the ms they are printed with) ...
    assert close(alice["gpu_seconds"], ran["alice"]) and close(alice["slot_seconds"], ran["alice"]), \
        (alice, ran)
    # ... and the 2 x 3 s slept plus at most 1 s per job of overhead (start
    # to end on the slot includes starting the process and reporting its end).
    assert 6.0 <= alice["gpu_seconds"] <= 6.0 + 2.0, alice
    assert alice["gpu_seconds_by_model"].keys() == {MODEL}, alice
    assert close(alice["gpu_seconds_by_model"][MODEL], alice["gpu_seconds"]), alice
    assert bob["gpu_seconds"] == 0 and not any(bob["gpu_seconds_by_model"].values()), bob
    assert 2.0 <= bob["slot_seconds"] <= 3.5 and close(bob["slot_seconds"], ran["bob"]), (bob, ran)
    for row in (alice, bob):
        assert 0 <= row["cpu_seconds"] < 5, row  # sleeping jobs use hardly any CPU
        assert isinstance(row["peak_memory_bytes"], int), row
        assert 0 < row["peak_memory_bytes"] < 1 << 30, row  # sh + sleep: a few MB
    state["by_user"] = doc


def test_usage_by_project_and_by_day_add_up_the_same():
    by_user = rows_by(state["by_user"], "user")
    projects = rows_by(usage(by="project"), "project")
    assert set(projects) == {"vision", "nlp"}, projects
    assert projects["vision"]["jobs"] == 2 and projects["nlp"]["jobs"] == 1, projects
    assert close(projects["vision"]["gpu_seconds"], by_user["alice"]["gpu_seconds"]), projects
    assert close(projects["nlp"]["slot_seconds"], by_user["bob"]["slot_seconds"]), projects
    days = rows_by(usage(by="day"), "day")
    want_days = {}
    for j, r in state["recs"].items():
        day = datetime.fromtimestamp(r["end_time"], timezone.utc).strftime("%Y-%m-%d")
        want_days[day] = want_days.get(day, 0) + 1
    assert {d: row["jobs"] for d, row in days.items()} == want_days, (days, want_days)
    total_gpu = sum(row["gpu_seconds"] for row in days.values())
    assert close(total_gpu, by_user["alice"]["gpu_seconds"]), (days, by_user)


def test_an_empty_window_and_bad_parameters_are_handled():
    day = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    assert usage(by="user", since="2001-01-01", until="2001-01-31")["rows"] == []
    future = int(time.time()) + 10 * 86400
    assert usage(since=str(future), until=str(future + 86400))["rows"] == []
    today = usage(by="day", since=day, until=day)
    assert [r["day"] for r in today["rows"]] in ([day], []), today  # [] only past midnight UTC
    for query, word in (("by=colour", b"by"), ("since=yesterday-ish", b"since"),
                        ("until=2001-13-45", b"until"), ("since=2002-01-01&until=2001-01-01", b"since")):
        status, raw = node.request("GET", f"/api/v1/usage?{query}")
        assert status == 400 and word in raw, (query, status, raw[:200])


def test_atlas_ctl_usage_prints_the_http_routes_rows():
    for by in ("user", "project", "day"):
        cli = cli_usage("--by", by)
        api = usage(by=by)
        assert cli["by"] == by, cli
        same_rows(cli["rows"], api["rows"])
    day = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    same_rows(cli_usage("--since", day, "--until", day, "--by", "project")["rows"],
              usage(by="project", since=day, until=day)["rows"])
    assert cli_usage("--since", "2001-01-01", "--until", "2001-01-31")["rows"] == []
    # The text table names both users.
    text = ctl("usage", "--by", "user").stdout
    assert "alice" in text and "bob" in text, text
    r = ctl("usage", "--by", "colour", check=None)
    assert r.returncode != 0 and r.stdout == "", (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and ("colour" in lines[0] or "--by" in lines[0]), r.stderr


def test_totals_outlive_the_jobs_deletion_and_a_restart():
    before = {by: usage(by=by)["rows"] for by in ("user", "project", "day")}
    for j in jobs:
        status, raw = node.request("DELETE", f"/completed_jobs/{j}")
        assert status in (200, 204), (j, status, raw)
        status, _ = node.request("GET", f"/api/v1/jobs/{j}")
        assert status == 404, (j, status)
    for by, rows in before.items():
        same_rows(usage(by=by)["rows"], rows)
    node.stop_server()
    node.start()
    for by, rows in before.items():
        same_rows(usage(by=by)["rows"], rows)


signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
try:
    node.start()
    harness.run_tests([
        test_jobs_of_two_users_run_on_gpus_and_without,
        test_usage_by_user_counts_slot_and_gpu_seconds,
        test_usage_by_project_and_by_day_add_up_the_same,
        test_an_empty_window_and_bad_parameters_are_handled,
        test_totals_outlive_the_jobs_deletion_and_a_restart,
        test_atlas_ctl_usage_prints_the_http_routes_rows,
    ])
finally:
    node.cleanup()
    shutil.rmtree(bin_dir, ignore_errors=True)
