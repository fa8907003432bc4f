"""The in-job SDK of Atlas: what a job logs for the dashboard.

    import foundations
    foundations.log_param("learning_rate", 0.01)
    foundations.log_metric("loss", 0.25)      # repeated calls make a series
    foundations.set_tag("baseline")
    foundations.save_artifact("plot.png")
    params = foundations.load_parameters()

Standard library only (Python 3.8+). The node that runs the job puts this
package on PYTHONPATH and passes FOUNDATIONS_JOB_ID, ATLAS_JOB_SECRET and
ATLAS_API_URL in the environment. Calls are buffered and sent in batches by
a background thread (and flushed when the job exits), so logging in a tight
loop costs microseconds. Outside a job every call does nothing, after one
warning.
"""

import atexit
import json
import math
import numbers
import os
import shutil
import sys
import threading
import time
import urllib.error
import urllib.request

__all__ = ["log_metric", "log_param", "log_params", "set_tag", "save_artifact",
           "load_parameters"]

_BATCH_MAX = 2000        # entries per request (well under the node's body limit)
_FLUSH_INTERVAL_S = 0.5  # how long an entry may wait in the buffer
_SEND_TRIES = 4
_PARAMETERS_FILE = "foundations_job_parameters.json"


def _warn(message):
    print("foundations: " + message, file=sys.stderr, flush=True)


class _Tracker:
    """Buffers entries and sends them from one background thread."""

    def __init__(self, job_id, secret, api_url):
        self.url = f"{api_url.rstrip('/')}/api/v1/jobs/{job_id}/tracking"
        self.secret = secret
        self.cond = threading.Condition()
        self.buffer = []
        self.steps = {}
        self.stopping = False
        self.refused = False
        self.thread = None

    def add(self, entry):
        with self.cond:
            self.buffer.append(entry)
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="foundations-tracker",
                                               daemon=True)
                self.thread.start()
                atexit.register(self.close)
            if len(self.buffer) >= _BATCH_MAX:
                self.cond.notify()

    def next_step(self, key):
        with self.cond:
            step = self.steps.get(key, 0)
            self.steps[key] = step + 1
            return step

    def _take(self):
        batch = self.buffer[:_BATCH_MAX]
        del self.buffer[:_BATCH_MAX]
        return batch

    def _run(self):
        while True:
            with self.cond:
                if not self.buffer and not self.stopping:
                    self.cond.wait(_FLUSH_INTERVAL_S)
                if self.stopping:
                    return  # close() sends the rest
                batch = self._take()
            if batch:
                self._send(batch)

    def _send(self, batch):
        if self.refused:
            return
        body = json.dumps({"entries": batch}, allow_nan=False).encode()
        request = urllib.request.Request(self.url, data=body, method="POST", headers={
            "Content-Type": "application/json", "x-atlas-job-secret": self.secret})
        delay = 0.2
        for attempt in range(_SEND_TRIES):
            try:
                with urllib.request.urlopen(request, timeout=10) as r:
                    r.read()
                return
            except urllib.error.HTTPError as e:
                detail = e.read().decode(errors="replace").strip()
                if e.code in (400, 413):
                    _warn(f"the node refused {len(batch)} tracking entries: {detail}")
                    return
                if e.code in (401, 403, 404):
                    _warn(f"the node refused tracking for this job ({e.code}): {detail}; "
                          "further calls are dropped")
                    self.refused = True
                    return
                error = f"HTTP {e.code}: {detail}"
            except (OSError, ValueError) as e:
                error = str(e)
            if attempt + 1 < _SEND_TRIES:
                time.sleep(delay)
                delay *= 2
        _warn(f"could not send {len(batch)} tracking entries to {self.url}: {error}")

    def close(self):
        """Stops the thread and sends what is left (at exit, or by flush())."""
        with self.cond:
            self.stopping = True
            self.cond.notify()
            thread = self.thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30)
        while True:
            with self.cond:
                batch = self._take()
            if not batch:
                break
            self._send(batch)
        with self.cond:
            self.stopping = False
            self.thread = None


_tracker = None
_warned_outside = False


