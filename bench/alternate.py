#!/usr/bin/env python3
"""Old binary against new, side by side: runs one benchmark driver
alternately with each atlas-server (old, new, old, new, ...) so that the
machine's drift hits both alike, then prints each figure's median for both
and the ratio new/old.

    bench/alternate.py --old OLD/atlas-server --new NEW/atlas-server \\
        --rounds 3 throughput --jobs 1000
    bench/alternate.py --old ... --new ... control_plane --nodes 10 --jobs 20000

The driver is throughput.py or control_plane.py (both write --json)."""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def one_run(driver, server, args):
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    env = dict(os.environ, ATLAS_SERVER=server, PYTHONUNBUFFERED="1")
    cmd = [sys.executable, os.path.join(HERE, driver + ".py"), *args, "--json", out]
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    with open(out) as f:
        figures = json.load(f)
    os.unlink(out)
    return {k: v for k, v in figures.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--old", required=True, help="the old atlas-server")
    ap.add_argument("--new", required=True, help="the new atlas-server")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("driver", choices=["throughput", "control_plane"])
    ap.add_argument("args", nargs=argparse.REMAINDER, help="the driver's own arguments")
    a = ap.parse_args()
    runs = {"old": [], "new": []}
    for i in range(a.rounds):
        for name in ("old", "new"):
            runs[name].append(one_run(a.driver, getattr(a, name), a.args))
            print(f"round {i + 1}/{a.rounds}: {name} done", file=sys.stderr)
    print(f"{a.driver} {' '.join(a.args)}: median of {a.rounds} alternating runs each")
    print(f"{'figure':<32} {'old':>12} {'new':>12} {'new/old':>8}")
    for key in runs["old"][0]:
        if not all(key in r for r in runs["old"] + runs["new"]):
            continue
        old = statistics.median(r[key] for r in runs["old"])
        new = statistics.median(r[key] for r in runs["new"])
        ratio = f"{new / old:.3f}" if old else "-"
        print(f"{key:<32} {old:>12.3f} {new:>12.3f} {ratio:>8}")


if __name__ == "__main__":
    main()
