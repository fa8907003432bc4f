"""Job dependencies (`after`) on a real cluster: a master (no slots) and one
worker with two slots, so that only the dependencies keep jobs apart.

A chain a -> b (after a:ok) -> c (after b:any) runs in order, b waits with its
reason in `atlas-ctl queue` and the scheduler's queue; d (after f:ok, f fails)
is cancelled naming f. The same chain survives a SIGKILL of the master while
a runs (a ends while no master runs). An `after` naming no job is refused."""

import json
import os
import subprocess
import tempfile

from cluster_harness import Cluster
from harness import make_project, run_tests, wait_until

CTL = os.environ.get("ATLAS_CTL", "atlas-ctl")
CLI = os.environ.get("FOUNDATIONS_CLI", "foundations")
TERMINAL = {"completed", "failed", "cancelled"}

cluster = Cluster(workers=1, slots=2)
M = cluster.master


def queue(job_id, script, after=()):
    """Uploads a tiny bundle and queues `script` (sh) with `after`; (status, body)."""
    status, raw = cluster.upload(job_id, {"noop.txt": "tiny\n"})
    assert status == 200, (job_id, status, raw)
    body = {"job_id": job_id,
            "spec": {"entrypoint": ["/bin/sh", "-c", script],
                     "environment": {"MARKS": cluster.marks, "ATLAS_TEST_TOKEN": cluster.token}},
            "metadata": {"project_name": "deps", "username": "alice"},
            "gpu_spec": {"num_gpus": 0}}
    if after:
        body["after"] = list(after)
    status, raw = M.request("POST", "/queued_jobs", json.dumps(body),
                            {"Content-Type": "application/json"})
    return status, raw.decode(errors="replace")


def submit(job_id, script, after=()):
    status, raw = queue(job_id, script, after)
    assert status == 201, (job_id, status, raw)
    return job_id


def record(job_id):
    return cluster.record(job_id)


def wait_final(ids, timeout):
    def done():
        recs = {i: record(i) for i in ids}
        return recs if all(r["state"] in TERMINAL for r in recs.values()) else None
    return wait_until(done, timeout, f"{ids} to end")


def ctl_queue():
    r = subprocess.run([CTL, "queue", "--json"], env=M.env, capture_output=True, text=True,
                       timeout=20)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    return json.loads(r.stdout)["queue"]


def assert_in_order(recs, first, then):
    a, b = recs[first], recs[then]
    assert a["state"] == "completed" and b["state"] == "completed", (a, b)
    assert b["start_time"] >= a["end_time"], (first, a["end_time"], then, b["start_time"])


def test_a_chain_runs_in_order_and_a_failed_dependency_cancels_its_dependent():
    submit("dep-a", "sleep 3")
    submit("dep-b", "true", ["dep-a:ok"])
    submit("dep-c", "true", ["dep-b:any"])
    submit("dep-f", "exit 3")
    submit("dep-d", "true", ["dep-f"])
    # While a runs, b waits, and says so.
    entry = wait_until(lambda: next((e for e in ctl_queue() if e["job_id"] == "dep-b"), None), 10,
                       "dep-b in atlas-ctl queue")
    assert entry["reason"] == "waiting for dep-a (ok)", entry
    text = subprocess.run([CTL, "queue"], env=M.env, capture_output=True, text=True,
                          timeout=20).stdout
    assert "waiting for dep-a (ok)" in text, text
    status, raw = M.request("GET", "/queued_jobs")
    listed = {v["job_id"] for v in json.loads(raw).values()}
    assert status == 200 and {"dep-b", "dep-c"} <= listed, (status, listed)
    assert record("dep-b")["state"] == "queued"
    recs = wait_final(["dep-a", "dep-b", "dep-c", "dep-d", "dep-f"], 40)
    assert_in_order(recs, "dep-a", "dep-b")
    assert_in_order(recs, "dep-b", "dep-c")
    assert recs["dep-f"]["state"] == "failed", recs["dep-f"]
    d = recs["dep-d"]
    assert d["state"] == "cancelled", d
    assert d["reason"] == "dependency dep-f ended failed (needed ok)", d
    assert not d.get("start_time"), d
    assert ctl_queue() == [], ctl_queue()


