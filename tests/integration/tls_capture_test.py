"""What crosses the cluster port on the wire: a loopback capture (an AF_PACKET
raw socket on "lo", as root) while a worker joins a master and runs one job.
Since node-to-node traffic is mutual TLS 1.3, nothing secret may be readable
on the master's CAF port: not the cluster secret the worker shows when it
joins, not the job's environment, not its tracking secret (ATLAS_JOB_SECRET,
sent to the slot with the job), not its bundle.

The worker has a FOUNDATIONS_HOME of its own (its certificate and the CA
certificate copied in as an operator would, as provision_node() does; the
secret in ATLAS_CLUSTER_SECRET), so it cannot read the master's job store and
fetches the bundle from the master over the CAF port: the bundle really
crosses that port. The bundle is a gzip tarball packed with compression level 0 (stored
deflate blocks), so its marker is in the .tgz bytes verbatim: were the link
plaintext, the marker would be on the wire.

What the capture sees is checked too, so that "not seen" means something:
the job's environment marker and the bundle marker are seen in plaintext on
the master's HTTP port (the upload and the submission), the CAF port carries
more than 1 KB, every byte of each of its connections (reassembled by TCP
sequence number, from the SYN on, without a gap) is a well-formed TLS 1.3
record, and after the two hellos only encrypted records (0x17 0x03 0x03) and
the compatibility change_cipher_spec pass. A control cluster with
`cluster.tls: false` runs the same scenario and there the capture does see
the secret, the environment and bundle markers and the tracking secret on the
CAF port.

Without root (no AF_PACKET) the test prints why it skips and exits 0."""

import json
import os
import shutil
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
import uuid

import harness
from harness import wait_until
from cluster_harness import Cluster, bundle_bytes, issue_certificate

CAPTURE_LIMIT_S = 240          # the capture thread stops by itself after this
SOL_PACKET = 263
PACKET_STATISTICS = 6
PACKET_OUTGOING = 4            # on lo every packet shows twice: keep the incoming copy
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
ETH_P_ALL = 3


def can_capture():
    """None when an AF_PACKET socket on lo can be opened here, else why not."""
    if not hasattr(socket, "AF_PACKET"):
        return "no AF_PACKET on this system"
    try:
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(ETH_P_ALL))
    except PermissionError as e:
        return f"cannot open an AF_PACKET socket (not root / no CAP_NET_RAW): {e}"
    except OSError as e:
        return f"cannot open an AF_PACKET socket: {e}"
    try:
        s.bind(("lo", 0))
    except OSError as e:
        return f"cannot bind an AF_PACKET socket to lo: {e}"
    finally:
        s.close()
    return None


