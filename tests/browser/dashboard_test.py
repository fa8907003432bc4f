"""The dashboard in a real browser: Debian's Chromium driven by
playwright-core (pinned in package.json / package-lock.json, installed with
`npm ci`). A real node runs a job that logs metrics through the SDK; the
page must show it appear, turn completed, and show its logs and charts.
Screenshots go to $ATLAS_BROWSER_OUT (meson: build/meson-logs/browser)."""

import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from harness import Node  # noqa: E402
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


def main():
    if not os.path.exists("/usr/bin/chromium"):
        print("chromium is not installed (scripts/install-deps.sh installs it)")
        return 1
    out = os.environ.get("ATLAS_BROWSER_OUT") or tempfile.mkdtemp(prefix="atlas-browser-")
    os.makedirs(out, exist_ok=True)
    deps = tempfile.mkdtemp(prefix="atlas-browser-deps-")
    for name in ["package.json", "package-lock.json", "dashboard.mjs"]:
        shutil.copy(os.path.join(HERE, name), deps)
    r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=deps, capture_output=True,
                       text=True, timeout=300)
    if r.returncode != 0:
        print(r.stdout, r.stderr)
        return 1
    node = Node(slots=1).start()
    try:
        job_id = submit(node, JOB, project="browser-demo")
        r = subprocess.run(["node", os.path.join(deps, "dashboard.mjs"), node.dashboard,
                            "browser-demo", job_id, out], capture_output=True, text=True,
                           timeout=240)
        print(r.stdout, end="")
        print(r.stderr, end="", file=sys.stderr)
        if r.returncode != 0:
            print(node.node_log())
        print(f"screenshots: {out}")
        return r.returncode
    finally:
        node.cleanup()
        shutil.rmtree(deps, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
