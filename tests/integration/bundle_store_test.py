"""Bundles stored once by content (POST /api/v1/bundles) against a real
atlas-server and Redis: the same bytes uploaded twice are stored once, jobs
submitted with {"bundle": <sha256>, "params": {...}} each get a hard link to
that one file and read their own params from foundations_job_parameters.json;
bad or unknown hashes, a non-tar upload and a reused job id are refused with
a clear message, and deleting a job leaves the stored bundle to the others;
retention removes a stored bundle only once no job holds it and nobody used
it for `retention.unused_bundles`."""

import gzip
import hashlib
import io
import json
import os
import tarfile
import time
import uuid

from harness import Node, run_tests, wait_until

node = Node(slots=2).start()
STORE = node.home + "/job_data/job_store"
TERMINAL = {"completed", "failed", "cancelled"}


def deterministic_bundle(files):
    """A .tgz whose bytes depend on `files` only (fixed mtimes, no gzip time)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name in sorted(files):
            data = files[name].encode()
            info = tarfile.TarInfo("job_source/" + name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


BUNDLE = deterministic_bundle({"main.sh": "cat foundations_job_parameters.json\n"})
HASH = hashlib.sha256(BUNDLE).hexdigest()


def upload(data, field="job_bundle"):
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; "
            f"filename=\"bundle.tgz\"\r\nContent-Type: application/gzip\r\n\r\n").encode() \
        + data + f"\r\n--{boundary}--\r\n".encode()
    status, raw = node.request("POST", "/api/v1/bundles", body,
                               {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    return status, json.loads(raw) if raw else None


def submit(job_id, params=None, bundle=HASH):
    body = {"job_id": job_id, "bundle": bundle,
            "spec": {"entrypoint": ["/bin/sh", "main.sh"]},
            "metadata": {"project_name": "store", "username": "alice"}}
    if params is not None:
        body["params"] = params
    status, raw = node.request("POST", "/queued_jobs", json.dumps(body),
                               {"Content-Type": "application/json"})
    return status, raw.decode(errors="replace")


def record(job_id):
    status, rec = node.json("GET", f"/api/v1/jobs/{job_id}")
    assert status == 200, (job_id, status, rec)
    return rec


def logs(job_id):
    status, raw = node.request("GET", f"/api/v1/jobs/{job_id}/logs")
    assert status == 200, (job_id, status, raw)
    return raw.decode(errors="replace")


def stored_files():
    return sorted(f for f in os.listdir(STORE + "/bundles") if f.endswith(".tgz"))


def test_the_same_content_is_stored_once():
    status, first = upload(BUNDLE)
    assert status == 200, (status, first)
    assert first == {"bundle": HASH, "size": len(BUNDLE), "stored": True}, first
    status, again = upload(BUNDLE)
    assert status == 200 and again["bundle"] == HASH and again["stored"] is False, again
    assert stored_files() == [HASH + ".tgz"], stored_files()
    assert node.request("HEAD", f"/api/v1/bundles/{HASH}")[0] == 200
    assert node.request("GET", f"/api/v1/bundles/{'0' * 64}")[0] == 404
    status, raw = node.request("GET", "/api/v1/bundles/not-a-hash")
    assert status == 400 and b"SHA-256" in raw, (status, raw)
    assert node.request("DELETE", f"/api/v1/bundles/{HASH}")[0] == 405
    assert not [f for f in os.listdir(STORE + "/bundles") if f.startswith(".incoming")]


def test_jobs_share_the_stored_bundle_and_read_their_params():
    ids = [f"trial-{i}" for i in range(5)]
    for i, job_id in enumerate(ids):
        status, raw = submit(job_id, {"trial": i, "layers": [64, 32]})
        assert status == 201, (job_id, status, raw)
    wait_until(lambda: all(record(j)["state"] in TERMINAL for j in ids), 60, "the trials to end")
    for i, job_id in enumerate(ids):
        rec = record(job_id)
        assert rec["state"] == "completed", rec
        assert rec["params"] == {"trial": i, "layers": [64, 32]}, rec["params"]
        assert json.loads(logs(job_id)) == {"trial": i, "layers": [64, 32]}
        # One file on disk: the job's bundle is a hard link to the stored one.
        assert os.stat(f"{STORE}/{job_id}.tgz").st_ino == os.stat(f"{STORE}/bundles/{HASH}.tgz").st_ino
    assert os.stat(f"{STORE}/bundles/{HASH}.tgz").st_nlink == 1 + len(ids)
    assert stored_files() == [HASH + ".tgz"]


def test_bad_bundles_are_refused_with_a_reason():
    status, raw = submit("bad-hash", bundle="xyz")
    assert status == 400 and "SHA-256" in raw, (status, raw)
    status, raw = submit("unknown-hash", bundle="f" * 64)
    assert status == 400 and "POST /api/v1/bundles" in raw, (status, raw)
    status, raw = submit("trial-0")  # the id of a job that exists
    assert status == 409, (status, raw)
    status, body = upload(b"this is not a tarball")
    assert status == 400 and "Invalid job bundle" in body["error"] if isinstance(body, dict) \
        else status == 400, (status, body)
    status, body = upload(BUNDLE, field="other")
    assert status == 400, (status, body)
    status, raw = node.request("POST", "/queued_jobs", json.dumps(
        {"job_id": "bad-params", "bundle": HASH, "spec": {}, "params": [1, 2]}),
        {"Content-Type": "application/json"})
    assert status == 400 and "params" in raw.decode(), (status, raw)
    assert stored_files() == [HASH + ".tgz"]


def test_deleting_a_job_keeps_the_stored_bundle():
    assert node.request("DELETE", "/completed_jobs/trial-0")[0] == 204
    assert not os.path.exists(f"{STORE}/trial-0.tgz")
    assert os.path.exists(f"{STORE}/bundles/{HASH}.tgz")
    status, raw = submit("after-delete", {"trial": 99})
    assert status == 201, (status, raw)
    wait_until(lambda: record("after-delete")["state"] in TERMINAL, 30, "the job to end")
    assert json.loads(logs("after-delete")) == {"trial": 99}


def test_retention_removes_a_stored_bundle_no_job_used():
    idle = deterministic_bundle({"main.sh": "echo never run\n"})
    idle_hash = hashlib.sha256(idle).hexdigest()
    assert upload(idle)[0] == 200
    assert node.request("HEAD", f"/api/v1/bundles/{idle_hash}")[0] == 200
    time.sleep(3.5)  # unused for longer than the setting below
    node.stop_server()
    with open(node.home + "/config/atlas.config.yaml", "a") as f:
        f.write("retention: {unused_bundles: 2s}\n")
    node.start()  # the master looks through the store as it starts
    wait_until(lambda: not os.path.exists(f"{STORE}/bundles/{idle_hash}.tgz"), 30,
               "the unused bundle to be removed")
    assert not os.path.exists(f"{STORE}/bundles/{idle_hash}.owners")
    assert node.request("HEAD", f"/api/v1/bundles/{idle_hash}")[0] == 404
    # The bundle jobs hold stays, and so does theirs; the idle one can come back.
    assert stored_files() == [HASH + ".tgz"]
    assert os.stat(f"{STORE}/trial-1.tgz").st_ino == os.stat(f"{STORE}/bundles/{HASH}.tgz").st_ino
    assert upload(idle)[1]["stored"] is True


try:
    run_tests([test_the_same_content_is_stored_once,
               test_jobs_share_the_stored_bundle_and_read_their_params,
               test_bad_bundles_are_refused_with_a_reason,
               test_deleting_a_job_keeps_the_stored_bundle,
               test_retention_removes_a_stored_bundle_no_job_used])
finally:
    node.stop()
