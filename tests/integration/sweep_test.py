"""Hyperparameter sweeps on a real node with six slots: `foundations submit
--sweep` turns a 10 x 10 grid into 100 jobs that share one upload of the
bundle; the master never runs more than the sweep's max_concurrent (4) of
them at once, though slots are free, and says why a trial waits; each trial
reads its params with load_parameters() and logs a loss, and the
dashboard's sweep route lists the trials with params and metrics and the
best one. Bad sweep files are refused before anything is sent; --dry-run
prints the trials, the same ones for the same seed.

With --browser (meson: sweep_browser_test) the sweep view is then checked
in Debian's Chromium (tests/browser/sweep.mjs)."""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import harness
from harness import Node, make_project, run_tests, wait_until

CTL = os.environ.get("ATLAS_CTL", "atlas-ctl")
TERMINAL = {"completed", "failed", "cancelled"}
BROWSER_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "browser")

JOB = r"""
import time, foundations
p = foundations.load_parameters()
time.sleep(0.5)
foundations.log_metric("loss", round((p["lr"] - 0.0043) ** 2 * 1e4 + p["width"] / 1000, 6))
print("trial done", p, flush=True)
"""

LRS = [round(0.001 * (i + 1), 3) for i in range(10)]
WIDTHS = [8 * (i + 1) for i in range(10)]
GRID = (f"parameters:\n  lr: {json.dumps(LRS)}\n  width: {json.dumps(WIDTHS)}\n"
        "max_concurrent: 4\nmetric: loss\ngoal: minimize\n")

node = Node(slots=6)
work = tempfile.mkdtemp(prefix="atlas-sweep-")
project_dir = make_project(os.path.join(work, "sweepy"), JOB, name="sweepy")
state = {}


def loss(p):
    return round((p["lr"] - 0.0043) ** 2 * 1e4 + p["width"] / 1000, 6)


