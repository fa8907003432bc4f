"""A process job's memory limit is enforced through cgroup v2: asking for
64 MiB and growing to 1 GiB ends `failed` "out of memory". Skipped (77)
where the node cannot enforce it, as its start log says."""

import json
import sys
import uuid

import harness
from harness import Node, wait_until

node = Node(slots=1).start()


def enforcement_unavailable():
    log = wait_until(lambda: (lambda t: t if "cgroup v2 limits" in t else None)(node.node_log()),
                     10, "the node to say whether it enforces cgroup v2 limits")
    for line in log.splitlines():
        if "cgroup v2 limits unavailable" in line:
            return line
    return None


def test_a_64_mib_job_growing_to_1_gib_fails_with_out_of_memory():
    job_id = uuid.uuid4().hex[:12]
    main_py = ("chunks = [b'x' * (1 << 20) for _ in range(1024)]\n"
               "print('survived', len(chunks), flush=True)\n")
    status, raw = node.upload(job_id, {"main.py": main_py})
    assert status == 200, (status, raw)
    body = {"job_id": job_id, "spec": {"command": ["main.py"], "mem_limit": "64m", "cpus": 1},
            "metadata": {"project_name": "limits", "username": "alice"},
            "gpu_spec": {"num_gpus": 0}}
    status, raw = node.request("POST", "/queued_jobs", json.dumps(body),
                               {"Content-Type": "application/json"})
    assert status == 201, (status, raw)
    job = node.wait_for_status(job_id, {"failed", "completed"}, timeout=60)
    assert job["state"] == "failed", job
    assert job["reason"] == "out of memory", job
    assert "survived" not in job.get("logs", ""), job


try:
    why = enforcement_unavailable()
    if why:
        print("skipped: this node does not enforce cgroup v2 limits:", why.strip()[-300:])
        sys.exit(77)
    harness.run_tests([test_a_64_mib_job_growing_to_1_gib_fails_with_out_of_memory])
finally:
    node.cleanup()
