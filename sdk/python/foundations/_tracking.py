"""Sends what a job logs to its node: entries are buffered and posted in
batches by one background thread, and flushed when the process exits."""

import atexit
import json
import os
import threading
import time
import urllib.error
import urllib.request

from ._common import warn, warn_once

_BATCH_MAX = 2000        # entries per request (well under the node's body limit)
_FLUSH_INTERVAL_S = 0.5  # how long an entry may wait in the buffer
_SEND_TRIES = 4


class Tracker:
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
                    warn(f"the node refused {len(batch)} tracking entries: {detail}")
                    return
                if e.code in (401, 403, 404):
                    warn(f"the node refused tracking for this job ({e.code}): {detail}; "
                         "further calls are dropped")
                    self.refused = True
                    return
                error = f"HTTP {e.code}: {detail}"
            except (OSError, ValueError) as e:
                error = str(e)
            if attempt + 1 < _SEND_TRIES:
                time.sleep(delay)
                delay *= 2
        warn(f"could not send {len(batch)} tracking entries to {self.url}: {error}")

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
_exit_hooks = []


def _local_run_message():
    """Why nothing is recorded outside a job."""
    from ._config import execution_config_present
    if execution_config_present():
        return ("this local run is not recorded (see the warning above); metrics, "
                "parameters, tags and artifacts are dropped")
    return ("not running inside an Atlas job: metrics, parameters, tags and artifacts "
            "are not recorded (an execution config named default, "
            "$FOUNDATIONS_HOME/config/execution/default.config.yaml, records a local run)")


def current():
    """The job's tracker; None (after one warning) outside a job."""
    global _tracker
    if _tracker is not None:
        return _tracker
    job_id = os.environ.get("FOUNDATIONS_JOB_ID")
    secret = os.environ.get("ATLAS_JOB_SECRET")
    api = os.environ.get("ATLAS_API_URL")
    if job_id and secret and api:
        _tracker = Tracker(job_id, secret, api)
        return _tracker
    warn_once("outside", _local_run_message())
    return None


def at_exit(hook):
    """Runs `hook()` when the process exits, before the last entries are sent
    (so what it logs is sent too)."""
    _exit_hooks.append(hook)


def _exit():
    while _exit_hooks:
        hook = _exit_hooks.pop(0)
        try:
            hook()
        except Exception as e:  # noqa: BLE001 - the job's own exit must not fail
            warn(f"at exit: {e}")
    flush()
    from . import _local_run
    _local_run.end()  # after its last entries: its secret ends with it


# Registered at import, so it runs after the job's own atexit handlers
# (they run last-registered first) and sends what they logged.
atexit.register(_exit)


def flush():
    """Sends everything buffered now (it is also sent at exit)."""
    if _tracker is not None:
        _tracker.close()