def write(name, text):
    path = os.path.join(work, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def sweep_view(sweep_id):
    status, raw = node.request("GET", f"/api/v2beta/projects/sweepy/sweeps/{sweep_id}",
                               base=node.dashboard)
    assert status == 200, (status, raw)
    return json.loads(raw)


def record(job_id):
    status, raw = node.request("GET", f"/api/v1/jobs/{job_id}")
    assert status == 200, (job_id, status, raw)
    return json.loads(raw)


def bundle_store_files():
    store = os.path.join(node.home, "job_data", "job_store", "bundles")
    if not os.path.isdir(store):
        return []
    return [os.path.join(store, n) for n in os.listdir(store) if re.match(r"^[0-9a-f]{64}\.tgz$", n)]


def most_overlapping(recs):
    edges = sorted([(r["start_time"], 1) for r in recs] + [(r["end_time"], -1) for r in recs],
                   key=lambda e: (e[0], e[1]))
    now = most = 0
    for _, d in edges:
        now += d
        most = max(most, now)
    return most


def test_bad_sweep_files_are_refused_before_anything_is_sent():
    for text, words in [("parameters: {lr: [1]}\nmethdo: grid\n", "unknown key 'methdo'"),
                        ("parameters: {}\n", "parameters"),
                        ("parameters: {lr: {min: 0, max: 1}}\n", "needs steps"),
                        ("parameters: {a: " + json.dumps(list(range(101))) + ", b: "
                         + json.dumps(list(range(100))) + "}\n", "more than 10000 trials")]:
        r = node.cli("submit", "--sweep", write("bad.yaml", text), "local", project_dir, timeout=30)
        assert r.returncode == 2 and words in r.stderr, (text, r.returncode, r.stdout, r.stderr)
    status, queued = node.json("GET", "/queued_jobs")
    assert status == 200 and not queued, queued


def test_dry_run_prints_the_trials_and_a_seed_gives_the_same_ones():
    r = node.cli("submit", "--sweep", write("grid.yaml", GRID), "--dry-run", "local", project_dir,
                 check=0, timeout=30)
    assert "100 trials, at most 4 running at once" in r.stdout, r.stdout
    assert '{"lr":0.001,"width":8}' in r.stdout and '{"lr":0.01,"width":80}' in r.stdout, r.stdout
    rand = write("random.yaml", "method: random\ntrials: 5\nseed: 11\n"
                                "parameters: {lr: {min: 0.0001, max: 0.1, log: true}, layers: [[64], [128, 64]]}\n")
    a = node.cli("submit", "--sweep", rand, "--dry-run", "local", project_dir, check=0).stdout
    b = node.cli("submit", "--sweep", rand, "--dry-run", "local", project_dir, check=0).stdout
    assert a == b and a.count('"lr":') == 5, (a, b)


def test_a_100_trial_grid_never_runs_more_than_4_at_once():
    started = time.monotonic()
    r = node.cli("submit", "--sweep", write("grid.yaml", GRID), "local", project_dir,
                 check=0, timeout=240)
    submit_s = time.monotonic() - started
    sweep_id = re.search(r"Sweep '([A-Za-z0-9_-]+)'", r.stdout).group(1)
    trials = re.findall(r"trial \d+: job '([A-Za-z0-9_-]+)' (\{.*\})", r.stdout)
    assert len(trials) == 100, r.stdout
    assert "no bundle store" not in r.stderr, r.stderr
    assert re.search(r"Bundle [0-9a-f]{12} \(\d+ bytes\) uploaded once", r.stdout), r.stdout
    state.update(sweep_id=sweep_id, ids=[t[0] for t in trials])
    # Six slots, yet held to four; a waiting trial says why.
    wait_until(lambda: "sweep cap (4 running)" in subprocess.run(
        [CTL, "queue"], env=node.env, capture_output=True, text=True, timeout=30).stdout,
        60, "atlas-ctl queue to show the sweep cap")
    most_running = 0
    polls = 0

    def finished():
        nonlocal most_running, polls
        v = sweep_view(sweep_id)
        polls += 1
        most_running = max(most_running, v["running"])
        return v if v["completed"] + v["failed"] == 100 else None
    view = wait_until(finished, 400, "the 100 trials to end")
    run_s = time.monotonic() - started
    assert view["completed"] == 100, {k: view[k] for k in ("queued", "running", "completed", "failed")}
    assert 1 <= most_running <= 4, most_running
    recs = [record(i) for i in state["ids"]]
    overlap = most_overlapping(recs)
    assert overlap <= 4, overlap
    # Each trial's params are in its record, as the grid made them.
    want = {(lr, w) for lr in LRS for w in WIDTHS}
    got = {(r["params"]["lr"], r["params"]["width"]) for r in recs}
    assert got == want
    assert all(r["sweep_id"] == sweep_id and r["sweep_limit"] == 4 for r in recs)
    # One upload: the bundle store holds one bundle, which the trials' bundles link to.
    stored = bundle_store_files()
    assert len(stored) == 1, stored
    links = os.stat(stored[0]).st_nlink
    # The sweep route: every trial with params and loss; the best is the lowest loss.
    best = min(view["trials"], key=lambda t: t["metrics"]["loss"])
    assert view["best"] == best["job_id"], (view["best"], best)
    assert all(t["metrics"]["loss"] == loss(t["params"]) for t in view["trials"])
    assert view["param_names"] == ["lr", "width"] and view["metric_names"] == ["loss"]
    status, raw = node.request("GET", "/api/v2beta/projects/sweepy/sweeps", base=node.dashboard)
    listing = json.loads(raw)
    assert status == 200 and listing[0]["sweep_id"] == sweep_id and listing[0]["trials"] == 100
    state["best"] = view["best"]
    print(f"sweep {sweep_id}: submitted 100 trials in {submit_s:.1f}s, all ended after {run_s:.1f}s; "
          f"most running seen {most_running} ({polls} polls), most overlapping by record times {overlap}; "
          f"one stored bundle with {links} links")


SLOW_JOB = "import time\nimport foundations\nfoundations.load_parameters()\ntime.sleep(60)\n"


def test_stop_sweep_stops_every_queued_and_running_trial():
    slow_dir = make_project(os.path.join(work, "stoppy"), SLOW_JOB, name="stoppy")
    grid = write("slow.yaml", "parameters:\n  x: [1, 2, 3, 4, 5, 6]\nmax_concurrent: 2\n")
    r = node.cli("submit", "--sweep", grid, "local", slow_dir, check=0, timeout=120)
    sweep_id = re.search(r"Sweep '([A-Za-z0-9_-]+)'", r.stdout).group(1)
    ids = re.findall(r"trial \d+: job '([A-Za-z0-9_-]+)'", r.stdout)
    assert len(ids) == 6, r.stdout
    # A job outside the sweep is left alone.
    other = f"not-in-sweep-{time.time_ns()}"
    assert node.upload(other, {"main.py": "import time\ntime.sleep(60)\n"})[0] == 200
    status, body = node.json("POST", "/queued_jobs", {
        "job_id": other, "spec": {"command": ["main.py"]},
        "metadata": {"project_name": "stoppy", "username": "tester"}})
    assert status == 201, (status, body)
    wait_until(lambda: sum(record(i)["status"] == "running" for i in ids) == 2, 60,
               "two trials to run")
    r = node.cli("stop", "local", "--sweep", sweep_id, check=0, timeout=60)
    assert f"Stopped 6 jobs of sweep '{sweep_id}'" in r.stdout, r.stdout
    recs = wait_until(lambda: (lambda rs: rs if all(x["status"] in TERMINAL for x in rs)
                               else None)([record(i) for i in ids]), 30, "the trials to end")
    assert all(x["status"] != "completed" for x in recs), [x["status"] for x in recs]
    assert record(other)["status"] in ("queued", "pending", "running"), record(other)
    # Again: nothing is left to stop.
    r = node.cli("stop", "local", "--sweep", sweep_id, check=0, timeout=60)
    assert f"Stopped 0 jobs of sweep '{sweep_id}'" in r.stdout, r.stdout
    node.cli("stop", "local", other, check=0)
    # Misuse is a usage error.
    assert node.cli("stop", "local", "some-job", "--sweep", sweep_id).returncode == 2
    assert node.cli("stop", "local").returncode == 2


def test_the_sweep_view_in_chromium():
    if not os.path.exists("/usr/bin/chromium"):
        raise AssertionError("chromium is not installed (scripts/install-deps.sh installs it)")
    assert state.get("best"), "the sweep did not run"
    out = os.environ.get("ATLAS_BROWSER_OUT") or tempfile.mkdtemp(prefix="atlas-browser-")
    deps = tempfile.mkdtemp(prefix="atlas-sweep-browser-deps-")
    try:
        for name in ["package.json", "package-lock.json", "sweep.mjs"]:
            shutil.copy(os.path.join(BROWSER_DIR, name), deps)
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=deps, check=True,
                       capture_output=True, timeout=300)
        r = subprocess.run(["node", os.path.join(deps, "sweep.mjs"), node.dashboard, "sweepy",
                            state["sweep_id"], "100", state["best"], out],
                           capture_output=True, text=True, timeout=240)
        print(r.stdout, end="")
        print(r.stderr, end="", file=sys.stderr)
        assert r.returncode == 0, "the sweep view failed in Chromium"
    finally:
        shutil.rmtree(deps, ignore_errors=True)


if __name__ == "__main__":
    tests = [test_bad_sweep_files_are_refused_before_anything_is_sent,
             test_dry_run_prints_the_trials_and_a_seed_gives_the_same_ones,
             test_a_100_trial_grid_never_runs_more_than_4_at_once,
             test_stop_sweep_stops_every_queued_and_running_trial]
    if "--browser" in sys.argv:
        tests.append(test_the_sweep_view_in_chromium)
    node.start()
    try:
        run_tests(tests)
    finally:
        if any(k in os.environ for k in ("ATLAS_KEEP",)):
            print(node.node_log())
        node.cleanup()
        shutil.rmtree(work, ignore_errors=True)
