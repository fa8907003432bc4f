"""The on-premise guide, literally (docs/api_docs/sources/team/on-prem-installation.md
of dessa-oss/atlas): a master started with

    export HOST_ADDRESS=http://<CURRENT_NODES_IP>:5000/
    export REDIS_ADDRESS=<MASTER_NODES_IP>
    export NUM_WORKERS=0
    atlas-server start

and a worker with the same REDIS_ADDRESS, its own HOST_ADDRESS and
NUM_WORKERS=1, sharing FOUNDATIONS_HOME (the guide's NFS mount); no --role,
no Redis started by the test: the master starts its own where REDIS_ADDRESS
says. Then a user with a home of their own takes the master's
config/submission/scheduler.config.yaml, renames it remote.config.yaml, points
scheduler_url at the master's gateway (step 9), runs `foundations init` and
`foundations submit remote . main.py` and sees the job's output.

Case A: one machine, loopback (master 127.0.0.1, worker 127.0.0.2).
Case B: one network namespace per node, one address each, the master's
REDIS_ADDRESS its own non-loopback address (skipped, with the reason, where
namespaces cannot be made).

The guide's nodes are separate machines with the default ports. Here they
share one machine, so each node gets its own free ports for everything the
guide leaves at its default: HOST_ADDRESS's port (5000 in the guide),
ATLAS_CAF_PORT (5559), ATLAS_GATEWAY_PORT (5558) and ATLAS_DASHBOARD_PORT
(5555), and REDIS_ADDRESS names a free port instead of 5556.

Every wait is bounded; everything started is stopped by its pid."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

import harness
from harness import CLI, SERVER, _alive, free_port, wait_until
from cluster_harness import Namespaces, cmdline, http

TOKEN = uuid.uuid4().hex  # in every process this test starts (see leftovers())
JOB_OUTPUT = "output from the guide's sample job"


class GuideNode:
    """One node set up as the guide says, started with plain `atlas-server
    start` (daemonised: it returns once the node serves)."""

    def __init__(self, name, home, host, num_workers, redis_address, netns=None):
        self.name = name
        self.home = home
        self.host = host
        self.netns = netns
        # One machine, several nodes: ports of their own (see the docstring).
        self.http_port = free_port()
        self.gateway_port = free_port()
        self.caf_port = free_port()
        self.dashboard_port = free_port()
        self.env = {k: v for k, v in os.environ.items()
                    if k.lower() not in ("http_proxy", "https_proxy", "no_proxy")}
        self.env.update({
            "FOUNDATIONS_HOME": home,                        # the guide's NFS mount
            "HOST_ADDRESS": f"http://{host}:{self.http_port}/",
            "REDIS_ADDRESS": redis_address,
            "NUM_WORKERS": str(num_workers),
            "ATLAS_CAF_PORT": str(self.caf_port),
            "ATLAS_GATEWAY_PORT": str(self.gateway_port),
            "ATLAS_DASHBOARD_PORT": str(self.dashboard_port),
            "ATLAS_TEST_TOKEN": TOKEN,
        })
        self.node_id = f"{host}-{self.http_port}"
        self.node_dir = f"{home}/nodes/{self.node_id}"
        self.url = f"http://{host}:{self.http_port}"
        self.gateway = f"http://{host}:{self.gateway_port}"
        self.pid = None

    def server(self, *args, timeout=90):
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
        return subprocess.run([*prefix, SERVER, *args], env=self.env, capture_output=True,
                              text=True, timeout=timeout)

    def start(self):
        """`atlas-server start`; returns its one line."""
        r = self.server("start")
        assert r.returncode == 0, (self.name, r.returncode, r.stdout, r.stderr, self.log()[-3000:])
        self.pid = self.read_pid()
        assert self.pid and _alive(self.pid), (self.name, self.pid)
        lines = [line for line in r.stdout.splitlines() if line.strip()]
        assert len(lines) == 1, r.stdout
        return lines[0]

    def read_pid(self):
        try:
            with open(self.node_dir + "/atlas-server.pid") as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def log(self):
        try:
            with open(self.node_dir + "/atlas-server.log", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def health(self):
        status, raw = http("GET", self.url + "/healthz", timeout=5)
        assert status == 200, (status, raw)
        return json.loads(raw)

    def stop(self):
        """`atlas-server stop`; asserts it stopped the node."""
        r = self.server("stop", timeout=90)
        assert r.returncode == 0, (self.name, r.returncode, r.stdout, r.stderr)
        assert f"Atlas node {self.node_id} stopped" in r.stdout, r.stdout
        wait_until(lambda: not _alive(self.pid), 10, f"{self.name} (pid {self.pid}) to be gone")

    def kill(self):
        """Cleanup: SIGTERM, then SIGKILL, by pid."""
        pid = self.pid or self.read_pid()
        if not pid or not _alive(pid):
            return
        try:
            os.kill(pid, signal.SIGCONT)
            os.kill(pid, signal.SIGTERM)
            wait_until(lambda: not _alive(pid), 30, f"{self.name} to stop")
        except ProcessLookupError:
            pass
        except AssertionError:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def redis_pings(host, port):
    try:
        with socket.create_connection((host, port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def token_processes():
    """Pids of every process with this test's token in its environment: the
    nodes, their redis-server, their jobs."""
    needle = f"ATLAS_TEST_TOKEN={TOKEN}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle in f.read().split(b"\0"):
                    found.append(int(entry))
        except OSError:
            continue
    return [p for p in found if _alive(p)]


def kill_leftovers():
    found = token_processes()
    for pid in found:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return found


def submitted_id(text):
    # "Job '<id>' submitted to ..."
    for line in text.splitlines():
        if line.startswith("Job '") and "submitted" in line:
            return line.split("'")[1]
    raise AssertionError("no job id in the output:\n" + text)


def user_client(master_home, master_host, gateway_port):
    """Steps 3, 8, 9 and 10 of "Setup users client": the master's
    scheduler.config.yaml, renamed remote.config.yaml, scheduler_url pointed
    at the master's gateway, in the user's own ~/.foundations. Returns the
    user's environment."""
    user = tempfile.mkdtemp(prefix="atlas-guide-user-")
    given = f"{master_home}/config/submission/scheduler.config.yaml"
    assert os.path.isfile(given), f"the master wrote no {given}"
    with open(given) as f:
        text = f.read()
    assert re.search(r"^scheduler_url:", text, re.M), text
    text = re.sub(r"^scheduler_url:.*$", f"scheduler_url: http://{master_host}:{gateway_port}",
                  text, flags=re.M)
    os.makedirs(f"{user}/.foundations/config/submission")
    with open(f"{user}/.foundations/config/submission/remote.config.yaml", "w") as f:
        f.write(text)
    env = {k: v for k, v in os.environ.items()
           if k not in ("FOUNDATIONS_HOME",)
           and k.lower() not in ("http_proxy", "https_proxy", "no_proxy")}
    env.update({"HOME": user, "ATLAS_TEST_TOKEN": TOKEN})
    return user, env


