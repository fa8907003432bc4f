"""Notifications (README "Notifications") from a real master to real local
HTTP receivers (python http.server in threads, on loopback):

- `all`: a webhook with no filter; its receiver can be told to answer 503
  (a "closed gate"), so that a backlog builds up;
- `alpha`: a webhook for project alpha, user erin, completed/failed/stopped
  only, its secret from an environment variable;
- `slack`: a receiver standing in for Slack's chat.postMessage;
- `hang` (second half only): a receiver that accepts connections and never
  answers (for 60 s).

Jobs complete, fail and are stopped. Then the `all` receiver refuses
everything while two more jobs run, the master is killed (SIGKILL) with
that backlog undelivered, and started again with the hanging sink added.
At the end every sink got every event of the stream it wants exactly once
(by X-Atlas-Event-Id, compared with GET /api/v1/events), with a valid
X-Atlas-Signature; the filters held; and the submit -> running latency
(p50, from the events' times) with the hanging receiver stays close to the
one without it. Every wait is bounded; everything started is stopped."""

import hashlib
import hmac
import http.server
import json
import os
import signal
import socket
import statistics
import subprocess
import threading
import time
import uuid

import harness
from harness import Node, wait_until

TAG = uuid.uuid4().hex[:6]
ALL_SECRET = "s3cret-all-" + TAG
ALPHA_SECRET = "s3cret-alpha-" + TAG
SLACK_TOKEN = "xoxb-test-" + TAG
CHANNEL = "#atlas-jobs"
LATENCY_JOBS = 10
measured = {}


