"""The ORIGINAL `foundations` client (dessa-oss/atlas, run from its source)
against a real node: `submit` (upload, queue, stream), `get logs`, `stop`,
`delete job`, `clear-queue` and `get job` (the job's archive with its
artifacts), each checked against the server's state.

The original source is not part of this repository: ATLAS_ORIGINAL_SOURCE
names a directory holding the original repository's tree (the one with
`atlas/foundations_core_cli/src/...`, or that `atlas/` folder itself).
Unset, the test is skipped (77). The client runs under the Debian Python
(/usr/bin/python3, or ATLAS_ORIGINAL_PYTHON) with the Debian packages of
what it imports: python3-yaml, python3-requests, python3-promise,
python3-redis, python3-jsonschema (scripts/install-deps.sh).

Two things it imports have no working Debian counterpart and are put
beside it, never exercised by these commands:
- `slackclient` (the original's Slack notifier imports it when its events
  module loads; it would only be called with FOUNDATIONS_SLACK_TOKEN set):
  a stand-in whose SlackClient refuses to be made.
- PyYAML 5's `yaml.YAMLLoadWarning`, which the original imports only to
  silence it and Debian's PyYAML 6 no longer has: an empty warning class.
"""

import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile

import harness
from harness import Node

SOURCE = os.environ.get("ATLAS_ORIGINAL_SOURCE", "")
if not SOURCE:
    print("skipped: ATLAS_ORIGINAL_SOURCE (the original Atlas source tree) is not set", flush=True)
    sys.exit(77)

ATLAS_DIR = SOURCE if os.path.isdir(os.path.join(SOURCE, "foundations_core_cli")) \
    else os.path.join(SOURCE, "atlas")
# What the original `foundations` command imports (its setup.py chain).
PACKAGES = ["foundations_sdk", "foundations_core_cli", "foundations_atlas_cli",
            "foundations_contrib", "foundations_internal", "foundations_events",
            "foundations_authentication", "foundations_local_docker_scheduler_plugin"]
