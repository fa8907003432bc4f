"""The in-job SDK and the dashboard's REST API against a real atlas-server
and a real Redis: a job logs metrics, parameters, tags and artifacts through
the `foundations` package the node puts on its PYTHONPATH; the v2beta API
returns exactly what was logged. The per-job secret: a wrong or missing one
stores nothing, and the secret shows up in no answer, log or Redis value."""

import hashlib
import http.client
import json
import os
import re
import subprocess
import sys
import time

import harness
from harness import Node, wait_until
from dashboard_jobs import SDK_DIR, submit

node = Node(slots=2).start()

LOGGING_JOB = r'''
import os, foundations
foundations.log_params({"learning_rate": 0.125, "model": {"depth": 3, "activation": "relu"}})
foundations.log_param("epochs", 100)
foundations.set_tag("baseline")
foundations.set_tag("owner", "team-a")
for step in range(100):
    foundations.log_metric("loss", 1.0 / (step + 1))
    foundations.log_metric("accuracy", step / 100.0)
    foundations.log_metric("phase", "warmup" if step < 10 else "train")
with open("plot.png", "wb") as f:
    f.write(b"\x89PNG\r\n\x1a\n" + bytes(range(64)))
foundations.save_artifact("plot.png", "plot")
with open("/tmp/atlas-sdk-outside-%s.txt" % os.environ["FOUNDATIONS_JOB_ID"], "w") as f:
    f.write("outside the job dir")
foundations.save_artifact(f.name, "notes")
with open("secret.txt", "w") as f:   # for the test only: where the secret must never appear
    f.write(os.environ["ATLAS_JOB_SECRET"])
# A job that bypasses the SDK cannot make the node serve a file outside its directory.
import json, urllib.request
os.symlink("/etc/passwd", "escape.txt")
urllib.request.urlopen(urllib.request.Request(
    os.environ["ATLAS_API_URL"] + "/api/v1/jobs/%s/tracking" % os.environ["FOUNDATIONS_JOB_ID"],
    data=json.dumps({"entries": [{"kind": "artifact", "key": "escape", "path": "escape.txt"}]}).encode(),
    headers={"x-atlas-job-secret": os.environ["ATLAS_JOB_SECRET"]}, method="POST")).read()
print("params", foundations.load_parameters())
print("logging done")
'''

BURST_JOB = r'''
import time, foundations
start = time.perf_counter()
for i in range(10000):
    foundations.log_metric("burst", i)
elapsed = time.perf_counter() - start
print("BURST_SECONDS %.4f" % elapsed, flush=True)
'''


def listing(project, query=""):
    status, body = node.json("GET", f"/api/v2beta/projects/{project}/job_listing{query}")
    assert status == 200, (status, body)
    return body


def detail(project, job_id):
    status, body = node.json("GET", f"/api/v2beta/projects/{project}/job_listing/{job_id}")
    assert status == 200, (status, body)
    return body


def redis_cli(*args):
    r = subprocess.run(["redis-cli", "-p", str(node.redis.port), "--raw", *args],
                       capture_output=True, text=True, timeout=10, check=True)
    return r.stdout


logging_id = None
secret = None


