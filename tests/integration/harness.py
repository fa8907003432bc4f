"""A real Atlas node for integration tests: its own FOUNDATIONS_HOME, free
ports on 127.0.0.1, a real redis-server, a real atlas-server process. Every
wait is bounded; everything started is stopped by its pid."""

import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback
import uuid
import urllib.error
import urllib.request

SERVER = os.environ.get("ATLAS_SERVER", "atlas-server")
CLI = os.environ.get("FOUNDATIONS_CLI", "foundations")


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


# Ports handed out so far by this process (each test file is one process).
_next_port = [None]


def free_port():
    """A loopback port free now, below the kernel's ephemeral range: a port
    from that range (what binding port 0 gives) can be taken as the source
    port of any outgoing connection of the tests running alongside before
    the server binds it ("address already in use" in a CI run). Each test
    process starts at its own place in the range, by pid, and moves on."""
    low, top = 15000, _ephemeral_low()
    if top - low < 1000:  # an unusual range: fall back to the kernel's pick
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]
    span = top - low
    if _next_port[0] is None:
        _next_port[0] = low + (os.getpid() * 97) % span
    for _ in range(span):
        port = _next_port[0]
        _next_port[0] = low + (port - low + 1) % span
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError(f"no free port between {low} and {top}")


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Redis:
    """A redis-server of the test's own, append-only file on."""

    def __init__(self, directory):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.port = free_port()
        self.start()

    def start(self):
        subprocess.run(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                        "--save", "", "--appendonly", "yes", "--dir", self.dir,
                        "--daemonize", "yes", "--pidfile", self.dir + "/redis.pid",
                        "--logfile", self.dir + "/redis.log"], check=True, timeout=10)
        wait_until(self.ping, 10, "redis-server to answer")

    def ping(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def pid(self):
        try:
            with open(self.dir + "/redis.pid") as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def stop(self):
        pid = self.pid()
        if pid:
            try:
                os.kill(pid, signal.SIGTERM)
                wait_until(lambda: not _alive(pid), 10, "redis-server to stop")
            except ProcessLookupError:
                pass


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child still answers kill(0): look at its state.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


class Node:
    """One atlas-server in the foreground, with its own home and ports."""

    def __init__(self, slots=1, atlas_config="", redis=True, env=None, home=None):
        self.home = home or tempfile.mkdtemp(prefix="atlas-it-")
        self.http_port = free_port()
        self.gateway_port = free_port()
        self.dashboard_port = free_port()
        self.redis = Redis(self.home + "/test-redis") if redis else None
        os.makedirs(self.home + "/config", exist_ok=True)
        with open(self.home + "/config/atlas.config.yaml", "w") as f:
            f.write(f"ports:\n  gateway: {self.gateway_port}\n  caf: {free_port()}\n"
                    f"  dashboard: {self.dashboard_port}\n")
            f.write("limits:\n  stop_grace_s: 2\n  drain_timeout_s: 5\n")
            f.write(atlas_config)
        self.env = dict(os.environ)
        self.env.update({
            "FOUNDATIONS_HOME": self.home,
            "HOST_ADDRESS": f"http://127.0.0.1:{self.http_port}/",
            "NUM_WORKERS": str(slots),
        })
        if self.redis:
            self.env["REDIS_ADDRESS"] = f"127.0.0.1:{self.redis.port}"
        self.env.update(env or {})
        self.proc = None
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.gateway = f"http://127.0.0.1:{self.gateway_port}"
        self.dashboard = f"http://127.0.0.1:{self.dashboard_port}"

    def start(self, timeout=30):
        self.log = open(self.home + "/node.log", "ab")
        self.proc = subprocess.Popen([SERVER, "start", "--foreground"], env=self.env,
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        wait_until(self.healthy, timeout, "atlas-server to serve")
        self.write_submission_config()
        return self

    def healthy(self):
        if self.proc.poll() is not None:
            raise AssertionError("atlas-server exited during start-up:\n" + self.node_log())
        try:
            return self.request("GET", "/healthz")[0] == 200
        except OSError:
            return False

    def write_submission_config(self, name="local"):
        os.makedirs(self.home + "/config/submission", exist_ok=True)
        with open(f"{self.home}/config/submission/{name}.config.yaml", "w") as f:
            f.write(f"scheduler_url: {self.gateway}\n")

    def node_log(self):
        try:
            with open(self.home + "/node.log", errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def request(self, method, path, body=None, headers=None, base=None, timeout=15):
        data = body.encode() if isinstance(body, str) else body
        req = urllib.request.Request((base or self.url) + path, data=data, method=method,
                                     headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def json(self, method, path, body=None):
        status, raw = self.request(method, path, json.dumps(body) if body is not None else None,
                                   {"Content-Type": "application/json"})
        return status, (json.loads(raw) if raw else None)

    def upload(self, job_id, files):
        """POST /job_bundle of a bundle with `files` ({name: text}); (status, body)."""
        boundary = uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"job_bundle\"; "
                f"filename=\"{job_id}.tgz\"\r\nContent-Type: application/gzip\r\n\r\n").encode() \
            + bundle_bytes(job_id, files) + f"\r\n--{boundary}--\r\n".encode()
        return self.request("POST", "/job_bundle", body,
                            {"Content-Type": f"multipart/form-data; boundary={boundary}"})

    def job(self, job_id):
        status, body = self.json("GET", f"/jobs/{job_id}")
        assert status == 200, (status, body)
        return body

    def wait_for_status(self, job_id, statuses, timeout=30):
        return wait_until(lambda: (lambda j: j if j["status"] in statuses else None)(
            self.job(job_id)), timeout, f"job {job_id} to reach {statuses}")

    def cli(self, *args, timeout=60, check=None, cwd=None):
        r = subprocess.run([CLI, *args], env=self.env, capture_output=True, text=True,
                           timeout=timeout, cwd=cwd)
        if check is not None:
            assert r.returncode == check, (args, r.returncode, r.stdout, r.stderr)
        return r

    def stop_server(self):
        """Stops atlas-server (TERM, then KILL after 30 s); its Redis stays up."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)

    def stop(self):
        self.stop_server()
        if self.redis:
            self.redis.stop()

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.home, ignore_errors=True)


class GpuNode(Node):
    """A node started with -g: its GPUs are what `nvidia-smi` on its PATH
    lists (see stand_in_nvidia_smi), whatever CUDA_VISIBLE_DEVICES says here."""

    def start(self, timeout=30):
        self.log = open(self.home + "/node.log", "ab")
        env = {k: v for k, v in self.env.items() if k != "CUDA_VISIBLE_DEVICES"}
        self.proc = subprocess.Popen([SERVER, "start", "-g", "--foreground"], env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        wait_until(self.healthy, timeout, "atlas-server -g to serve")
        self.write_submission_config()
        return self


def stand_in_nvidia_smi(model="NVIDIA Stand-in", count=4, tag="aaaa"):
    """A folder holding a stand-in `nvidia-smi` that lists `count` GPUs of
    `model` as `nvidia-smi --query-gpu=index,uuid,name,memory.total
    --format=csv,noheader` does; (folder, env for a GpuNode using it)."""
    folder = tempfile.mkdtemp(prefix="atlas-smi-")
    lines = "".join(f'echo "{i}, GPU-{str(i) * 8}-{tag}-0000-0000-000000000000, {model}, 81920 MiB"\n'
                    for i in range(count))
    with open(folder + "/nvidia-smi", "w") as f:
        f.write("#!/bin/sh\n" + lines)
    os.chmod(folder + "/nvidia-smi", 0o750)
    return folder, {"PATH": folder + ":" + os.environ.get("PATH", ""), "NUM_WORKERS": ""}


def bundle_bytes(job_id, files, compresslevel=9):
    """A job bundle as the original client packs it: <job_id>/job_source/...
    (compresslevel 0: stored blocks, every file's bytes verbatim in the .tgz)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=compresslevel) as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{job_id}/job_source/{name}")
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def make_project(directory, main_py, name="proj"):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "main.py"), "w") as f:
        f.write(main_py)
    with open(os.path.join(directory, "job.config.yaml"), "w") as f:
        f.write(f"project_name: {name}\n")
    return directory


def run_tests(tests):
    """Runs test functions in order; prints one line each; exits non-zero on
    any failure."""
    failed = 0
    for test in tests:
        start = time.monotonic()
        try:
            test()
            print(f"ok   {test.__name__} ({time.monotonic() - start:.1f}s)", flush=True)
        except Exception:  # noqa: BLE001 - report every failure and go on
            failed += 1
            print(f"FAIL {test.__name__} ({time.monotonic() - start:.1f}s)", flush=True)
            traceback.print_exc()
    print(f"{len(tests) - failed} passed, {failed} failed", flush=True)
    sys.exit(1 if failed else 0)
