"""Redis behind Redis Sentinel, and masters that may stand by, for the
failover tests, the failover benchmark and the soak campaign.

SentinelRedis: a real redis-server primary, `replicas` real replicas
(`replicaof` the primary) and three real `redis-sentinel` processes
(Debian's /usr/bin/redis-sentinel), each with its own configuration file in
a directory of its own (sentinels rewrite theirs), all on 127.0.0.1 on free
ports, all in the foreground of their own sessions so that every one is
stopped by its pid. The sentinels monitor the primary as `atlas` with a
quorum of 2, down-after-milliseconds 1500 and failover-timeout 5000, so that
a SIGKILLed primary is replaced within about 3 s.

Why 1500 and not 1000: a sentinel pings every min(down-after, 1000) ms, and
with down-after 1000 a sentinel that learns of a promotion from another one
(+config-update-from, +switch-master) flagged the new primary, up and
answering, as down about 1.0 s later in 3 of 18 failovers here (Redis
7.0.15, no Atlas running): a second failover nobody caused, or an aborted
attempt that holds the next real one back by 2 x failover-timeout. With
1500: none in 10. config_epoch() shows such failovers. Helpers: the primary
the sentinels name now, kill it, wait for the failover, start the killed one
again as a replica of the new primary.

MasterNode: a cluster_harness node started as a master that may come up as
the active master or as a hot standby (ClusterNode.start insists on the
role it asked for), and helpers to tell which of several masters is the
active one.

Run alone (`python3 sentinel_harness.py`) it checks itself: a write
acknowledged by a replica (WAIT 1) survives a SIGKILL of the primary, twice,
and nothing it started is left running. Every wait is bounded."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from cluster_harness import ClusterNode, http
from harness import SERVER, _alive, free_port, wait_until

REDIS_SERVER = os.environ.get("ATLAS_REDIS_SERVER", "redis-server")
SENTINEL = os.environ.get("ATLAS_REDIS_SENTINEL") or shutil.which("redis-sentinel") \
    or "/usr/bin/redis-sentinel"
HOST = "127.0.0.1"


def sentinel_available():
    """None when redis-sentinel and redis-server can be run here, else why not."""
    if not os.path.exists(SENTINEL) and not shutil.which(SENTINEL):
        return f"no redis-sentinel ({SENTINEL}); Debian: apt-get install redis-sentinel"
    if not shutil.which(REDIS_SERVER):
        return "no redis-server"
    return None


# --- a RESP client of the smallest kind (stdlib only)

class RedisError(Exception):
    """An error reply (-ERR ..., -READONLY ...)."""


def _read_reply(f):
    line = f.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError("connection closed in a reply")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        return RedisError(rest.decode(errors="replace"))
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)
        if len(data) != n + 2:
            raise ConnectionError("connection closed in a bulk reply")
        return data[:-2].decode(errors="replace")
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_read_reply(f) for _ in range(n)]
    raise ConnectionError(f"not a RESP reply: {line[:80]!r}")


def command(port, *args, host=HOST, timeout=2.0):
    """One command on a connection of its own; its reply (str, int, list,
    None). Raises RedisError for an error reply, OSError when nothing
    answers."""
    parts = [f"*{len(args)}\r\n".encode()]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(b), b))
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(b"".join(parts))
        with s.makefile("rb") as f:
            reply = _read_reply(f)
    if isinstance(reply, RedisError):
        raise reply
    return reply


def pairs(flat):
    """A flat [k, v, k, v, ...] reply (SENTINEL MASTER) as a dict."""
    return {flat[i]: flat[i + 1] for i in range(0, len(flat) - 1, 2)} if flat else {}


# --- processes

class _Proc:
    """A process of ours in the foreground of its own session, its output in
    a log file; stopped by its pid, every wait bounded."""

    proc = None
    log_file = None

    def _spawn(self, argv, log_path):
        self.log_file = open(log_path, "ab")
        self.proc = subprocess.Popen(argv, stdout=self.log_file, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig):
        os.kill(self.proc.pid, sig)

    def kill(self, sig=signal.SIGKILL):
        """SIGKILL (by default): gone at once; waits until it is."""
        if self.running():
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._close_log()

    def stop(self, timeout=10):
        if self.running():
            try:
                self.proc.send_signal(signal.SIGCONT)
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._close_log()

    def _close_log(self):
        if self.log_file:
            self.log_file.close()
            self.log_file = None

    def ping(self):
        try:
            return command(self.port, "PING", timeout=1) == "PONG"
        except (OSError, RedisError, ValueError):
            return False


class RedisInstance(_Proc):
    """One redis-server (primary or replica) with its own directory and
    configuration file (sentinels CONFIG REWRITE it when they reconfigure
    it)."""

    def __init__(self, name, directory):
        self.name = name
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.port = free_port()
        self.conf = os.path.join(directory, "redis.conf")
        self.log_path = os.path.join(directory, "redis.log")

    def start(self, replicaof=None, timeout=15):
        lines = [f"port {self.port}", f"bind {HOST}", f"dir {self.dir}", "daemonize no",
                 'save ""', "appendonly yes", "logfile \"\"",
                 # A replica's first sync at once, not after 5 s.
                 "repl-diskless-sync yes", "repl-diskless-sync-delay 0",
                 "repl-ping-replica-period 1"]
        if replicaof:
            lines.append(f"replicaof {replicaof[0]} {replicaof[1]}")
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self._spawn([REDIS_SERVER, self.conf], self.log_path)
        try:
            wait_until(lambda: self._up(), timeout, f"redis-server {self.name} to answer")
        except AssertionError:
            self.kill()
            raise
        return self

    def _up(self):
        if not self.running():
            raise AssertionError(f"redis-server {self.name} exited: {self.log_tail()}")
        return self.ping()

    def role(self):
        """ROLE's first word ("master", "slave"), None when it does not answer."""
        try:
            return command(self.port, "ROLE", timeout=1)[0]
        except (OSError, RedisError, IndexError, TypeError):
            return None

    def replica_connected(self):
        try:
            r = command(self.port, "ROLE", timeout=1)
        except (OSError, RedisError):
            return False
        return r[0] == "slave" and r[3] == "connected"

    def log_tail(self, n=2000):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-n:]
        except OSError:
            return ""


