"""What foundations.submit() returns: the original's DeploymentWrapper,
answered by the scheduler's REST API."""

import logging
import sys
import time

from . import _http

_log = logging.getLogger("foundations")

# The original's mapping from the scheduler's status to get_job_status().
_SIMPLE_STATUS = {"queued": "queued", "pending": "queued", "running": "running",
                  "failed": "completed", "completed": "completed"}


class DeploymentWrapper:
    """A submitted job: its status, logs, metrics and parameters."""

    def __init__(self, job_id, scheduler_url, project_name, token="None"):
        self._job_id = job_id
        self._url = scheduler_url
        self._project = project_name
        self._token = token

    def __repr__(self):
        return f"<DeploymentWrapper job {self._job_id} on {self._url}>"

    def job_name(self):
        return self._job_id

    def project_name(self):
        return self._project

    def _record(self):
        status, raw = _http.request("GET", f"{self._url}/jobs/{_http.quote(self._job_id)}",
                                    token=self._token)
        if status != 200:
            return None
        import json
        return json.loads(raw)

    def get_true_job_status(self):
        """The scheduler's status: queued, pending, running, completed or failed
        (None when the scheduler does not know the job)."""
        rec = self._record()
        return rec.get("status") if rec else None

    def get_job_status(self):
        """"queued", "running" or "completed" (a failed job is completed too)."""
        return _SIMPLE_STATUS.get(self.get_true_job_status())

    def is_job_complete(self):
        return self.get_job_status() == "completed"

    def wait_for_deployment_to_complete(self, wait_seconds=5, log_output=True, timeout=None):
        """Waits until the job has finished (successfully or not), checking every
        `wait_seconds`; `timeout` (seconds, default none) raises TimeoutError."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.is_job_complete():
            if log_output:
                _log.info("waiting for job `%s` to finish", self._job_id)
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"job {self._job_id} did not finish within {timeout} s")
            time.sleep(wait_seconds)
        if log_output:
            _log.info("job `%s` completed", self._job_id)

    def get_job_logs(self):
        """The job's output so far ("" when there is none)."""
        rec = self._record()
        return (rec or {}).get("logs") or ""

    def stream_job_logs(self, strip_new_line=True):
        """Yields the job's output line by line while it runs (until it ends)."""
        url = f"{self._url}/api/v1/jobs/{_http.quote(self._job_id)}/logs?follow=1"
        import urllib.request
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {self._token}"})
        with urllib.request.urlopen(req, timeout=None) as r:
            for line in r:
                text = line.decode(errors="replace")
                yield text.rstrip("\n") if strip_new_line else text

    def get_job_details(self, wait_seconds=5):
        """The job as the dashboard shows it (parameters, metrics with their
        series, tags, artifacts), once it has finished."""
        self.wait_for_deployment_to_complete(wait_seconds=wait_seconds, log_output=False)
        return self._details()

    def _details(self):
        url = (f"{self._url}/api/v2beta/projects/{_http.quote(self._project)}/job_listing/"
               f"{_http.quote(self._job_id)}")
        return _http.call_json("GET", url, token=self._token, ok=(200,))

    def get_metric(self, metric_name, wait_seconds=5):
        """The value logged for `metric_name` once the job has finished: as in the
        original, the first value logged under that name; KeyError when none."""
        details = self.get_job_details(wait_seconds=wait_seconds)
        series = (details.get("series") or {}).get(metric_name)
        if series:
            return series[0][1]
        for m in details.get("output_metrics") or []:
            if m.get("name") == metric_name:
                value = m.get("value")  # a list when logged several times
                return value[0] if isinstance(value, list) and value else value
        raise KeyError(f"Metric '{metric_name}' does not exist.")

    def get_metric_series(self, metric_name, wait_seconds=5):
        """Every value logged for `metric_name`, in order (an Atlas addition)."""
        details = self.get_job_details(wait_seconds=wait_seconds)
        return [point[1] for point in (details.get("series") or {}).get(metric_name, [])]

    def get_param(self, param_name, wait_seconds=5):
        """The value of parameter `param_name` once the job has finished; KeyError when none."""
        details = self.get_job_details(wait_seconds=wait_seconds)
        for p in details.get("job_parameters") or []:
            if p.get("name") == param_name:
                return p.get("value")
        raise KeyError(f"Parameter '{param_name}' does not exist.")


def print_stream(deployment):
    """Prints the job's output as it comes (stream_job_logs=True)."""
    try:
        for line in deployment.stream_job_logs(strip_new_line=False):
            sys.stdout.write(line)
            sys.stdout.flush()
    except KeyboardInterrupt:
        pass
    except OSError as e:
        print(f"foundations: the log stream of job {deployment.job_name()} ended: {e}",
              file=sys.stderr)
