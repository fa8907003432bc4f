"""The event stream (GET /api/v1/events) on a real master and worker (two
slots) sharing one Redis.

A client follows `?follow=1` (server-sent events over a chunked response,
read from a raw socket in a thread); 50 short jobs are submitted, and the
master is killed (SIGKILL) and started again on the same Redis and home in
the middle of them. The client reconnects with `Last-Event-ID` (the last id
it saw) until the master answers again, and goes on. At the end, for every
job: the events' `n` run 1..k without a gap or a duplicate, in order, each
`from` is the state before, the first is queued and the last completed, and
the states are exactly the job record's history (a job caught by the restart
may show lost and queued again). Ids only grow over the whole read (nothing
seen twice across the reconnection). A page read without follow (JSON
`{"events", "last"}`, paged with `?after=`) holds the same events, on the
master's three ports; `?after=garbage` is a 400 that says why; `atlas-ctl
events` prints them, and follows.

Every wait is bounded; everything started is stopped by its pid."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid

import harness
from harness import wait_until
from cluster_harness import Cluster

CTL = os.environ.get("ATLAS_CTL", "atlas-ctl")
JOBS = 50
TAG = uuid.uuid4().hex[:6]
IDS = [f"ev{TAG}-{i:02d}" for i in range(JOBS)]
SHORT = ["/bin/sh", "-c", "sleep 0.2"]
TERMINAL = {"completed", "failed", "cancelled"}

cluster = Cluster(workers=1, slots=2)
M = cluster.master
(W,) = cluster.workers
measured = {}


def id_key(event_id):
    """A stream id "<ms>-<n>" (or "<ms>") as a comparable tuple."""
    ms, _, n = event_id.partition("-")
    return int(ms), int(n or 0)


class StreamClosed(Exception):
    pass


class Follower(threading.Thread):
    """Follows GET /api/v1/events?follow=1 of a node, reconnecting with
    Last-Event-ID whenever the connection ends, until stopped."""

    def __init__(self, node, path="/api/v1/events?follow=1"):
        super().__init__(daemon=True)
        self.node, self.path = node, path
        self.events = []        # (id, event field, data dict), in arrival order
        self.connections = 0    # answered with 200
        self.resumes = []       # (Last-Event-ID sent, last id seen before): one per reconnection
        self.first_headers = None
        self.errors = []        # anything other than a closed connection
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.sock = None

    def last_id(self):
        with self.lock:
            return self.events[-1][0] if self.events else None

    def snapshot(self):
        with self.lock:
            return list(self.events)

    def stop(self):
        self.stopping.set()
        s = self.sock
        if s:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.join(timeout=10)

    def run(self):
        while not self.stopping.is_set():
            try:
                self.follow_once()
            except (OSError, StreamClosed):
                pass
            except Exception as e:  # noqa: BLE001 - reported by the test
                self.errors.append(repr(e))
            if not self.stopping.is_set():
                time.sleep(0.2)

    def follow_once(self):
        last = self.last_id()
        with socket.create_connection((self.node.host, self.node.http_port), timeout=2) as s:
            self.sock = s
            extra = f"Last-Event-ID: {last}\r\n" if last else ""
            s.sendall((f"GET {self.path} HTTP/1.1\r\nHost: {self.node.host}\r\n"
                       f"Accept: text/event-stream\r\n{extra}\r\n").encode())
            self.buf = b""
            head = self.until(s, b"\r\n\r\n")
            lines = head.decode(errors="replace").split("\r\n")
            status = int(lines[0].split()[1])
            headers = {}
            for line in lines[1:]:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
            if status != 200:
                # A master that is starting may answer 503 for a moment.
                if status in (502, 503):
                    raise StreamClosed()
                raise AssertionError(f"follow answered {status}: {lines[0]} {self.buf[:200]!r}")
            self.connections += 1
            if self.first_headers is None:
                self.first_headers = headers
            else:
                self.resumes.append((last, self.last_id()))
            chunked = headers.get("transfer-encoding", "").lower() == "chunked"
            text = ""
            while not self.stopping.is_set():
                if chunked:
                    size_line = self.until(s, b"\r\n")
                    size = int(size_line.split(b";")[0], 16)
                    if size == 0:
                        raise StreamClosed()
                    data = self.exactly(s, size + 2)[:-2]
                else:
                    data = self.some(s)
                text += data.decode()
                while "\n\n" in text:
                    block, text = text.split("\n\n", 1)
                    self.take(block)

    def take(self, block):
        fields = {"data": []}
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue  # a comment: keep-alive
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                fields["data"].append(value)
            else:
                fields[name] = value
        if not fields["data"]:
            return
        data = json.loads("\n".join(fields["data"]))
        with self.lock:
            self.events.append((fields.get("id"), fields.get("event"), data))

    # -- reading

    def some(self, s):
        if self.buf:
            data, self.buf = self.buf, b""
            return data
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                if self.stopping.is_set():
                    raise StreamClosed()
                continue
            if not chunk:
                raise StreamClosed()
            return chunk

    def until(self, s, sep):
        while sep not in self.buf:
            self.buf += self.some_raw(s)
        out, _, self.buf = self.buf.partition(sep)
        return out

    def exactly(self, s, n):
        while len(self.buf) < n:
            self.buf += self.some_raw(s)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def some_raw(self, s):
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                if self.stopping.is_set():
                    raise StreamClosed()
                continue
            if not chunk:
                raise StreamClosed()
            return chunk


follower = Follower(M)


# --- helpers

def submit(job_id):
    status, raw = cluster.upload(job_id, {"noop.txt": "tiny\n"})
    assert status == 200, (job_id, status, raw)
    status, raw = cluster.queue(job_id, entrypoint=SHORT, user="erin")
    assert status == 201, (job_id, status, raw)


def page(node, after=None, base=None):
    path = "/api/v1/events" + (f"?after={after}" if after is not None else "")
    status, raw = node.request("GET", path, base=base)
    assert status == 200, (path, status, raw[:300])
    body = json.loads(raw)
    assert set(body) >= {"events", "last"}, body.keys()
    assert isinstance(body["events"], list) and len(body["events"]) <= 1000
    return body


def read_all_pages(node, base=None, after=None):
    """Every event after `after`, page by page: [event dict]."""
    out = []
    for _ in range(1000):
        body = page(node, after, base)
        if not body["events"]:
            assert after is None or body["last"] == after, (after, body["last"])
            return out
        out += body["events"]
        assert body["last"] == body["events"][-1]["id"], body["last"]
        after = body["last"]
    raise AssertionError("more than 1000 pages")


def job_events(events, prefix):
    per_job = {}
    for _, kind, data in events:
        if data.get("kind") == "job" and data.get("job_id", "").startswith(prefix):
            per_job.setdefault(data["job_id"], []).append(data)
    return per_job


def ctl(*args, timeout=30):
    r = subprocess.run([CTL, *args], env=M.env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, (args, r.returncode, r.stdout, r.stderr)
    return r.stdout


def parse_ctl_events(out):
    """atlas-ctl events --json: a page object, a list, or one object a line."""
    out = out.strip()
    try:
        doc = json.loads(out)
        return doc["events"] if isinstance(doc, dict) else doc
    except ValueError:
        return [json.loads(line) for line in out.splitlines() if line.strip()]


# --- tests

def test_a_follower_gets_a_chunked_event_stream_with_the_workers_join():
    follower.start()
    wait_until(lambda: follower.first_headers or follower.errors, 15, "the follower to connect")
    assert not follower.errors, follower.errors
    h = follower.first_headers
    assert h.get("content-type", "").startswith("text/event-stream"), h
    assert h.get("transfer-encoding", "").lower() == "chunked", h
    joined = wait_until(lambda: [d for _, kind, d in follower.snapshot()
                                 if d.get("kind") == "node" and d.get("event") == "joined"
                                 and d.get("node") == W.node_id], 15,
                        "the worker's joined event")
    ev_id, ev_kind, data = next(e for e in follower.snapshot() if e[2] is joined[0])
    assert ev_kind == "node" and data["id"] == ev_id, (ev_id, ev_kind, data)
    assert abs(data["time"] - time.time()) < 120, data


def test_fifty_jobs_across_a_master_restart_each_have_their_whole_history_once():
    first, second = IDS[:JOBS // 2], IDS[JOBS // 2:]
    for j in first:
        submit(j)
    wait_until(lambda: sum(r["state"] == "completed"
                           for r in cluster.records(f"ev{TAG}-").values()) >= 4, 60,
               "a few jobs to complete before the restart")
    before = {j: r["state"] for j, r in cluster.records(f"ev{TAG}-").items()}
    seen_before = follower.last_id()
    connections_before = follower.connections
    M.kill()
    t = time.monotonic()
    M.start()
    cluster.wait_joined(W, 30)
    measured["restart -> worker rejoined"] = time.monotonic() - t
    states = {}
    for s in before.values():
        states[s] = states.get(s, 0) + 1
    print(f"     master killed with the first {len(first)} jobs: {states}", flush=True)
    wait_until(lambda: follower.connections > connections_before, 30,
               "the follower to reconnect to the restarted master")
    for j in second:
        submit(j)
    # A job nobody reported for waits rejoin_grace_s (10 s) before it is requeued.
    wait_until(lambda: (lambda recs: len(recs) == JOBS and all(
        r["state"] in TERMINAL for r in recs.values()))(cluster.records(f"ev{TAG}-")),
        120, f"all {JOBS} jobs to end")
    recs = cluster.records(f"ev{TAG}-")
    bad = {j: (r["state"], r["reason"]) for j, r in recs.items() if r["state"] != "completed"}
    assert not bad, bad
    wait_until(lambda: all(evs and evs[-1]["state"] == "completed" for evs in
                           (job_events(follower.snapshot(), f"ev{TAG}-").get(j) for j in IDS)),
               30, "the follower to see every job complete")
    assert not follower.errors, follower.errors

    # The reconnection resumed from the last id seen before it.
    assert follower.resumes, "the follower never reconnected"
    for sent, seen in follower.resumes:
        assert sent == seen and sent is not None, follower.resumes
    assert id_key(follower.resumes[0][0]) >= id_key(seen_before), (follower.resumes, seen_before)

    # Nothing seen twice, nothing out of order, across the whole read.
    events = follower.snapshot()
    keys = [id_key(i) for i, _, _ in events]
    dup = [events[k][0] for k in range(1, len(keys)) if keys[k] <= keys[k - 1]]
    assert not dup, f"ids not increasing at {dup[:5]}"
    for ev_id, kind, data in events:
        assert data.get("id") == ev_id and data.get("kind") == kind, (ev_id, kind, data)

    per_job = job_events(events, f"ev{TAG}-")
    assert set(per_job) == set(IDS), set(IDS) - set(per_job)
    lost = []
    for j in IDS:
        evs = per_job[j]
        ns = [e["n"] for e in evs]
        assert ns == list(range(1, len(evs) + 1)), (j, ns, [e["state"] for e in evs])
        assert evs[0]["state"] == "queued" and evs[0]["from"] in ("", None), (j, evs[0])
        assert evs[-1]["state"] == "completed", (j, [e["state"] for e in evs])
        for a, b in zip(evs, evs[1:]):
            assert b["from"] == a["state"], (j, a, b)
        history = [h["state"] for h in recs[j]["history"]]
        assert [e["state"] for e in evs] == history, (j, [e["state"] for e in evs], history)
        for e in evs:
            assert e["user"] == "erin" and e["project"] == "cluster", e
        done = evs[-1]
        assert done["return_code"] == 0 and done["node"] == recs[j]["node"], (done, recs[j]["node"])
        assert done["slot"] == recs[j]["slot"], (done, recs[j]["slot"])
        assert "running" in [e["state"] for e in evs], (j, evs)
        if "lost" in history or history.count("queued") > 1:
            lost.append(j)
    print(f"     {len(events)} events over {follower.connections} connections; "
          f"jobs requeued by the restart: {len(lost)}", flush=True)


def test_a_page_without_follow_holds_the_same_events_on_every_port():
    streamed = {i: d for i, _, d in follower.snapshot()}
    paged = read_all_pages(M)
    assert [e["id"] for e in paged] == list(streamed), \
        (len(paged), len(streamed), [e["id"] for e in paged][:3], list(streamed)[:3])
    for e in paged:
        assert e == streamed[e["id"]], (e, streamed[e["id"]])
        assert {"id", "time", "kind"} <= set(e), e
    # After the last: nothing, and `last` says where one is.
    body = page(M, paged[-1]["id"])
    assert body["events"] == [] and body["last"] == paged[-1]["id"], body
    # The gateway (5558) and the dashboard (5555) answer the same.
    mid = paged[len(paged) // 2]["id"]
    tail = read_all_pages(M, after=mid)
    assert tail == paged[len(paged) // 2 + 1:]
    for base in (M.gateway, f"http://{M.host}:{M.dashboard_port}"):
        assert read_all_pages(M, base=base, after=mid) == tail, base


def test_after_garbage_is_a_400_that_says_why():
    for path in ("/api/v1/events?after=garbage", "/api/v1/events?follow=1&after=garbage",
                 "/api/v1/events?after=12-x"):
        status, raw = M.request("GET", path)
        assert status == 400, (path, status, raw[:200])
        assert b"after" in raw.lower(), (path, raw[:200])
    # A bad Last-Event-ID as well, and the node serves on.
    status, raw = M.request("GET", "/api/v1/events?follow=1", headers={"Last-Event-ID": "x y"},
                            timeout=5)
    assert status == 400, (status, raw[:200])
    assert page(M)["events"]


def test_accept_event_stream_without_follow_streams_too():
    with socket.create_connection((M.host, M.http_port), timeout=5) as s:
        s.sendall(f"GET /api/v1/events?after={follower.last_id()} HTTP/1.1\r\nHost: x\r\n"
                  "Accept: text/event-stream\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            assert chunk, data
            data += chunk
    head = data.split(b"\r\n\r\n")[0].decode().lower()
    assert head.startswith("http/1.1 200") and "content-type: text/event-stream" in head, head


def test_atlas_ctl_events_prints_and_follows():
    events = follower.snapshot()
    mid = events[len(events) // 2][0]
    printed = parse_ctl_events(ctl("events", "--after", mid, "--json"))
    want = [d for i, _, d in events if id_key(i) > id_key(mid)]
    assert [e["id"] for e in printed] == [e["id"] for e in want], \
        (len(printed), len(want))
    text = ctl("events", "--after", mid)
    assert IDS[-1] in text, text[-500:]
    # --follow: a new job's events appear while it runs.
    proc = subprocess.Popen([CTL, "events", "--follow", "--json", "--after", follower.last_id()],
                            env=M.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        job = f"ev{TAG}-follow"
        submit(job)
        lines = []
        seen = threading.Event()

        def read():  # one event a line, or pretty-printed: the text so far decides
            for line in proc.stdout:
                lines.append(line)
                text = "".join(lines)
                if job in text and "completed" in text[text.index(job):]:
                    seen.set()
                    return
        threading.Thread(target=read, daemon=True).start()
        assert seen.wait(30), ("atlas-ctl events --follow", lines[-5:], proc.poll())
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
try:
    cluster.start()
    harness.run_tests([
        test_a_follower_gets_a_chunked_event_stream_with_the_workers_join,
        test_fifty_jobs_across_a_master_restart_each_have_their_whole_history_once,
        test_a_page_without_follow_holds_the_same_events_on_every_port,
        test_after_garbage_is_a_400_that_says_why,
        test_accept_event_stream_without_follow_streams_too,
        test_atlas_ctl_events_prints_and_follows,
    ])
finally:
    follower.stop()
    for k, v in measured.items():
        print(f"     {k}: {v:.2f}s", flush=True)
    cluster.cleanup()
