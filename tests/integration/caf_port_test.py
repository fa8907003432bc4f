"""The master's public CAF port against a peer that lies about sizes (issue 9,
hardening finding 2): CAF 0.17 reserves the payload a BASP header announces
before it checks anything, so 12 connections each sending one 32-byte header
announcing ~4 GiB took a fresh master from 13 MiB to 912 MiB. The front on
the CAF port (adapters/caf_front) must refuse such headers, close those
connections, log the peer, keep the master's memory flat, and leave the
cluster working: a worker that joins afterwards runs a job.

Run against an atlas-server without the front (ATLAS_SERVER=...), the RSS
check fails."""

import signal
import socket
import struct
import sys
import time

import harness
from harness import wait_until
from cluster_harness import Cluster

ATTACKERS = 12
ANNOUNCED = 0xFFFFFFFF  # the most a BASP header can announce: 4 GiB - 1
RSS_BOUND_MIB = 48      # growth of the master allowed over the attack

cluster = Cluster(workers=0, slots=1)
M = cluster.master


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


def closed_within(sock, seconds):
    """True when the peer closes (EOF or reset) within `seconds`; what it
    sent before (CAF's server handshake) is read and dropped."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            if not sock.recv(65536):
                return True
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
    return False


def test_headers_announcing_4_gib_are_refused_and_memory_stays_flat():
    time.sleep(1)  # the master settles after start
    before = status_mib(M.pid, "VmRSS")
    socks = []
    try:
        for _ in range(ATTACKERS):
            s = socket.create_connection(("127.0.0.1", M.caf_port), timeout=5)
            socks.append(s)
            # 1: client_handshake, with source and destination 0, which
            # CAF 0.17 takes as valid and reserves the payload for.
            s.sendall(basp_header(1, ANNOUNCED))
        not_closed = [i for i, s in enumerate(socks) if not closed_within(s, 10)]
        during = status_mib(M.pid, "VmRSS")
    finally:
        for s in socks:
            s.close()
    time.sleep(1)
    after = status_mib(M.pid, "VmRSS")
    peak = status_mib(M.pid, "VmHWM")
    print(f"master RSS {before:.1f} MiB before, {during:.1f} during, {after:.1f} after, "
          f"peak {peak:.1f}", flush=True)
    assert not not_closed, f"connections {not_closed} were not closed by the master"
    assert during - before < RSS_BOUND_MIB, (before, during)
    assert after - before < RSS_BOUND_MIB, (before, after)
    assert peak - before < RSS_BOUND_MIB, (before, peak)
    assert M.running(), "the master died"
    log = M.node_log()
    refused = [line for line in log.splitlines()
               if "CAF port: closed the connection from 127.0.0.1:" in line
               and f"announced {ANNOUNCED} bytes" in line]
    assert len(refused) == ATTACKERS, log[-3000:]


def test_a_first_message_over_the_handshake_limit_is_refused():
    with socket.create_connection(("127.0.0.1", M.caf_port), timeout=5) as s:
        s.sendall(basp_header(1, 1 << 20))  # a client handshake of 1 MiB
        assert closed_within(s, 10), "not closed"
    wait_until(lambda: "its first BASP message (operation 1) announced 1048576 bytes"
               in M.node_log(), 10, "the refusal in the master's log")


def test_the_cluster_still_works_afterwards():
    w = cluster.node("worker-late", slots=1)
    w.start(30)
    wait_until(lambda: any(s["node"] == w.node_id for s in cluster.workers_view().values()),
               30, "the late worker's slot on the master")
    job = cluster.submit("caf-port-after", tiny=True)
    rec = cluster.wait_record(job, lambda r: r.get("state") == "completed", 60, "completed")
    assert rec["node"] == w.node_id, rec
    # The endpoint in Redis keeps the public port.
    assert f"master endpoint 127.0.0.1:{M.caf_port} recorded" in M.node_log()


# A runner's timeout (SIGTERM) still stops every node and Redis.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
try:
    cluster.start()
    harness.run_tests([
        test_headers_announcing_4_gib_are_refused_and_memory_stays_flat,
        test_a_first_message_over_the_handshake_limit_is_refused,
        test_the_cluster_still_works_afterwards,
    ])
finally:
    cluster.cleanup()