def test_a_job_logs_metrics_params_tags_and_the_api_returns_them_exactly():
    global logging_id, secret
    logging_id = submit(node, LOGGING_JOB, project="sdk-exact",
                        files={"foundations_job_parameters.json":
                               json.dumps({"seed": 7, "opt": {"name": "sgd"}})})
    job = node.wait_for_status(logging_id, ["completed", "failed"], timeout=60)
    assert job["status"] == "completed", (job, node.node_log())
    assert "logging done" in job["logs"], job["logs"]
    body = listing("sdk-exact")
    assert body["name"] == "sdk-exact"
    [j] = body["jobs"]
    assert j["job_id"] == logging_id and j["user"] == "alice" and j["project"] == "sdk-exact"
    assert j["status"] == "completed"
    for field in ["start_time", "completed_time", "creation_time", "duration"]:
        assert j[field], (field, j)
    params = {p["name"]: p["value"] for p in j["job_parameters"]}
    assert params == {"learning_rate": 0.125, "model_depth": 3, "model_activation": "relu",
                      "epochs": 100, "seed": 7, "opt_name": "sgd"}, params
    # Logged 100 times each: every value, as the original's listing (the latest is "latest").
    metrics = {m["name"]: m["value"] for m in j["output_metrics"]}
    assert metrics == {"loss": [1.0 / (s + 1) for s in range(100)],
                       "accuracy": [s / 100.0 for s in range(100)],
                       "phase": ["warmup"] * 10 + ["train"] * 90}, metrics
    latest = {m["name"]: (m["latest"], m["count"], m["type"]) for m in j["output_metrics"]}
    assert latest == {"loss": (0.01, 100, "array number"), "accuracy": (0.99, 100, "array number"),
                      "phase": ("train", 100, "array string")}, latest
    assert isinstance(j["creation_time"], float) and j["creation_time"] > 1.5e9, j
    assert j["tags"] == {"baseline": "", "owner": "team-a"}, j["tags"]
    names = {m["name"]: m["type"] for m in body["output_metric_names"]}
    assert names == {"loss": "array number", "accuracy": "array number",
                     "phase": "array string"}, names
    assert {p["name"] for p in body["parameters"]} == set(params)
    series = detail("sdk-exact", logging_id)["series"]
    assert [p[1] for p in series["loss"]] == [1.0 / (s + 1) for s in range(100)]
    assert [p[1] for p in series["accuracy"]] == [s / 100.0 for s in range(100)]
    assert [p[1] for p in series["phase"]] == ["warmup"] * 10 + ["train"] * 90
    assert [p[0] for p in series["loss"]] == list(range(100))
    arts = {a["archive_key"]: a for a in j["artifacts"]}
    assert arts["plot"]["artifact_type"] == "image" and arts["plot"]["size"] == 72, arts
    assert arts["plot"]["filename"] == "plot.png" and arts["plot"]["key"] == "plot", arts
    assert arts["notes"]["artifact_type"] == "unknown", arts  # .txt, as the original
    assert arts["notes"]["path"].startswith("atlas_artifacts/"), arts
    status, raw = node.request("GET", arts["plot"]["uri"])
    assert status == 200 and raw == b"\x89PNG\r\n\x1a\n" + bytes(range(64)), (status, raw[:40])
    status, raw = node.request("GET", arts["notes"]["uri"])
    assert status == 200 and raw == b"outside the job dir", (status, raw)
    os.remove(f"/tmp/atlas-sdk-outside-{logging_id}.txt")
    status, raw = node.request("GET", arts["escape"]["uri"])
    assert status == 404 and b"root:" not in raw, (status, raw[:80])
    with open(f"{node.home}/job_data/archive/{logging_id}/artifacts/job_source/secret.txt") as f:
        secret = f.read()
    assert len(secret) == 64, secret


def test_a_wrong_or_missing_secret_is_refused_and_nothing_is_stored():
    path = f"/api/v1/jobs/{logging_id}/tracking"
    batch = json.dumps({"entries": [{"kind": "metric", "key": "evil", "value": 1, "step": 0},
                                    {"kind": "tag", "key": "evil", "value": "x"}]})
    for headers, expected in [({}, 401), ({"x-atlas-job-secret": ""}, 401),
                              ({"x-atlas-job-secret": "0" * 64}, 403),
                              ({"x-atlas-job-secret": secret[:-1]}, 403),
                              ({"x-atlas-job-secret": secret + "0"}, 403)]:
        headers["Content-Type"] = "application/json"
        status, raw = node.request("POST", path, batch, headers)
        assert status == expected, (headers, status, raw)
    # Another job's secret does not open this one.
    other = submit(node, "print('other')\n", project="sdk-exact")
    node.wait_for_status(other, ["completed"], timeout=60)
    status, _ = node.request("POST", f"/api/v1/jobs/{other}/tracking", batch,
                             {"x-atlas-job-secret": secret})
    assert status == 403, status
    [j] = [x for x in listing("sdk-exact")["jobs"] if x["job_id"] == logging_id]
    assert "evil" not in {m["name"] for m in j["output_metrics"]}
    assert "evil" not in j["tags"]


