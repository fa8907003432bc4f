"""The dashboard in a real browser: Debian's Chromium driven by
playwright-core (pinned in package.json / package-lock.json, installed with
`npm ci`). A real node runs a job that logs metrics through the SDK; the
page must show it appear, turn completed, and show its logs and charts; a
second job keeps TensorBoard event files, which the page downloads.
Then the same in -p mode against the real OpenID provider of tests/oidc:
login form, wrong password refused, the user's name, logout.
Screenshots go to $ATLAS_BROWSER_OUT (meson: build/meson-logs/browser)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import harness  # noqa: E402
from harness import Node, free_port, wait_until  # noqa: E402
from dashboard_jobs import submit  # noqa: E402

JOB = r'''
import struct, time, zlib, foundations

def png(width, height):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + bytes([40, 110, 220]) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))

foundations.log_params({"learning_rate": 0.01, "layers": {"hidden": 64}})
foundations.set_tag("browser")
for step in range(40):
    foundations.log_metric("loss", 2.0 / (step + 1))
    foundations.log_metric("accuracy", step / 40.0)
    print(f"step {step} loss {2.0 / (step + 1):.4f}", flush=True)
    time.sleep(0.1)
with open("curve.png", "wb") as f:
    f.write(png(48, 32))
foundations.save_artifact("curve.png", "curve")
print("training finished", flush=True)
'''

# Keeps a (stand-in) TensorBoard event file through set_tensorboard_logdir.
JOB_TB = r'''
import os, foundations
os.makedirs("tb/train", exist_ok=True)
with open("tb/train/events.out.tfevents.1.atlas", "wb") as f:
    f.write(b"event records")
foundations.set_tensorboard_logdir("tb")
for step in range(20):
    foundations.log_metric("loss", 1.0 / (step + 1))
'''


def submit_both(node, headers=None):
    """The two jobs' ids as dashboard.mjs takes them: "<job>,<tensorboard job>"."""
    return ",".join(submit(node, main, project="browser-demo", headers=headers)
                    for main in (JOB, JOB_TB))


OIDC_DIR = os.path.join(HERE, "..", "oidc")


def browser(deps, node, job_ids, out, *login):
    r = subprocess.run(["node", os.path.join(deps, "dashboard.mjs"), node.dashboard,
                        "browser-demo", job_ids, out, *login], capture_output=True, text=True,
                       timeout=240)
    print(r.stdout, end="")
    print(r.stderr, end="", file=sys.stderr)
    if r.returncode != 0:
        print(node.node_log())
    return r.returncode


def run_plain(deps, out):
    node = Node(slots=1).start()
    try:
        return browser(deps, node, submit_both(node), out)
    finally:
        node.cleanup()


def run_with_auth(deps, out):
    """-p mode: the tests/oidc provider over https with a certificate made now."""
    work = tempfile.mkdtemp(prefix="atlas-browser-auth-")
    provider = node = None
    try:
        # Its own copy, so that this never races auth_test's `npm ci` in tests/oidc.
        oidc = os.path.join(work, "oidc")
        os.makedirs(oidc)
        for name in ["package.json", "package-lock.json", "provider.mjs"]:
            shutil.copy(os.path.join(OIDC_DIR, name), oidc)
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=oidc, check=True,
                       timeout=300, capture_output=True)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                        "-keyout", f"{work}/tls-key.pem", "-out", f"{work}/tls-cert.pem",
                        "-days", "1", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, timeout=60, capture_output=True)
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                        "rsa_keygen_bits:2048", "-out", f"{work}/signing.pem"],
                       check=True, timeout=60, capture_output=True)
        port = free_port()
        log = open(f"{work}/provider.log", "wb")
        provider = subprocess.Popen(
            ["node", os.path.join(oidc, "provider.mjs"), "--port", str(port),
             "--cert", f"{work}/tls-cert.pem", "--key", f"{work}/tls-key.pem",
             "--signing-key", f"{work}/signing.pem", "--kid", "browser-key"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        issuer = f"https://127.0.0.1:{port}/realms/Atlas"
        wait_until(lambda: f"ready {issuer}" in open(f"{work}/provider.log").read(), 30,
                   "the OpenID provider to listen")
        node = Node(slots=1, atlas_config=f"auth:\n  issuer: {issuer}\n"
                                          f"  ca_file: {work}/tls-cert.pem\n")
        node.log = open(node.home + "/node.log", "ab")
        node.proc = subprocess.Popen([harness.SERVER, "start", "-p", "--foreground"],
                                     env=node.env, stdout=node.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        wait_until(node.healthy, 30, "atlas-server -p to serve")
        assert node.json("GET", "/healthz")[1]["auth"] is True
        status, raw = node.request("POST", "/api/v2beta/auth/login", json.dumps(
            {"username": "alice", "password": "alice-test-password"}),
            {"Content-Type": "application/json"})
        assert status == 200, (status, raw)
        bearer = {"Authorization": "Bearer " + json.loads(raw)["access_token"]}
        return browser(deps, node, submit_both(node, bearer), out, "alice", "alice-test-password")
    finally:
        if node:
            node.cleanup()
        if provider and provider.poll() is None:
            provider.send_signal(signal.SIGTERM)
            provider.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


def main():
    if not os.path.exists("/usr/bin/chromium"):
        print("chromium is not installed (scripts/install-deps.sh installs it)")
        return 1
    out = os.environ.get("ATLAS_BROWSER_OUT") or tempfile.mkdtemp(prefix="atlas-browser-")
    os.makedirs(out, exist_ok=True)
    for old in os.listdir(out):  # screenshots of an earlier run must not be read as this one's
        if old.endswith(".png"):
            os.remove(os.path.join(out, old))
    deps = tempfile.mkdtemp(prefix="atlas-browser-deps-")
    for name in ["package.json", "package-lock.json", "dashboard.mjs"]:
        shutil.copy(os.path.join(HERE, name), deps)
    r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=deps, capture_output=True,
                       text=True, timeout=300)
    if r.returncode != 0:
        print(r.stdout, r.stderr)
        return 1
    try:
        failed = run_plain(deps, out) != 0
        failed |= run_with_auth(deps, out) != 0
        print(f"screenshots: {out}")
        return 1 if failed else 0
    finally:
        shutil.rmtree(deps, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
