"""The master's public CAF port against a peer that lies about sizes (issue 9,
hardening finding 2): CAF 0.17 reserves the payload a BASP header announces
before it checks anything, so 12 connections each sending one 32-byte header
announcing ~4 GiB took a fresh master from 13 MiB to 912 MiB. The front on
the CAF port (adapters/caf_front) must refuse such headers, close those
connections, log the peer, keep the master's memory flat, and leave the
cluster working: a worker that joins afterwards runs a job.

The port is mutual TLS 1.3 now (a certificate of the cluster CA on both
sides), so a plain socket never reaches BASP. The attackers here are
authenticated peers: each shows a worker certificate issued from the cluster
CA (`atlas-server issue-cert`) and sends its lying header inside TLS; the
master's warning names the address and the certificate's CN and OU. Peers
that cannot authenticate (plain TCP bytes, TLS without a certificate, a
certificate of another CA) are closed at once and logged with their address
only, and get no application data (no BASP) from the master; one that
connects and says nothing is closed by the front's 10 s handshake deadline,
and an authenticated one that says nothing by CAF's connection timeout.
Afterwards the master holds no descriptor more than before."""

import os
import shutil
import signal
import socket
import ssl
import struct
import sys
import tempfile
import time

import harness
from harness import wait_until
from cluster_harness import Cluster, foreign_certificate, issue_certificate

ATTACKERS = 12
ANNOUNCED = 0xFFFFFFFF  # the most a BASP header can announce: 4 GiB - 1
RSS_BOUND_MIB = 48      # growth of the master allowed over the attack
HANDSHAKE_S = 3         # cluster.connection_timeout_ms (default): a peer has this long to finish its handshake
FIRST_LIMIT = 64 << 10  # basp_framer::limits::first_payload

cluster = Cluster(workers=0, slots=1)
M = cluster.master
certs = tempfile.mkdtemp(prefix="atlas-caf-port-certs-")
ATTACKER = "mallory-worker"  # CN of the attackers' certificate (OU worker)


def basp_header(operation, payload_len):
    """CAF 0.17.6's BASP header: operation u8, 2 padding bytes, flags u8,
    payload_len u32, operation_data u64, source and destination actor u64,
    big-endian (caf/io/basp/header.hpp)."""
    return struct.pack(">BBBBIQQQ", operation, 0, 0, 0, payload_len, 0, 0, 0)


def status_mib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise AssertionError(f"no {field} for {pid}")