HOLD_JOB = r'''
import os, time
with open("secret.txt", "w") as f:   # for the test only: to call as the job would
    f.write(os.environ["ATLAS_JOB_SECRET"])
deadline = time.time() + 60
while not os.path.exists("release") and time.time() < deadline:
    time.sleep(0.05)
'''


def test_a_running_jobs_secret_works_until_the_job_ends():
    job_id = submit(node, HOLD_JOB, project="sdk-hold")
    source = f"{node.home}/job_data/working_dir/{job_id}/job_source"
    held = wait_until(lambda: (lambda p: open(p).read() if os.path.exists(p) else None)(
        source + "/secret.txt"), 30, "the job to write its secret")
    assert len(held) == 64, held
    path = f"/api/v1/jobs/{job_id}/tracking"
    # Redis keeps the digest, never the secret.
    stored = redis_cli("GET", f"atlas:job:{job_id}:secret").strip()
    assert stored == hashlib.sha256(held.encode()).hexdigest()
    # A malformed batch with the right secret is refused whole.
    bad = json.dumps({"entries": [{"kind": "metric", "key": "fine", "value": 1},
                                  {"kind": "metric", "key": "bad", "value": [1, 2]}]})
    status, raw = node.request("POST", path, bad, {"x-atlas-job-secret": held})
    assert status == 400 and b"entry 1" in raw, (status, raw)
    assert "fine" not in {m["name"] for m in detail("sdk-hold", job_id)["output_metrics"]}
    # The right secret is accepted (the check is not a blanket refusal).
    late = json.dumps({"entries": [{"kind": "metric", "key": "late", "value": 5, "step": 0}]})
    status, raw = node.request("POST", path, late, {"x-atlas-job-secret": held})
    assert status == 200 and json.loads(raw) == {"stored": 1}, (status, raw)
    # Once the job has ended, its secret stores nothing more and its digest is gone.
    open(source + "/release", "w").close()
    node.wait_for_status(job_id, ["completed", "failed"], timeout=60)
    status, raw = node.request("POST", path, json.dumps({"entries": [
        {"kind": "metric", "key": "after_end", "value": 1, "step": 0}]}),
        {"x-atlas-job-secret": held})
    assert status == 403 and b"has ended" in raw, (status, raw)
    assert "after_end" not in {m["name"] for m in detail("sdk-hold", job_id)["output_metrics"]}
    assert redis_cli("EXISTS", f"atlas:job:{job_id}:secret").strip() == "0"


def test_the_secret_appears_in_no_answer_log_or_redis_value():
    answers = [node.request("GET", p)[1] for p in [
        f"/jobs/{logging_id}", f"/api/v1/jobs/{logging_id}", "/api/v1/jobs", "/completed_jobs",
        f"/api/v2beta/projects/sdk-exact/job_listing/{logging_id}",
        "/api/v2beta/projects/sdk-exact/job_listing", f"/api/v1/jobs/{logging_id}/logs"]]
    for raw in answers:
        assert secret.encode() not in raw
    with open(node.home + "/node.log", "rb") as f:
        assert secret.encode() not in f.read()
    for key in redis_cli("--scan").split():
        kind = redis_cli("TYPE", key).strip()
        dump = {"string": ["GET", key], "hash": ["HGETALL", key], "list": ["LRANGE", key, "0", "-1"],
                "set": ["SMEMBERS", key]}.get(kind)
        if dump:
            assert secret not in redis_cli(*dump), key
    # The job has ended: its secret's digest went with it.
    assert redis_cli("EXISTS", f"atlas:job:{logging_id}:secret").strip() == "0"


