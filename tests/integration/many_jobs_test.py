"""Many jobs at once: every one completes exactly once, none is lost."""

import os
import tarfile
import tempfile
import threading
import uuid

import harness
from harness import Node, wait_until

node = Node(slots=4).start()
marks = tempfile.mkdtemp(prefix="atlas-marks-")


def upload_and_queue(job_id, source):
    bundle = os.path.join(tempfile.mkdtemp(), f"{job_id}.tgz")
    with tarfile.open(bundle, "w:gz") as tar:
        tar.add(source, arcname=f"{job_id}/job_source")
    boundary = uuid.uuid4().hex
    with open(bundle, "rb") as f:
        payload = f.read()
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"job_bundle\"; "
            f"filename=\"{job_id}.tgz\"\r\nContent-Type: application/gzip\r\n\r\n").encode() \
        + payload + f"\r\n--{boundary}--\r\n".encode()
    status, raw = node.request("POST", "/job_bundle", body,
                               {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert status == 200, (status, raw)
    status, raw = node.json("POST", "/queued_jobs", {
        "job_id": job_id, "spec": {"command": ["main.py"], "environment": {"MARKS": marks}},
        "metadata": {"project_name": "many", "username": f"user{hash(job_id) % 3}"},
        "gpu_spec": {"num_gpus": 0}})
    assert status == 201 and raw == job_id, (status, raw)


def test_fifty_jobs_on_four_slots_all_complete_once():
    source = tempfile.mkdtemp(prefix="atlas-src-")
    with open(os.path.join(source, "main.py"), "w") as f:
        # Each run leaves one file named after its job and run: a second run
        # of the same job would leave a second file.
        f.write("import os, uuid\n"
                "job = os.environ['FOUNDATIONS_JOB_ID']\n"
                "open(os.path.join(os.environ['MARKS'], job + '.' + uuid.uuid4().hex), 'w')\n"
                "print('ran', job)\n")
    ids = [f"many-{i:02d}" for i in range(50)]
    errors = []

    def submit(chunk):
        for job_id in chunk:
            try:
                upload_and_queue(job_id, source)
            except Exception as e:  # noqa: BLE001 - collected and asserted below
                errors.append(e)
    threads = [threading.Thread(target=submit, args=(ids[i::5],)) for i in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors

    def all_done():
        status, done = node.json("GET", "/completed_jobs")
        return len(done) == 50 and done
    done = wait_until(all_done, 120, "50 jobs to complete")
    assert sorted(done) == ids
    runs = sorted(name.split(".")[0] for name in os.listdir(marks))
    assert runs == ids, "some job ran twice or not at all"
    status, failed = node.json("GET", "/failed_jobs")
    assert failed == {}, failed
    status, workers = node.json("GET", "/workers")
    assert len(workers) == 4
    assert sum(w["jobs_run"] for w in workers.values()) == 50, workers
    assert all(w["jobs_run"] > 0 for w in workers.values()), "a slot stayed idle"


try:
    harness.run_tests([test_fifty_jobs_on_four_slots_all_complete_once])
finally:
    node.cleanup()
