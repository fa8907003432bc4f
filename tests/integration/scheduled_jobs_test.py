"""Scheduled jobs (the original's /scheduled_jobs) on a real cluster: Redis,
a master and one worker with two slots. Schedules use the optional leading
seconds field so that nothing waits minutes.

A schedule every few seconds fires on time, each run a job of its own
("<schedule>_<YYYYmmdd_HHMMSS>", schedule_id set); pause stops it, resume
restarts it, PATCH changes it, DELETE removes it; ?project= filters; bad
input is 400, unknown ids 404. A master killed while runs fall due fires
exactly one run for the outage when it is back, and one that fires a run
again after a crash is refused as the job it made. The CLI creates, lists,
pauses, resumes, reschedules and deletes, and its runs run the project."""

import calendar
import json
import os
import re
import socket
import subprocess
import tempfile
import time

from cluster_harness import TINY_ENTRYPOINT, Cluster
from harness import make_project, run_tests, wait_until

CLI = os.environ.get("FOUNDATIONS_CLI", "foundations")
TERMINAL = {"completed", "failed", "cancelled"}

cluster = Cluster(workers=1, slots=2)
M = cluster.master
JSON = {"Content-Type": "application/json"}


def call(method, path, body=None):
    status, raw = M.request(method, path, json.dumps(body) if body is not None else None, JSON)
    text = raw.decode(errors="replace")
    try:
        return status, json.loads(text) if text else None
    except ValueError:
        return status, text


def create(sid, schedule, project="sched-p", upload=True):
    if upload:
        status, raw = cluster.upload(sid, {"noop.txt": "tiny\n"})
        assert status == 200, (sid, status, raw)
    body = {"job_id": sid,
            "spec": {"entrypoint": TINY_ENTRYPOINT,
                     "environment": {"MARKS": cluster.marks, "ATLAS_TEST_TOKEN": cluster.token}},
            "metadata": {"project_name": project, "username": "alice"},
            "gpu_spec": {"num_gpus": 0}}
    if schedule is not None:
        body["schedule"] = schedule
    return call("POST", "/scheduled_jobs", body)


def due_of(job_id):
    """The UTC due time a run's id names."""
    stamp = job_id[-15:]
    return calendar.timegm(time.strptime(stamp, "%Y%m%d_%H%M%S"))


def runs_of(sid):
    """{job id: record} of the schedule's runs."""
    return {i: r for i, r in cluster.records(sid + "_").items() if r.get("schedule_id") == sid}


def wait_runs(sid, count, timeout, after=0):
    """Waits until `count` runs due after `after` exist; returns them all."""
    return wait_until(lambda: (lambda rs: rs if len([i for i in rs if due_of(i) > after]) >= count
                               else None)(runs_of(sid)), timeout, f"{count} runs of {sid}")


def test_a_schedule_every_few_seconds_fires_on_time_as_jobs_of_its_own():
    status, body = create("sch-a", "*/3 * * * * *")
    assert status == 201 and body == "sch-a", (status, body)
    status, body = call("GET", "/scheduled_jobs/sch-a")
    assert status == 200 and list(body) == ["sch-a"], (status, body)
    entry = body["sch-a"]
    assert entry["status"] == "active", entry
    nxt = entry["next_run_time"]
    assert len(nxt) == 3 and all(t % 3 == 0 for t in nxt), nxt
    assert nxt[1] - nxt[0] == 3 and nxt[2] - nxt[1] == 3, nxt
    assert entry["schedule"]["second"] == "*/3" and entry["schedule"]["cron"] == "*/3 * * * * *"
    assert entry["properties"]["job_id"] == "sch-a", entry
    assert entry["properties"]["metadata"]["project_name"] == "sched-p", entry
    runs = wait_runs("sch-a", 2, 15)
    for job_id, rec in runs.items():
        assert re.fullmatch(r"sch-a_\d{8}_\d{6}", job_id), job_id
        due = due_of(job_id)
        assert due % 3 == 0, job_id
        # On time: queued within two seconds of its due time.
        assert 0 <= rec["queued_time"] - due < 2, (job_id, rec["queued_time"], due)
        assert rec["project_name"] == "sched-p", rec
    first = sorted(runs)[0]
    done = cluster.wait_record(first, lambda r: r["state"] in TERMINAL, 20, "to end")
    assert done["state"] == "completed", done
    assert any(n.startswith(first + ".") for n in os.listdir(cluster.marks)), first


