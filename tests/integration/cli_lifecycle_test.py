"""The user's path through the `foundations` CLI against a real node."""

import os
import subprocess
import tempfile
import time

import harness
from harness import Node, make_project, wait_until

node = Node(slots=1).start()
work = tempfile.mkdtemp(prefix="atlas-proj-")


def submitted_id(result):
    # "Job '<id>' submitted to ..."
    for line in result.stdout.splitlines():
        if line.startswith("Job '") and "submitted" in line:
            return line.split("'")[1]
    raise AssertionError("no job id in output:\n" + result.stdout + result.stderr)


def test_init_then_submit_runs_the_project_and_shows_its_output():
    r = node.cli("init", "hello", cwd=work, check=0)
    project = os.path.join(work, "hello")
    assert os.path.isfile(os.path.join(project, "main.py")), r.stdout
    assert os.path.isfile(os.path.join(project, "job.config.yaml"))
    with open(os.path.join(project, "main.py"), "a") as f:
        f.write('\nprint("output from the sample job")\n')
    r = node.cli("submit", "local", project, check=0)
    job_id = submitted_id(r)
    assert "output from the sample job" in r.stdout, r.stdout
    job = node.job(job_id)
    assert job["status"] == "completed", job
    assert job["return_code"] == 0
    assert "output from the sample job" in job["logs"]
    logs = node.cli("get", "logs", "local", job_id, check=0)
    assert "output from the sample job" in logs.stdout


def test_a_job_exiting_3_fails_with_return_code_3():
    project = make_project(os.path.join(work, "three"), "import sys\nprint('bye')\nsys.exit(3)\n")
    r = node.cli("submit", "local", project)
    assert r.returncode != 0, r.stdout
    job = node.job(submitted_id(r))
    assert job["status"] == "failed", job
    assert job["return_code"] == 3, job
    assert "code 3" in job["reason"], job


def test_a_stopped_long_job_ends_within_the_grace_period_with_its_process_group_gone():
    project = make_project(os.path.join(work, "long"),
                           "import os, subprocess, time\n"
                           "open('pgid', 'w').write(str(os.getpgid(0)))\n"
                           "subprocess.Popen(['sleep', '300'])\n"
                           "print('started', flush=True)\n"
                           "time.sleep(300)\n")
    r = node.cli("submit", "--stream-job-logs", "False", "local", project, check=0)
    job_id = submitted_id(r)
    node.wait_for_status(job_id, {"running"})
    pgid_file = f"{node.home}/job_data/working_dir/{job_id}/job_source/pgid"
    pgid = int(wait_until(lambda: os.path.exists(pgid_file) and open(pgid_file).read(), 10,
                          "the job to write its process group"))
    status, body = node.json("GET", f"/running_jobs/{job_id}/container_id")
    assert status == 404 and "runs as a process" in body["error"], (status, body)
    start = time.monotonic()
    node.cli("stop", "local", job_id, check=0)
    job = node.wait_for_status(job_id, {"failed", "completed"}, timeout=10)
    assert time.monotonic() - start < 2 + 3, "not stopped within the grace period"
    assert job["state"] == "cancelled", job

    def group_gone():
        try:
            os.killpg(pgid, 0)
            return False
        except ProcessLookupError:
            return True
    wait_until(group_gone, 5, "the job's process group to disappear")


def test_clear_queue_cancels_every_queued_job():
    blocker = make_project(os.path.join(work, "block"), "import time\ntime.sleep(300)\n")
    first = submitted_id(node.cli("submit", "--stream-job-logs", "False", "local", blocker,
                                  check=0))
    node.wait_for_status(first, {"running"})
    queued = [submitted_id(node.cli("submit", "--stream-job-logs", "False", "local", blocker,
                                    check=0)) for _ in range(3)]
    status, listing = node.json("GET", "/queued_jobs")
    assert sorted(v["job_id"] for v in listing.values()) == sorted(queued), listing
    r = node.cli("clear-queue", "local", check=0)
    assert "3" in r.stdout, r.stdout
    status, listing = node.json("GET", "/queued_jobs")
    assert listing == {}, listing
    for job_id in queued:
        assert node.job(job_id)["state"] == "cancelled"
    node.cli("stop", "local", first, check=0)
    node.wait_for_status(first, {"failed"})