def test_a_burst_of_10000_metrics_does_not_slow_the_job():
    job_id = submit(node, BURST_JOB, project="sdk-burst")
    job = node.wait_for_status(job_id, ["completed", "failed"], timeout=60)
    assert job["status"] == "completed", job
    line = [l for l in job["logs"].splitlines() if l.startswith("BURST_SECONDS")][0]
    seconds = float(line.split()[1])
    wall = job["end_time"] - job["start_time"]
    print(f"  10,000 log_metric calls took {seconds * 1000:.1f} ms in the job; "
          f"job ran {wall:.2f} s including the final flush", flush=True)
    assert seconds < 2.0, seconds
    assert wall < 10.0, wall
    series = detail("sdk-burst", job_id)["series"]["burst"]
    assert [p[1] for p in series] == list(range(10000))


def test_outside_a_job_calls_do_nothing_after_one_warning():
    env = {k: v for k, v in os.environ.items()
           if k not in ("FOUNDATIONS_JOB_ID", "ATLAS_JOB_SECRET", "ATLAS_API_URL")}
    env["PYTHONPATH"] = SDK_DIR
    code = ("import foundations\nfoundations.log_metric('a', 1)\nfoundations.log_param('b', 2)\n"
            "foundations.set_tag('c')\nprint('ok')\n")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r
    warnings = [l for l in r.stderr.splitlines() if l.startswith("foundations:")]
    assert len(warnings) == 1 and "not running inside an Atlas job" in warnings[0], r.stderr