class Sentinel(_Proc):
    def __init__(self, name, directory):
        self.name = name
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.port = free_port()
        self.conf = os.path.join(directory, "sentinel.conf")
        self.log_path = os.path.join(directory, "sentinel.log")

    def start(self, master_name, primary_port, quorum, down_after_ms, failover_timeout_ms,
              timeout=15):
        with open(self.conf, "w") as f:
            f.write(f"port {self.port}\nbind {HOST}\ndaemonize no\ndir {self.dir}\n"
                    "logfile \"\"\n"
                    "sentinel resolve-hostnames no\nsentinel announce-hostnames no\n"
                    f"sentinel monitor {master_name} {HOST} {primary_port} {quorum}\n"
                    f"sentinel down-after-milliseconds {master_name} {down_after_ms}\n"
                    f"sentinel failover-timeout {master_name} {failover_timeout_ms}\n"
                    f"sentinel parallel-syncs {master_name} 1\n")
        # Debian's redis-sentinel is redis-server under another name: the
        # name is what makes it a sentinel.
        self._spawn([SENTINEL, self.conf], self.log_path)
        try:
            wait_until(lambda: self._up(), timeout, f"{self.name} to answer")
        except AssertionError:
            self.kill()
            raise
        return self

    def _up(self):
        if not self.running():
            raise AssertionError(f"{self.name} exited: {self.log_tail()}")
        return self.ping()

    def log_tail(self, n=2000):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-n:]
        except OSError:
            return ""


