"""A real multi-node Atlas cluster for integration tests: one shared
FOUNDATIONS_HOME, one real redis-server, a master (`--role master`,
NUM_WORKERS=0) and worker nodes (`--role worker`), each an atlas-server in
the foreground in its own session, with its own ports and its own log file.
Optionally every node runs in a network namespace of the test's own, with an
address the test created. Every wait is bounded; everything started is
stopped by its pid; job processes left behind by a killed node are found by a
token in their environment and killed by pid."""

import fcntl
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
import urllib.error
import urllib.request
import uuid

from harness import SERVER, Node, Redis, _alive, bundle_bytes, free_port, wait_until

# Proxies from the environment must not see the test's own addresses.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

# The job every Python test job runs. It leaves a file named after its job and
# its run in MARKS (a second run of the same job leaves a second file), with
# the HOST_ADDRESS of the node that ran it (jobs inherit the node's
# environment), and its process group in PGIDS, so that a copy left behind by
# a killed node can be killed.
JOB_PY = """\
import os, sys, time, uuid
job = os.environ['FOUNDATIONS_JOB_ID']
run = uuid.uuid4().hex
where = os.environ.get('HOST_ADDRESS', '?')
if os.environ.get('PGIDS'):
    with open(os.path.join(os.environ['PGIDS'], job + '.' + run), 'w') as f:
        f.write(str(os.getpgid(0)))
gap = float(os.environ.get('GAP', '0'))
for i in range(int(os.environ.get('LINES', '0'))):
    print(job, 'line', i, flush=True)
    if gap:
        time.sleep(gap)
time.sleep(float(os.environ.get('SLEEP', '0')))
with open(os.path.join(os.environ['MARKS'], job + '.' + run), 'w') as f:
    f.write(where)
with open('result.txt', 'w') as f:
    f.write(where + ' ' + run + '\\n')
print('done', job, 'on', where, flush=True)
"""

# A tiny job without Python: one mark file per run.
TINY_ENTRYPOINT = ["/bin/sh", "-c",
                   'echo "$HOST_ADDRESS" > "$MARKS/$FOUNDATIONS_JOB_ID.$$.$(date +%s%N)"']


def http(method, url, body=None, headers=None, timeout=15):
    """(status, body bytes); raises OSError when nothing answered."""
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with _opener.open(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def cmdline(pid):
    """The start of a process's command line, for messages about leftovers."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ")[:120].decode(errors="replace")
    except OSError:
        return "?"


def pid_alive(pid):
    return bool(pid) and _alive(pid)


def group_alive(pgid):
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # Only zombies left in the group count as gone.
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


class ClusterNode(Node):
    """One atlas-server of a cluster. Node's methods (request, json, job,
    healthy, wait_for_status) apply; Node.__init__ is not called because it
    writes atlas.config.yaml, which the nodes of a cluster share: each node's
    own ports come from ATLAS_CAF_PORT and ATLAS_GATEWAY_PORT instead."""

    def __init__(self, name, home, role, slots, redis_address, token, host="127.0.0.1",
                 netns=None, env=None):
        self.name = name
        self.home = home
        self.role = role
        self.host = host
        self.netns = netns
        self.http_port = free_port()
        self.gateway_port = free_port()
        self.caf_port = free_port()
        self.dashboard_port = free_port()
        self.redis = None
        self.env = dict(os.environ)
        self.env.update({
            "FOUNDATIONS_HOME": home,
            "HOST_ADDRESS": f"http://{host}:{self.http_port}/",
            "NUM_WORKERS": str(slots),
            "REDIS_ADDRESS": redis_address,
            "ATLAS_CAF_PORT": str(self.caf_port),
            "ATLAS_GATEWAY_PORT": str(self.gateway_port),
            "ATLAS_DASHBOARD_PORT": str(self.dashboard_port),
            "ATLAS_TEST_TOKEN": token,
        })
        for proxy in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
            self.env.pop(proxy, None)
        self.env.update(env or {})
        self.proc = None
        self.log = None
        self.url = f"http://{host}:{self.http_port}"
        self.gateway = f"http://{host}:{self.gateway_port}"
        self.node_id = f"{host}-{self.http_port}"
        os.makedirs(home + "/test-logs", exist_ok=True)
        self.log_path = f"{home}/test-logs/{name}.log"

    def start(self, timeout=30, expect_role=None):
        """Starts the node and waits until it serves; its /healthz role must
        be `expect_role` (default: its --role; a second master says
        "standby")."""
        self.log = open(self.log_path, "ab")
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
        self.proc = subprocess.Popen([*prefix, SERVER, "start", "--foreground", "--role", self.role],
                                     env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        wait_until(self.healthy, timeout, f"{self.name} to serve")
        _, health = self.json("GET", "/healthz")
        assert health["role"] == (expect_role or self.role), health
        self.node_id = health["node"]
        return self

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def node_log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def request(self, method, path, body=None, headers=None, base=None, timeout=15):
        return http(method, (base or self.url) + path, body, headers, timeout)

    def signal(self, sig):
        os.kill(self.proc.pid, sig)

    def kill(self):
        """SIGKILL: the node dies at once; its jobs (own sessions) live on."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.log.close()

    def stop(self, timeout=30):
        if self.proc and self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGCONT)
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        if self.log:
            self.log.close()


