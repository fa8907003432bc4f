"""A plain `python main.py` recorded as a job, as the original Atlas did when
an execution config named default existed: the run shows up running in its
project, its metrics, parameters and tags arrive, and its end (completed,
failed, or stopped by its owner after a crash) is written by the master.
A master restart leaves a running local run alone; its secret stops working
once it ended; the routes refuse what is not theirs."""

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

import harness
from harness import Node, wait_until
from dashboard_jobs import SDK_DIR

node = Node(slots=1).start()

SCRIPT = r'''
import os, sys, time, foundations
foundations.log_params({"lr": 0.5, "layers": [64, 32]})
for v in (0.9, 0.5, 0.25):
    foundations.log_metric("loss", v)
foundations.set_tag("local")
foundations.save_artifact(__file__)  # stays on this machine, with a warning
gate = os.environ.get("LOCAL_RUN_GATE")
if gate:  # wait (bounded) until the test opens the gate
    open(gate + ".waiting", "w").close()
    deadline = time.time() + 60
    while not os.path.exists(gate) and time.time() < deadline:
        time.sleep(0.05)
if os.environ.get("LOCAL_RUN_FAIL"):
    raise RuntimeError("the script failed on purpose")
print("job", os.environ.get("FOUNDATIONS_JOB_ID"))
'''


def run_dir(project="local-proj", execution=True):
    d = tempfile.mkdtemp(prefix="atlas-local-run-")
    with open(os.path.join(d, "main.py"), "w") as f:
        f.write(SCRIPT)
    with open(os.path.join(d, "job.config.yaml"), "w") as f:
        f.write(f"project_name: {project}\n")
    if execution:
        os.makedirs(os.path.join(d, "config", "execution"))
        with open(os.path.join(d, "config", "execution", "default.config.yaml"), "w") as f:
            f.write(f"scheduler_url: {node.gateway}\n")
    return d


def script_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if k not in ("FOUNDATIONS_JOB_ID", "ATLAS_JOB_SECRET", "ATLAS_API_URL",
                        "ATLAS_LOCAL_RUN", "FOUNDATIONS_PROJECT_NAME", "PROJECT_NAME")}
    env.update({"PYTHONPATH": SDK_DIR, "FOUNDATIONS_HOME": tempfile.mkdtemp(prefix="atlas-fh-")})
    env.update(extra)
    return env


def job_id_from(stderr):
    m = re.search(r"recording this local run as job (\S+)", stderr)
    assert m, stderr
    return m.group(1)


def record(job_id):
    status, body = node.json("GET", f"/api/v1/jobs/{job_id}")
    assert status == 200, (status, body)
    return body


def all_jobs():
    status, body = node.json("GET", "/api/v1/jobs")
    assert status == 200, (status, body)
    body = body.get("jobs", body) if isinstance(body, dict) else body
    return list(body.values()) if isinstance(body, dict) else body


