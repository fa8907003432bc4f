#!/usr/bin/env python3
"""The layering of the tree, checked on every run of the test command:

    messages  <-  adapters  <-  library  <-  actors  <-  runtime (programs)

- messages/ includes only messages/;
- adapters/ includes only adapters/ and messages/;
- library/ includes only library/, adapters/ and messages/;
- actors/ includes no runtime/;
- actors/policy/ (decisions in plain C++) includes no CAF header and no actor
  (but those listed in KNOWN, empty now: an include not in it fails, and so
  does an entry no file needs any more);
- runtime/cli/ (the `foundations` CLI) includes no actor and no CAF header;
- nothing outside runtime/ includes the programs' wiring (runtime/cli/,
  runtime/ctl/, runtime/sim/, node_runtime and its parts, server_main);
- benchmark code (bench/) is wired in by the programs only, and includes
  only adapters/ and messages/ (besides itself).

Prints one line per finding and exits 1 when there is any. With --graph it
prints the picture instead: how many include lines each layer has into each
layer below it (a DOT graph with --dot), so that anyone can see that every
arrow points down."""

import os
import re
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')

KNOWN = set()

PROGRAMS = ("runtime/cli/", "runtime/ctl/", "runtime/sim/", "runtime/node_", "runtime/server_main")


def sources(folder):
    for base, _, names in os.walk(os.path.join(ROOT, folder)):
        for name in sorted(names):
            if name.endswith((".cpp", ".hpp")):
                path = os.path.join(base, name)
                yield os.path.relpath(path, ROOT), path


def includes(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = INCLUDE.match(line)
            if m:
                yield m.group(1) == "<", m.group(2)


LAYERS = ("runtime", "bench", "actors/gateway", "actors/dashboard", "actors/policy", "actors",
          "library", "adapters", "messages")


def layer_of(path):
    return next((l for l in LAYERS if path.startswith(l + "/")), None)


def graph(dot):
    edges = {}
    for folder in ("messages", "adapters", "library", "actors", "runtime", "bench"):
        for rel, path in sources(folder):
            for system, inc in includes(path):
                here, there = layer_of(rel), layer_of(inc)
                if not system and here and there and here != there:
                    edges[(here, there)] = edges.get((here, there), 0) + 1
    if dot:
        print("digraph includes {\n  rankdir=TB;")
        for (a, b), n in sorted(edges.items()):
            print(f'  "{a}" -> "{b}" [label="{n}"];')
        print("}")
        return 0
    for a in LAYERS:
        outs = [f"{b} {edges[(a, b)]}" for b in LAYERS if (a, b) in edges]
        if outs:
            print(f"{a:<17} -> " + ", ".join(outs))
    return 0


def main():
    findings = []
    seen_known = set()

    def bad(rel, inc, why):
        findings.append(f"{rel}: includes {inc}: {why}")

    for folder in ("messages", "adapters", "library", "actors", "runtime", "bench"):
        for rel, path in sources(folder):
            for system, inc in includes(path):
                ours = not system and "/" in inc
                if folder == "messages" and ours and not inc.startswith("messages/"):
                    bad(rel, inc, "messages/ includes only messages/")
                if folder == "adapters" and ours and not inc.startswith(("adapters/", "messages/")):
                    bad(rel, inc, "adapters/ includes only adapters/ and messages/")
                if folder == "library" and ours and not inc.startswith(
                        ("library/", "adapters/", "messages/")):
                    bad(rel, inc, "library/ includes only library/, adapters/ and messages/")
                if folder == "actors" and ours and inc.startswith("runtime/"):
                    bad(rel, inc, "actors/ includes no runtime/ (the programs' wiring)")
                if rel.startswith("actors/policy/") and system and inc.startswith("caf/"):
                    bad(rel, inc, "a policy decides without an actor system")
                if rel.startswith("runtime/cli/") and (inc.startswith("actors/") or inc.startswith("caf/")):
                    bad(rel, inc, "the foundations CLI needs no actor")
                if folder == "bench" and ours and not inc.startswith(("bench/", "adapters/", "messages/")):
                    bad(rel, inc, "benchmark code includes only bench/, adapters/ and messages/")
                if folder not in ("runtime", "bench") and ours and inc.startswith("bench/"):
                    bad(rel, inc, "benchmark code is wired in by the programs only")
                if not rel.startswith("runtime/") and ours and inc.startswith(PROGRAMS):
                    bad(rel, inc, "the programs' wiring is above everything else")
                if (rel.startswith("actors/policy/") and ours and inc.startswith("actors/")
                        and not inc.startswith("actors/policy/")):
                    if (rel, inc) in KNOWN:
                        seen_known.add((rel, inc))
                    else:
                        bad(rel, inc, "a policy includes an actor's file (not in KNOWN)")
    for rel, inc in sorted(KNOWN - seen_known):
        findings.append(f"{rel}: no longer includes {inc}: take it out of KNOWN")
    for line in findings:
        print(line)
    print(f"layout: {len(findings)} finding(s); {len(seen_known)} known include(s) left to move")
    return 1 if findings else 0


if __name__ == "__main__":
    if "--graph" in sys.argv or "--dot" in sys.argv:
        sys.exit(graph("--dot" in sys.argv))
    sys.exit(main())
