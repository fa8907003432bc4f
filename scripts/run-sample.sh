#!/usr/bin/env bash
# The main job: install what is needed, build, start a local single-node
# Atlas on its embedded defaults (node API :5000, gateway :5558, dashboard
# :5555, its own Redis on :5556, one slot) and run a sample project through it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD

bash scripts/install-deps.sh
if [ ! -d build/meson-private ]; then
  meson setup build >/dev/null
fi
echo "building (the first build takes a few minutes) ..."
ninja -C build atlas-server foundations atlas-ctl | grep -v -E '^\[[0-9]+/[0-9]+\] ' || true
[ -x build/atlas-server ] && [ -x build/foundations ] || { echo "build failed" >&2; exit 1; }

server="$root/build/atlas-server"
cli="$root/build/foundations"
home="${FOUNDATIONS_HOME:-$HOME/.foundations}"

if ! "$server" start; then
  echo "(is a node already running from $home? 'atlas-server stop' ends it)" >&2
  exit 1
fi

work=$(mktemp -d)
cd "$work"
"$cli" init sample >/dev/null
cat >> sample/main.py <<'PY'

import platform
import foundations  # the in-job SDK: the node puts it on PYTHONPATH

total = sum(i * i for i in range(1000))
foundations.log_params({"n": 1000, "model": {"layers": 2}})
for step in range(20):
    foundations.log_metric("loss", round(1.0 / (step + 1), 4))
foundations.set_tag("sample")
print(f"sample job ran on {platform.node()} with Python {platform.python_version()}: sum of squares = {total}")
PY
echo
echo "== foundations submit remote sample main.py"
"$cli" submit remote sample main.py
echo
echo "== foundations list remote"
"$cli" list remote
cat <<MSG

The node keeps running. Next:
  - logs of a job:     $cli get logs remote <job_id>
  - its artifacts:     $cli get job remote <job_id> --save_dir /tmp
  - the dashboard:     http://127.0.0.1:5555/   (project "sample": parameters, the loss chart, logs)
  - the API:           curl http://127.0.0.1:5000/completed_jobs
  - the live actors:   $root/build/atlas-ctl nodes   (also: slots, jobs, queue, actors, watch)
  - the node's log:    $home/nodes/127.0.0.1-5000/atlas-server.log
  - stop the node:     $server stop
MSG