class SentinelRedis:
    """A primary, its replicas and three sentinels. `stop()` ends them all,
    sentinels first (so that none fails over during the teardown)."""

    def __init__(self, replicas=1, sentinels=3, quorum=2, down_after_ms=1500,
                 failover_timeout_ms=5000, master_name="atlas", directory=None):
        self.own_dir = directory is None
        # On tmpfs where there is one: a sentinel fsyncs its configuration
        # file at every change in its event loop, and an fsync that takes a
        # second on a busy disk makes it miss a PONG and see a primary that
        # is up as down (down-after 1000 ms): a failover nobody caused.
        shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
        self.dir = directory or tempfile.mkdtemp(prefix="atlas-sentinel-", dir=shm)
        self.master_name = master_name
        self.quorum = quorum
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.instances = [RedisInstance(f"redis-{i}", f"{self.dir}/redis-{i}")
                          for i in range(replicas + 1)]
        self.sentinels = [Sentinel(f"sentinel-{i}", f"{self.dir}/sentinel-{i}")
                          for i in range(sentinels)]
        self.failovers = 0

    # --- life cycle

    def start(self, timeout=40):
        try:
            primary = self.instances[0].start()
            for r in self.instances[1:]:
                r.start(replicaof=(HOST, primary.port))
            for r in self.instances[1:]:
                wait_until(r.replica_connected, 20, f"{r.name} to sync with the primary")
            for s in self.sentinels:
                s.start(self.master_name, primary.port, self.quorum, self.down_after_ms,
                        self.failover_timeout_ms)
            self.wait_settled(primary.port, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_settled(self, primary_port, timeout=40):
        """Until every sentinel names `primary_port`, knows every other
        sentinel and every replica that is up: only then can they agree on
        a failover (sentinels find each other through the primary's hello
        channel, every 2 s)."""
        others = len(self.sentinels) - 1
        def settled():
            for s in self.sentinels:
                try:
                    m = pairs(command(s.port, "SENTINEL", "MASTER", self.master_name))
                except (OSError, RedisError):
                    return False
                if (int(m.get("port", 0)) != primary_port
                        or int(m.get("num-other-sentinels", 0)) < others
                        or int(m.get("num-slaves", 0)) < self.replicas_up(primary_port)
                        or "down" in m.get("flags", "")):
                    return False
            return True
        wait_until(settled, timeout, "the sentinels to know each other and the replicas")

    def replicas_up(self, primary_port):
        return sum(1 for r in self.instances if r.port != primary_port and r.running())

    def stop(self):
        for s in self.sentinels:
            try:
                s.stop()
            except Exception:  # noqa: BLE001 - stop the others
                pass
        for r in self.instances:
            try:
                r.stop()
            except Exception:  # noqa: BLE001
                pass

    def cleanup(self):
        self.stop()
        if self.own_dir and not os.environ.get("ATLAS_TEST_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def pids(self):
        return [p.pid for p in [*self.instances, *self.sentinels] if p.running()]

    # --- what the sentinels say

    def addresses(self):
        """The sentinels as host:port, for atlas.config.yaml or REDIS_SENTINELS."""
        return [f"{HOST}:{s.port}" for s in self.sentinels]

    def named(self):
        """{sentinel name: primary port it names, or None}."""
        out = {}
        for s in self.sentinels:
            try:
                r = command(s.port, "SENTINEL", "get-master-addr-by-name", self.master_name,
                            timeout=1)
                out[s.name] = int(r[1]) if r else None
            except (OSError, RedisError, ValueError, TypeError, IndexError):
                out[s.name] = None
        return out

    def config_epoch(self):
        """The highest configuration epoch the sentinels report: one more
        per failover (a failover nobody caused shows here)."""
        best = None
        for s in self.sentinels:
            try:
                m = pairs(command(s.port, "SENTINEL", "MASTER", self.master_name, timeout=1))
                e = int(m.get("config-epoch", 0))
            except (OSError, RedisError, ValueError):
                continue
            best = e if best is None else max(best, e)
        return best

    def primary_port(self):
        """The port most sentinels name (None when none answers)."""
        votes = [p for p in self.named().values() if p]
        return max(set(votes), key=votes.count) if votes else None

    def instance(self, port):
        for r in self.instances:
            if r.port == port:
                return r
        raise AssertionError(f"no redis-server of ours on port {port}")

    def primary(self):
        return self.instance(self.primary_port())

    def replicas(self):
        port = self.primary_port()
        return [r for r in self.instances if r.port != port]

    # compatibility with harness.Redis where the soak campaign and the
    # benches read it (pid of Redis, its port)
    def pid(self):
        try:
            return self.primary().pid
        except AssertionError:
            return None

    @property
    def port(self):
        return self.primary_port()

    # --- faults

    def kill_primary(self, sig=signal.SIGKILL):
        """Kills the primary the sentinels name now (SIGKILL by default);
        returns (its instance, time.time() and time.monotonic() of the kill)."""
        victim = self.primary()
        wall, mono = time.time(), time.monotonic()
        victim.kill(sig)
        return victim, wall, mono

    def wait_failover(self, old_port, timeout=30):
        """Until every sentinel that answers names another primary than
        `old_port`, and that one says it is a primary; returns (its port,
        time.monotonic() when seen)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            named = [p for p in self.named().values() if p]
            if named and all(p != old_port for p in named) and len(set(named)) == 1:
                new = self.instance(named[0])
                if new.role() == "master":
                    self.failovers += 1
                    return new.port, time.monotonic()
            time.sleep(0.05)
        raise AssertionError(f"timed out after {timeout}s waiting for a failover away from "
                             f"{old_port}: sentinels name {self.named()}\n"
                             + "\n".join(f"--- {s.name}\n{s.log_tail(1500)}"
                                         for s in self.sentinels))

    def restart_as_replica(self, instance, timeout=30):
        """Starts a killed instance again as a replica of the current primary
        and waits until it is in sync; returns time.monotonic() then."""
        primary = self.primary_port()
        assert primary and primary != instance.port, (primary, instance.port)
        instance.start(replicaof=(HOST, primary))
        wait_until(instance.replica_connected, timeout, f"{instance.name} to sync as a replica")
        return time.monotonic()

    def failover(self, sig=signal.SIGKILL, restart=True, timeout=30):
        """Kills the primary, waits for the sentinels to promote a replica,
        and (restart) starts the killed one again as a replica. Returns
        {"killed_at" (wall), "promoted_s", "replica_back_s", "old", "new"}."""
        victim, wall, mono = self.kill_primary(sig)
        new_port, t_new = self.wait_failover(victim.port, timeout)
        out = {"killed_at": wall, "promoted_s": t_new - mono, "old": victim.port,
               "new": new_port, "replica_back_s": None}
        if restart:
            out["replica_back_s"] = self.restart_as_replica(victim, timeout) - mono
        return out


# --- masters that may stand by

class MasterNode(ClusterNode):
    """A cluster_harness node started as a master that may come up as the
    active master or as a hot standby (ClusterNode.start insists on the
    role it asked for)."""

    def start(self, timeout=30, expect=("master", "standby")):
        """Starts it and waits until /healthz answers; its role must be one
        of `expect`. Returns the node."""
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([SERVER, "start", "--foreground", "--role", self.role],
                                     env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        wait_until(self.healthy, timeout, f"{self.name} to serve")
        health = self.health(timeout=5)
        assert health and health.get("role") in expect, (self.name, health, expect)
        self.node_id = health["node"]
        return self

    def health(self, timeout=1.0):
        """/healthz as a dict, None when it does not answer (in time)."""
        try:
            status, raw = http("GET", self.url + "/healthz", timeout=timeout)
        except OSError:
            return None
        if status != 200:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return None

    def current_role(self, timeout=1.0):
        h = self.health(timeout)
        return h.get("role") if h else None


def make_master(cluster, name, env=None, host=None):
    """A master node (not started) against `cluster`'s Redis, sharing its
    home and token: a MasterNode, appended to cluster.extra."""
    node = MasterNode(name, cluster.home, "master", 0, cluster.redis_address, cluster.token,
                      host=host or cluster.master.host, env=env)
    cluster.extra.append(node)
    return node


def active_master(masters, timeout=1.0):
    """The one of `masters` whose /healthz says role "master" (None: none
    does); raises when two do."""
    active = [m for m in masters if m.running() and m.current_role(timeout) == "master"]
    assert len(active) <= 1, f"two active masters: {[m.name for m in active]}"
    return active[0] if active else None


def wait_role(node, role, timeout, interval=0.02):
    """Polls /healthz until it says `role`; returns time.monotonic() then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if node.current_role(timeout=0.5) == role:
            return time.monotonic()
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {node.name} to say role "
                         f"{role} (it says {node.health()})")


# --- self-check

def _self_check():
    why = sentinel_available()
    if why:
        print(f"skipped: {why}")
        sys.exit(77)
    t = time.monotonic()
    s = SentinelRedis(replicas=1)
    try:
        s.start()
        print(f"up in {time.monotonic() - t:.1f}s: primary {s.primary_port()}, sentinels "
              f"{s.addresses()}, pids {s.pids()}", flush=True)
        for round_ in (1, 2):
            p = s.primary_port()
            command(p, "SET", f"k{round_}", "v")
            assert command(p, "WAIT", 1, 1000) == 1, "the replica did not confirm"
            r = s.failover()
            new = r["new"]
            assert new != r["old"]
            assert command(new, "GET", f"k{round_}") == "v"
            for k in range(1, round_ + 1):
                assert command(new, "GET", f"k{k}") == "v", k
            try:
                command(r["old"], "SET", "x", "y")
                raise AssertionError("the old primary took a write after rejoining")
            except RedisError as e:
                assert str(e).startswith("READONLY"), e
            print(f"failover {round_}: {r['old']} -> {new}: promoted {r['promoted_s']:.2f}s "
                  f"after the SIGKILL, old one back as a replica at {r['replica_back_s']:.2f}s",
                  flush=True)
            s.wait_settled(new, 30)
        pids = s.pids()
    finally:
        s.cleanup()
    left = [p for p in pids if _alive(p)]
    assert not left, f"left running: {left}"
    print("sentinel harness: ok", flush=True)


if __name__ == "__main__":
    _self_check()
