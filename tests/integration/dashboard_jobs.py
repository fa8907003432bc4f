"""Jobs for the dashboard's tests: bundles posted straight to a node's API
(the way the original client does) and the SDK's folder."""

import io
import json
import os
import tarfile
import uuid

SDK_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "sdk", "python")


def bundle_bytes(job_id, files):
    """A gzip tar with <job_id>/job_source/<name> for each name -> text or bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            data = data.encode() if isinstance(data, str) else data
            info = tarfile.TarInfo(f"{job_id}/job_source/{name}")
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def submit(node, main_py, project="sdk", user="alice", files=None, job_id=None, headers=None):
    """Uploads a bundle with main.py (and `files`) and queues it; returns the id.
    `headers` go with both requests (Authorization in -p mode)."""
    job_id = job_id or "job-" + uuid.uuid4().hex[:12]
    boundary = uuid.uuid4().hex
    payload = bundle_bytes(job_id, {"main.py": main_py, **(files or {})})
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"job_bundle\"; "
            f"filename=\"{job_id}.tgz\"\r\nContent-Type: application/gzip\r\n\r\n").encode() \
        + payload + f"\r\n--{boundary}--\r\n".encode()
    status, raw = node.request("POST", "/job_bundle", body,
                               {"Content-Type": f"multipart/form-data; boundary={boundary}",
                                **(headers or {})})
    assert status == 200, (status, raw)
    spec = {"job_id": job_id, "spec": {"command": ["main.py"]},
            "metadata": {"project_name": project, "username": user},
            "gpu_spec": {"num_gpus": 0}}
    status, raw = node.request("POST", "/queued_jobs", json.dumps(spec),
                               {"Content-Type": "application/json", **(headers or {})})
    assert status == 201, (status, raw)
    return job_id