def test_tags_description_notes_overview_sorting_and_filtering():
    base = f"/api/v2beta/projects/sdk-exact/job_listing/{logging_id}/tags"
    # The original's answers to changes: 200 and a sentence.
    status, said = node.json("POST", base, {"tag": {"key": "reviewed", "value": "yes"}})
    assert (status, said) == (200, f"Tag key: reviewed, value: yes created for job {logging_id}")
    assert detail("sdk-exact", logging_id)["tags"]["reviewed"] == "yes"
    status, said = node.json("DELETE", base + "/reviewed")
    assert (status, said) == (200, f"Tag key: reviewed deleted from job {logging_id}")
    assert "reviewed" not in detail("sdk-exact", logging_id)["tags"]
    assert node.request("DELETE", base + "/reviewed")[0] == 200  # absent: as the original
    assert node.json("POST", base, {"tag": {"value": "no key"}})[0] == 400
    status, said = node.json("PUT", "/api/v2beta/projects/sdk-exact/description",
                             {"project_description": "exact values"})
    assert (status, said) == (200, "Updated description for sdk-exact")
    assert node.json("GET", "/api/v2beta/projects/sdk-exact/description")[1] == \
        {"project_description": "exact values"}
    assert node.json("POST", "/api/v2beta/projects/sdk-exact/note_listing",
                     {"message": "looks good", "author": "ann"}) == \
        (200, "Note with author: ann created with message: looks good")
    notes = node.json("GET", "/api/v2beta/projects/sdk-exact/note_listing")[1]
    assert [(n["message"], n["author"]) for n in notes] == [("looks good", "ann")], notes
    # Form fields, as the original's API also took them (curl -d).
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert node.request("PUT", "/api/v2beta/projects/sdk-form/description",
                        "project_description=from+a%20form", form) == \
        (200, b'"Updated description for sdk-form"')
    assert node.json("GET", "/api/v2beta/projects/sdk-form/description")[1] == \
        {"project_description": "from a form"}
    assert node.request("POST", "/api/v2beta/projects/sdk-form/note_listing",
                        "message=by+form&author=bo", form)[0] == 200
    assert [n["message"] for n in node.json("GET", "/api/v2beta/projects/sdk-form/note_listing")[1]] \
        == ["by form"]
    # The original's str(datetime) (UTC here), and ours: seconds.
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{6})?", notes[0]["date"]), notes
    assert abs(notes[0]["time"] - time.time()) < 300, notes
    overview = node.json("GET", "/api/v2beta/projects/sdk-exact/overview_metrics")[1]
    assert set(overview["all_metric_names"]) >= {"loss", "accuracy", "phase"}
    loss = [q for q in overview["metric_query"] if q["metric_name"] == "loss"][0]
    assert loss["values"] == [[logging_id, 0.01]], loss
    picked = node.json("GET", "/api/v2beta/projects/sdk-exact/overview_metrics?metric_name=phase|loss")[1]
    assert [q["metric_name"] for q in picked["metric_query"]] == ["phase", "loss"], picked
    assert set(picked["all_metric_names"]) >= {"loss", "accuracy", "phase"}, picked
    projects = {p["name"]: p for p in node.json("GET", "/api/v2beta/projects")[1]}
    assert projects["sdk-exact"]["jobs"] == 2 and "sdk-burst" in projects
    # Sorting by a metric puts jobs without it last, either way.
    ids = [j["job_id"] for j in listing("sdk-exact", "?sort=-metric:loss")["jobs"]]
    assert ids[0] == logging_id, ids
    ids = [j["job_id"] for j in listing("sdk-exact", "?sort=metric:loss")["jobs"]]
    assert ids[0] == logging_id, ids
    assert [j["job_id"] for j in listing("sdk-exact", "?tag=owner:team-a")["jobs"]] == [logging_id]
    assert listing("sdk-exact", "?tag=owner:nobody")["jobs"] == []
    assert len(listing("sdk-exact", "?status=completed")["jobs"]) == 2
    assert listing("sdk-exact", "?status=running")["jobs"] == []
    assert node.request("GET", "/api/v2beta/projects/sdk-exact/job_listing?sort=bogus")[0] == 400
    assert node.request("GET", "/api/v2beta/projects/sdk-exact/job_listing?colour=red")[0] == 400
    assert node.request("GET", "/api/v2beta/projects/nope/job_listing")[0] == 404
    logs = node.json("GET", f"/api/v2beta/projects/sdk-exact/job_listing/{logging_id}/logs")[1]
    assert "logging done" in logs["log"], logs
    # The original's filters, multi-column sorts and job_listing/<sort_by>/<direction>.
    assert [j["job_id"] for j in listing("sdk-exact", "?learning_rate=0.125")["jobs"]] == [logging_id]
    assert [j["job_id"] for j in listing("sdk-exact", "?loss_isnull=false")["jobs"]] == [logging_id]
    assert len(listing("sdk-exact", "?loss_isnull=true")["jobs"]) == 1
    assert listing("sdk-exact", "?job_id_contains=" + logging_id[-6:].upper())["jobs"][0]["job_id"] \
        == logging_id
    assert [j["job_id"] for j in listing("sdk-exact", "?sort=-loss,job_id")["jobs"]][0] == logging_id
    status, by_metric = node.json(
        "GET", "/api/v2beta/projects/sdk-exact/job_listing/output_metrics:loss/desc")
    assert status == 200 and by_metric["jobs"][0]["job_id"] == logging_id, (status, by_metric)
    assert node.request("GET", "/api/v2beta/projects/sdk-exact/job_listing/colour/asc")[0] == 404


def test_the_cluster_view_shows_nodes_slots_and_queue():
    status, c = node.json("GET", "/api/v2beta/cluster")
    assert status == 200, c
    [n] = c["nodes"]
    assert n["role"] == "master" and len(n["slots"]) == 2 and n["heartbeat_age_s"] is not None
    assert c["totals"]["slots"] == 2 and c["totals"]["queue_depth"] == 0, c["totals"]


def test_the_page_is_served_with_content_types_and_no_traversal():
    for path, ctype in [("/", "text/html"), ("/app.js", "application/javascript"),
                        ("/style.css", "text/css"), ("/favicon.svg", "image/svg+xml")]:
        conn = http.client.HTTPConnection("127.0.0.1", node.dashboard_port, timeout=10)
        conn.request("GET", path)
        r = conn.getresponse()
        body = r.read()
        assert r.status == 200 and r.getheader("Content-Type").startswith(ctype), (path, r.status)
        assert body
    for path in ["/../../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2fetc/passwd",
                 "/.hidden", "//etc/passwd", "/nope.html"]:
        conn = http.client.HTTPConnection("127.0.0.1", node.dashboard_port, timeout=10)
        conn.request("GET", path)
        r = conn.getresponse()
        body = r.read()
        assert r.status in (400, 404) and b"root:" not in body, (path, r.status, body[:80])
    # The API answers on the dashboard's port too; the page only there.
    assert node.request("GET", "/api/v2beta/projects", base=node.dashboard)[0] == 200
    assert b"Welcome" in node.request("GET", "/")[1]