class Capture:
    """TCP segments on lo to or from `ports` (a set, which may grow while the
    capture runs), kept per connection direction with their sequence
    numbers, in a thread of its own that stops on stop() or after
    CAPTURE_LIMIT_S."""

    def __init__(self, ports):
        self.ports = set(ports)
        self.flows = {}  # (src, sport, dst, dport) -> {"syn": isn or None, "segs": {seq: bytes}}
        self.packets = 0
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.error = None
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(ETH_P_ALL))
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 64 << 20)
        except OSError:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 20)
        self.sock.bind(("lo", 0))
        self.sock.settimeout(0.2)
        self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)  # reads and resets the counters
        self.thread = threading.Thread(target=self._run, name="capture", daemon=True)
        self.thread.start()

    def add_port(self, port):
        with self.lock:
            self.ports.add(port)

    def _run(self):
        deadline = time.monotonic() + CAPTURE_LIMIT_S
        try:
            while not self.done.is_set() and time.monotonic() < deadline:
                try:
                    frame, addr = self.sock.recvfrom(1 << 18)
                except socket.timeout:
                    continue
                if addr[2] == PACKET_OUTGOING:
                    continue
                self._take(frame)
        except Exception as e:  # noqa: BLE001 - reported by stop()
            self.error = e

    def _take(self, frame):
        if len(frame) < 14:
            return
        ethertype = struct.unpack_from(">H", frame, 12)[0]
        ip = frame[14:]
        if ethertype == 0x0800 and len(ip) >= 20:
            ihl = (ip[0] & 0x0F) * 4
            total = struct.unpack_from(">H", ip, 2)[0]
            if ip[9] != 6 or (struct.unpack_from(">H", ip, 6)[0] & 0x3FFF):
                return  # not TCP, or a fragment (none on lo)
            src, dst = socket.inet_ntop(socket.AF_INET, ip[12:16]), \
                socket.inet_ntop(socket.AF_INET, ip[16:20])
            tcp = ip[ihl:total]
        elif ethertype == 0x86DD and len(ip) >= 40:
            if ip[6] != 6:
                return  # not TCP right after the fixed header (no extension headers here)
            total = 40 + struct.unpack_from(">H", ip, 4)[0]
            src, dst = socket.inet_ntop(socket.AF_INET6, ip[8:24]), \
                socket.inet_ntop(socket.AF_INET6, ip[24:40])
            tcp = ip[40:total]
        else:
            return
        if len(tcp) < 20:
            return
        sport, dport, seq = struct.unpack_from(">HHI", tcp, 0)
        with self.lock:
            if sport not in self.ports and dport not in self.ports:
                return
            self.packets += 1
            flow = self.flows.setdefault((src, sport, dst, dport),
                                         {"syn": None, "segs": {}, "ack": None, "fin": False})
            flags = tcp[13]
            if flags & 0x02:  # SYN: the data starts at isn + 1
                flow["syn"] = seq
            if flags & 0x01:
                flow["fin"] = True
            if flags & 0x10:  # what this side has received of the other's stream
                flow["ack"] = struct.unpack_from(">I", tcp, 8)[0]
            payload = tcp[(tcp[12] >> 4) * 4:]
            if payload:
                old = flow["segs"].get(seq, b"")
                if len(payload) > len(old):
                    flow["segs"][seq] = bytes(payload)

    def stop(self):
        self.done.set()
        self.thread.join(timeout=5)
        assert not self.thread.is_alive(), "the capture thread did not stop"
        stats = self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
        self.sock.close()
        self.kernel_packets, self.kernel_drops = struct.unpack("II", stats)
        if self.error:
            raise AssertionError(f"the capture failed: {self.error!r}")

    def streams(self, port):
        """{flow: (bytes in order, gaps, saw the SYN, missed tail)} for each
        direction of each connection to or from `port`. The missed tail is
        how many bytes the receiver acknowledged beyond what was captured
        (0 when the capture has the whole direction up to its last ACK)."""
        out = {}
        with self.lock:
            flows = {k: (v["syn"], dict(v["segs"]), v["fin"]) for k, v in self.flows.items()
                     if port in (k[1], k[3])}
            acks = {k: v["ack"] for k, v in self.flows.items()}
        for key, (syn, segs, fin) in flows.items():
            if syn is None and not segs:
                continue
            base = (syn + 1) % (1 << 32) if syn is not None else min(segs)
            data, pos, gaps = bytearray(), 0, 0
            for rel, payload in sorted(((s - base) % (1 << 32), p) for s, p in segs.items()):
                if rel + len(payload) <= pos:
                    continue  # a retransmission of what we have
                if rel > pos:
                    gaps += 1
                    data += b"\0" * (rel - pos)  # keeps offsets; never a marker
                    pos = rel
                data += payload[pos - rel:]
                pos = rel + len(payload)
            ack = acks.get((key[2], key[3], key[0], key[1]))
            acked = 0 if ack is None else (ack - base) % (1 << 32)
            if acked > (1 << 31):
                acked = 0  # an ack from before the data (the SYN's)
            missed = max(0, acked - len(data) - (1 if fin else 0))
            out[key] = (bytes(data), gaps, syn is not None, missed)
        return out


def tls_records(stream):
    """The TLS records of one direction of a connection: [(type, length)];
    raises AssertionError when the bytes are not TLS record framing. A
    record cut by the end of the capture is left out."""
    records, pos = [], 0
    while pos + 5 <= len(stream):
        kind, major, minor, length = stream[pos], stream[pos + 1], stream[pos + 2], \
            struct.unpack_from(">H", stream, pos + 3)[0]
        assert kind in (20, 21, 22, 23), f"byte {pos}: not a TLS record (type {kind})"
        # The first ClientHello may say 3.1 on its record (RFC 8446 5.1).
        assert major == 3 and minor in (1, 3), f"byte {pos}: record version {major}.{minor}"
        assert length <= (1 << 14) + 256, f"byte {pos}: record of {length} bytes"
        if pos + 5 + length > len(stream):
            break  # cut by the capture's end
        records.append((kind, length))
        pos += 5 + length
    return records


