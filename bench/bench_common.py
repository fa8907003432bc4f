"""Shared pieces of the benchmark drivers: a real cluster on loopback (the
integration tests' harness), a small keep-alive HTTP client that sends
prepared requests, trivial job submissions, and table printing. Everything
started is stopped by its pid (the harness's rules)."""

import io
import json
import os
import platform
import socket
import statistics
import sys
import tarfile
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

import cluster_harness  # noqa: E402  (path set just above)
from harness import wait_until  # noqa: E402,F401


class Conn:
    """One keep-alive HTTP/1.1 connection sending prepared request bytes.
    Only what our server answers is parsed: a status line, headers with
    Content-Length, a body."""

    def __init__(self, host, port, timeout=60):
        self.addr = (host, port)
        self.timeout = timeout
        self.sock = None
        self.buf = b""

    def _connect(self):
        self.sock = socket.create_connection(self.addr, timeout=self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def request(self, raw):
        """(status, body) for one prepared request; reconnects once when the
        server had closed an idle connection."""
        for attempt in (0, 1):
            try:
                if self.sock is None:
                    self._connect()
                self.sock.sendall(raw)
                return self._read()
            except (ConnectionError, BrokenPipeError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _read(self):
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = 0
        close = False
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            k = k.strip().lower()
            if k == b"content-length":
                length = int(v)
            elif k == b"connection" and v.strip().lower() == b"close":
                close = True
        while len(rest) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed in body")
            rest += chunk
        body, self.buf = rest[:length], rest[length:]
        if close:
            self.close()
        return status, body

    def close(self):
        if self.sock:
            self.sock.close()
        self.sock = None


def raw_request(method, path, body=b"", headers=None, host="127.0.0.1"):
    head = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def bundle_request(job_id, path="/job_bundle"):
    """POST /job_bundle with a tiny bundle, as the original client packs it
    (path="/api/v1/bundles": into the content store, for many jobs)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = b"tiny\n"
        info = tarfile.TarInfo(f"{job_id}/job_source/noop.txt")
        info.size = len(data)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(data))
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"job_bundle\"; "
            f"filename=\"{job_id}.tgz\"\r\nContent-Type: application/gzip\r\n\r\n").encode() \
        + buf.getvalue() + f"\r\n--{boundary}--\r\n".encode()
    return raw_request("POST", path, body,
                       {"Content-Type": f"multipart/form-data; boundary={boundary}"})


def store_bundle(url, name="shared"):
    """One tiny bundle in the content store (POST /api/v1/bundles), for jobs
    to share: its SHA-256."""
    host, port = host_port(url)
    conn = Conn(host, port)
    try:
        status, raw = conn.request(bundle_request(name, "/api/v1/bundles"))
    finally:
        conn.close()
    assert status == 200, (status, raw)
    return json.loads(raw)["bundle"]


def queue_request(job_id, token, entrypoint=("/bin/true",), bundle=None):
    """POST /queued_jobs; `bundle`: the SHA-256 of a bundle in the content
    store, which becomes the job's (no upload of its own)."""
    job = {
        "job_id": job_id,
        "spec": {"entrypoint": list(entrypoint), "environment": {"ATLAS_TEST_TOKEN": token}},
        "metadata": {"project_name": "bench", "username": "bench"},
        "gpu_spec": {"num_gpus": 0}}
    if bundle:
        job["bundle"] = bundle
    body = json.dumps(job).encode()
    return raw_request("POST", "/queued_jobs", body, {"Content-Type": "application/json"})


def host_port(url):
    rest = url.split("://", 1)[1].rstrip("/")
    host, _, port = rest.partition(":")
    return host, int(port)


def submit_all(url, requests, in_flight):
    """Sends every (bundle, queue) pair (bundle None: a queue request only)
    over `in_flight` keep-alive
    connections; returns (seconds, [(job index, t_start, t_acked)])."""
    host, port = host_port(url)
    times = [None] * len(requests)
    errors = []
    next_index = iter(range(len(requests)))
    lock = threading.Lock()

    def worker():
        conn = Conn(host, port)
        try:
            while True:
                with lock:
                    i = next(next_index, None)
                if i is None:
                    return
                t0 = time.time()
                bundle, queue = requests[i]
                s1, b1 = conn.request(bundle) if bundle else (200, b"")
                s2, b2 = conn.request(queue)
                if s1 != 200 or s2 != 201:
                    errors.append((i, s1, b1[:200], s2, b2[:200]))
                    return
                times[i] = (t0, time.time())
        except Exception as e:  # noqa: BLE001 - reported by the caller
            errors.append(repr(e))
        finally:
            conn.close()

    threads = [threading.Thread(target=worker) for _ in range(in_flight)]
    t0 = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=3600)
    if errors:
        raise AssertionError(f"submission failed: {errors[:3]}")
    return time.time() - t0, times


def timed_gets(cases, rounds):
    """GETs each URL of `cases` ({name: url}) once per round, the order
    reversed every other round so that the machine's drift hits all alike:
    ({name: [seconds]}, {name: the last answer's body})."""
    import urllib.request
    times, bodies = {k: [] for k in cases}, {}
    for r in range(rounds):
        order = list(cases.items())
        if r % 2:
            order.reverse()
        for name, url in order:
            t0 = time.perf_counter()
            with urllib.request.urlopen(url, timeout=300) as answer:
                bodies[name] = answer.read()
            times[name].append(time.perf_counter() - t0)
    return times, bodies


def percentile(values, p):
    values = sorted(values)
    if not values:
        return float("nan")
    k = (len(values) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def median(values):
    return statistics.median(values) if values else float("nan")


def table(title, rows):
    """Prints rows [(name, value, unit)] as a two-column table."""
    print(f"\n{title}")
    width = max(len(r[0]) for r in rows)
    for name, value, unit in rows:
        if isinstance(value, float):
            value = f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
        print(f"  {name:<{width}}  {value:>14} {unit}")


def machine_line():
    load = open("/proc/loadavg").read().split()[:3]
    return (f"machine: {os.cpu_count()} CPUs, "
            f"{platform.machine()}, Linux {platform.release()}, load {' '.join(load)}")