def test_the_chain_survives_a_master_killed_while_its_first_job_runs():
    submit("rs-a", "sleep 4; touch \"$MARKS/rs-a-done\"")
    submit("rs-b", "true", ["rs-a:ok"])
    submit("rs-c", "true", ["rs-b:any"])
    cluster.wait_record("rs-a", lambda r: r["state"] == "running", 15, "running")
    M.kill()
    # rs-a ends while no master runs: its slot keeps the news for the next one.
    wait_until(lambda: os.path.exists(cluster.marks + "/rs-a-done"), 15, "rs-a to end")
    M.start()
    recs = wait_final(["rs-a", "rs-b", "rs-c"], 40)
    assert_in_order(recs, "rs-a", "rs-b")
    assert_in_order(recs, "rs-b", "rs-c")


def test_an_after_naming_no_job_is_refused_with_its_id():
    status, raw = queue("dep-orphan", "true", ["no-such-job:any"])
    assert status == 400 and "no-such-job" in raw, (status, raw)
    status, _ = M.request("GET", "/api/v1/jobs/dep-orphan")
    assert status == 404, status


def test_the_cli_passes_after_and_refuses_bad_flags_with_exit_2():
    M.write_submission_config()
    project = make_project(tempfile.mkdtemp(prefix="atlas-deps-"), "print('hi')\n")
    env = dict(M.env)

    def cli(*args):
        return subprocess.run([CLI, "submit", "--stream-job-logs", "False", *args, "local",
                               project], env=env, capture_output=True, text=True, timeout=60)
    for flag, value in [("--time", "5x"), ("--after", "a:done"), ("--cpus", "0"),
                        ("--memory", "lots"), ("--ram", "-1")]:
        r = cli(flag, value)
        assert r.returncode == 2 and flag in r.stderr, (flag, r.returncode, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = cli("--after", "no-such-job")
    assert r.returncode == 1 and "no-such-job" in r.stderr, (r.returncode, r.stderr)
    # Repeated and comma-separated --after, with the other scheduling flags.
    r = cli("--after", "dep-a", "--after", "dep-b:any,dep-f:failed", "--time", "1:30",
            "--cpus", "0.5", "--memory", "1.5G")
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    rec = record(r.stdout.split("'")[1])
    assert rec["after"] == ["dep-a:ok", "dep-b:any", "dep-f:failed"], rec["after"]
    assert rec["time_limit"] == 90 and rec["cpus"] == 0.5, rec
    assert rec["memory_bytes"] == 1.5 * 2**30, rec["memory_bytes"]
    # job.config.yaml's time_limit, unless --time says otherwise.
    with open(os.path.join(project, "job.config.yaml"), "a") as f:
        f.write("time_limit: 2m\n")
    r = cli("--ram", "1.5")
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    rec = record(r.stdout.split("'")[1])
    assert rec["time_limit"] == 120 and rec["memory_bytes"] == 1.5 * 2**30, rec


def test_held_jobs_are_stopped_and_cleared_like_queued_ones():
    submit("cq-a", "sleep 30")
    submit("cq-b", "true", ["cq-a"])
    submit("cq-c", "true", ["cq-b:any"])
    submit("cq-d", "true", ["cq-a"])
    status, raw = M.request("DELETE", "/running_jobs/cq-d")
    assert status < 300, (status, raw)
    assert record("cq-d")["state"] == "cancelled"
    M.write_submission_config()
    r = subprocess.run([CLI, "clear-queue", "local"], env=M.env, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0 and "Removed" in r.stdout, (r.returncode, r.stdout, r.stderr)
    # Cleared newest first: cq-c is not released by the end of cq-b.
    assert record("cq-b")["state"] == "cancelled" and record("cq-c")["state"] == "cancelled"
    assert ctl_queue() == [], ctl_queue()
    M.request("DELETE", "/running_jobs/cq-a")
    wait_final(["cq-a"], 15)


try:
    cluster.start()
    run_tests([
        test_a_chain_runs_in_order_and_a_failed_dependency_cancels_its_dependent,
        test_the_chain_survives_a_master_killed_while_its_first_job_runs,
        test_an_after_naming_no_job_is_refused_with_its_id,
        test_the_cli_passes_after_and_refuses_bad_flags_with_exit_2,
        test_held_jobs_are_stopped_and_cleared_like_queued_ones,
    ])
finally:
    cluster.cleanup()