class NetnsRedis(Redis):
    """harness.Redis, inside a network namespace, bound to that namespace's
    own address."""

    def __init__(self, directory, netns, host):
        self.netns = netns
        self.host = host
        super().__init__(directory)

    def start(self):
        subprocess.run(["ip", "netns", "exec", self.netns, "redis-server", "--port", str(self.port),
                        "--bind", self.host, "--protected-mode", "no",  # others connect
                        "--save", "", "--appendonly", "yes",
                        "--dir", self.dir, "--daemonize", "yes",
                        "--pidfile", self.dir + "/redis.pid",
                        "--logfile", self.dir + "/redis.log"], check=True, timeout=10)
        wait_until(self.ping, 10, "redis-server to answer")

    def ping(self):
        try:
            with socket.create_connection((self.host, self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False


class Cluster:
    """A master and `workers` worker nodes sharing one FOUNDATIONS_HOME and
    one Redis. `hosts`/`netns` (master first) put nodes on other addresses."""

    def __init__(self, workers=2, slots=2, atlas_config="", hosts=None, netns=None):
        self.home = tempfile.mkdtemp(prefix="atlas-cluster-")
        self.token = uuid.uuid4().hex
        hosts = hosts or ["127.0.0.1"] * (workers + 1)
        netns = netns or [None] * (workers + 1)
        os.makedirs(self.home + "/config", exist_ok=True)
        with open(self.home + "/config/atlas.config.yaml", "w") as f:
            f.write("limits:\n  stop_grace_s: 2\n  drain_timeout_s: 5\n")
            f.write(atlas_config)
        try:
            if netns[0]:
                self.redis = NetnsRedis(self.home + "/test-redis", netns[0], hosts[0])
                redis_address = f"{hosts[0]}:{self.redis.port}"
            else:
                self.redis = Redis(self.home + "/test-redis")
                redis_address = f"127.0.0.1:{self.redis.port}"
        except Exception:
            try:  # a redis-server that started but did not answer
                with open(self.home + "/test-redis/redis.pid") as f:
                    os.kill(int(f.read().strip()), signal.SIGKILL)
            except (OSError, ValueError):
                pass
            shutil.rmtree(self.home, ignore_errors=True)
            raise
        self.redis_address = redis_address
        self.master = ClusterNode("master", self.home, "master", 0, redis_address, self.token,
                                  host=hosts[0], netns=netns[0])
        self.workers = [ClusterNode(f"worker-{chr(ord('a') + i)}", self.home, "worker", slots,
                                    redis_address, self.token, host=hosts[i + 1],
                                    netns=netns[i + 1])
                        for i in range(workers)]
        self.slots_per_worker = slots
        self.extra = []  # other nodes started against this cluster
        self.marks = self.home + "/marks"
        self.pgids = self.home + "/pgids"
        os.makedirs(self.marks)
        os.makedirs(self.pgids)
        self.bundles = {}

    # --- life cycle

    def start(self, timeout=30):
        self.master.start(timeout)
        for w in self.workers:
            w.start(timeout)
        for w in self.workers:
            self.wait_joined(w, timeout)
        return self

    def node(self, name, role="worker", slots=1, env=None, home=None):
        """Another node against this cluster's master and Redis (not started)."""
        n = ClusterNode(name, home or self.home, role, slots, self.redis_address, self.token,
                        host=self.master.host, netns=self.master.netns, env=env)
        self.extra.append(n)
        return n

    def workers_view(self, node=None):
        """GET /workers on the master (or on `node`, e.g. a master that took over)."""
        status, body = (node or self.master).json("GET", "/workers")
        assert status == 200, (status, body)
        return body

    def slots_of(self, node):
        return [s for s in self.workers_view().values() if s["node"] == node.node_id]

    def wait_joined(self, node, timeout=30):
        wait_until(lambda: len(self.slots_of(node)) == self.slots_per_worker, timeout,
                   f"{node.name}'s slots to appear on the master")

    def by_node_id(self, node_id):
        for n in [self.master, *self.workers, *self.extra]:
            if n.node_id == node_id:
                return n
        raise AssertionError(f"no node {node_id}")

    def stop(self):
        for n in [*self.extra, *reversed(self.workers), self.master]:
            try:
                n.stop()
            except Exception:  # noqa: BLE001 - keep stopping the others
                pass
        self.kill_leftovers()
        try:
            self.redis.stop()
        except Exception:  # noqa: BLE001
            pass

    def token_processes(self):
        """Pids of every process that carries this cluster's token in its
        environment: the nodes, their jobs, and jobs a killed node left."""
        needle = f"ATLAS_TEST_TOKEN={self.token}".encode()
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
        return found

    def kill_leftovers(self, keep=()):
        """Kills, by pid, every process with this cluster's token except
        `keep`; returns the pids killed."""
        found = [p for p in self.token_processes() if p not in keep]
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return found

    def cleanup(self):
        self.stop()
        if os.environ.get("ATLAS_TEST_KEEP"):
            print(f"kept {self.home}", flush=True)
        else:
            shutil.rmtree(self.home, ignore_errors=True)

    # --- jobs

    def upload(self, job_id, files=None, base=None, timeout=15, headers=None):
        files = files or {"main.py": JOB_PY}
        boundary = uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"job_bundle\"; "
                f"filename=\"{job_id}.tgz\"\r\nContent-Type: application/gzip\r\n\r\n").encode() \
            + bundle_bytes(job_id, files) + f"\r\n--{boundary}--\r\n".encode()
        return self.master.request("POST", "/job_bundle", body,
                                   {"Content-Type": f"multipart/form-data; boundary={boundary}",
                                    **(headers or {})},
                                   base=base, timeout=timeout)

    def queue(self, job_id, env=None, entrypoint=None, base=None, timeout=15, user="alice"):
        spec = {"environment": {"MARKS": self.marks, "PGIDS": self.pgids,
                                "ATLAS_TEST_TOKEN": self.token, **(env or {})}}
        if entrypoint:
            spec["entrypoint"] = entrypoint
        else:
            spec["command"] = ["main.py"]
        return self.master.request("POST", "/queued_jobs", json.dumps({
            "job_id": job_id, "spec": spec,
            "metadata": {"project_name": "cluster", "username": user},
            "gpu_spec": {"num_gpus": 0}}), {"Content-Type": "application/json"},
            base=base, timeout=timeout)

    def submit(self, job_id, env=None, base=None, tiny=False):
        """Upload and queue; asserts the 201."""
        files = {"noop.txt": "tiny\n"} if tiny else None
        status, raw = self.upload(job_id, files, base=base)
        assert status == 200, (job_id, status, raw)
        status, raw = self.queue(job_id, env, TINY_ENTRYPOINT if tiny else None, base=base)
        assert status == 201 and json.loads(raw) == job_id, (job_id, status, raw)
        return job_id

    def record(self, job_id, node=None):
        """The job's record from Redis through the master (never forwarded)."""
        status, raw = (node or self.master).request("GET", f"/api/v1/jobs/{job_id}")
        assert status == 200, (job_id, status, raw)
        return json.loads(raw)

    def records(self, prefix="", node=None):
        """Every job record (GET /api/v1/jobs is paged: its cursors followed)."""
        out, path = {}, "/api/v1/jobs?limit=1000"
        while path:
            status, raw = (node or self.master).request("GET", path)
            assert status == 200, (status, raw)
            body = json.loads(raw)
            items = body.get("jobs", body) if isinstance(body, dict) else body
            out.update((r["job_id"], r) for r in items if r["job_id"].startswith(prefix))
            cursor = body.get("next_cursor") if isinstance(body, dict) else None
            path = f"/api/v1/jobs?limit=1000&cursor={cursor}" if cursor else None
        return out

    def wait_record(self, job_id, predicate, timeout, what):
        return wait_until(lambda: (lambda r: r if predicate(r) else None)(self.record(job_id)),
                          timeout, f"job {job_id}: {what}")

    def runs(self, job_id):
        """Mark files (one per finished run) of `job_id`: {run: HOST_ADDRESS}."""
        out = {}
        for name in os.listdir(self.marks):
            job, _, run = name.partition(".")
            if job == job_id:
                with open(os.path.join(self.marks, name)) as f:
                    out[run] = f.read().strip()
        return out

    def mark_counts(self, prefix=""):
        counts = {}
        for name in os.listdir(self.marks):
            job = name.split(".")[0]
            if job.startswith(prefix):
                counts[job] = counts.get(job, 0) + 1
        return counts

    def pgids_of(self, job_id):
        out = []
        for name in os.listdir(self.pgids):
            if name.split(".")[0] == job_id:
                try:
                    with open(os.path.join(self.pgids, name)) as f:
                        out.append(int(f.read().strip()))
                except (OSError, ValueError):
                    pass
        return out

    def kill_job_groups(self, job_id):
        """Kills the process groups of every run of `job_id` still alive."""
        killed = 0
        for pgid in self.pgids_of(job_id):
            try:
                os.killpg(pgid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
        return killed


class Namespaces:
    """Three network namespaces (master, worker a, worker b) joined by a
    bridge inside the master's namespace, plus one veth into the root
    namespace so that the test itself can reach them. Addresses 10.213.N.x/24
    with N chosen so that no address of that subnet exists yet."""

    def __init__(self, count=3):
        tag = str(os.getpid())[-6:]
        self.names = [f"atlas-{tag}-{i}" for i in range(count)]
        self.root_if = f"atr{tag}"
        self.count = count
        self._choose_subnet()
        self.created = []

    def _choose_subnet(self):
        used = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True,
                              timeout=10).stdout
        # Each test process starts at its own place (by pid), so that two
        # running side by side rarely look at the same subnet first.
        start = os.getpid() % 55
        subnet = next(200 + (start + k) % 55 for k in range(55)
                      if f"10.213.{200 + (start + k) % 55}." not in used)
        self.subnet = f"10.213.{subnet}"
        self.hosts = [f"{self.subnet}.{i + 1}" for i in range(self.count)]
        self.root_host = f"{self.subnet}.254"

    @staticmethod
    def available():
        """None when namespaces can be made here, else why not."""
        if os.geteuid() != 0:
            return "not root"
        if shutil.which("ip") is None:
            return "no ip command (iproute2)"
        probe = f"atlas-probe-{os.getpid()}"
        r = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True,
                           timeout=10)
        if r.returncode != 0:
            return "ip netns add failed: " + r.stderr.strip()
        subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=10)
        return None

    def ip(self, *args):
        r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
        assert r.returncode == 0, ("ip " + " ".join(args), r.stderr)

    def create(self):
        """Creates the namespaces. The subnet is chosen again, and its root
        address added, under a lock shared by every test process, so that
        tests running side by side never take the same subnet."""
        master = self.names[0]
        for ns in self.names:
            self.ip("netns", "add", ns)
            self.created.append(ns)
            self.ip("-n", ns, "link", "set", "lo", "up")
        with open("/tmp/atlas-test-netns.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                self._choose_subnet()
                self.ip("link", "add", self.root_if, "type", "veth", "peer", "name", "proot",
                        "netns", master)
                self.created.append(self.root_if)
                self.ip("addr", "add", f"{self.root_host}/24", "dev", self.root_if)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        self.ip("-n", master, "link", "add", "br0", "type", "bridge")
        self.ip("-n", master, "addr", "add", f"{self.hosts[0]}/24", "dev", "br0")
        self.ip("-n", master, "link", "set", "br0", "up")
        for i, ns in enumerate(self.names[1:], start=1):
            self.ip("-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", f"p{i}",
                    "netns", master)
            self.ip("-n", ns, "addr", "add", f"{self.hosts[i]}/24", "dev", "eth0")
            self.ip("-n", ns, "link", "set", "eth0", "up")
            self.ip("-n", master, "link", "set", f"p{i}", "master", "br0")
            self.ip("-n", master, "link", "set", f"p{i}", "up")
        self.ip("link", "set", self.root_if, "up")
        self.ip("-n", master, "link", "set", "proot", "master", "br0")
        self.ip("-n", master, "link", "set", "proot", "up")
        return self

    def cleanup(self):
        for name in reversed(self.created):
            if name == self.root_if:
                subprocess.run(["ip", "link", "del", name], capture_output=True, timeout=10)
            else:
                subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)
        self.created = []


