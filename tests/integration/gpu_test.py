"""GPU mode (`atlas-server start -g`) on a machine without GPUs: a stand-in
`nvidia-smi` earlier on PATH describes 4 GPUs. The node makes one slot per
GPU; jobs asking for 1, 2 and 4 GPUs get disjoint ids (as printed by the
jobs from CUDA_VISIBLE_DEVICES); a 5-GPU job fails at once; a 1-GPU job
overtakes a waiting 4-GPU job; once a GPU job has waited past
limits.gpu_reserve_after_s its node is held for it."""

import json
import os
import re
import subprocess
import tempfile
import time
import uuid

import harness
from harness import GpuNode, stand_in_nvidia_smi, wait_until

bin_dir, gpu_env = stand_in_nvidia_smi("NVIDIA Stand-in")
node = GpuNode(env=gpu_env).start()


def submit(target, job_id, gpus, shell):
    """Queues a job on the master's queue directly (its bundle uploaded first)."""
    status, raw = target.upload(job_id, {"main.py": "print('x')\n"})
    assert status == 200, (status, raw)
    status, answer = target.json("POST", "/queued_jobs", {
        "job_id": job_id, "spec": {"entrypoint": ["sh", "-c"], "command": [shell]},
        "metadata": {"project_name": "gpu", "username": "alice"},
        "gpu_spec": {"num_gpus": gpus}})
    assert status == 201 and answer == job_id, (status, answer)
    return job_id


def rec(target, job_id):
    status, body = target.json("GET", f"/jobs/{job_id}")
    assert status == 200, (status, body)
    return body


def final(target, job_id, timeout=60):
    return wait_until(lambda: (lambda j: j if j["state"] in ("completed", "failed", "cancelled")
                               else None)(rec(target, job_id)), timeout, f"{job_id} to finish")


def printed_gpus(target, job_id):
    logs = target.cli("get", "logs", "local", job_id, check=0).stdout
    m = re.search(r"CUDA=\[([^\]]*)\] NV=\[([^\]]*)\]", logs)
    assert m, logs
    cuda = [g for g in m.group(1).split(",") if g]
    return cuda, m.group(2)


PRINT = "echo CUDA=[$CUDA_VISIBLE_DEVICES] NV=[$NVIDIA_VISIBLE_DEVICES]; "


