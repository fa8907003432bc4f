"""Time limits on a process job: the warning signal ahead of the limit, then
SIGTERM and SIGKILL after the grace period; the job ends `failed` "time limit"."""

import json
import os
import time
import uuid

import harness
from harness import Node, wait_until

# harness writes `limits:` with stop_grace_s: 2; this continues that map.
node = Node(slots=1, atlas_config="  time_warning_s: 1\n").start()
GRACE = 2


def run_with_limit(main_py, limit):
    job_id = uuid.uuid4().hex[:12]
    status, raw = node.upload(job_id, {"main.py": main_py})
    assert status == 200, (status, raw)
    body = {"job_id": job_id, "spec": {"command": ["main.py"]}, "time_limit": limit,
            "metadata": {"project_name": "limits", "username": "alice"},
            "gpu_spec": {"num_gpus": 0}}
    status, raw = node.request("POST", "/queued_jobs", json.dumps(body),
                               {"Content-Type": "application/json"})
    assert status == 201, (status, raw)
    node.wait_for_status(job_id, {"running", "failed", "completed"})
    return job_id, time.monotonic()


STUBBORN = """import os, signal, subprocess, sys, time
open('pgid', 'w').write(str(os.getpgid(0)))
def warned(*_):
    print('warned', os.environ.get('ATLAS_TIME_LIMIT'), flush=True)
signal.signal(signal.SIGUSR1, warned)
signal.signal(signal.SIGTERM, lambda *_: print('sigterm ignored', flush=True))
subprocess.Popen(['sleep', '300'])
print('started', flush=True)
while True:
    time.sleep(0.1)
"""


def test_a_job_ignoring_sigterm_is_warned_then_killed_after_the_grace_period():
    job_id, running = run_with_limit(STUBBORN, 2)
    pgid_file = f"{node.home}/job_data/working_dir/{job_id}/job_source/pgid"
    pgid = int(wait_until(lambda: os.path.exists(pgid_file) and open(pgid_file).read(), 10,
                          "the job to write its process group"))
    job = node.wait_for_status(job_id, {"failed", "completed", "cancelled"}, timeout=15)
    took = time.monotonic() - running
    assert job["state"] == "failed", job
    assert job["reason"].startswith("time limit"), job
    assert "grace" in job["reason"], job
    assert took < 2 + GRACE + 1, f"ended after {took:.1f}s"
    logs = job.get("logs", "")
    assert "warned 2" in logs and "sigterm ignored" in logs, logs
    assert logs.index("warned") < logs.index("sigterm ignored"), logs

    def group_gone():
        try:
            os.killpg(pgid, 0)
            return False
        except ProcessLookupError:
            return True
    wait_until(group_gone, 5, "the job's process group to disappear")


def test_a_job_leaving_on_sigterm_ends_time_limit_without_being_killed():
    job_id, running = run_with_limit(
        "import signal, time\nsignal.signal(signal.SIGUSR1, signal.SIG_IGN)\n"
        "print('started', flush=True)\ntime.sleep(300)\n", 2)
    job = node.wait_for_status(job_id, {"failed", "completed", "cancelled"}, timeout=15)
    took = time.monotonic() - running
    assert job["state"] == "failed", job
    assert job["reason"] == "time limit", job
    assert took < 2 + 1.5, f"ended after {took:.1f}s"


def test_a_job_not_catching_the_warning_ends_time_limit_at_the_warning():
    job_id, running = run_with_limit("import time\ntime.sleep(300)\n", 2)
    job = node.wait_for_status(job_id, {"failed", "completed", "cancelled"}, timeout=15)
    took = time.monotonic() - running
    assert job["state"] == "failed", job
    assert job["reason"].startswith("time limit"), job
    assert took < 2, f"ended after {took:.1f}s, not at the warning (1 s before the limit)"


def test_a_job_within_its_limit_completes():
    job_id, _ = run_with_limit("print('quick')\n", 30)
    job = node.wait_for_status(job_id, {"failed", "completed", "cancelled"}, timeout=15)
    assert job["state"] == "completed", job


try:
    harness.run_tests([
        test_a_job_ignoring_sigterm_is_warned_then_killed_after_the_grace_period,
        test_a_job_leaving_on_sigterm_ends_time_limit_without_being_killed,
        test_a_job_not_catching_the_warning_ends_time_limit_at_the_warning,
        test_a_job_within_its_limit_completes,
    ])
finally:
    node.cleanup()
