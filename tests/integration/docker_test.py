"""The Docker runner against a real dockerd started by this test (its own
data-root, exec-root and socket in a temp dir; no bridge, no iptables, no
forwarding; stopped by its pid) and a busybox image imported locally: a
container job completes with its output in the logs, exit code 3 fails it,
stop kills it within the grace period, a 32 MiB limit fails a memory-hungry
job with "out of memory", engine errors become failure reasons, and after a
node SIGKILL and restart no container of its jobs remains."""

import http.client
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time
import uuid

import harness
from harness import Node, wait_until

IMAGE = "atlas-test/busybox"
APPLETS = ["sh", "echo", "cat", "sleep", "ls", "pwd", "env", "head", "dd", "printenv", "true"]


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.socket_path)
        self.sock = s


class Dockerd:
    """A dockerd of the test's own, touching nothing of the machine's network."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="atlas-dk-", dir="/tmp")
        self.socket = self.dir + "/docker.sock"
        self.log = open(self.dir + "/dockerd.log", "ab")
        dockerd = shutil.which("dockerd")
        assert dockerd, "dockerd not found (scripts/install-deps.sh installs docker.io)"
        self.proc = subprocess.Popen(
            [dockerd, "--data-root", self.dir + "/data", "--exec-root", self.dir + "/exec",
             "-H", "unix://" + self.socket, "--pidfile", self.dir + "/docker.pid",
             "--iptables=false", "--ip-forward=false", "--bridge=none"],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(self.ping, 60, "dockerd to answer on its socket")

    def api(self, method, path, body=None, headers=None, timeout=60):
        c = UnixHTTPConnection(self.socket, timeout)
        try:
            c.request(method, "/v1.41" + path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def ping(self):
        if self.proc.poll() is not None:
            raise AssertionError("dockerd exited:\n" + open(self.dir + "/dockerd.log").read()[-3000:])
        try:
            return self.api("GET", "/_ping", timeout=2)[0] == 200
        except OSError:
            return False

    def import_busybox(self):
        """A root with busybox and its applets, imported as IMAGE."""
        busybox = shutil.which("busybox")
        assert busybox, "busybox not found (scripts/install-deps.sh installs busybox-static)"
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            tar.add(busybox, arcname="bin/busybox")
            for name in APPLETS:
                link = tarfile.TarInfo("bin/" + name)
                link.type = tarfile.SYMTYPE
                link.linkname = "busybox"
                tar.addfile(link)
            for d in ["tmp", "root", "proc", "sys", "dev", "etc"]:
                info = tarfile.TarInfo(d)
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
        status, raw = self.api("POST", f"/images/create?fromSrc=-&repo={IMAGE}&tag=latest",
                               buf.getvalue(), {"Content-Type": "application/x-tar"}, timeout=120)
        assert status == 200, (status, raw)

    def containers(self, label):
        filters = json.dumps({"label": [label]})
        status, raw = self.api("GET", "/containers/json?all=1&filters="
                               + urllib_quote(filters))
        assert status == 200, (status, raw)
        return json.loads(raw)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def cleanup(self):
        self.stop()
        subprocess.run(["umount", "-R", self.dir + "/exec"], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


def urllib_quote(s):
    from urllib.parse import quote
    return quote(s, safe="")


def docker_config(dockerd):
    return ("runner: docker\n"
            f"docker:\n  socket: {dockerd.socket}\n  image: {IMAGE}\n"
            "cluster:\n  rejoin_grace_s: 1\n")


dockerd = Dockerd()
node = None
try:
    dockerd.import_busybox()
    node = Node(slots=2, atlas_config=docker_config(dockerd)).start()
except BaseException:
    if node:
        node.cleanup()
    dockerd.cleanup()
    raise


# -- helpers ----------------------------------------------------------------------

def bundle_bytes(job_id, files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{job_id}/job_source/{name}")
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def submit(target, shell, spec_extra=None, max_retries=None, files=None, gpus=0):
    """Uploads a bundle and queues a job that runs `shell` with sh -c."""
    job_id = "dk-" + uuid.uuid4().hex[:12]
    boundary = uuid.uuid4().hex
    payload = bundle_bytes(job_id, files or {"main.py": "print('never run by python here')\n"})
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"job_bundle\"; "
            f"filename=\"{job_id}.tgz\"\r\nContent-Type: application/gzip\r\n\r\n").encode() \
        + payload + f"\r\n--{boundary}--\r\n".encode()
    status, raw = target.request("POST", "/job_bundle", body,
                                 {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert status == 200, (status, raw)
    spec = {"entrypoint": ["sh", "-c"], "command": [shell]}
    spec.update(spec_extra or {})
    job = {"job_id": job_id, "spec": spec, "metadata": {"project_name": "dk", "username": "alice"},
           "gpu_spec": {"num_gpus": gpus}}
    if max_retries is not None:
        job["max_retries"] = max_retries
    status, answer = target.json("POST", "/queued_jobs", job)
    assert status == 201 and answer == job_id, (status, answer)
    return job_id


def record(target, job_id):
    status, body = target.json("GET", f"/jobs/{job_id}")
    assert status == 200, (status, body)
    return body


def final(target, job_id, timeout=60):
    return wait_until(lambda: (lambda j: j if j.get("state") in ("completed", "failed", "cancelled")
                               else None)(record(target, job_id)),
                      timeout, f"job {job_id} to finish")


def containers_of(job_id):
    return dockerd.containers(f"atlas.job_id={job_id}")


# -- tests ------------------------------------------------------------------------

def test_a_container_job_completes_with_its_output_in_the_logs():
    job_id = submit(node, "echo hello from the container; echo to stderr >&2; "
                          "cat /job/job_source/data.txt; echo cwd=$(pwd); "
                          "echo nets=$(ls /sys/class/net); echo job=$FOUNDATIONS_JOB_ID; "
                          "echo redis=${REDIS_ADDRESS:-none}",
                    files={"data.txt": "bundle content\n"})
    job = final(node, job_id)
    assert job["state"] == "completed", job
    assert job["return_code"] == 0, job
    logs = node.cli("get", "logs", "local", job_id, check=0).stdout
    for line in ["hello from the container", "to stderr", "bundle content", "cwd=/job/job_source",
                 "nets=lo", f"job={job_id}", "redis=none"]:
        assert line in logs, (line, logs)
    assert containers_of(job_id) == [], "the finished job's container was not removed"


def test_a_container_jobs_cpu_time_and_memory_are_sampled_for_usage():
    # The engine tells nothing once a container exited: the runner samples
    # it every 2 s, so a job that spins for 3-4 s shows CPU time and memory.
    job_id = submit(node, "end=$(( $(date +%s) + 4 )); while [ $(date +%s) -lt $end ]; do :; done")
    job = final(node, job_id)
    assert job["state"] == "completed", job
    assert job["cpu_seconds"] > 0.1, job
    assert job["peak_memory_bytes"] > 0, job


def test_exit_code_3_fails_the_job():
    job_id = submit(node, "echo about to fail; exit 3")
    job = final(node, job_id)
    assert job["state"] == "failed", job
    assert job["return_code"] == 3, job
    assert "exited with code 3" in job["reason"], job
    assert "about to fail" in node.cli("get", "logs", "local", job_id, check=0).stdout
    assert containers_of(job_id) == []


def test_a_running_container_is_labelled_and_stop_kills_it_within_the_grace_period():
    # busybox sleep as PID 1 ignores SIGTERM: only the kill after the grace
    # period (limits.stop_grace_s: 2) ends it.
    job_id = submit(node, "echo started; exec sleep 300")
    wait_until(lambda: record(node, job_id)["state"] == "running", 30, "the job to run")
    live = wait_until(lambda: containers_of(job_id), 10, "the job's container")
    assert len(live) == 1, live
    assert live[0]["Labels"]["atlas.node"] == record(node, job_id)["node"], live
    # The original client's GET /running_jobs/<id>/container_id names this container.
    status, name = node.json("GET", f"/running_jobs/{job_id}/container_id")
    assert status == 200 and "/" + name in live[0]["Names"], (status, name, live[0]["Names"])
    t = time.monotonic()
    status, body = node.json("DELETE", f"/running_jobs/{job_id}")
    assert status in (200, 204), (status, body)
    job = final(node, job_id, timeout=30)
    took = time.monotonic() - t
    assert job["state"] == "cancelled", job
    assert took < 2 + 8, f"stop took {took:.1f}s with a 2 s grace period"
    assert containers_of(job_id) == []


def test_a_32_mib_limit_fails_a_memory_hungry_job_with_out_of_memory():
    job_id = submit(node, "x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done",
                    spec_extra={"mem_limit": "32m"})
    job = final(node, job_id, timeout=60)
    assert job["state"] == "failed", job
    assert job["reason"] == "out of memory", job
    assert containers_of(job_id) == []


def test_a_64_mib_job_with_cpus_growing_to_1_gib_fails_with_out_of_memory():
    # 16 bytes doubled 26 times: 1 GiB, were the limit not there.
    job_id = submit(node, "x=aaaaaaaaaaaaaaaa; i=0; while [ $i -lt 26 ]; do x=$x$x; i=$((i+1)); done; "
                          "echo survived", spec_extra={"mem_limit": "64m", "cpus": 1})
    job = final(node, job_id, timeout=60)
    assert job["state"] == "failed", job
    assert job["reason"] == "out of memory", job
    assert "survived" not in node.cli("get", "logs", "local", job_id, check=0).stdout
    assert containers_of(job_id) == []


def test_engine_errors_are_clear_failure_reasons():
    job_id = submit(node, "true", spec_extra={"image": "atlas-test/no-such-image"})
    job = final(node, job_id)
    assert job["state"] == "failed", job
    assert "not found on this node" in job["reason"], job
    job_id = submit(node, "true", spec_extra={"volumes": {"/etc": {"bind": "/e", "mode": "ro"}}})
    job = final(node, job_id)
    assert job["state"] == "failed" and "outside the directories" in job["reason"], job


def test_after_a_node_sigkill_and_restart_no_container_of_its_jobs_remains():
    job_id = submit(node, "exec sleep 300", max_retries=0)
    wait_until(lambda: record(node, job_id)["state"] == "running", 30, "the job to run")
    wait_until(lambda: containers_of(job_id), 10, "the job's container")
    os.killpg(node.proc.pid, signal.SIGKILL)
    node.proc.wait(timeout=10)
    assert len(containers_of(job_id)) == 1, "the container should outlive the killed node"
    node.start()
    # Leftovers go before the restarted node serves.
    assert containers_of(job_id) == [], containers_of(job_id)
    job = final(node, job_id, timeout=30)  # lost with no retries left
    assert job["state"] == "failed", job
    node_id = job["node"]
    assert dockerd.containers(f"atlas.node={node_id}") == []


FAKE_SMI = """#!/bin/sh
echo "0, GPU-00000000-aaaa-0000-0000-000000000000, NVIDIA Stand-in, 81920 MiB"
echo "1, GPU-11111111-aaaa-0000-0000-000000000000, NVIDIA Stand-in, 81920 MiB"
"""


def test_a_gpu_job_asks_the_engine_for_exactly_its_gpus():
    # No NVIDIA runtime here: the engine refuses the device request, which
    # shows the container asked for the job's GPUs; a CPU job on the same
    # GPU node runs and sees no GPU variables.
    bin_dir = tempfile.mkdtemp(prefix="atlas-smi-")
    with open(bin_dir + "/nvidia-smi", "w") as f:
        f.write(FAKE_SMI)
    os.chmod(bin_dir + "/nvidia-smi", 0o755)
    gpu = Node(atlas_config=docker_config(dockerd),
               env={"PATH": bin_dir + ":" + os.environ.get("PATH", ""), "NUM_WORKERS": ""})
    gpu.log = open(gpu.home + "/node.log", "ab")
    gpu.proc = subprocess.Popen([harness.SERVER, "start", "-g", "--foreground"], env=gpu.env,
                                stdout=gpu.log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until(gpu.healthy, 30, "the GPU node to serve")
        gpu.write_submission_config()
        job_id = submit(gpu, "true", gpus=1)
        job = final(gpu, job_id)
        assert job["state"] == "failed", job
        assert "nvidia" in job["reason"], job
        assert job["gpus"] == ["0"], job
        cpu = submit(gpu, "echo cuda=${CUDA_VISIBLE_DEVICES-unset} nv=${NVIDIA_VISIBLE_DEVICES-unset}")
        assert final(gpu, cpu)["state"] == "completed"
        logs = gpu.cli("get", "logs", "local", cpu, check=0).stdout
        assert "cuda=unset nv=unset" in logs, logs
    finally:
        gpu.cleanup()
        shutil.rmtree(bin_dir, ignore_errors=True)


def test_a_node_whose_engine_is_down_fails_container_jobs_with_the_reason():
    dockerd.stop()
    job_id = submit(node, "true")
    job = final(node, job_id)
    assert job["state"] == "failed", job
    assert "cannot reach the Docker engine" in job["reason"], job


try:
    harness.run_tests([
        test_a_container_job_completes_with_its_output_in_the_logs,
        test_a_container_jobs_cpu_time_and_memory_are_sampled_for_usage,
        test_exit_code_3_fails_the_job,
        test_a_running_container_is_labelled_and_stop_kills_it_within_the_grace_period,
        test_a_32_mib_limit_fails_a_memory_hungry_job_with_out_of_memory,
        test_a_64_mib_job_with_cpus_growing_to_1_gib_fails_with_out_of_memory,
        test_engine_errors_are_clear_failure_reasons,
        test_after_a_node_sigkill_and_restart_no_container_of_its_jobs_remains,
        test_a_gpu_job_asks_the_engine_for_exactly_its_gpus,
        test_a_node_whose_engine_is_down_fails_container_jobs_with_the_reason,
    ])
finally:
    node.cleanup()
    dockerd.cleanup()