def test_a_finished_job_can_be_downloaded_then_deleted():
    project = make_project(os.path.join(work, "art"),
                           "open('result.txt', 'w').write('42')\nprint('done')\n")
    job_id = submitted_id(node.cli("submit", "local", project, check=0))
    save = tempfile.mkdtemp(prefix="atlas-save-")
    node.cli("get", "job", "local", job_id, "--save_dir", save, check=0)
    found = [os.path.join(d, f) for d, _, fs in os.walk(save) for f in fs]
    assert any(p.endswith("result.txt") for p in found), found
    node.cli("delete", "job", "local", job_id, check=0)
    status, _ = node.request("GET", f"/jobs/{job_id}")
    assert status == 404
    assert not os.path.exists(f"{node.home}/job_data/archive/{job_id}")


def test_unknown_job_ids_are_a_clear_error_not_a_crash():
    r = node.cli("get", "logs", "local", "no-such-job")
    assert r.returncode == 1 and "not found" in r.stderr, (r.stdout, r.stderr)
    for method, path in [("GET", "/jobs/no-such-job"), ("DELETE", "/running_jobs/no-such-job"),
                         ("DELETE", "/completed_jobs/no-such-job"),
                         ("GET", "/completed_jobs/no-such-job/logs"),
                         ("GET", "/job_bundle/no-such-job"), ("GET", "/jobs/..%2F..%2Fetc")]:
        status, _ = node.request(method, path)
        assert status == 404, (method, path, status)


def test_list_shows_the_jobs_with_their_status():
    r = node.cli("list", "local", check=0)
    assert "completed" in r.stdout and "failed" in r.stdout, r.stdout