def test_pause_stops_a_schedule_and_resume_restarts_it():
    assert call("PUT", "/scheduled_jobs/sch-a", {"status": "paused"})[0] == 204
    status, body = call("GET", "/scheduled_jobs/sch-a")
    assert body["sch-a"]["status"] == "paused", body
    assert body["sch-a"]["next_run_time"] == [None, None, None], body
    time.sleep(1)  # a run fired just before the pause may still be on its way
    paused_at = time.time()
    before = set(runs_of("sch-a"))
    time.sleep(7)
    assert set(runs_of("sch-a")) == before, set(runs_of("sch-a")) - before
    assert call("PUT", "/scheduled_jobs/sch-a", {"status": "active"})[0] == 204
    assert call("GET", "/scheduled_jobs/sch-a")[1]["sch-a"]["status"] == "active"
    runs = wait_runs("sch-a", 1, 10, after=paused_at + 7)
    # Runs missed while paused are not made up.
    assert not [i for i in runs if paused_at < due_of(i) <= paused_at + 6], sorted(runs)


def test_patch_gives_a_schedule_a_new_time():
    status, _ = call("PATCH", "/scheduled_jobs/sch-a", {"schedule": {"second": "*/5"}})
    assert status == 204, status
    entry = call("GET", "/scheduled_jobs/sch-a")[1]["sch-a"]
    assert entry["schedule"]["cron"] == "*/5 * * * * *", entry
    assert all(t % 5 == 0 for t in entry["next_run_time"]), entry
    patched = time.time()
    runs = wait_runs("sch-a", 2, 15, after=patched + 1)
    later = [i for i in runs if due_of(i) > patched + 1]
    assert all(due_of(i) % 5 == 0 for i in later), later
    for bad in ({"schedule": "nope"}, {"schedule": {}}, {}, {"schedule": "61 * * * *"},
                {"schedule": "* * * * *", "status": "paused"}):
        status, body = call("PATCH", "/scheduled_jobs/sch-a", bad)
        assert status == 400, (bad, status, body)
    assert call("GET", "/scheduled_jobs/sch-a")[1]["sch-a"]["schedule"]["cron"] == "*/5 * * * * *"


def test_listing_filters_by_project_and_bad_input_is_refused():
    status, body = create("sch-b", None, project="other")  # no schedule: created paused
    assert status == 201, (status, body)
    status, body = call("GET", "/scheduled_jobs")
    assert status == 200 and {"sch-a", "sch-b"} <= set(body), body
    assert body["sch-b"]["status"] == "paused", body
    assert set(call("GET", "/scheduled_jobs?project=sched-p")[1]) == {"sch-a"}
    assert set(call("GET", "/scheduled_jobs?project=other")[1]) == {"sch-b"}
    assert call("GET", "/scheduled_jobs?project=none")[1] == {}
    assert set(call("GET", "/api/v1/scheduled_jobs?project=other")[1]) == {"sch-b"}
    # A worker's port hands them to the master.
    status, raw = cluster.workers[0].request("GET", "/scheduled_jobs?project=other")
    assert status == 200 and set(json.loads(raw)) == {"sch-b"}, (status, raw)
    # Resuming one without a schedule is refused; PATCH gives it one.
    assert call("PUT", "/scheduled_jobs/sch-b", {"status": "active"})[0] == 400
    # Bad input: 400; an id without a bundle or taken: 409; unknown: 404.
    for sid, schedule, want in (("bad-cron", "61 * * * *", "minute"),
                                ("bad-dow", "* * * * FOO", "day-of-week"),
                                ("bad-dict", {"minutes": "5"}, "minutes"),
                                ("bad-never", "0 0 30 2 *", "never")):
        status, body = create(sid, schedule)
        assert status == 400 and want in json.dumps(body), (sid, status, body)
    status, body = call("POST", "/scheduled_jobs", {"job_id": "bad-field", "spec": {},
                                                    "schedule": "@daily", "colour": "red"})
    assert status == 400 and "colour" in json.dumps(body), (status, body)
    status, body = create("no-bundle", "@daily", upload=False)
    assert status == 409 and "bundle" in json.dumps(body), (status, body)
    status, body = create("sch-b", "@daily")
    assert status in (409,), (status, body)
    for method, body in (("GET", None), ("DELETE", None), ("PUT", {"status": "paused"}),
                         ("PATCH", {"schedule": "@daily"})):
        status, _ = call(method, "/scheduled_jobs/no-such-schedule", body)
        assert status == 404, (method, status)
    assert call("PUT", "/scheduled_jobs/sch-a", {"status": "sleeping"})[0] == 400
    assert call("PUT", "/scheduled_jobs/sch-a", {})[0] == 400


