"""Files kept with a job: save_artifact, syncable directories and the
TensorBoard logdir. A job's working directory is archived as its artifacts
when it ends, so keeping a file means having it under that directory and
telling the node (an artifact entry) where."""

import os
import shutil
import time

from . import _local_run, _tracking
from ._common import job_dir, warn, warn_once

SYNCED_DIR = "atlas_synced"          # <job dir>/atlas_synced/<key>/...: syncable directories
TENSORBOARD_DIR = "atlas_tensorboard"  # <job dir>/atlas_tensorboard/...: TensorBoard event files

_saved_keys = set()


def safe_name(text):
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(text)).strip(".")
    return name or "artifact"


def _inside(path, base):
    rel = os.path.relpath(os.path.realpath(path), os.path.realpath(base))
    return not (rel == ".." or rel.startswith(".." + os.sep) or os.path.isabs(rel))


def _record_artifact(tracker, key, full, rel):
    tracker.add({"kind": "artifact", "key": key, "path": rel.replace(os.sep, "/"),
                 "size": os.path.getsize(full), "time": time.time()})


def _files_stay_local(call):
    """A local run's files stay on this machine (no node keeps them)."""
    if not _local_run.is_local_run():
        return False
    warn_once("local-files", f"{call}: a local run's files stay on this machine and are not "
              "uploaded (submit the job to keep them with its results)")
    return True


def save_artifact(filepath, key=None):
    """Keeps the file at `filepath` with the job's results, shown on the job's
    page under `key` (default: its file name). A file outside the job's
    directory is copied into it (atlas_artifacts/<key>/)."""
    tracker = _tracking.current()
    if tracker is None or _files_stay_local("save_artifact"):
        return
    if not os.path.isfile(filepath):
        warn(f"save_artifact: no file at {filepath!r}; nothing saved")
        return
    key = str(key) if key else os.path.basename(filepath)
    if key in _saved_keys:
        warn(f'Artifact "{key}" already exists - overwriting.')
    _saved_keys.add(key)
    base = os.path.realpath(job_dir())
    full = os.path.realpath(filepath)
    if _inside(full, base):
        rel = os.path.relpath(full, base)
    else:
        target_dir = os.path.join(base, "atlas_artifacts", safe_name(key))
        os.makedirs(target_dir, exist_ok=True)
        target = os.path.join(target_dir, os.path.basename(full))
        shutil.copyfile(full, target)
        rel = os.path.relpath(target, base)
    _record_artifact(tracker, key, full, rel)


def copy_tree(src, dst, newer_only=True):
    """Copies the regular files under `src` to `dst` (same layout); with
    newer_only, a file whose copy is as new is left alone. The copied
    (relative) paths."""
    copied = []
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, src)
        for name in sorted(filenames):
            source = os.path.join(dirpath, name)
            if not os.path.isfile(source) or os.path.islink(source):
                continue
            rel = name if rel_dir == "." else os.path.join(rel_dir, name)
            target = os.path.join(dst, rel)
            if newer_only and os.path.isfile(target) and \
                    os.stat(target).st_mtime >= os.stat(source).st_mtime:
                continue
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copy2(source, target)
            copied.append(rel)
    return copied


def _keep_tensorboard(logdir):
    """At exit: copies the logdir's files under <job dir>/atlas_tensorboard/
    and logs them as artifacts (tensorboard_<path>) and the tag
    tensorboard_logdir, so the dashboard and CLI find them."""
    tracker = _tracking.current()
    if tracker is None:
        return
    if not os.path.isdir(logdir):
        warn(f"set_tensorboard_logdir: {logdir} does not exist at exit; nothing kept")
        return
    base = os.path.realpath(job_dir())
    target = os.path.join(base, TENSORBOARD_DIR)
    if os.path.realpath(logdir) != os.path.realpath(target):
        copy_tree(logdir, target, newer_only=False)
    events = 0
    for dirpath, dirnames, filenames in os.walk(target):
        dirnames.sort()
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, base)
            if "tfevents" in name:
                events += 1
            _record_artifact(tracker, "tensorboard_" + safe_name(os.path.relpath(full, target)),
                             full, rel)
    tracker.add({"kind": "tag", "key": "tensorboard_logdir", "value": TENSORBOARD_DIR})
    if events == 0:
        warn(f"set_tensorboard_logdir: no TensorBoard event files (*tfevents*) in {logdir}")


def set_tensorboard_logdir(path):
    """Keeps the TensorBoard event files written to `path` with the job's
    artifacts (copied to atlas_tensorboard/ when the job exits) and tags the
    job tf=tf, as the original did."""
    from ._metrics import set_tag
    if _tracking.current() is None or _files_stay_local("set_tensorboard_logdir"):
        return
    logdir = os.path.abspath(path)
    _tracking.at_exit(lambda: _keep_tensorboard(logdir))
    set_tag("tf", "tf")