def upload_stored(cluster, job_id, files):
    """Cluster.upload's multipart request with the level-0 bundle."""
    boundary = uuid.uuid4().hex
    bundle = bundle_bytes(job_id, files, compresslevel=0)  # a marker stays verbatim
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"job_bundle\"; "
            f"filename=\"{job_id}.tgz\"\r\nContent-Type: application/gzip\r\n\r\n").encode() \
        + bundle + f"\r\n--{boundary}--\r\n".encode()
    status, raw = cluster.master.request(
        "POST", "/job_bundle", body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert status == 200, (job_id, status, raw)
    return bundle


# The job: fails unless its environment marker and its bundle file arrived;
# leaves its tracking secret where the test can read it. It prints neither
# marker (its log is no part of what is checked).
JOB = """\
import os
job = os.environ['FOUNDATIONS_JOB_ID']
with open(os.path.join(os.environ['MARKS'], job + '.secret'), 'w') as f:
    f.write(os.environ.get('ATLAS_JOB_SECRET', ''))
assert os.environ['CAPTURE_ENV_MARKER'].startswith('atlas-env-marker-')
with open('marker.txt') as f:
    assert f.read().startswith('atlas-bundle-marker-')
print('job ok', flush=True)
"""


def scenario(cluster, label, cleanup_dirs, tls=True):
    """Starts a capture, then a worker with a home of its own, runs one job
    with an environment marker and a bundle marker, stops the capture.
    Returns what the assertions need."""
    M = cluster.master
    with open(cluster.home + "/config/cluster.secret") as f:
        secret = f.read().strip()
    assert len(secret) >= 32, "a short cluster secret would make a weak needle"
    env_marker = f"atlas-env-marker-{uuid.uuid4().hex}{uuid.uuid4().hex}"
    bundle_marker = f"atlas-bundle-marker-{uuid.uuid4().hex}{uuid.uuid4().hex}"
    job_id = f"tls-capture-{label}-{uuid.uuid4().hex[:8]}"

    own_home = tempfile.mkdtemp(prefix=f"atlas-capture-{label}-")
    cleanup_dirs.append(own_home)
    os.makedirs(own_home + "/config", exist_ok=True)
    shutil.copy(cluster.home + "/config/atlas.config.yaml", own_home + "/config/")
    worker = cluster.node(f"worker-{label}", slots=1, home=own_home,
                          env={"ATLAS_CLUSTER_SECRET": secret})
    if tls:  # what provision_node() does, with the issued files inside own_home
        ca, cert, key = issue_certificate(cluster.home, worker.node_id, "worker",
                                          own_home + "/issued")
        tls_dir = f"{own_home}/nodes/{worker.node_id}/tls"
        os.makedirs(own_home + "/config/tls", exist_ok=True)
        os.makedirs(tls_dir, exist_ok=True)
        shutil.copy(ca, own_home + "/config/tls/ca.crt")
        shutil.copy(cert, tls_dir + "/node.crt")
        shutil.copy(key, tls_dir + "/node.key")

    capture = Capture({M.caf_port, M.http_port, worker.caf_port})
    t0 = time.monotonic()
    try:
        worker.start(30)
        wait_until(lambda: cluster.slots_of(worker), 30, f"{worker.name}'s slot on the master")
        bundle = upload_stored(cluster, job_id,
                               {"main.py": JOB, "marker.txt": bundle_marker + "\n"})
        assert bundle_marker.encode() in bundle  # level 0: verbatim in the .tgz
        status, raw = cluster.queue(job_id, {"CAPTURE_ENV_MARKER": env_marker})
        assert status == 201, (status, raw)
        rec = cluster.wait_record(job_id, lambda r: r.get("state") in ("completed", "failed"),
                                  60, "to finish")
        time.sleep(0.5)  # the last acknowledgements reach the capture
    finally:
        capture.stop()
        took = time.monotonic() - t0
    try:
        assert rec["state"] == "completed", rec
        assert rec["node"] == worker.node_id, rec
        with open(os.path.join(cluster.marks, job_id + ".secret")) as f:
            job_secret = f.read().strip()
        stored = f"{cluster.home}/job_data/job_store/{job_id}.tgz"
        fetched = f"{own_home}/job_data/job_store/{job_id}.tgz"
        with open(stored, "rb") as f:
            stored_bytes = f.read()
        with open(fetched, "rb") as f:
            fetched_bytes = f.read()
        record_text = json.dumps(cluster.record(job_id))
    finally:
        worker.stop()
    return {
        "secret": secret, "env": env_marker, "bundle": bundle_marker, "job_secret": job_secret,
        "job_id": job_id, "stored": stored_bytes, "fetched": fetched_bytes, "record": record_text,
        "caf": capture.streams(M.caf_port), "worker_caf": capture.streams(worker.caf_port),
        "http": capture.streams(M.http_port), "capture": capture, "took": took,
        "worker": worker,
    }


def describe(streams):
    """flow: (bytes, gaps, SYN seen, bytes acknowledged but not captured)"""
    return {f"{k[0]}:{k[1]}->{k[2]}:{k[3]}": (len(v[0]), *v[1:]) for k, v in streams.items()}


def needles(s):
    """What must never be readable on the CAF port."""
    out = {"the cluster secret": s["secret"], "the environment marker": s["env"],
           "the bundle marker": s["bundle"]}
    if s["job_secret"]:
        out["the job's tracking secret"] = s["job_secret"]
    return out


# --- the cluster under test: mutual TLS (the default) ------------------------

why_not = can_capture()
if why_not:
    print(f"SKIP tls_capture_test: {why_not}", flush=True)
    sys.exit(0)
cluster = Cluster(workers=0, slots=1)
cleanup_dirs = []
result = {}


def test_the_caf_port_carries_only_tls_records():
    s = result["tls"] = scenario(cluster, "tls", cleanup_dirs)
    cap = s["capture"]
    caf = s["caf"]
    print(f"     {s['took']:.1f}s captured; {cap.packets} packets on the ports watched, "
          f"kernel: {cap.kernel_packets} packets on lo, {cap.kernel_drops} dropped; "
          f"CAF port {describe(caf)}; worker's CAF port {describe(s['worker_caf'])}", flush=True)
    total = sum(len(v[0]) for v in caf.values())
    assert total > 1024, f"only {total} bytes captured on the CAF port: {describe(caf)}"
    # The kernel's drop count is for all of lo (other tests may run): what
    # counts is that each direction is whole, from the SYN to the last byte
    # its receiver acknowledged.
    for key, (data, gaps, syn, missed) in caf.items():
        assert syn, f"{key}: the connection's SYN was not captured"
        assert gaps == 0, f"{key}: {gaps} holes in the captured stream"
        assert missed == 0, f"{key}: {missed} acknowledged bytes at the end were not captured"
    joined = b"".join(v[0] for v in caf.values())
    assert b"\x17\x03\x03" in joined, "no TLS application data record on the CAF port"
    # Every byte of every direction is TLS record framing; past the hellos,
    # only encrypted records (and TLS 1.3's compatibility change_cipher_spec).
    kinds = {}
    for key, (data, *_) in caf.items():
        if not data:
            continue
        records = tls_records(data)
        assert records, f"{key}: no whole TLS record"
        assert records[0][0] == 22, f"{key}: does not start with a handshake record: {records[:3]}"
        later = {kind for kind, _ in records[1:]}
        assert later <= {20, 23}, f"{key}: plaintext records past the hello: {sorted(later)}"
        kinds[f"{key[1]}->{key[3]}"] = (len(records), sorted({k for k, _ in records}))
    print(f"     TLS records per direction (count, types): {kinds}", flush=True)


def test_no_secret_or_marker_is_readable_on_the_caf_port():
    s = result.get("tls")
    assert s, "the capture did not run"
    assert s["job_secret"], "the job saw no ATLAS_JOB_SECRET"
    # The bundle crossed the CAF port (the worker cannot read the master's
    # store), and the marker is in its bytes verbatim on both sides.
    assert s["bundle"].encode() in s["stored"], "bundle marker not in the stored bundle"
    assert s["fetched"] == s["stored"], "the worker's fetched bundle differs from the master's"
    assert s["job_secret"] not in s["record"], "the job record shows the tracking secret"
    found = []
    for name, needle in needles(s).items():
        for port_name, streams in (("master CAF port", s["caf"]),
                                   ("worker CAF port", s["worker_caf"])):
            for key, (data, *_) in streams.items():
                if needle.encode() in data:
                    found.append(f"{name} on the {port_name} ({key})")
    assert not found, found
    # The capture does read plaintext where there is some: the upload and
    # the submission went to the master's HTTP port in the clear.
    http = b"".join(v[0] for v in s["http"].values())
    assert s["bundle"].encode() in http, "the capture missed the bundle marker on HTTP"
    assert s["env"].encode() in http, "the capture missed the environment marker on HTTP"


# --- control: the same scenario with cluster.tls: false --------------------

def test_control_without_tls_the_capture_sees_them_all():
    plain = Cluster(workers=0, slots=1, atlas_config="cluster:\n  tls: false\n")
    try:
        plain.start()
        s = scenario(plain, "plain", cleanup_dirs, tls=False)
        caf = s["caf"]
        print(f"     plaintext cluster: CAF port {describe(caf)}", flush=True)
        assert s["job_secret"], "the job saw no ATLAS_JOB_SECRET"
        assert s["fetched"] == s["stored"], "the worker's fetched bundle differs from the master's"
        joined_streams = [v[0] for v in caf.values()]
        missed = [name for name, needle in needles(s).items()
                  if not any(needle.encode() in d for d in joined_streams)]
        assert not missed, f"without TLS the capture did not see {missed} on the CAF port"
        assert not any(d.startswith(b"\x16\x03") for d in joined_streams if d), \
            "the plaintext cluster spoke TLS"
    finally:
        plain.cleanup()


# A runner's timeout (SIGTERM) still stops every node and Redis.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
try:
    cluster.start()
    harness.run_tests([
        test_the_caf_port_carries_only_tls_records,
        test_no_secret_or_marker_is_readable_on_the_caf_port,
        test_control_without_tls_the_capture_sees_them_all,
    ])
finally:
    cluster.cleanup()
    for d in cleanup_dirs:
        shutil.rmtree(d, ignore_errors=True)
