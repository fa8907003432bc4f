"""atlas-ctl's usage, events and watch's redraw on events, against one real
node (master with two slots) and its Redis: jobs of two users in two projects
run to the end, then their totals, the event stream (all of it, after an id,
followed from now) and a watch that redraws as soon as a job is submitted.

Every wait is bounded; every process started is stopped by its pid."""

import json
import os
import subprocess
import time

import harness
from harness import Node
from dashboard_jobs import submit

CTL = os.environ.get("ATLAS_CTL", "atlas-ctl")
MAIN = "import time\nprint('working')\ntime.sleep(1.5)\n"

node = Node(slots=2)
FIRST = []  # the jobs that ran before the tests: alice twice (vision), bob once (nlp)


def ctl(*args, check=0, timeout=20):
    r = subprocess.run([CTL, *args], env=node.env, capture_output=True, text=True,
                       timeout=timeout)
    if check is not None:
        assert r.returncode == check, (args, r.returncode, r.stdout, r.stderr)
    return r


def run_first_jobs():
    FIRST.extend([submit(node, MAIN, project="vision", user="alice"),
                  submit(node, MAIN, project="nlp", user="bob"),
                  submit(node, MAIN, project="vision", user="alice")])
    for job_id in FIRST:
        assert node.wait_for_status(job_id, {"completed", "failed"}, timeout=60)["status"] \
            == "completed"


def test_usage_sums_per_user_project_and_day():
    by_user = {r["user"]: r for r in json.loads(ctl("usage", "--json").stdout)["rows"]}
    assert set(by_user) == {"alice", "bob"}, by_user
    assert by_user["alice"]["jobs"] == 2 and by_user["bob"]["jobs"] == 1, by_user
    assert by_user["alice"]["slot_seconds"] >= 3, by_user  # two jobs of 1.5 s each
    assert by_user["alice"]["gpu_seconds"] == 0, by_user
    assert by_user["alice"]["peak_memory_bytes"] > 0, by_user
    by_project = json.loads(ctl("usage", "--by", "project", "--json").stdout)
    assert by_project["by"] == "project"
    assert {r["project"]: r["jobs"] for r in by_project["rows"]} == {"vision": 2, "nlp": 1}
    by_day = json.loads(ctl("usage", "--by", "day", "--json").stdout)["rows"]
    assert sum(r["jobs"] for r in by_day) == 3, by_day  # one day, or two around midnight UTC
    text = ctl("usage").stdout.splitlines()
    assert text[0].startswith("usage ") and text[0].endswith("by user"), text
    assert text[1].split()[:2] == ["USER", "JOBS"], text
    assert any(line.split()[:2] == ["alice", "2"] for line in text), text
    assert text[-1].split()[:2] == ["total", "3"], text


def test_usage_of_other_days_is_empty_and_bad_options_exit_2():
    r = ctl("usage", "--since", "2000-01-01", "--until", "2000-01-02")
    assert "no jobs ended" in r.stdout, r.stdout
    assert json.loads(ctl("usage", "--since", "0", "--until", "86400", "--json").stdout)["rows"] == []
    for args, needle in [(["--by", "node"], "--by"), (["--since", "2024-02-30"], "--since"),
                         (["--until", "soon"], "--until"),
                         (["--since", "2024-05-02", "--until", "2024-05-01"], "after")]:
        r = ctl("usage", *args, check=2)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], r.stderr


def test_events_lists_every_transition_and_resumes_after_an_id():
    lines = ctl("events").stdout.strip().splitlines()
    for job_id in FIRST:
        mine = [line for line in lines if f"  {job_id}  " in line]
        assert [line.split()[4] for line in mine] == \
            ["queued", "queued→pending", "pending→running", "running→completed"], mine
    events = [json.loads(line) for line in ctl("events", "--json").stdout.strip().splitlines()]
    assert len(events) == len(lines)
    assert all(e["kind"] in ("job", "node") and e["id"] for e in events), events
    middle = events[len(events) // 2]["id"]
    after = [json.loads(line) for line in ctl("events", "--after", middle, "--json").stdout.splitlines()]
    assert [e["id"] for e in after] == [e["id"] for e in events[len(events) // 2 + 1:]]
    assert ctl("events", "--after", events[-1]["id"]).stdout == ""
    r = ctl("events", "--after", "bogus", check=2)
    assert "--after" in r.stderr


def test_events_follow_from_now_shows_a_new_job():
    p = subprocess.Popen([CTL, "events", "--after", "now", "--follow"], env=node.env,
                         stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(1)
        job_id = submit(node, MAIN, project="vision", user="carl")
        node.wait_for_status(job_id, {"completed"}, timeout=60)
        time.sleep(1.5)  # two polls
    finally:
        p.terminate()
        out, _ = p.communicate(timeout=10)
    assert all(old not in out for old in FIRST), out  # nothing from before "now"
    assert f"{job_id}  running→completed" in out, out


def test_watch_redraws_when_an_event_arrives():
    p = subprocess.Popen([CTL, "watch", "--count", "2", "--interval", "30"], env=node.env,
                         stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(2)  # the first frame
        started = time.monotonic()
        job_id = submit(node, MAIN, project="vision", user="carl")
        out, _ = p.communicate(timeout=40)
        took = time.monotonic() - started
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, out
    assert took < 5, f"the second frame came {took:.1f} s after a job was queued (interval 30 s)"
    node.wait_for_status(job_id, {"completed"}, timeout=60)


if __name__ == "__main__":
    try:
        node.start()
        run_first_jobs()
        harness.run_tests([
            test_usage_sums_per_user_project_and_day,
            test_usage_of_other_days_is_empty_and_bad_options_exit_2,
            test_events_lists_every_transition_and_resumes_after_an_id,
            test_events_follow_from_now_shows_a_new_job,
            test_watch_redraws_when_an_event_arrives,
        ])
    finally:
        node.cleanup()
