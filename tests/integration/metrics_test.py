"""GET /metrics on a real cluster (a master and two workers with two slots
each, one Redis), scraped by Debian's real `prometheus` (started here on a
free loopback port with a generated configuration, scrape interval 1 s, the
three nodes' /metrics as targets, its TSDB in a temporary directory, stopped
by its pid).

Checked: every node answers /metrics (and /api/v1/metrics) in the Prometheus
text format (text/plain, `# TYPE` lines, the metric names of issue 21 where
they belong: master-only figures on the active master only); a POST to
/metrics and a malformed request are refused cleanly and the node keeps
serving; after N short jobs, Prometheus sees every target up,
atlas_jobs{state="completed"} == N, the outcomes and dispatch counters, a
finite p90 of submit->start from the histogram, sum(atlas_slots) equal to the
cluster's slots (per node too); no metric of any node carries a job id in a
label value (cardinality); the figures survive a restart of the master (they
come from Redis).

Every wait is bounded; everything started is stopped by its pid."""

import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid

import harness
from harness import free_port, wait_until
from cluster_harness import Cluster, http

PROMETHEUS = os.environ.get("ATLAS_PROMETHEUS", shutil.which("prometheus") or "/usr/bin/prometheus")
N = 12
TAG = uuid.uuid4().hex[:8]
JOB_IDS = [f"mt{TAG}-{i:02d}" for i in range(N)]
# A short job: long enough that the scraper sees slots busy now and then.
SHORT = ["/bin/sh", "-c", "sleep 0.3"]

cluster = Cluster(workers=2, slots=2)
M = cluster.master
NODES = [M, *cluster.workers]
TOTAL_SLOTS = 2 * 2
prom = {"proc": None, "dir": None, "port": None}


# --- the Prometheus text format

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """{name: [(labels dict, value)]} and {name: type} of an exposition;
    asserts every line is a comment, blank, or a well-formed sample."""
    samples, types = {}, {}
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 4 and parts[1] == "TYPE":
                types[parts[2]] = parts[3].strip()
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        labels = dict(LABEL.findall(m.group(3) or ""))
        value = float(m.group(4))  # "NaN", "+Inf" parse too
        samples.setdefault(m.group(1), []).append((labels, value))
    return samples, types


def scrape(node, path="/metrics"):
    status, raw = node.request("GET", path)
    assert status == 200, (node.name, path, status, raw[:300])
    return raw.decode()