def test_the_node_makes_one_slot_per_gpu_and_advertises_them():
    r = subprocess.run([os.environ.get("ATLAS_CTL", "atlas-ctl"), "--json", "slots"],
                       env=node.env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, (r.stdout, r.stderr)
    data = json.loads(r.stdout)
    slots = data["slots"] if isinstance(data, dict) else data
    assert len(slots) == 4, slots
    assert sorted(g for s in slots for g in s["gpus"]) == ["0", "1", "2", "3"], slots
    assert all(len(s["gpus"]) == 1 for s in slots), slots
    assert "4 GPU(s)" in open(node.home + "/node.log").read()


def test_jobs_asking_for_1_2_and_4_gpus_get_disjoint_ids():
    one = submit(node, "g1-" + uuid.uuid4().hex[:8], 1, PRINT + "sleep 3")
    two = submit(node, "g2-" + uuid.uuid4().hex[:8], 2, PRINT + "sleep 3")
    four = submit(node, "g4-" + uuid.uuid4().hex[:8], 4, PRINT + "sleep 1")
    cpu = submit(node, "g0-" + uuid.uuid4().hex[:8], 0, PRINT)
    jobs = {j: final(node, j) for j in [one, two, four, cpu]}
    for j, r in jobs.items():
        assert r["state"] == "completed", r
    g1, nv1 = printed_gpus(node, one)
    g2, nv2 = printed_gpus(node, two)
    g4, _ = printed_gpus(node, four)
    g0, nv0 = printed_gpus(node, cpu)
    assert len(g1) == 1 and len(g2) == 2 and sorted(g4) == ["0", "1", "2", "3"], (g1, g2, g4)
    assert set(g1).isdisjoint(g2), (g1, g2)
    assert nv1 == ",".join(g1) and nv2 == ",".join(g2), (nv1, nv2)
    assert g0 == [] and nv0 == "void", (g0, nv0)  # a CPU job on a GPU node sees no GPU
    assert jobs[one]["gpus"] == g1 and jobs[two]["gpus"] == g2, jobs
    # 1 + 2 ran side by side; the 4-GPU job only once both had ended.
    assert jobs[one]["start_time"] < jobs[two]["end_time"], jobs
    assert jobs[four]["start_time"] >= max(jobs[one]["end_time"], jobs[two]["end_time"]) - 0.01, jobs


def test_a_job_asking_for_more_gpus_than_any_node_has_fails_at_once():
    t = time.monotonic()
    job_id = submit(node, "g5-" + uuid.uuid4().hex[:8], 5, "true")
    r = rec(node, job_id)
    assert r["state"] == "failed", r
    assert time.monotonic() - t < 5
    assert "asks for 5 GPUs, but the largest node of the cluster has 4" in r["reason"], r


def test_a_1_gpu_job_overtakes_a_waiting_4_gpu_job():
    blocker = submit(node, "gb-" + uuid.uuid4().hex[:8], 1, "sleep 4")
    wait_until(lambda: rec(node, blocker)["state"] == "running", 30, "the blocker to run")
    big = submit(node, "gB-" + uuid.uuid4().hex[:8], 4, "true")
    small = submit(node, "gs-" + uuid.uuid4().hex[:8], 1, PRINT + "sleep 1")
    s = final(node, small)
    b = final(node, big)
    assert s["state"] == "completed" and b["state"] == "completed", (s, b)
    assert s["start_time"] < b["start_time"], (s, b)
    assert final(node, blocker)["end_time"] <= b["start_time"] + 0.01


def test_a_gpu_job_waiting_past_the_bound_has_its_node_held():
    held = GpuNode(env=gpu_env)
    path = held.home + "/config/atlas.config.yaml"
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:  # the harness wrote a limits: block already
        f.write(text.replace("limits:\n", "limits:\n  gpu_reserve_after_s: 1\n", 1))
    held.start()
    try:
        blocker = submit(held, "hb-" + uuid.uuid4().hex[:8], 1, "sleep 4")
        wait_until(lambda: rec(held, blocker)["state"] == "running", 30, "the blocker to run")
        big = submit(held, "hB-" + uuid.uuid4().hex[:8], 4, "true")
        time.sleep(1.5)  # past the bound: the node is held for the big job
        small = submit(held, "hs-" + uuid.uuid4().hex[:8], 1, "true")
        s = final(held, small)
        b = final(held, big)
        assert s["state"] == "completed" and b["state"] == "completed", (s, b)
        assert b["start_time"] <= s["start_time"], (s, b)
    finally:
        held.cleanup()


def test_gpu_mode_without_nvidia_smi_refuses_to_start_with_the_reason():
    home = tempfile.mkdtemp(prefix="atlas-nosmi-")
    env = dict(os.environ, FOUNDATIONS_HOME=home, PATH="/nonexistent")
    r = subprocess.run([harness.SERVER, "start", "-g", "--foreground"], env=env,
                       capture_output=True, text=True, timeout=30)
    import shutil
    shutil.rmtree(home, ignore_errors=True)
    assert r.returncode != 0, r
    assert "nvidia-smi not found" in r.stderr, r.stderr


try:
    harness.run_tests([
        test_the_node_makes_one_slot_per_gpu_and_advertises_them,
        test_jobs_asking_for_1_2_and_4_gpus_get_disjoint_ids,
        test_a_job_asking_for_more_gpus_than_any_node_has_fails_at_once,
        test_a_1_gpu_job_overtakes_a_waiting_4_gpu_job,
        test_a_gpu_job_waiting_past_the_bound_has_its_node_held,
        test_gpu_mode_without_nvidia_smi_refuses_to_start_with_the_reason,
    ])
finally:
    node.cleanup()
    import shutil
    shutil.rmtree(bin_dir, ignore_errors=True)
