"""The ORIGINAL `foundations` client (dessa-oss/atlas, run from its source)
against a real node: `submit` (upload, queue, stream), `get logs`, `stop`,
`delete job`, `clear-queue` and `get job` (the job's archive with its
artifacts), each checked against the server's state. With --auth the node
runs with -p and a real OpenID provider (tests/oidc): the original's
`foundations login` gets the token it then sends with every command, and
the jobs belong to the user who logged in. With --cluster the client talks
to a master without slots and the jobs run on a worker node.

The original source is not part of this repository: ATLAS_ORIGINAL_SOURCE
names a directory holding the original repository's tree (the one with
`atlas/foundations_core_cli/src/...`, or that `atlas/` folder itself);
scripts/test.sh fetches the pinned commit into build/original-atlas when
no copy is given. Unset, the test is skipped (77). The client runs under the Debian Python
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

import atexit
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile

import cluster_harness
import harness
import oidc_harness
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
params = foundations.load_parameters()
foundations.log_metric("accuracy", 0.875)
foundations.log_metric("lr_seen", params["lr"])
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

AUTH = "--auth" in sys.argv[1:]
CLUSTER = "--cluster" in sys.argv[1:]
work = tempfile.mkdtemp(prefix="atlas-orig-")
provider = cluster = None
if CLUSTER:
    # The client talks to the master (no slots of its own); the job runs on
    # the worker, and every later command about it is forwarded there.
    cluster = cluster_harness.Cluster(workers=1, slots=1)
    try:
        cluster.start()
    except BaseException:
        cluster.cleanup()
        raise
    node = cluster.master
elif AUTH:
    oidc_harness.npm_ci()
    oidc_harness.make_tls_certificate(work)
    provider = oidc_harness.Provider(work, harness.free_port(), "orig-key")
    node = Node(slots=1, atlas_config=oidc_harness.auth_config(provider, work))
    try:
        oidc_harness.start_with_p(node)
    except BaseException:
        node.cleanup()
        provider.stop()
        raise
else:
    node = Node(slots=1).start()


@atexit.register
def stop_everything():
    cluster.cleanup() if cluster else node.cleanup()
    if provider:
        provider.stop()
    shutil.rmtree(work, ignore_errors=True)


shim = os.path.join(work, "shim")
os.makedirs(shim)
with open(os.path.join(shim, "slackclient.py"), "w") as f:
    f.write(SLACK_STAND_IN)

# The client's own home: the original reads
# ~/.foundations/config/submission/<env>.config.yaml (FOUNDATIONS_HOME unset),
# translated by its local_docker_scheduler plugin, which needs these four keys.
# Plain: the node's API port (the original installer's :5000); --auth: the gateway.
client_home = os.path.join(work, "home")
os.makedirs(client_home + "/.foundations/config/submission")
with open(client_home + "/.foundations/config/submission/remote.config.yaml", "w") as f:
    f.write(f"scheduler_url: {node.gateway if AUTH or CLUSTER else node.url}\n"
            f"job_results_root: {node.home}/job_data\n"
            f"working_dir_root: {node.home}/job_data/working_dir\n"
            f"container_config_root: {node.home}/config/local_docker_scheduler/worker_config\n")

client_env = {k: v for k, v in os.environ.items()
              if k not in ("FOUNDATIONS_HOME", "FOUNDATIONS_TOKEN", "DISABLE_LOG_STREAMING",
                           "FOUNDATIONS_SLACK_TOKEN", "PYTHONPATH", "PYTHONHOME")}
client_env.update({
    "HOME": client_home,
    "FOUNDATIONS_COMMAND_LINE": "True",
    "PYTHONPATH": os.pathsep.join([shim] + [os.path.join(ATLAS_DIR, p, "src") for p in PACKAGES]),
})


def token_of(user):
    status, raw = node.request("POST", "/api/v2beta/auth/login",
                               json.dumps({"username": user,
                                           "password": oidc_harness.PASSWORDS[user]}),
                               {"Content-Type": "application/json"})
    assert status == 200, (status, raw)
    return json.loads(raw)["access_token"]


# The test's own look at the server: as the admin in -p mode.
ADMIN = {"Authorization": "Bearer " + token_of("admin")} if AUTH else {}


def api(path):
    """GET `path` on the node's API; (status, parsed JSON or raw bytes)."""
    status, raw = node.request("GET", path, headers=dict(ADMIN))
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw


def job(job_id):
    status, body = api(f"/jobs/{job_id}")
    assert status == 200, (status, body)
    return body


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


def wait_for(job_id, predicate, what, timeout=30):
    try:
        return harness.wait_until(lambda: (lambda j: j if predicate(j) else None)(job(job_id)),
                                  timeout, what)
    except AssertionError:
        raise AssertionError((job(job_id), node.node_log()))


done_id = None


def test_submit_uploads_queues_runs_and_reports_completion():
    global done_id
    directory = project("orig-proj", JOB)
    with open(os.path.join(directory, "job.config.yaml"), "w") as f:
        f.write("params:\n  lr: 0.125\n  layers: [3, 4]\n")
    # --ram is in GB: the original sends int(GB) as spec.mem_limit.
    done_id, project_name, out = submit(directory, "--ram", "1")
    assert project_name == "orig-proj", out
    assert f"Job '{done_id}' has completed." in out, out
    done = job(done_id)
    assert done["status"] == "completed", (done, node.node_log())
    assert done["metadata"] == {"project_name": "orig-proj", "username": USER}, done["metadata"]
    assert done["spec"]["command"] == ["main.py"], done["spec"]
    assert done["spec"]["mem_limit"] == 1 and done["memory_bytes"] == 1 << 30, done
    if CLUSTER:
        assert done["node"] == cluster.workers[0].node_id, done["node"]
    assert "original client job done" in done["logs"], done["logs"]
    status, listing = api("/api/v2beta/projects/orig-proj/job_listing")
    assert status == 200, (status, listing)
    [row] = [j for j in listing["jobs"] if j["job_id"] == done_id]
    assert {m["name"]: m["value"] for m in row["output_metrics"]} == \
        {"accuracy": 0.875, "lr_seen": 0.125}, row
    assert {p["name"]: p["value"] for p in row["job_parameters"]} == \
        {"lr": 0.125, "layers_0": 3, "layers_1": 4}, row
    assert {a["archive_key"] for a in row["artifacts"]} == {"result", "weights"}, row["artifacts"]