def test_delete_removes_a_schedule_and_its_runs_stay():
    assert call("DELETE", "/api/v1/scheduled_jobs/sch-b")[0] == 204
    assert call("DELETE", "/scheduled_jobs/sch-a")[0] == 204
    assert call("GET", "/scheduled_jobs/sch-a")[0] == 404
    assert call("DELETE", "/scheduled_jobs/sch-a")[0] == 404
    time.sleep(1)
    before = set(runs_of("sch-a"))
    assert before
    time.sleep(6)
    assert set(runs_of("sch-a")) == before
    assert "sch-a" not in call("GET", "/scheduled_jobs")[1]


def test_a_master_killed_while_runs_fall_due_fires_one_run_for_the_outage():
    status, body = create("sch-k", "*/4 * * * * *")
    assert status == 201, (status, body)
    wait_runs("sch-k", 1, 10)
    M.kill()
    killed = time.time()
    time.sleep(13)  # three due times pass with no master
    restarted = time.time()
    M.start()
    cluster.wait_joined(cluster.workers[0])
    runs = wait_runs("sch-k", 1, 15, after=killed)
    after_kill = sorted((due_of(i), i) for i in runs if due_of(i) > killed)
    catch_up_due, catch_up = after_kill[0]
    # One run for the outage, fired once the master is back (not before).
    missed = [d for d, _ in after_kill if d <= restarted]
    assert len(missed) <= 1, after_kill
    assert runs[catch_up]["queued_time"] >= restarted, (catch_up, runs[catch_up], restarted)
    # Then the schedule goes on as before: the next run is at the next due time.
    time.sleep(5)
    later = sorted(due_of(i) for i in runs_of("sch-k") if due_of(i) > catch_up_due)
    assert later and all(d % 4 == 0 for d in later), later
    # No due time was fired twice, and the outage gave at most one extra run.
    dues = [due_of(i) for i in runs_of("sch-k")]
    assert len(dues) == len(set(dues)), dues
    between = [d for d in dues if killed < d < later[0]]
    assert len(between) == 1, (between, killed, restarted)
    assert call("DELETE", "/scheduled_jobs/sch-k")[0] == 204


def redis(*args):
    """One command to the cluster's Redis (RESP by hand: no client library)."""
    with socket.create_connection(("127.0.0.1", cluster.redis.port), timeout=5) as s:
        s.sendall((f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args))
                  .encode())
        f = s.makefile("rb")
        line = f.readline()
        if line.startswith(b"$"):
            n = int(line[1:])
            return None if n < 0 else f.read(n + 2)[:-2].decode()
        return line.decode().strip()