def cli(env, *args, cwd, timeout=90):
    return subprocess.run([CLI, *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def the_guide(hosts, netns, timings):
    """The whole guide on `hosts` (master first, worker second), each node in
    its namespace from `netns` (or none)."""
    home = tempfile.mkdtemp(prefix="atlas-guide-")
    user = None
    redis_port = free_port()
    redis_address = f"{hosts[0]}:{redis_port}"
    master = GuideNode("master", home, hosts[0], 0, redis_address, netns[0])
    worker = GuideNode("worker", home, hosts[1], 1, redis_address, netns[1])
    try:
        assert not redis_pings(hosts[0], redis_port), "something answers on the Redis port already"

        # --- Setup the master node: "Starting Atlas Server"
        started = time.monotonic()
        line = master.start()
        timings["master start"] = time.monotonic() - started
        print(f"     master: {line}", flush=True)
        assert line.startswith(f"master node {master.node_id} serving"), line
        assert f"Redis {redis_address}" in line, line
        health = master.health()
        assert health["role"] == "master" and health["node"] == master.node_id, health
        log = master.log()
        assert re.search(r"redis-server started pid=\d+", log), log[-3000:]
        assert redis_pings(hosts[0], redis_port), "the master's Redis does not answer"
        redis_pid = int(re.search(r"redis-server started pid=(\d+)", log).group(1))
        assert _alive(redis_pid) and "redis-server" in cmdline(redis_pid), cmdline(redis_pid)

        # --- Setup worker node
        started = time.monotonic()
        line = worker.start()
        print(f"     worker: {line}", flush=True)
        assert line.startswith(f"worker node {worker.node_id} serving"), line
        assert worker.health()["role"] == "worker", worker.health()
        assert "redis-server started" not in worker.log(), worker.log()[-3000:]

        def joined():
            status, raw = http("GET", master.url + "/workers", timeout=5)
            assert status == 200, (status, raw)
            slots = json.loads(raw).values()
            return [s for s in slots if s["node"] == worker.node_id]
        slots = wait_until(joined, 30, "the worker's slot to appear on the master")
        timings["worker joined"] = time.monotonic() - started
        assert len(slots) == 1, slots

        # --- Setup users client, Test job submission
        user, env = user_client(home, hosts[0], master.gateway_port)
        r = cli(env, "init", "proj", cwd=user)
        assert r.returncode == 0, (r.stdout, r.stderr)
        project = os.path.join(user, "proj")
        with open(os.path.join(project, "main.py"), "a") as f:
            f.write(f"\nprint({JOB_OUTPUT!r}, flush=True)\n")
        started = time.monotonic()
        r = cli(env, "submit", "remote", ".", "main.py", cwd=project)
        timings["submit (follows the job to its end)"] = time.monotonic() - started
        assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
        job_id = submitted_id(r.stdout)
        assert JOB_OUTPUT in r.stdout, r.stdout
        status, raw = http("GET", f"{master.gateway}/jobs/{job_id}", timeout=10)
        assert status == 200, (status, raw)
        job = json.loads(raw)
        assert job["status"] == "completed" and job["return_code"] == 0, job
        assert JOB_OUTPUT in job["logs"], job
        status, raw = http("GET", f"{master.url}/api/v1/jobs/{job_id}", timeout=10)
        assert status == 200, (status, raw)
        record = json.loads(raw)
        assert record["node"] == worker.node_id, record  # NUM_WORKERS=0 on the master
        r = cli(env, "get", "logs", "remote", job_id, cwd=project)
        assert r.returncode == 0 and JOB_OUTPUT in r.stdout, (r.returncode, r.stdout, r.stderr)

        # An environment with no config: one line naming it and the path looked at.
        r = cli(env, "submit", "nonexistent_env", ".", "main.py", cwd=project)
        missing = f"{user}/.foundations/config/submission/nonexistent_env.config.yaml"
        lines = [line for line in (r.stdout + r.stderr).splitlines() if line.strip()]
        assert r.returncode != 0, (r.returncode, r.stdout, r.stderr)
        assert len(lines) == 1, lines
        assert "nonexistent_env" in lines[0] and missing in lines[0], (lines[0], missing)

        # --- `atlas-server stop` on each node; nothing of theirs is left.
        worker.stop()
        master.stop()
        wait_until(lambda: not _alive(redis_pid), 15, "the master's redis-server to stop")
        left = [(pid, cmdline(pid)) for pid in token_processes()]
        assert not left, f"processes left running after both nodes stopped: {left}"
    except Exception:
        for n in (master, worker):
            print(f"--- {n.name} log ({n.node_dir}/atlas-server.log), last lines:\n"
                  + "\n".join(n.log().splitlines()[-40:]), flush=True)
        raise
    finally:
        for n in (worker, master):
            n.kill()
        kill_leftovers()
        if os.environ.get("ATLAS_TEST_KEEP"):
            print(f"kept {home}", flush=True)
        else:
            shutil.rmtree(home, ignore_errors=True)
        if user:
            shutil.rmtree(user, ignore_errors=True)


timings = {}


def test_case_a_the_guide_on_loopback():
    # The worker's own loopback address differs from the master's: that is
    # how `atlas-server start` tells them apart on one machine.
    t = {}
    the_guide(["127.0.0.1", "127.0.0.2"], [None, None], t)
    timings.update({f"A {k}": v for k, v in t.items()})


def test_case_b_the_guide_with_one_address_per_node():
    why = Namespaces.available()
    if why:
        print(f"     case B skipped: network namespaces cannot be made here ({why})", flush=True)
        return
    ns = Namespaces(count=2)
    try:
        ns.create()
        t = {}
        the_guide(ns.hosts, ns.names, t)
        timings.update({f"B {k}": v for k, v in t.items()})
    finally:
        ns.cleanup()


def test_nothing_is_left_running():
    print("timings:", flush=True)
    for name, seconds in timings.items():
        print(f"     {name}: {seconds:.2f}s", flush=True)
    left = [(pid, cmdline(pid)) for pid in kill_leftovers()]
    assert not left, f"processes left running: {left}"


# A runner's timeout (SIGTERM) still stops every node and namespace.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
harness.run_tests([
    test_case_a_the_guide_on_loopback,
    test_case_b_the_guide_with_one_address_per_node,
    test_nothing_is_left_running,
])