def scrape_with_headers(node, path="/metrics"):
    """(status, headers dict lower-case, body) with a raw HTTP/1.1 request."""
    with socket.create_connection((node.host, node.http_port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {node.host}\r\nConnection: close\r\n\r\n".encode())
        data = read_all(s)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = dechunk(body)
    return int(lines[0].split()[1]), headers, body


def read_all(s, limit=16 << 20):
    data = b""
    s.settimeout(10)
    while len(data) < limit:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def dechunk(body):
    out = b""
    while body:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += body[:size]
        body = body[size + 2:]
    return out


def value_of(samples, name, **labels):
    """The value of the one sample of `name` whose labels include `labels`."""
    found = [v for lab, v in samples.get(name, []) if all(lab.get(k) == x for k, x in labels.items())]
    assert len(found) == 1, (name, labels, samples.get(name))
    return found[0]


# --- Prometheus

def start_prometheus():
    d = tempfile.mkdtemp(prefix="atlas-prom-")
    port = free_port()
    targets = [f"{n.host}:{n.http_port}" for n in NODES]
    with open(d + "/prometheus.yml", "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                "  evaluation_interval: 1s\n"
                "scrape_configs:\n  - job_name: atlas\n    metrics_path: /metrics\n"
                "    static_configs:\n      - targets: " + json.dumps(targets) + "\n")
    log = open(d + "/prometheus.log", "ab")
    env = {k: v for k, v in os.environ.items()
           if k.lower() not in ("http_proxy", "https_proxy", "no_proxy", "all_proxy")}
    proc = subprocess.Popen([PROMETHEUS, f"--config.file={d}/prometheus.yml",
                             f"--storage.tsdb.path={d}/data",
                             f"--web.listen-address=127.0.0.1:{port}",
                             "--storage.tsdb.retention.time=1h", "--log.level=warn"],
                            cwd=d, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    prom.update(proc=proc, dir=d, port=port, log=log)

    def ready():
        if proc.poll() is not None:
            raise AssertionError("prometheus exited:\n" + prom_log())
        try:
            return http("GET", f"http://127.0.0.1:{port}/-/ready", timeout=2)[0] == 200
        except OSError:
            return False
    wait_until(ready, 60, "prometheus to be ready")


def prom_log():
    try:
        with open(prom["dir"] + "/prometheus.log", errors="replace") as f:
            return f.read()[-3000:]
    except (OSError, TypeError):
        return ""


def stop_prometheus():
    proc = prom["proc"]
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    if prom.get("log"):
        prom["log"].close()
    if prom["dir"]:
        shutil.rmtree(prom["dir"], ignore_errors=True)


def query(expr):
    """The result vector of an instant query: [(labels, float value)]."""
    url = f"http://127.0.0.1:{prom['port']}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    status, raw = http("GET", url, timeout=10)
    assert status == 200, (expr, status, raw[:300])
    body = json.loads(raw)
    assert body["status"] == "success", body
    return [(r["metric"], float(r["value"][1])) for r in body["data"]["result"]]


def wait_query(expr, predicate, timeout, what):
    """Polls `expr` until predicate(result) holds; returns the result."""
    last = [None]

    def check():
        last[0] = query(expr)
        return predicate(last[0])
    try:
        wait_until(check, timeout, what)
    except AssertionError as e:
        raise AssertionError(f"{e}; last result of {expr!r}: {last[0]}") from None
    return last[0]


def one_value(result):
    return result[0][1] if len(result) == 1 else None


# --- tests

MASTER_ONLY = ["atlas_jobs", "atlas_submissions_total", "atlas_dispatches_total",
               "atlas_job_outcomes_total", "atlas_queue_depth", "atlas_queue_oldest_age_seconds",
               "atlas_job_wait_seconds", "atlas_dispatch_latency_seconds", "atlas_slots",
               "atlas_gpus", "atlas_node_heartbeat_age_seconds", "atlas_master_active"]
# What only the active master can know (its view of the cluster).
MASTER_VIEW = ["atlas_jobs", "atlas_queue_depth", "atlas_queue_oldest_age_seconds", "atlas_slots",
               "atlas_gpus", "atlas_node_heartbeat_age_seconds", "atlas_master_active"]
EVERY_NODE = ["atlas_build_info", "atlas_http_requests_total",
              "atlas_http_request_duration_seconds", "atlas_redis_round_trips_total",
              "atlas_redis_errors_total", "atlas_cluster_frames_total",
              "atlas_cluster_bytes_total", "atlas_actor_mailbox_messages",
              "atlas_actor_messages_handled_total", "process_resident_memory_bytes",
              "process_cpu_seconds_total", "process_start_time_seconds", "process_open_fds",
              "atlas_slot_jobs_started_total"]
HISTOGRAMS = ["atlas_http_request_duration_seconds", "atlas_job_wait_seconds",
              "atlas_dispatch_latency_seconds"]


def test_every_node_answers_metrics_in_the_prometheus_text_format():
    for node in NODES:
        status, headers, body = scrape_with_headers(node)
        assert status == 200, (node.name, status, body[:300])
        ctype = headers.get("content-type", "")
        assert ctype.startswith("text/plain"), (node.name, ctype)
        text = body.decode()
        assert "# TYPE " in text and "# HELP " in text, text[:500]
        samples, types = parse_metrics(text)
        for name in EVERY_NODE:
            assert name in types, f"{node.name}: no # TYPE for {name}"
        for name in HISTOGRAMS:
            if name in types:
                assert types[name] == "histogram", (name, types[name])
        assert types["atlas_http_requests_total"] == "counter", types["atlas_http_requests_total"]
        role = "master" if node is M else "worker"
        assert value_of(samples, "atlas_build_info", role=role) == 1, samples["atlas_build_info"]
        assert samples["process_resident_memory_bytes"][0][1] > 1 << 20, \
            samples["process_resident_memory_bytes"]
        assert samples["process_open_fds"][0][1] > 3
        start = samples["process_start_time_seconds"][0][1]
        assert time.time() - 600 < start <= time.time() + 1, start
        if node is M:
            # (atlas_job_outcomes_total has no series before a job has ended.)
            for name in MASTER_ONLY:
                assert name in types or name == "atlas_job_outcomes_total", \
                    f"master: no # TYPE for {name}"
            assert value_of(samples, "atlas_master_active") == 1
            # Every state has its series, even at 0.
            states = {lab["state"] for lab, _ in samples["atlas_jobs"]}
            assert {"queued", "pending", "running", "completed", "failed", "cancelled",
                    "lost"} <= states, states
        else:
            # The cluster's view is the master's alone; a counter or histogram
            # of the master's that a worker's registry holds stays at 0.
            present = [name for name in MASTER_VIEW if name in samples]
            assert not present, f"{node.name} (a worker) exposes master figures: {present}"
            nonzero = [(name, lab, v) for name in MASTER_ONLY if name not in MASTER_VIEW
                       for name2 in (name, name + "_count") for lab, v in samples.get(name2, [])
                       if v != 0]
            assert not nonzero, f"{node.name} (a worker) counts master figures: {nonzero[:3]}"
        # The same text under /api/v1/metrics.
        alias = scrape(node, "/api/v1/metrics")
        assert "atlas_build_info" in alias and "# TYPE" in alias, alias[:300]


def test_a_post_and_a_malformed_request_to_metrics_are_refused_cleanly():
    for node in NODES:
        status, raw = node.request("POST", "/metrics", "x=1",
                                   {"Content-Type": "application/x-www-form-urlencoded"})
        assert status in (400, 405), (node.name, status, raw[:300])
        assert len(raw) < 4096, raw[:300]
        assert b"atlas_build_info" not in raw, raw[:300]
        # A request line that is not HTTP: a 400 (or the connection closed), never a hang.
        with socket.create_connection((node.host, node.http_port), timeout=10) as s:
            s.sendall(b"GET /metrics HTTP/9.9 \x00\x01\r\nContent-Length: -5\r\n\r\n")
            data = read_all(s, limit=65536)
        assert data == b"" or re.match(rb"HTTP/1\.[01] 400 ", data), (node.name, data[:200])
        # Still serving.
        assert "atlas_build_info" in scrape(node)
        assert node.healthy()


def test_prometheus_scrapes_every_node_and_sees_the_jobs():
    start_prometheus()
    up = wait_query('up{job="atlas"}', lambda r: len(r) == 3 and all(v == 1 for _, v in r), 30,
                    "every target up")
    assert {lab["instance"] for lab, _ in up} == {f"{n.host}:{n.http_port}" for n in NODES}, up
    t0 = time.time()
    for job_id in JOB_IDS:
        status, raw = cluster.upload(job_id, {"noop.txt": "tiny\n"})
        assert status == 200, (job_id, status, raw)
        status, raw = cluster.queue(job_id, entrypoint=SHORT)
        assert status == 201, (job_id, status, raw)
    wait_until(lambda: all(r["state"] in ("completed", "failed", "cancelled")
                           for r in cluster.records(f"mt{TAG}-").values())
               and len(cluster.records(f"mt{TAG}-")) == N, 90, f"{N} jobs to end")
    recs = cluster.records(f"mt{TAG}-")
    assert all(r["state"] == "completed" for r in recs.values()), \
        {j: (r["state"], r["reason"]) for j, r in recs.items() if r["state"] != "completed"}
    for job_id in JOB_IDS[:3]:  # routes with a job id in their path, for the label check
        cluster.record(job_id)
        M.request("GET", f"/jobs/{job_id}")
    print(f"     {N} jobs completed {time.time() - t0:.1f}s after the first submission",
          flush=True)

    wait_query('atlas_jobs{state="completed"}', lambda r: one_value(r) == N, 20,
               f'atlas_jobs{{state="completed"}} == {N} in prometheus')
    for state in ("queued", "pending", "running", "failed", "lost"):
        assert one_value(query(f'atlas_jobs{{state="{state}"}}')) == 0, state
    wait_query('sum(atlas_job_outcomes_total{state="completed",reason="ok"})',
               lambda r: one_value(r) == N, 10, "the outcomes counter")
    assert one_value(query("sum(atlas_submissions_total)")) == N
    assert one_value(query("sum(atlas_dispatches_total)")) == N
    wait_query("sum(atlas_slot_jobs_started_total)", lambda r: one_value(r) == N, 10,
               "the slots' started counters")
    p90 = wait_query("histogram_quantile(0.9, sum(rate(atlas_job_wait_seconds_bucket[1m])) by (le))",
                     lambda r: one_value(r) is not None and math.isfinite(one_value(r)), 20,
                     "a finite p90 of submit->start")
    d90 = query("histogram_quantile(0.9, sum(rate(atlas_dispatch_latency_seconds_bucket[1m])) by (le))")
    print(f"     p90 submit->start {one_value(p90):.3f}s, p90 dispatch latency "
          f"{one_value(d90) if d90 else float('nan'):.3f}s (prometheus)", flush=True)
    assert 0 <= one_value(p90) < 30, p90
    assert one_value(query("atlas_master_active")) == 1
    assert one_value(query('sum(atlas_queue_depth) or vector(0)')) == 0

    # Every slot counted once (busy, free or draining), per worker too.
    assert one_value(query("sum(atlas_slots)")) == TOTAL_SLOTS
    per_node = {lab["node"]: v for lab, v in query("sum by (node) (atlas_slots)")}
    assert {n: v for n, v in per_node.items() if v} == {w.node_id: 2 for w in cluster.workers}, \
        per_node  # the master, a node without slots, may be listed with 0
    ages = {lab["node"]: v for lab, v in query("atlas_node_heartbeat_age_seconds")}
    assert set(ages) >= {w.node_id for w in cluster.workers}, ages
    assert all(0 <= ages[w.node_id] < 30 for w in cluster.workers), ages
    # Requests counted by route and code (the route a template, not a path).
    routes = query('sum by (route, code) (atlas_http_requests_total)')
    assert any(lab.get("code") == "201" for lab, _ in routes), routes
    assert one_value(query("sum(atlas_redis_errors_total)")) == 0


def test_no_metric_carries_a_job_id():
    for node in NODES:
        text = scrape(node)
        leaked = [j for j in JOB_IDS if j in text]
        assert not leaked, (node.name, leaked,
                            [line for line in text.splitlines() if leaked[0] in line][:5])
        samples, _ = parse_metrics(text)
        series = sum(len(v) for v in samples.values())
        assert series < 2000, f"{node.name}: {series} series"


def test_the_job_figures_survive_a_restart_of_the_master():
    M.stop()
    M.start()
    for w in cluster.workers:
        cluster.wait_joined(w, 30)
    samples, _ = parse_metrics(scrape(M))
    assert value_of(samples, "atlas_jobs", state="completed") == N, samples["atlas_jobs"]
    wait_query('atlas_jobs{state="completed"}', lambda r: one_value(r) == N, 20,
               "prometheus to scrape the restarted master")
    wait_query('up{job="atlas"}', lambda r: len(r) == 3 and all(v == 1 for _, v in r), 20,
               "every target up after the restart")


def test_a_standby_master_says_it_is_not_active_and_shows_no_cluster_figures():
    standby = cluster.node("master-b", role="master", slots=0)
    standby.start(expect_role="standby")
    try:
        samples, _ = parse_metrics(scrape(standby))
        assert value_of(samples, "atlas_build_info", role="master") == 1, samples["atlas_build_info"]
        active = samples.get("atlas_master_active", [({}, 0)])
        assert [v for _, v in active] == [0], active
        shown = [name for name in MASTER_VIEW if name != "atlas_master_active" and samples.get(name)]
        assert not shown, f"a standby shows the cluster's figures: {shown}"
        # The active master still says 1.
        assert value_of(parse_metrics(scrape(M))[0], "atlas_master_active") == 1
    finally:
        standby.stop()


DASHBOARD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "ops", "grafana",
                         "atlas-cluster.json")


def test_the_grafana_dashboards_queries_run_and_name_real_metrics():
    """Every query of ops/grafana/atlas-cluster.json (its variables given
    values) is valid PromQL to this Prometheus, and every metric it names is
    exposed by some node."""
    with open(DASHBOARD) as f:
        dash = json.load(f)
    assert dash["schemaVersion"] >= 36 and dash["__inputs"][0]["name"] == "DS_PROMETHEUS", dash.keys()
    exposed = set()
    for node in NODES:
        exposed |= set(parse_metrics(scrape(node))[1])
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 20, len(exprs)
    empty = []
    for expr in exprs:
        q = (expr.replace("$__rate_interval", "1m").replace("$job", "atlas")
             .replace("$instance", ".*"))
        for name in re.findall(r"\b((?:atlas|process)_[a-z_]+)", q):
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            assert base in exposed, f"the dashboard names {name}, which no node exposes"
        if not query(q):
            empty.append(expr)
    print(f"     {len(exprs)} dashboard queries ran; {len(empty)} empty now", flush=True)


signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
try:
    cluster.start()
    harness.run_tests([
        test_every_node_answers_metrics_in_the_prometheus_text_format,
        test_a_post_and_a_malformed_request_to_metrics_are_refused_cleanly,
        test_prometheus_scrapes_every_node_and_sees_the_jobs,
        test_no_metric_carries_a_job_id,
        test_the_grafana_dashboards_queries_run_and_name_real_metrics,
        test_the_job_figures_survive_a_restart_of_the_master,
        test_a_standby_master_says_it_is_not_active_and_shows_no_cluster_figures,
    ])
finally:
    if prom["proc"] and prom["proc"].poll() is not None:
        print("--- prometheus log\n" + prom_log(), flush=True)
    stop_prometheus()
    cluster.cleanup()