def test_a_local_run_is_recorded_with_what_it_tracks():
    d = run_dir()
    r = subprocess.run([sys.executable, "main.py"], cwd=d, env=script_env(), capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r
    job_id = job_id_from(r.stderr)
    assert f"job {job_id}" in r.stdout
    assert "save_artifact: a local run's files stay on this machine" in r.stderr, r.stderr
    rec = record(job_id)
    assert rec["state"] == "completed" and rec["local_run"] is True, rec
    assert rec["project_name"] == "local-proj", rec
    status, body = node.json("GET", f"/api/v2beta/projects/local-proj/job_listing/{job_id}")
    assert status == 200, (status, body)
    assert [p[1] for p in body["series"]["loss"]] == [0.9, 0.5, 0.25], body
    params = {p["name"]: p["value"] for p in body["job_parameters"]}
    assert params == {"lr": 0.5, "layers_0": 64, "layers_1": 32}, body
    assert "local" in body["tags"], body
    assert not body.get("artifacts"), body  # nothing recorded that the server cannot serve
    # Its secret ended with it: a late entry is refused.
    status, _ = node.request("POST", f"/api/v1/local_runs/{job_id}/end",
                             json.dumps({"state": "completed"}),
                             {"Content-Type": "application/json", "x-atlas-job-secret": "x" * 40})
    assert status == 403, status


def test_an_uncaught_exception_ends_the_run_failed():
    d = run_dir()
    r = subprocess.run([sys.executable, "main.py"], cwd=d, env=script_env(LOCAL_RUN_FAIL="1"),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "failed on purpose" in r.stderr, r
    rec = record(job_id_from(r.stderr))
    assert rec["state"] == "failed" and rec["return_code"] == 1, rec
    assert "uncaught exception" in rec["reason"], rec


def test_without_an_execution_config_nothing_is_recorded():
    d = run_dir(execution=False)
    r = subprocess.run([sys.executable, "main.py"], cwd=d, env=script_env(), capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r
    assert "recording this local run" not in r.stderr
    assert "not running inside an Atlas job" in r.stderr, r.stderr


def log_since(offset):
    with open(node.home + "/node.log", errors="replace") as f:
        f.seek(offset)
        return f.read()


def start_gated(gate):
    d = run_dir()
    proc = subprocess.Popen([sys.executable, "main.py"], cwd=d, env=script_env(LOCAL_RUN_GATE=gate),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_until(lambda: os.path.exists(gate + ".waiting"), 30, "the local run to start")
    return proc


def test_a_master_restart_leaves_a_running_local_run_alone():
    gate = tempfile.mktemp(prefix="atlas-gate-")
    proc = start_gated(gate)
    try:
        running = wait_until(lambda: [j for j in all_jobs()
                                      if j.get("local_run") and j["state"] == "running"], 15,
                             "the local run to be running")
        job_id = running[0]["job_id"]
        node.stop_server()
        before = os.path.getsize(node.home + "/node.log")
        node.start()
        wait_until(lambda: "slot registered" in log_since(before), 15, "the slot to register")
        # A slot's running job would have been recovered, awaiting its slot.
        assert "master recovered" not in log_since(before), log_since(before)
        assert record(job_id)["state"] == "running", record(job_id)
        open(gate, "w").close()
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, (out, err)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert record(job_id)["state"] == "completed", record(job_id)


def test_a_crashed_local_run_is_ended_by_a_stop():
    gate = tempfile.mktemp(prefix="atlas-gate-")
    proc = start_gated(gate)
    proc.send_signal(signal.SIGKILL)  # no exit handler runs: nothing reports its end
    _, err = proc.communicate(timeout=30)
    job_id = job_id_from(err)
    assert record(job_id)["state"] == "running"
    status, body = node.request("DELETE", f"/running_jobs/{job_id}")
    assert status == 204, (status, body)
    rec = record(job_id)
    assert rec["state"] == "cancelled" and "local run" in rec["reason"], rec
    status, body = node.request("DELETE", f"/running_jobs/{job_id}")
    assert status == 409, (status, body)
    # A finished local run is deleted as any job is.
    status, body = node.request("DELETE", f"/completed_jobs/{job_id}")
    assert status in (200, 204), (status, body)
    assert node.json("GET", f"/api/v1/jobs/{job_id}")[0] == 404


def test_the_routes_refuse_what_is_not_theirs():
    def post(path, body, headers=None):
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        return node.request("POST", path, body if isinstance(body, str) else json.dumps(body), h)
    assert post("/api/v1/local_runs", "{nope")[0] == 400
    assert post("/api/v1/local_runs", {"job_id": "../x", "spec": {}})[0] == 400
    status, raw = post("/api/v1/local_runs", {"job_id": "lr-dup", "spec": {},
                                              "metadata": {"project_name": "p"}})
    assert status == 201, (status, raw)
    secret = json.loads(raw)["secret"]
    assert post("/api/v1/local_runs", {"job_id": "lr-dup", "spec": {}})[0] == 409
    end = "/api/v1/local_runs/lr-dup/end"
    assert post(end, {"state": "completed"})[0] == 401
    assert post(end, {"state": "completed"}, {"x-atlas-job-secret": "wrong"})[0] == 403
    assert post(end, {"state": "running"}, {"x-atlas-job-secret": secret})[0] == 400
    assert post(end, {"state": "completed", "return_code": 0},
                {"x-atlas-job-secret": secret})[0] == 200
    assert post(end, {"state": "failed"}, {"x-atlas-job-secret": secret})[0] == 403
    # A job the cluster runs is not ended through this route, secret or not.
    node.upload("lr-queued", {"main.py": "print(1)"})
    status, _ = node.json("POST", "/queued_jobs", {"job_id": "lr-queued",
                                                   "spec": {"command": ["main.py"]}})
    assert status in (200, 201), status
    assert post("/api/v1/local_runs/lr-queued/end", {"state": "completed"},
                {"x-atlas-job-secret": secret})[0] == 403


try:
    harness.run_tests([
        test_a_local_run_is_recorded_with_what_it_tracks,
        test_an_uncaught_exception_ends_the_run_failed,
        test_without_an_execution_config_nothing_is_recorded,
        test_a_master_restart_leaves_a_running_local_run_alone,
        test_a_crashed_local_run_is_ended_by_a_stop,
        test_the_routes_refuse_what_is_not_theirs,
    ])
finally:
    node.cleanup()