def _current():
    """The job's tracker; None (after one warning) outside a job."""
    global _tracker, _warned_outside
    if _tracker is not None:
        return _tracker
    job_id = os.environ.get("FOUNDATIONS_JOB_ID")
    secret = os.environ.get("ATLAS_JOB_SECRET")
    api = os.environ.get("ATLAS_API_URL")
    if job_id and secret and api:
        _tracker = _Tracker(job_id, secret, api)
        return _tracker
    if not _warned_outside:
        _warned_outside = True
        _warn("not running inside an Atlas job: metrics, parameters, tags and artifacts "
              "are not recorded")
    return None


def _json_value(value):
    """A JSON-safe copy of `value` (non-finite numbers and unknown types as text)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return _json_value(float(value))
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    return str(value)


def log_metric(key, value):
    """Records `value` (a number or a string) for metric `key`; repeated calls
    make a series (steps 0, 1, 2, ...)."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, str)):
        raise TypeError(f"metric {key!r}: value must be a number or a string, "
                        f"not {type(value).__name__}")
    tracker = _current()
    if tracker is None:
        return
    key = str(key)
    tracker.add({"kind": "metric", "key": key, "value": _json_value(value),
                 "step": tracker.next_step(key), "time": time.time()})


def log_param(key, value):
    """Records one parameter of the job (any JSON-like value)."""
    tracker = _current()
    if tracker is not None:
        tracker.add({"kind": "param", "key": str(key), "value": _json_value(value)})


def _flatten(params, prefix=""):
    out = {}
    for key, value in params.items():
        name = f"{prefix}_{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            out.update(_flatten(value, name))
        else:
            out[name] = value
    return out


def log_params(params):
    """Records every parameter of a dict; nested dicts are flattened as
    {"a": {"b": 1}} -> a_b = 1."""
    if not isinstance(params, dict):
        raise TypeError("log_params takes a dict")
    for key, value in _flatten(params).items():
        log_param(key, value)


def set_tag(key, value=""):
    """Tags the job (a bare tag when `value` is omitted)."""
    tracker = _current()
    if tracker is not None:
        tracker.add({"kind": "tag", "key": str(key), "value": str(value)})


def _job_dir():
    return os.environ.get("FOUNDATIONS_WORKING_DIR") or os.getcwd()


def save_artifact(path, key=None):
    """Keeps the file at `path` with the job's results, shown on the job's
    page under `key` (default: its file name). A file outside the job's
    directory is copied into it (atlas_artifacts/)."""
    tracker = _current()
    if tracker is None:
        return
    if not os.path.isfile(path):
        _warn(f"save_artifact: no file at {path!r}; nothing saved")
        return
    key = str(key) if key else os.path.basename(path)
    base = os.path.realpath(_job_dir())
    full = os.path.realpath(path)
    rel = os.path.relpath(full, base)
    if rel.startswith("..") or os.path.isabs(rel):
        safe_key = "".join(c if c.isalnum() or c in "-_." else "_" for c in key).strip(".")
        target_dir = os.path.join(base, "atlas_artifacts", safe_key or "artifact")
        os.makedirs(target_dir, exist_ok=True)
        target = os.path.join(target_dir, os.path.basename(full))
        shutil.copyfile(full, target)
        rel = os.path.relpath(target, base)
    tracker.add({"kind": "artifact", "key": key, "path": rel,
                 "size": os.path.getsize(full), "time": time.time()})


def load_parameters(log_parameters=True):
    """The parameters the job was submitted with (foundations_job_parameters.json
    in the job's directory; {} when there is none). Like the original, they
    are also logged as the job's parameters."""
    candidates = [os.path.join(_job_dir(), _PARAMETERS_FILE), _PARAMETERS_FILE]
    for candidate in candidates:
        try:
            with open(candidate) as f:
                params = json.load(f)
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as e:
            raise ValueError(f"cannot read {candidate}: {e}") from e
        if not isinstance(params, dict):
            raise ValueError(f"{candidate} must hold a JSON object")
        if log_parameters and params and _current() is not None:
            log_params(params)
        return params
    return {}


def flush():
    """Sends everything buffered now (it is also sent at exit)."""
    if _tracker is not None:
        _tracker.close()