PYTHON = os.environ.get("ATLAS_ORIGINAL_PYTHON") or \
    ("/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable)
DEBIAN_MODULES = {"yaml": "python3-yaml", "requests": "python3-requests",
                  "promise": "python3-promise", "redis": "python3-redis",
                  "jsonschema": "python3-jsonschema"}

# Runs the original's `python -m foundations` (what its `foundations`
# script did), with PyYAML 5's YAMLLoadWarning put back first.
LAUNCHER = """
import runpy, sys, yaml
if not hasattr(yaml, "YAMLLoadWarning"):
    yaml.YAMLLoadWarning = type("YAMLLoadWarning", (RuntimeWarning,), {})
sys.argv[0] = "foundations"
runpy.run_module("foundations", run_name="__main__", alter_sys=True)
"""

SLACK_STAND_IN = """class SlackClient:
    def __init__(self, *args, **kwargs):
        raise RuntimeError("stand-in slackclient: Slack is not part of this test")
"""

JOB = r'''
import os, tempfile
import foundations
print("original client job starts", flush=True)
foundations.log_metric("accuracy", 0.875)
with open("result.txt", "w") as f:
    f.write("inside the job directory")
foundations.save_artifact("result.txt", key="result")
outside = os.path.join(tempfile.mkdtemp(), "weights.bin")
with open(outside, "wb") as f:
    f.write(bytes(range(256)))
foundations.save_artifact(outside, key="weights")
print("original client job done", flush=True)
'''

SLOW_JOB = r'''
import time
print("slow job running", flush=True)
for i in range(120):
    print("tick", i, flush=True)
    time.sleep(0.5)
'''

for package in PACKAGES:
    if not os.path.isdir(os.path.join(ATLAS_DIR, package, "src")):
        raise SystemExit(f"ATLAS_ORIGINAL_SOURCE={SOURCE}: no {package}/src under {ATLAS_DIR}")
missing = subprocess.run([PYTHON, "-c", "import importlib.util, sys; print(' '.join(m for m in sys.argv[1:] "
                          "if importlib.util.find_spec(m) is None))", *DEBIAN_MODULES],
                         capture_output=True, text=True, timeout=30).stdout.split()
if missing:
    raise SystemExit(f"{PYTHON} lacks {missing}: install the Debian packages "
                     f"{[DEBIAN_MODULES[m] for m in missing]} (scripts/install-deps.sh)")

node = Node(slots=1).start()
work = tempfile.mkdtemp(prefix="atlas-orig-")
shim = os.path.join(work, "shim")
os.makedirs(shim)
with open(os.path.join(shim, "slackclient.py"), "w") as f:
    f.write(SLACK_STAND_IN)

# The client's own home: the original reads
# ~/.foundations/config/submission/<env>.config.yaml (FOUNDATIONS_HOME unset),
# translated by its local_docker_scheduler plugin, which needs these four keys.
client_home = os.path.join(work, "home")
os.makedirs(client_home + "/.foundations/config/submission")
with open(client_home + "/.foundations/config/submission/remote.config.yaml", "w") as f:
    f.write(f"scheduler_url: {node.gateway}\n"
            f"job_results_root: {node.home}/job_data\n"
            f"working_dir_root: {node.home}/job_data/working_dir\n"
            f"container_config_root: {node.home}/config/local_docker_scheduler/worker_config\n")

client_env = {k: v for k, v in os.environ.items()
              if k not in ("FOUNDATIONS_HOME", "FOUNDATIONS_TOKEN", "DISABLE_LOG_STREAMING",
                           "PYTHONPATH", "PYTHONHOME")}
client_env.update({
    "HOME": client_home,
    "FOUNDATIONS_COMMAND_LINE": "True",
    "PYTHONPATH": os.pathsep.join([shim] + [os.path.join(ATLAS_DIR, p, "src") for p in PACKAGES]),
})


def original(*args, cwd, timeout=90):
    """Runs the original `foundations <args>`; (returncode, stdout + stderr)."""
    r = subprocess.run([PYTHON, "-c", LAUNCHER, *args], cwd=cwd, env=client_env,
                       capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stdout + r.stderr


def project(name, main_py):
    directory = os.path.join(work, name)
    os.makedirs(directory)
    with open(os.path.join(directory, "main.py"), "w") as f:
        f.write(main_py)
    return directory


def submit(directory, *options):
    rc, out = original("submit", *options, "remote", ".", "main.py", cwd=directory)
    assert rc == 0, out
    found = re.search(r"Job submitted with ID '([^']+)' in project '([^']+)'", out)
    assert found, out
    return found.group(1), found.group(2), out


def wait_for_state(job_id, status, timeout=30):
    try:
        return node.wait_for_status(job_id, [status], timeout=timeout)
    except AssertionError:
        raise AssertionError((node.job(job_id), node.node_log()))


done_id = None


def test_submit_uploads_queues_runs_and_reports_completion():
    global done_id
    done_id, project_name, out = submit(project("orig-proj", JOB))
    assert project_name == "orig-proj", out
    assert "Job running, streaming logs." in out, out
    assert f"Job '{done_id}' has completed." in out, out
    job = node.job(done_id)
    assert job["status"] == "completed", (job, node.node_log())
    assert job["metadata"]["project_name"] == "orig-proj", job["metadata"]
    assert job["spec"]["command"] == ["main.py"], job["spec"]
    assert "original client job done" in job["logs"], job["logs"]
    status, listing = node.json("GET", "/api/v2beta/projects/orig-proj/job_listing")
    assert status == 200, (status, listing)
    [row] = [j for j in listing["jobs"] if j["job_id"] == done_id]
    assert {m["name"]: m["value"] for m in row["output_metrics"]} == {"accuracy": 0.875}, row
    assert {a["filename"] for a in row["artifacts"]} == {"result", "weights"}, row["artifacts"]


def test_get_logs_prints_the_jobs_log():
    rc, out = original("get", "logs", "remote", done_id, cwd=work)
    assert rc == 0, out
    assert node.job(done_id)["logs"].strip() in out, out
    assert "original client job starts" in out and "original client job done" in out, out
    rc, out = original("get", "logs", "remote", "no-such-job", cwd=work)
    assert rc == 1 and "Error: Job `no-such-job` does not exist for environment `remote`" in out, out


def test_get_job_downloads_the_archive_with_its_artifacts():
    target = os.path.join(work, "download")
    os.makedirs(target)
    rc, out = original("get", "job", "remote", done_id, cwd=target)
    assert rc == 0 and f"Successfully retrieved Job {done_id} from archive store" in out, out
    with tarfile.open(os.path.join(target, f"{done_id}.tgz")) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    source = f"{done_id}/job_source/"
    assert files[source + "main.py"] == JOB.encode(), sorted(files)
    assert files[source + "result.txt"] == b"inside the job directory", sorted(files)
    [weights] = [name for name in files if name.startswith(source + "atlas_artifacts/")]
    assert files[weights] == bytes(range(256)), weights
    status, raw = node.request("GET", f"/api/v2beta/projects/orig-proj/job_listing/{done_id}"
                               "/artifacts/weights")
    assert status == 200 and raw == files[weights], status
    rc, out = original("get", "job", "remote", "no-such-job", cwd=target)
    assert rc == 1 and "Error: Job `no-such-job` does not exist" in out, out


def test_stop_delete_and_clear_queue():
    slow = project("orig-slow", SLOW_JOB)
    running, _, _ = submit(slow, "--stream-job-logs", "False")
    wait_for_state(running, "running")
    harness.wait_until(lambda: "tick 0" in node.job(running)["logs"], 30, "the slow job's first tick")
    queued = [submit(slow, "--stream-job-logs", "False")[0] for _ in range(2)]
    status, queue = node.json("GET", "/queued_jobs")
    assert status == 200 and sorted(j["job_id"] for j in queue.values()) == sorted(queued), \
        (queue, [node.job(j) for j in queued + [running]])

    rc, out = original("get", "logs", "remote", queued[0], cwd=work)
    assert rc == 1 and f"Error: Job `{queued[0]}` is queued and has not produced any logs" in out, out
    rc, out = original("stop", "remote", queued[0], cwd=work)
    assert rc == 1 and "is queued and cannot be stopped" in out, out
    rc, out = original("delete", "job", "remote", running, cwd=work)
    assert rc == 1 and f"Error: Job `{running}` has status `running` and cannot be deleted" in out, out
    assert node.job(running)["status"] == "running"

    rc, out = original("clear-queue", "remote", cwd=work)
    assert rc == 0 and "Removed 2 job(s) from queue" in out, out
    assert node.json("GET", "/queued_jobs") == (200, {})
    for job_id in queued:
        assert node.job(job_id)["state"] == "cancelled", node.job(job_id)
    assert node.job(running)["status"] == "running"

    rc, out = original("get", "logs", "remote", running, cwd=work)
    assert rc == 0 and "slow job running" in out and "tick 0" in out, out
    rc, out = original("stop", "remote", running, cwd=work)
    assert rc == 0 and f"Stopped running job {running}" in out, out
    job = harness.wait_until(lambda: (lambda j: j if j["status"] != "running" else None)(
        node.job(running)), 30, "the stopped job to end")
    assert job["status"] == "failed" and job["state"] == "cancelled", job
    rc, out = original("stop", "remote", running, cwd=work)
    assert rc == 1 and f"Error: Job `{running}` is completed and cannot be stopped" in out, out

    rc, out = original("delete", "job", "remote", running, cwd=work)
    assert rc == 0 and f"Job {running} successfully deleted" in out, out
    assert node.request("GET", f"/jobs/{running}")[0] == 404
    rc, out = original("delete", "job", "remote", running, cwd=work)
    assert rc == 1 and "does not exist" in out, out


def test_clear_queue_on_an_empty_queue():
    rc, out = original("clear-queue", "remote", cwd=work)
    assert rc == 0 and "Removed 0 job(s) from queue" in out, out


try:
    harness.run_tests([
        test_submit_uploads_queues_runs_and_reports_completion,
        test_get_logs_prints_the_jobs_log,
        test_get_job_downloads_the_archive_with_its_artifacts,
        test_stop_delete_and_clear_queue,
        test_clear_queue_on_an_empty_queue,
    ])
finally:
    node.cleanup()
    shutil.rmtree(work, ignore_errors=True)