def test_deleting_a_job_removes_its_tracking_data():
    assert redis_cli("EXISTS", f"atlas:job:{logging_id}:series").strip() == "1"
    # The dashboard's DELETE .../job_listing/<id> takes the scheduler's path.
    assert node.request("DELETE", f"/api/v2beta/projects/sdk-burst/job_listing/{logging_id}")[0] == 404
    status, raw = node.request("DELETE", f"/api/v2beta/projects/sdk-exact/job_listing/{logging_id}")
    assert status in (200, 204), (status, raw)
    assert node.request("GET", f"/jobs/{logging_id}")[0] == 404
    for suffix in ["secret", "metrics", "series", "metric_values", "params", "tags", "artifacts"]:
        assert redis_cli("EXISTS", f"atlas:job:{logging_id}:{suffix}").strip() == "0", suffix


def test_the_dashboards_data_is_read_and_written_across_a_redis_restart():
    path = "/api/v2beta/projects/sdk-restart/description"
    assert node.json("PUT", path, {"project_description": "before"})[0] == 200
    node.redis.stop()
    node.redis.start()  # append-only: what was written is back
    # The tracking actor has its own connection: it reconnects by itself.
    assert node.json("GET", path)[1] == {"project_description": "before"}
    assert node.json("PUT", path, {"project_description": "after"})[0] == 200
    assert node.json("GET", path)[1] == {"project_description": "after"}


CLUSTER_JOB = r'''
import os, foundations
print("API", os.environ["ATLAS_API_URL"])
foundations.log_param("where", "worker")
for step in range(20):
    foundations.log_metric("loss", 1.0 / (step + 1))
'''


def test_in_a_cluster_the_worker_takes_the_data_and_the_master_shows_it():
    from cluster_harness import Cluster
    cluster = Cluster(workers=1, slots=1).start()
    try:
        worker = cluster.workers[0]
        job_id = submit(cluster.master, CLUSTER_JOB, project="sdk-cluster")
        job = cluster.master.wait_for_status(job_id, ["completed", "failed"], timeout=60)
        assert job["status"] == "completed", job
        # The job talked to the node that ran it, not to the master.
        assert f"API {worker.url}" in job["logs"], (job["logs"], worker.url)
        status, body = cluster.master.json(
            "GET", f"/api/v2beta/projects/sdk-cluster/job_listing/{job_id}")
        assert status == 200, body
        assert [p[1] for p in body["series"]["loss"]] == [1.0 / (s + 1) for s in range(20)]
        assert body["job_parameters"] == [{"name": "where", "value": "worker", "type": "string"}]
        status, c = cluster.master.json("GET", "/api/v2beta/cluster")
        assert status == 200 and c["totals"]["nodes"] == 2, c
    finally:
        cluster.cleanup()


try:
    harness.run_tests([
        test_a_job_logs_metrics_params_tags_and_the_api_returns_them_exactly,
        test_a_wrong_or_missing_secret_is_refused_and_nothing_is_stored,
        test_a_running_jobs_secret_works_until_the_job_ends,
        test_the_secret_appears_in_no_answer_log_or_redis_value,
        test_a_burst_of_10000_metrics_does_not_slow_the_job,
        test_outside_a_job_calls_do_nothing_after_one_warning,
        test_tags_description_notes_overview_sorting_and_filtering,
        test_the_cluster_view_shows_nodes_slots_and_queue,
        test_the_page_is_served_with_content_types_and_no_traversal,
        test_deleting_a_job_removes_its_tracking_data,
        test_the_dashboards_data_is_read_and_written_across_a_redis_restart,
        test_in_a_cluster_the_worker_takes_the_data_and_the_master_shows_it,
    ])
finally:
    node.cleanup()