def timed(predicate, timeout, what, interval=0.02):
    """Like wait_until, polling faster; returns (value, monotonic time seen)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value, time.monotonic()
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


# --- certificates (runtime/cluster_tls.hpp)

def foreign_certificate(directory, cn, ou):
    """A CA of someone else's and a certificate from it, made with the openssl
    tool: (ca.crt, cert, key) paths."""
    os.makedirs(directory, exist_ok=True)
    run = lambda *a: subprocess.run(["openssl", *a], cwd=directory, check=True,
                                    capture_output=True, timeout=60)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "1",
        "-subj", "/CN=someone else's CA")
    run("req", *ec, "-keyout", f"{cn}.key", "-out", f"{cn}.csr", "-subj", f"/CN={cn}/OU={ou}")
    run("x509", "-req", "-in", f"{cn}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", f"{cn}.crt", "-days", "1")
    return tuple(os.path.join(directory, f) for f in ("ca.crt", f"{cn}.crt", f"{cn}.key"))


def issue_certificate(cluster_home, name, role, out_dir):
    """`atlas-server issue-cert` from the cluster CA: (ca.crt, cert, key) paths."""
    subprocess.run([SERVER, "issue-cert", name, "--role", role, "--days", "1", "--out", out_dir],
                   env={**os.environ, "FOUNDATIONS_HOME": cluster_home}, check=True,
                   capture_output=True, timeout=30)
    return tuple(os.path.join(out_dir, f) for f in ("ca.crt", f"{name}.crt", f"{name}.key"))


def provision_node(cluster_home, node, home):
    """What an operator copies to a node that does not share FOUNDATIONS_HOME:
    the cluster CA's certificate and one issued for the node."""
    issued = tempfile.mkdtemp(prefix="atlas-issued-")
    try:
        ca, cert, key = issue_certificate(cluster_home, node.node_id, "worker", issued)
        os.makedirs(f"{home}/config/tls", exist_ok=True)
        os.makedirs(f"{home}/nodes/{node.node_id}/tls", exist_ok=True)
        shutil.copy(ca, f"{home}/config/tls/ca.crt")
        shutil.copy(cert, f"{home}/nodes/{node.node_id}/tls/node.crt")
        shutil.copy(key, f"{home}/nodes/{node.node_id}/tls/node.key")
    finally:
        shutil.rmtree(issued, ignore_errors=True)  # a private key