def client_context(cert=None, key=None, ca=None):
    """A TLS 1.3 client as a node is one: the cluster CA to check the
    master, a certificate (when given) to show it; no host name check (the
    master's certificate names its node id, not 127.0.0.1)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    if ca:
        ctx.load_verify_locations(ca)
    else:
        ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx


def tls_connect(ctx, timeout=5):
    """A TLS connection to the master's CAF port, handshake done on the
    client's side (in TLS 1.3 the server checks the client's certificate
    after that: a refusal shows on the first read)."""
    raw = socket.create_connection(("127.0.0.1", M.caf_port), timeout=timeout)
    try:
        return ctx.wrap_socket(raw, server_hostname=None)
    except BaseException:
        raw.close()
        raise


def closed_within(sock, seconds):
    """(closed, bytes of application data received, error): closed is True
    when the peer closes (EOF, reset, TLS alert) within `seconds`; what it
    sent before (CAF's server handshake) is counted and dropped."""
    deadline = time.monotonic() + seconds
    got = 0
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            data = sock.recv(65536)
        except socket.timeout:
            return False, got, None
        except (ssl.SSLError, ConnectionError) as e:  # an alert, a reset, a ragged EOF
            return True, got, e
        if not data:
            return True, got, None
        got += len(data)
    return False, got, None


def refusal_lines(port):
    """The master's warnings about the connection from our source `port`."""
    prefix = f"CAF port: closed the connection from 127.0.0.1:{port}"
    return [line for line in M.node_log().splitlines()
            if prefix + " " in line or prefix + ":" in line]


def wait_refusal(port, needle, timeout=10):
    return wait_until(lambda: [l for l in refusal_lines(port) if needle in l], timeout,
                      f"the master to log the refusal of 127.0.0.1:{port} ({needle})")[0]


_issued = []


def issued():
    """The attackers' certificate: CN mallory-worker, OU worker, from the
    cluster CA (the master made it on its first start)."""
    if not _issued:
        _issued.append(issue_certificate(cluster.home, ATTACKER, "worker", certs + "/ours"))
    return _issued[0]


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


baseline = {}


def test_headers_announcing_4_gib_are_refused_and_memory_stays_flat():
    ca, cert, key = issued()
    ctx = client_context(cert, key, ca)
    time.sleep(1)  # the master settles after start
    before = status_mib(M.pid, "VmRSS")
    baseline["fds"] = open_fds(M.pid)
    socks, ports = [], []
    try:
        for _ in range(ATTACKERS):
            s = tls_connect(ctx)
            socks.append(s)
            ports.append(s.getsockname()[1])
            # 1: client_handshake, with source and destination 0, which
            # CAF 0.17 takes as valid and reserves the payload for.
            s.sendall(basp_header(1, ANNOUNCED))
        results = [closed_within(s, 10) for s in socks]
        during = status_mib(M.pid, "VmRSS")
    finally:
        for s in socks:
            s.close()
    time.sleep(1)
    after = status_mib(M.pid, "VmRSS")
    peak = status_mib(M.pid, "VmHWM")
    print(f"     master RSS {before:.1f} MiB before, {during:.1f} during, {after:.1f} after, "
          f"peak {peak:.1f}", flush=True)
    print(f"     application data each attacker got before the close (CAF's server handshake): "
          f"{sorted({got for _, got, _ in results})} bytes", flush=True)
    not_closed = [i for i, (closed, _, _) in enumerate(results) if not closed]
    assert not not_closed, f"connections {not_closed} were not closed by the master"
    assert during - before < RSS_BOUND_MIB, (before, during)
    assert after - before < RSS_BOUND_MIB, (before, after)
    assert peak - before < RSS_BOUND_MIB, (before, peak)
    assert M.running(), "the master died"
    # One warning per attacker, naming its address and its certificate.
    for port in ports:
        line = wait_refusal(port, f"(operation 1) announced {ANNOUNCED} bytes")
        expected = (f"CAF port: closed the connection from 127.0.0.1:{port} ({ATTACKER}, worker): "
                    f"its first BASP message (operation 1) announced {ANNOUNCED} bytes of "
                    f"payload, more than the {FIRST_LIMIT} allowed")
        assert expected in line, line
    log = M.node_log()
    refused = [line for line in log.splitlines()
               if "CAF port: closed the connection from 127.0.0.1:" in line
               and f"announced {ANNOUNCED} bytes" in line]
    assert len(refused) == ATTACKERS, log[-3000:]


def test_a_first_message_over_the_handshake_limit_is_refused():
    ca, cert, key = issued()
    with tls_connect(client_context(cert, key, ca)) as s:
        port = s.getsockname()[1]
        s.sendall(basp_header(1, 1 << 20))  # a client handshake of 1 MiB
        closed, _, _ = closed_within(s, 10)
        assert closed, "not closed"
    wait_refusal(port, f"({ATTACKER}, worker): its first BASP message (operation 1) announced "
                       f"1048576 bytes of payload, more than the {FIRST_LIMIT} allowed")


def test_plain_tcp_with_basp_bytes_is_closed_and_logged():
    """Without TLS the bytes are no ClientHello: the handshake fails at once."""
    t = time.monotonic()
    with socket.create_connection(("127.0.0.1", M.caf_port), timeout=5) as s:
        port = s.getsockname()[1]
        s.sendall(basp_header(1, ANNOUNCED))
        closed, got, _ = closed_within(s, 15)
        took = time.monotonic() - t
    assert closed, "a plain TCP peer was not closed"
    line = wait_refusal(port, "TLS handshake")
    print(f"     closed after {took:.2f}s, {got} bytes back; {line.split('CAF port: ', 1)[1]}",
          flush=True)
    assert f"127.0.0.1:{port}: TLS handshake:" in line, line  # no identity: none was shown
    assert took < HANDSHAKE_S - 1, f"closed only by the handshake deadline ({took:.1f}s)"
    # Whatever came back is a TLS alert, not BASP (a BASP header is 32 bytes).
    assert got < 32, got


def refused_tls_peer(ctx, what):
    """Connects with `ctx`, sends a BASP header should the handshake pass on
    the client's side, and expects a close without one byte of application
    data. Returns (the master's log line, the client's error)."""
    t = time.monotonic()
    raw = socket.create_connection(("127.0.0.1", M.caf_port), timeout=5)
    port = raw.getsockname()[1]
    try:
        s = ctx.wrap_socket(raw, server_hostname=None)
    except (ssl.SSLError, ConnectionError) as e:  # refused within the client's handshake
        raw.close()
        closed, got, error = True, 0, e
    else:
        with s:
            try:
                s.sendall(basp_header(1, 64))
            except (ssl.SSLError, ConnectionError):
                pass  # refused already
            closed, got, error = closed_within(s, 15)
    took = time.monotonic() - t
    assert closed, f"{what}: not closed"
    assert got == 0, f"{what}: {got} bytes of application data (CAF's handshake?) came back"
    assert took < HANDSHAKE_S - 1, f"{what}: closed only by the handshake deadline ({took:.1f}s)"
    line = wait_refusal(port, "TLS handshake")
    assert f"127.0.0.1:{port}: TLS handshake:" in line, line
    print(f"     {what}: closed after {took:.2f}s, client saw {error!r}; "
          f"{line.split('CAF port: ', 1)[1]}", flush=True)
    return line, error


def test_a_tls_client_without_a_certificate_is_refused():
    ca = os.path.join(cluster.home, "config", "tls", "ca.crt")
    line, error = refused_tls_peer(client_context(ca=ca), "no certificate")
    assert "certificate" in line.lower(), line
    assert isinstance(error, ssl.SSLError), error  # the master's alert: certificate required


def test_a_certificate_of_another_ca_is_refused():
    _, cert, key = foreign_certificate(certs + "/foreign", ATTACKER, "worker")
    # It trusts the master (it has our ca.crt); only its own certificate is foreign.
    ca = os.path.join(cluster.home, "config", "tls", "ca.crt")
    line, error = refused_tls_peer(client_context(cert, key, ca), "another CA")
    assert "certificate refused" in line, line
    assert ATTACKER not in line, line  # an unverified name is never shown as the peer's
    assert isinstance(error, ssl.SSLError), error


def test_a_silent_peer_is_closed_after_the_handshake_deadline():
    t = time.monotonic()
    with socket.create_connection(("127.0.0.1", M.caf_port), timeout=5) as s:
        port = s.getsockname()[1]
        closed, got, _ = closed_within(s, HANDSHAKE_S + 5)
    took = time.monotonic() - t
    assert closed, f"a silent peer is still connected after {took:.1f}s"
    assert got == 0, got
    assert HANDSHAKE_S - 1 <= took <= HANDSHAKE_S + 5, took
    line = wait_refusal(port, f"no TLS handshake within {HANDSHAKE_S} s")
    print(f"     closed after {took:.2f}s; {line.split('CAF port: ', 1)[1]}", flush=True)


def test_an_authenticated_peer_that_says_nothing_is_closed_too():
    """Past the TLS handshake the front's deadline is off; CAF's own
    connection timeout (cluster.connection_timeout_ms, 3 s by default) ends
    a peer that never sends its BASP handshake."""
    ca, cert, key = issued()
    t = time.monotonic()
    with tls_connect(client_context(cert, key, ca)) as s:
        closed, got, _ = closed_within(s, 15)
    took = time.monotonic() - t
    print(f"     closed after {took:.2f}s, {got} bytes of application data back", flush=True)
    assert closed, f"an authenticated silent peer is still connected after {took:.1f}s"
    assert M.running(), "the master died"


def test_no_refused_connection_is_left_open_on_the_master():
    """Each refused peer's socket and CAF's end of its socketpair are gone:
    the master's open descriptors are back where they were."""
    before = baseline.get("fds")
    assert before, "the first test did not run"
    now = wait_until(lambda: (lambda n: n if n <= before + 2 else None)(open_fds(M.pid)), 10,
                     f"the master's open descriptors to come back to {before}")
    print(f"     master's open descriptors: {before} before the attacks, {now} now", flush=True)


def test_the_cluster_still_works_afterwards():
    assert M.running(), "the master died"
    w = cluster.node("worker-late", slots=1)
    w.start(30)
    wait_until(lambda: any(s["node"] == w.node_id for s in cluster.workers_view().values()),
               30, "the late worker's slot on the master")
    job = cluster.submit("caf-port-after", tiny=True)
    rec = cluster.wait_record(job, lambda r: r.get("state") == "completed", 60, "completed")
    assert rec["node"] == w.node_id, rec
    # The endpoint in Redis keeps the public port.
    assert f"master endpoint 127.0.0.1:{M.caf_port} recorded" in M.node_log()
    # Nothing was refused on the worker's own link.
    assert not [l for l in M.node_log().splitlines()
                if "CAF port: closed the connection" in l and f"({w.node_id}, worker)" in l]


# A runner's timeout (SIGTERM) still stops every node and Redis.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
try:
    cluster.start()
    harness.run_tests([
        test_headers_announcing_4_gib_are_refused_and_memory_stays_flat,
        test_a_first_message_over_the_handshake_limit_is_refused,
        test_plain_tcp_with_basp_bytes_is_closed_and_logged,
        test_a_tls_client_without_a_certificate_is_refused,
        test_a_certificate_of_another_ca_is_refused,
        test_a_silent_peer_is_closed_after_the_handshake_deadline,
        test_an_authenticated_peer_that_says_nothing_is_closed_too,
        test_no_refused_connection_is_left_open_on_the_master,
        test_the_cluster_still_works_afterwards,
    ])
finally:
    cluster.cleanup()
    shutil.rmtree(certs, ignore_errors=True)
