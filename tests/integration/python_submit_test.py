"""A sweep submitted from Python: foundations.submit(..., params=...) for 20
trials. Each job sees its own params through load_parameters(); the
deployment objects wait, answer get_metric/get_param/get_job_logs; the
directory's bundle is uploaded once (the scheduler's bundle store holds one
bundle, and every job names it)."""

import glob
import hashlib
import json
import os
import subprocess
import sys
import tempfile

import harness
from harness import Node
from dashboard_jobs import SDK_DIR

TRIALS = 20
node = Node(slots=4).start()

MAIN_PY = r'''
import foundations
params = foundations.load_parameters()
foundations.log_metric("score", params["trial"] * 10)
foundations.log_metric("curve", [params["trial"], params["trial"] + 1])
print("trial %d with layers %s" % (params["trial"], params["layers"]), flush=True)
'''

SWEEP_PY = r'''
import json, sys
import foundations
project_dir = sys.argv[1]
deployments = [foundations.submit(scheduler_config="local", job_directory=project_dir,
                                  project_name="sweep", command=["main.py"], sweep_id="sweep-1",
                                  params={"trial": i, "lr": 0.5 / (i + 1), "layers": [i, 2 * i]})
               for i in range(%d)]
out = []
for i, d in enumerate(deployments):
    d.wait_for_deployment_to_complete(wait_seconds=0.2, timeout=120)
    out.append({"job": d.job_name(), "status": d.get_true_job_status(),
                "simple": d.get_job_status(), "score": d.get_metric("score", wait_seconds=0.2),
                "trial": d.get_param("trial"), "layers_1": d.get_param("layers_1"),
                "logged": ("trial %%d with" %% i) in d.get_job_logs()})
print("RESULT " + json.dumps(out), flush=True)
''' % TRIALS

project = tempfile.mkdtemp(prefix="atlas-sweep-")
results = []


def run_sweep():
    with open(os.path.join(project, "main.py"), "w") as f:
        f.write(MAIN_PY)
    os.makedirs(os.path.join(project, "__pycache__"))
    with open(os.path.join(project, "__pycache__", "junk.pyc"), "w") as f:
        f.write("not packed")
    script = os.path.join(project, "..", os.path.basename(project) + "-sweep.py")
    with open(script, "w") as f:
        f.write(SWEEP_PY)
    env = {k: v for k, v in node.env.items()
           if k not in ("FOUNDATIONS_JOB_ID", "ATLAS_JOB_SECRET", "ATLAS_API_URL")}
    env["PYTHONPATH"] = SDK_DIR
    r = subprocess.run([sys.executable, script, project], env=env, capture_output=True,
                       text=True, timeout=240)
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-4000:], node.node_log())
    [line] = [l for l in r.stdout.splitlines() if l.startswith("RESULT ")]
    return json.loads(line[len("RESULT "):])


def test_twenty_trials_run_with_their_own_params():
    results.extend(run_sweep())
    assert len(results) == TRIALS
    for i, r in enumerate(results):
        assert r["status"] == "completed" and r["simple"] == "completed", r
        assert r["score"] == i * 10, r
        assert r["trial"] == i and r["layers_1"] == 2 * i, r
        assert r["logged"], r


def test_each_job_logged_its_params_and_carries_the_sweep_id():
    status, body = node.json("GET", "/api/v2beta/projects/sweep/job_listing")
    assert status == 200, body
    jobs = {j["job_id"]: j for j in body["jobs"]}
    assert len(jobs) == TRIALS, list(jobs)
    for i, r in enumerate(results):
        params = {p["name"]: p["value"] for p in jobs[r["job"]]["job_parameters"]}
        assert params == {"trial": i, "lr": 0.5 / (i + 1), "layers_0": i, "layers_1": 2 * i}, params
        status, series = node.json("GET", f"/api/v2beta/projects/sweep/job_listing/{r['job']}")
        assert [p[1] for p in series["series"]["curve"]] == [i, i + 1], series["series"]
        rec = node.job(r["job"])
        assert rec.get("sweep_id") == "sweep-1", rec
        assert rec.get("params", {}).get("trial") == i, rec


def test_the_bundle_was_uploaded_once():
    sys.path.insert(0, SDK_DIR)
    from foundations import _bundle
    bundle = os.path.join(tempfile.mkdtemp(prefix="atlas-b-"), "b.tgz")
    digest = _bundle.create_bundle(project, bundle)
    # The same content hashes the same here: the store knows it already.
    status, _ = node.request("HEAD", f"/api/v1/bundles/{digest}", base=node.gateway)
    assert status == 200, status
    for r in results:
        rec = node.job(r["job"])
        assert rec.get("bundle", digest) == digest, rec
    [stored] = glob.glob(f"{node.home}/**/bundles/{digest}.tgz", recursive=True)
    store_dir = os.path.dirname(stored)
    bundles = [n for n in os.listdir(store_dir) if n.endswith(".tgz")]
    assert bundles == [f"{digest}.tgz"], bundles   # one bundle for 20 jobs
    with open(stored, "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == digest


try:
    harness.run_tests([
        test_twenty_trials_run_with_their_own_params,
        test_each_job_logged_its_params_and_carries_the_sweep_id,
        test_the_bundle_was_uploaded_once,
    ])
finally:
    node.cleanup()