def test_a_run_fired_again_after_a_crash_is_refused_as_the_job_it_made():
    """A master that died after submitting a run but before recording it
    fires the same due time again: the run's id is the same, so it is
    refused as existing and no second job appears."""
    status, body = create("sch-i", "*/4 * * * * *")
    assert status == 201, (status, body)
    runs = wait_runs("sch-i", 1, 10)
    before = set(cluster.records("sch-i_"))
    M.kill()
    killed = time.time()
    first = sorted(runs)[0]
    due = due_of(first)
    # As if the master had died before recording `first`: the schedule has
    # handled nothing up to it, and its next due time is `first`'s.
    stored = json.loads(redis("HGET", "atlas:schedules", "sch-i"))
    t = time.gmtime(due)
    stored["cron"] = f"{t.tm_sec} {t.tm_min} {t.tm_hour} {t.tm_mday} {t.tm_mon} *"
    stored["after"] = due - 1
    assert redis("HSET", "atlas:schedules", "sch-i", json.dumps(stored)) == ":0"
    M.start()
    wait_until(lambda: f"run job_id={first} exists already" in M.node_log(), 15,
               "the run fired again to be refused")
    # Nothing new since the restart (one run may have come between the
    # listing and the kill).
    new = set(cluster.records("sch-i_")) - before
    assert all(due_of(i) <= killed for i in new), (new, killed)
    entry = call("GET", "/scheduled_jobs/sch-i")[1]["sch-i"]
    assert entry["next_run_time"][0] > due + 300 * 86400, entry  # next year: `first` is handled
    assert call("DELETE", "/scheduled_jobs/sch-i")[0] == 204


def test_the_cli_creates_lists_pauses_resumes_reschedules_and_deletes():
    M.write_submission_config()
    project = make_project(tempfile.mkdtemp(prefix="atlas-sched-"),
                           "import os\nprint('SCHEDULED RUN', os.environ['FOUNDATIONS_JOB_ID'], flush=True)\n",
                           name="cli-sched")

    def cli(*args):
        return subprocess.run([CLI, "schedule", *args], env=M.env, capture_output=True,
                              text=True, timeout=60)
    r = cli("create", "--cron", "61 * * * *", "local", project)
    assert r.returncode == 1 and "minute" in r.stderr, (r.returncode, r.stdout, r.stderr)
    r = cli("create", "local", project)
    assert r.returncode == 2 and "--cron" in r.stderr, (r.returncode, r.stderr)
    r = cli("create", "--cron", "*/3 * * * * *", "--priority", "2", "local", project)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    sid = re.search(r"Scheduled job '([^']+)' created", r.stdout).group(1)
    r = cli("list", "local", "--project", "cli-sched")
    assert r.returncode == 0 and sid in r.stdout and "active" in r.stdout, r.stdout
    runs = wait_runs(sid, 1, 15)
    first = sorted(runs)[0]
    assert runs[first]["priority"] == 2, runs[first]
    done = cluster.wait_record(first, lambda x: x["state"] in TERMINAL, 30, "to end")
    assert done["state"] == "completed", done
    status, logs = M.request("GET", f"/api/v1/jobs/{first}/logs")
    assert b"SCHEDULED RUN " + first.encode() in logs, logs
    r = cli("pause", "local", sid)
    assert r.returncode == 0 and "Paused" in r.stdout, (r.stdout, r.stderr)
    assert "paused" in cli("list", "local").stdout
    r = cli("resume", "local", sid)
    assert r.returncode == 0 and "Resumed" in r.stdout, (r.stdout, r.stderr)
    r = cli("update", "local", sid, "--cron", "@daily")
    assert r.returncode == 0 and "Rescheduled" in r.stdout, (r.stdout, r.stderr)
    assert call("GET", f"/scheduled_jobs/{sid}")[1][sid]["schedule"]["cron"] == "@daily"
    r = cli("update", "local", sid, "--cron", "bad")
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    r = cli("delete", "local", sid)
    assert r.returncode == 0 and "Deleted" in r.stdout, (r.stdout, r.stderr)
    r = cli("delete", "local", sid)
    assert r.returncode == 1 and "not found" in r.stderr, (r.returncode, r.stderr)
    assert sid not in cli("list", "local").stdout


try:
    cluster.start()
    run_tests([
        test_a_schedule_every_few_seconds_fires_on_time_as_jobs_of_its_own,
        test_pause_stops_a_schedule_and_resume_restarts_it,
        test_patch_gives_a_schedule_a_new_time,
        test_listing_filters_by_project_and_bad_input_is_refused,
        test_delete_removes_a_schedule_and_its_runs_stay,
        test_a_master_killed_while_runs_fall_due_fires_one_run_for_the_outage,
        test_a_run_fired_again_after_a_crash_is_refused_as_the_job_it_made,
        test_the_cli_creates_lists_pauses_resumes_reschedules_and_deletes,
    ])
finally:
    cluster.cleanup()