def test_submit_reports_a_failed_job():
    failed_id, _, out = submit(project("orig-fails", "import sys\nprint('giving up')\nsys.exit(3)\n"))
    assert f"Job '{failed_id}' has failed." in out, out
    failed = job(failed_id)
    assert failed["status"] == "failed" and failed["return_code"] == 3, failed


def test_get_logs_prints_the_jobs_log():
    rc, out = original("get", "logs", "remote", done_id, cwd=work)
    assert rc == 0, out
    assert job(done_id)["logs"].strip() in out, out
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
    status, raw = api(f"/api/v2beta/projects/orig-proj/job_listing/{done_id}/artifacts/weights")
    assert status == 200 and raw == files[weights], status
    rc, out = original("get", "job", "remote", "no-such-job", cwd=target)
    assert rc == 1 and "Error: Job `no-such-job` does not exist" in out, out


def test_stop_delete_and_clear_queue():
    slow = project("orig-slow", SLOW_JOB)
    running, _, _ = submit(slow, "--stream-job-logs", "False")
    wait_for(running, lambda j: "tick 0" in j["logs"], "the slow job's first tick")
    queued = [submit(slow, "--stream-job-logs", "False")[0] for _ in range(2)]
    status, queue = api("/queued_jobs")
    assert status == 200 and sorted(j["job_id"] for j in queue.values()) == sorted(queued), \
        (queue, [job(j) for j in queued + [running]])

    rc, out = original("get", "logs", "remote", queued[0], cwd=work)
    assert rc == 1 and f"Error: Job `{queued[0]}` is queued and has not produced any logs" in out, out
    rc, out = original("stop", "remote", queued[0], cwd=work)
    assert rc == 1 and "is queued and cannot be stopped" in out, out
    rc, out = original("delete", "job", "remote", running, cwd=work)
    assert rc == 1 and f"Error: Job `{running}` has status `running` and cannot be deleted" in out, out
    assert job(running)["status"] == "running"

    rc, out = original("clear-queue", "remote", cwd=work)
    assert rc == 0 and "Removed 2 job(s) from queue" in out, out
    assert api("/queued_jobs") == (200, {})
    for job_id in queued:
        assert job(job_id)["state"] == "cancelled", job(job_id)
    assert job(running)["status"] == "running"

    rc, out = original("get", "logs", "remote", running, cwd=work)
    assert rc == 0 and "slow job running" in out and "tick 0" in out, out
    rc, out = original("stop", "remote", running, cwd=work)
    assert rc == 0 and f"Stopped running job {running}" in out, out
    ended = wait_for(running, lambda j: j["status"] != "running", "the stopped job to end")
    assert ended["status"] == "failed" and ended["state"] == "cancelled", ended
    rc, out = original("stop", "remote", running, cwd=work)
    assert rc == 1 and f"Error: Job `{running}` is completed and cannot be stopped" in out, out

    rc, out = original("delete", "job", "remote", running, cwd=work)
    assert rc == 0 and f"Job {running} successfully deleted" in out, out
    assert api(f"/jobs/{running}")[0] == 404
    assert api(f"/job_bundle/{running}")[0] == 404  # its archive went with it
    status, listing = api("/api/v2beta/projects/orig-slow/job_listing")
    assert status in (200, 404) and running not in str(listing), listing
    rc, out = original("delete", "job", "remote", running, cwd=work)
    assert rc == 1 and "does not exist" in out, out


def test_clear_queue_on_an_empty_queue():
    rc, out = original("clear-queue", "remote", cwd=work)
    assert rc == 0 and "Removed 0 job(s) from queue" in out, out


USER = "alice" if AUTH else "CE User"  # the original's name for a user without a token


def test_login_gets_the_token_every_command_sends():
    os.makedirs(os.path.join(work, "refused"))
    with open(os.path.join(work, "refused", "main.py"), "w") as f:
        f.write("print('never runs')\n")
    rc, out = original("submit", "remote", ".", "main.py", cwd=os.path.join(work, "refused"))
    assert rc == 1 and "Unable to submit job bundle" in out, out
    rc, out = original("login", node.gateway, "-u", "alice", "-p", "wrong-password", cwd=work)
    assert "Login Failed!" in out, out
    rc, out = original("login", node.gateway, "-u", "alice", "-p", oidc_harness.PASSWORDS["alice"],
                       cwd=work)
    assert rc == 0 and "Login Succeeded!" in out, out
    with open(os.path.join(client_home, ".foundations", "credentials.yaml")) as f:
        assert "token:" in f.read()
    assert api("/queued_jobs") == (200, {}) and api("/completed_jobs") == (200, {})


harness.run_tests(([test_login_gets_the_token_every_command_sends] if AUTH else []) + [
    test_submit_uploads_queues_runs_and_reports_completion,
    test_submit_reports_a_failed_job,
    test_get_logs_prints_the_jobs_log,
    test_get_job_downloads_the_archive_with_its_artifacts,
    test_stop_delete_and_clear_queue,
    test_clear_queue_on_an_empty_queue,
])