def test_the_original_clients_habits_version_envs_and_disable_log_streaming():
    r = node.cli("--version", check=0)
    assert r.stdout.startswith("foundations "), r.stdout
    r = node.cli("info", "--env", check=0)
    assert "local" in r.stdout and "submission/local.config.yaml" in r.stdout, r.stdout
    project = make_project(os.path.join(work, "quiet"), "print('not streamed')\n")
    env = dict(node.env, DISABLE_LOG_STREAMING="True")
    r = subprocess.run([harness.CLI, "submit", "local", project], env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, (r.stdout, r.stderr)
    job_id = submitted_id(r)
    assert "not streamed" not in r.stdout, r.stdout
    assert node.wait_for_status(job_id, {"completed"})["status"] == "completed"
    # The original installer's options: those with no meaning here name what replaces them.
    r = subprocess.run([harness.SERVER, "start", "-t"], env=node.env, capture_output=True,
                       text=True, timeout=20)
    assert r.returncode == 2 and "foundations tensorboard" in r.stderr, (r.returncode, r.stderr)


def test_get_job_source_dir_and_tensorboard_gather_the_jobs_files():
    project = make_project(os.path.join(work, "tb"),
                           "import os\n"
                           "os.makedirs('atlas_tensorboard/train', exist_ok=True)\n"
                           "open('atlas_tensorboard/train/events.out.tfevents.1.host', 'wb').write(b'\\x00tb')\n"
                           "os.makedirs('sub', exist_ok=True)\n"
                           "open('sub/x.txt', 'w').write('x')\n")
    ids = [submitted_id(node.cli("submit", "local", project, check=0)) for _ in range(2)]
    out = tempfile.mkdtemp(prefix="atlas-tb-")
    node.cli("get", "job", "local", ids[0], "--save_dir", out, "--source_dir", "sub", check=0)
    kept = sorted(os.path.relpath(os.path.join(d, f), f"{out}/{ids[0]}")
                  for d, _, fs in os.walk(f"{out}/{ids[0]}") for f in fs)
    assert kept == ["sub/x.txt"], kept
    r = node.cli("get", "job", "local", ids[1], "--save_dir", out, "--source_dir", "nope")
    assert r.returncode == 1 and "no folder 'nope'" in r.stderr, r.stderr
    r = node.cli("get", "job", "local", ids[1], "--save_dir", out, "--source_dir", "../..")
    assert r.returncode == 2 and "inside the job's directory" in r.stderr, r.stderr
    # Only the asked folder travels: the node packs it (GET /job_bundle/<id>?folder=).
    status, raw = node.request("GET", f"/job_bundle/{ids[1]}?folder=sub")
    assert status == 200 and len(raw) < 1024, (status, len(raw))
    status, raw = node.request("GET", f"/job_bundle/{ids[1]}?folder=..%2F..%2F..")
    assert status == 404 and b"no folder" in raw, (status, raw)
    # Without TensorBoard installed: the files, and the command to run.
    env = dict(node.env, PATH="/usr/bin:/bin")
    r = subprocess.run([harness.CLI, "tensorboard", "local", *ids, "--save_dir", f"{out}/tb"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and f"tensorboard --logdir {out}/tb" in r.stdout, (r.stdout, r.stderr)
    for job_id in ids:
        assert open(f"{out}/tb/{job_id}/train/events.out.tfevents.1.host", "rb").read() == b"\x00tb"
    # With it on PATH, it runs on that folder.
    bin_dir = tempfile.mkdtemp(prefix="atlas-tb-bin-")
    with open(f"{bin_dir}/tensorboard", "w") as f:
        f.write(f"#!/bin/sh\necho \"$@\" > {out}/args\n")
    os.chmod(f"{bin_dir}/tensorboard", 0o755)
    env = dict(node.env, PATH=f"{bin_dir}:/usr/bin:/bin")
    r = subprocess.run([harness.CLI, "tensorboard", "local", ids[0], "--save_dir", f"{out}/tb2"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert open(f"{out}/args").read().strip() == f"--logdir {out}/tb2"


def test_job_config_yaml_sets_what_the_original_read_and_flags_win():
    project = make_project(os.path.join(work, "configured"), "print('main.py ran')\n")
    with open(f"{project}/train.py", "w") as f:
        f.write("import json, os, sys\n"
                "import foundations\n"
                "print('argv', sys.argv[1:])\n"
                "print('params', json.dumps(foundations.load_parameters(), sort_keys=True))\n"
                "print('env', os.environ.get('GREETING'), os.environ.get('FOUNDATIONS_LOG_LEVEL'))\n")
    with open(f"{project}/job.config.yaml", "w") as f:
        f.write("project_name: configured-project\nlog_level: error\nnum_gpus: 0\nram: 0.5\n"
                "params:\n  lr: 0.1\n  layers: [64, 32]\n"
                "worker:\n  command: [train.py, --fast]\n  environment:\n    GREETING: hello\n"
                "num_workers: 3\n")
    r = node.cli("submit", "local", project, check=0)
    assert "'num_workers' is not a setting Atlas reads; ignored" in r.stderr, r.stderr
    job_id = submitted_id(r)
    logs = node.wait_for_status(job_id, {"completed"})["logs"]
    assert "argv ['--fast']" in logs and "main.py ran" not in logs, logs
    assert 'params {"layers": [64, 32], "lr": 0.1}' in logs, logs
    assert "env hello ERROR" in logs, logs
    record = node.json("GET", f"/api/v1/jobs/{job_id}")[1]
    assert record["project_name"] == "configured-project", record
    assert record["memory_bytes"] == 512 * 1024 * 1024, record
    # The command line's words and flags win over the file.
    r = node.cli("submit", "--ram", "1", "local", project, "train.py", "--slow", check=0)
    job_id = submitted_id(r)
    assert "argv ['--slow']" in node.wait_for_status(job_id, {"completed"})["logs"]
    assert node.json("GET", f"/api/v1/jobs/{job_id}")[1]["memory_bytes"] == 1024 ** 3
    # A wrong value: nothing is submitted, the file and key are named.
    with open(f"{project}/job.config.yaml", "w") as f:
        f.write("num_gpus: -1\n")
    r = node.cli("submit", "local", project)
    assert r.returncode == 1 and "job.config.yaml: num_gpus: expected a whole number >= 0" in r.stderr, r.stderr
    assert "submitted" not in r.stdout


try:
    harness.run_tests([
        test_init_then_submit_runs_the_project_and_shows_its_output,
        test_a_job_exiting_3_fails_with_return_code_3,
        test_a_stopped_long_job_ends_within_the_grace_period_with_its_process_group_gone,
        test_clear_queue_cancels_every_queued_job,
        test_a_finished_job_can_be_downloaded_then_deleted,
        test_unknown_job_ids_are_a_clear_error_not_a_crash,
        test_list_shows_the_jobs_with_their_status,
        test_the_original_clients_habits_version_envs_and_disable_log_streaming,
        test_get_job_source_dir_and_tensorboard_gather_the_jobs_files,
        test_job_config_yaml_sets_what_the_original_read_and_flags_win,
    ])
finally:
    node.cleanup()