class Receiver:
    """An HTTP server in a thread that records every POST it answers 200."""

    def __init__(self, name, slack=False):
        self.name, self.slack = name, slack
        self.got = []  # (headers dict, raw body) answered 200
        self.refused = 0
        self.gate = threading.Event()
        self.gate.set()
        self.lock = threading.Lock()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if not owner.gate.is_set():
                    with owner.lock:
                        owner.refused += 1
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                answer = b'{"ok": true}' if owner.slack else b"{}"
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
                with owner.lock:
                    owner.got.append(({k.lower(): v for k, v in self.headers.items()}, body,
                                      self.path))

            def log_message(self, *_):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", harness.free_port()), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def snapshot(self):
        with self.lock:
            return list(self.got)

    def ids(self):
        return [h.get("x-atlas-event-id") for h, _, _ in self.snapshot()]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class Hanging:
    """Accepts connections and never answers; holds each for 60 s."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", harness.free_port()))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.conns = []
        self.stopping = False
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        self.sock.settimeout(0.5)
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            self.conns.append((time.monotonic(), conn))
            # Each is held for 60 s, never answered, then closed.
            kept = []
            for t, c in self.conns:
                if time.monotonic() - t < 60:
                    kept.append((t, c))
                else:
                    c.close()
            self.conns = kept

    def stop(self):
        self.stopping = True
        for _, c in self.conns:
            c.close()
        self.sock.close()


hook_all, hook_alpha, slack = Receiver("all"), Receiver("alpha"), Receiver("slack", slack=True)
hanging = Hanging()


def notifications_yaml(with_hang):
    text = ("notifications:\n"
            "  webhooks:\n"
            f"    - name: all\n      url: http://127.0.0.1:{hook_all.port}/hooks/all\n"
            f"      secret: {ALL_SECRET}\n      max_tries: 50\n      timeout_s: 5\n"
            f"    - name: alpha\n      url: http://127.0.0.1:{hook_alpha.port}/hooks/alpha\n"
            "      secret_env: ALPHA_HOOK_SECRET\n      projects: [alpha]\n      users: [erin]\n"
            "      events: [completed, failed, stopped]\n")
    if with_hang:
        text += (f"    - name: hang\n      url: http://127.0.0.1:{hanging.port}/never\n"
                 "      secret: x\n      timeout_s: 2\n      connect_timeout_s: 1\n"
                 "      max_tries: 2\n      max_queue: 3\n")
    text += (f"  slack:\n    channel: '{CHANNEL}'\n"
             f"    api_url: http://127.0.0.1:{slack.port}/api/chat.postMessage\n")
    return text


node = Node(slots=2, atlas_config=notifications_yaml(False),
            env={"ALPHA_HOOK_SECRET": ALPHA_SECRET, "FOUNDATIONS_SLACK_TOKEN": SLACK_TOKEN})
CONFIG = node.home + "/config/atlas.config.yaml"


# --- helpers

def submit(job_id, command, project, user):
    status, raw = node.upload(job_id, {"noop.txt": "tiny\n"})
    assert status == 200, (job_id, status, raw)
    status, raw = node.request("POST", "/queued_jobs", json.dumps({
        "job_id": job_id, "spec": {"entrypoint": ["/bin/sh", "-c", command]},
        "metadata": {"project_name": project, "username": user},
        "gpu_spec": {"num_gpus": 0}}), {"Content-Type": "application/json"})
    assert status == 201, (job_id, status, raw)


def record(job_id):
    status, raw = node.request("GET", f"/api/v1/jobs/{job_id}")
    assert status == 200, (job_id, status, raw)
    return json.loads(raw)


def wait_state(job_id, states, timeout=60):
    return wait_until(lambda: (lambda r: r if r["state"] in states else None)(record(job_id)),
                      timeout, f"{job_id} to reach {states}")


def stream():
    """Every job event of the stream: [event dict]."""
    out, after = [], None
    for _ in range(100):
        path = "/api/v1/events" + (f"?after={after}" if after else "")
        status, raw = node.request("GET", path)
        assert status == 200, (status, raw[:200])
        body = json.loads(raw)
        if not body["events"]:
            return [e for e in out if e.get("kind") == "job"]
        out += body["events"]
        after = body["last"]
    raise AssertionError("too many pages")


def p50_latency(prefix):
    """Median of running.time - queued.time over the jobs named prefix*."""
    per_job = {}
    for e in stream():
        if e["job_id"].startswith(prefix) and e["state"] in ("queued", "running"):
            per_job.setdefault(e["job_id"], {}).setdefault(e["state"], e["time"])
    lat = [v["running"] - v["queued"] for v in per_job.values() if "running" in v]
    assert len(lat) == LATENCY_JOBS, (prefix, per_job)
    return statistics.median(lat)


def run_latency_jobs(prefix):
    for i in range(LATENCY_JOBS):
        job_id = f"{prefix}{i}"
        submit(job_id, "true", "lat", "lat")
        wait_state(job_id, {"completed"}, 30)


def kill_master():
    node.proc.send_signal(signal.SIGKILL)
    node.proc.wait(timeout=10)
    node.log.close()


def metric(name_and_labels):
    status, raw = node.request("GET", "/metrics")
    assert status == 200, status
    for line in raw.decode().splitlines():
        if line.startswith(name_and_labels):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


# --- tests

def test_jobs_that_complete_fail_and_are_stopped_notify_every_sink():
    node.start()
    submit(f"a1-{TAG}", "sleep 0.2", "alpha", "erin")
    submit(f"a2-{TAG}", "exit 3", "alpha", "erin")
    submit(f"b1-{TAG}", "sleep 0.1", "beta", "erin")
    submit(f"c1-{TAG}", "sleep 0.1", "alpha", "frank")
    wait_state(f"a1-{TAG}", {"completed"})
    wait_state(f"a2-{TAG}", {"failed"})
    submit(f"a3-{TAG}", "sleep 60", "alpha", "erin")
    wait_state(f"a3-{TAG}", {"running"})
    status, raw = node.request("DELETE", f"/running_jobs/{f'a3-{TAG}'}")
    assert status in (200, 202, 204), (status, raw)
    wait_state(f"a3-{TAG}", {"cancelled"}, 30)
    for j in (f"b1-{TAG}", f"c1-{TAG}"):
        wait_state(j, {"completed"})
    wait_until(lambda: {f"a1-{TAG}", f"a2-{TAG}", f"a3-{TAG}"} <= {
        json.loads(b)["job_id"] for _, b, _ in hook_alpha.snapshot()}, 15,
        "the alpha sink to hear of a1, a2 and a3")


def test_latency_without_the_hanging_receiver():
    run_latency_jobs(f"l0-{TAG}-")
    measured["without"] = p50_latency(f"l0-{TAG}-")


def test_a_backlog_at_a_master_sigkill_is_sent_once_by_the_next_master():
    hook_all.gate.clear()  # refuses (503): the notifier retries, its cursor stays
    for j in (f"k1-{TAG}", f"k2-{TAG}"):
        submit(j, "true", "alpha", "erin")
    for j in (f"k1-{TAG}", f"k2-{TAG}"):
        wait_state(j, {"completed"})
    wait_until(lambda: hook_all.refused >= 2, 15, "the all sink to be refused")
    # The other sinks are quiet: nothing of theirs is in flight at the kill.
    wait_until(lambda: f"k2-{TAG}" in [json.loads(b)["job_id"] for _, b, _ in hook_alpha.snapshot()],
               15, "the alpha sink to hear of k2")
    time.sleep(1.5)
    kill_master()
    with open(CONFIG) as f:
        text = f.read()
    with open(CONFIG, "w") as f:
        f.write(text.replace(notifications_yaml(False), notifications_yaml(True)))
    node.start()
    hook_all.gate.set()


def test_latency_with_a_hanging_receiver_stays_close():
    run_latency_jobs(f"l1-{TAG}-")
    measured["with"] = p50_latency(f"l1-{TAG}-")
    without, with_hang = measured["without"], measured["with"]
    print(f"     submit -> running p50: {without * 1000:.1f} ms without, "
          f"{with_hang * 1000:.1f} ms with a receiver that never answers", flush=True)
    assert with_hang < max(1.0, 5 * without), measured
    wait_until(lambda: hanging.accepted >= 1, 15, "the hanging receiver to be called")
    dropped = wait_until(
        lambda: metric('atlas_notifications_total{outcome="dropped",sink="hang"}'), 30,
        "the hanging sink's queue to overflow (dropped counter)")
    sent_all = metric('atlas_notifications_total{outcome="sent",sink="all"}')
    print(f"     hanging sink: {hanging.accepted} connections held, {dropped:.0f} events dropped; "
          f"sink all sent {sent_all:.0f} since the restart", flush=True)


def expected_for(events, projects=None, users=None, states=("queued", "running", "completed",
                                                             "failed", "cancelled")):
    return [e for e in events if e["state"] in states
            and (projects is None or e["project"] in projects)
            and (users is None or e["user"] in users)]


def check_webhook(receiver, secret, want):
    want_ids = [e["id"] for e in want]
    wait_until(lambda: set(want_ids) <= set(receiver.ids()), 60,
               f"sink {receiver.name} to receive all {len(want_ids)} events")
    time.sleep(1)
    got = receiver.snapshot()
    ids = [h.get("x-atlas-event-id") for h, _, _ in got]
    dups = {i for i in ids if ids.count(i) > 1}
    assert not dups, (receiver.name, sorted(dups))
    assert set(ids) == set(want_ids), (receiver.name, set(ids) ^ set(want_ids))
    by_id = {e["id"]: e for e in want}
    for headers, body, _ in got:
        sig = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert headers.get("x-atlas-signature") == "sha256=" + sig, (receiver.name, headers)
        assert headers.get("content-type", "").startswith("application/json"), headers
        assert "authorization" not in headers, headers
        doc = json.loads(body)
        e = by_id[doc["event_id"]]
        assert doc["event_id"] == headers["x-atlas-event-id"], (doc, headers)
        for k in ("job_id", "state", "from", "user", "project", "node", "reason", "return_code",
                  "time"):
            assert doc[k] == e[k], (k, doc, e)
    return len(got)


def test_every_sink_got_each_event_it_wants_exactly_once_with_a_valid_signature():
    events = stream()
    n_all = check_webhook(hook_all, ALL_SECRET, expected_for(events))
    alpha_want = expected_for(events, ["alpha"], ["erin"], ("completed", "failed", "cancelled"))
    n_alpha = check_webhook(hook_alpha, ALPHA_SECRET, alpha_want)
    states = {json.loads(b)["job_id"]: json.loads(b)["state"] for _, b, _ in hook_alpha.snapshot()}
    assert states[f"a1-{TAG}"] == "completed" and states[f"a2-{TAG}"] == "failed", states
    assert states[f"a3-{TAG}"] == "cancelled", states
    assert f"b1-{TAG}" not in states and f"c1-{TAG}" not in states, states
    # The kill came with the `all` sink's backlog undelivered: sent after it.
    assert hook_all.refused >= 2
    print(f"     all: {n_all} events, alpha: {n_alpha} events, each once", flush=True)


def test_slack_gets_chat_post_message_with_the_token_and_channel():
    want = expected_for(stream())
    wait_until(lambda: set(e["id"] for e in want) <= set(slack.ids()), 60,
               "Slack to receive every event")
    got = slack.snapshot()
    ids = [h.get("x-atlas-event-id") for h, _, _ in got]
    assert len(ids) == len(set(ids)) == len(want), (len(ids), len(set(ids)), len(want))
    for headers, body, path in got:
        assert path == "/api/chat.postMessage", path
        assert headers.get("authorization") == "Bearer " + SLACK_TOKEN, headers
        doc = json.loads(body)
        assert doc["channel"] == CHANNEL, doc
        assert doc["text"].startswith("Job ") and "\nJob Id: " in doc["text"], doc
        assert "\nProject Name: " in doc["text"] and "\nTimestamp: " in doc["text"], doc
    failed = [json.loads(b)["text"] for _, b, _ in got if f"a2-{TAG}" in json.loads(b)["text"]]
    assert any(t.startswith("Job Failed\n") for t in failed), failed


def test_secrets_never_reach_the_log():
    log = open(node.home + "/node.log", errors="replace").read()
    for s in (ALL_SECRET, ALPHA_SECRET, SLACK_TOKEN):
        assert s not in log, s
    assert "notifications: sink all" in log, log[-2000:]


def test_a_misspelt_notifications_key_stops_the_master_and_names_it():
    bad = Node(slots=0, atlas_config="notifications:\n  webhooks:\n    - url: http://127.0.0.1:9/\n"
                                     "      evnts: [failed]\n")
    try:
        p = subprocess.run([harness.SERVER, "start", "--foreground"], env=bad.env,
                           capture_output=True, text=True, timeout=30)
        assert p.returncode != 0, (p.stdout, p.stderr)
        assert "notifications.webhooks[0].evnts: unknown key" in p.stdout + p.stderr, \
            (p.stdout, p.stderr)
    finally:
        bad.cleanup()


if __name__ == "__main__":
    try:
        harness.run_tests([
            test_jobs_that_complete_fail_and_are_stopped_notify_every_sink,
            test_latency_without_the_hanging_receiver,
            test_a_backlog_at_a_master_sigkill_is_sent_once_by_the_next_master,
            test_latency_with_a_hanging_receiver_stays_close,
            test_every_sink_got_each_event_it_wants_exactly_once_with_a_valid_signature,
            test_slack_gets_chat_post_message_with_the_token_and_channel,
            test_secrets_never_reach_the_log,
            test_a_misspelt_notifications_key_stops_the_master_and_names_it,
        ])
    finally:
        node.cleanup()
        for r in (hook_all, hook_alpha, slack):
            r.stop()
        hanging.stop()
