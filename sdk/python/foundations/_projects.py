"""Project-level calls: get_metrics_for_all_jobs (the scheduler's job
listing as rows) and set_project_name."""

import datetime
import os

from . import _config, _http
from ._common import in_job, warn_once


def _base(scheduler_config):
    if scheduler_config:
        return _config.scheduler_url(scheduler_config)
    if in_job():
        return os.environ["ATLAS_API_URL"].rstrip("/")
    return _config.scheduler_url(_config.environment_name())


def _time_text(ts):
    if not ts:
        return None
    return datetime.datetime.fromtimestamp(ts).isoformat()


def job_rows(listing):
    """One dict per job of a job_listing answer: job_id, project_name, user,
    status, start_time, completed_time, then each parameter, each metric's
    latest value, and tag_<key> per tag (the original's columns)."""
    rows = []
    for job in listing.get("jobs") or []:
        row = {"job_id": job.get("job_id"), "project_name": job.get("project"),
               "user": job.get("user"), "status": job.get("status"),
               "start_time": _time_text(job.get("start_ts")),
               "completed_time": _time_text(job.get("completed_ts"))}
        for p in job.get("job_parameters") or []:
            row[p.get("name")] = p.get("value")
        for m in job.get("output_metrics") or []:
            value = m.get("value")  # a list when logged several times: the latest is last
            row[m.get("name")] = value[-1] if isinstance(value, list) and value else value
        for key, value in (job.get("tags") or {}).items():
            row["tag_" + key] = value
        rows.append(row)
    return rows


def get_metrics_for_all_jobs(project_name, include_input_metrics=False, scheduler_config=None):
    """Metrics, parameters and tags of every job of `project_name`: a pandas
    DataFrame when pandas is importable, else a list of dicts. Asks the node's
    API inside a job, else the scheduler of `scheduler_config` (default
    "scheduler"). ValueError when the project does not exist.
    include_input_metrics: accepted for old code; the original's extra "input
    metrics" were the arguments of its stages, which jobs here do not have
    (parameters are always included)."""
    url = f"{_base(scheduler_config)}/api/v2beta/projects/{_http.quote(project_name)}/job_listing"
    status, raw = _http.request("GET", url, token=_config.token())
    if status == 404:
        raise ValueError(f"Project `{project_name}` does not exist!")
    if status != 200:
        raise _http.HttpError(status, _http._message(raw))
    import json
    rows = job_rows(json.loads(raw))
    try:
        import pandas
    except ImportError:
        return rows
    return pandas.DataFrame(rows)


def set_project_name(project_name="default"):
    """Kept for old code: the project is chosen at submission (submit's
    project_name, job.config.yaml or the directory's name), not by the job."""
    current = os.environ.get("FOUNDATIONS_PROJECT_NAME")
    warn_once("set_project_name",
              f"set_project_name('{project_name}') has no effect: a job's project is set when it "
              "is submitted (project_name= of foundations.submit, job.config.yaml or "
              f"--project-name){'; this job is in ' + repr(current) if current else ''}")
