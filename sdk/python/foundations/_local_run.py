"""A plain `python main.py` recorded as a job, as the original Atlas did
when an execution config named default existed: the run starts as a
running job on the scheduler (POST /api/v1/local_runs), tracks through its
secret as any job does, and reports completed or failed when the process
exits. Its files stay on this machine: artifacts are not uploaded."""

import getpass
import json
import os
import sys
import uuid

from . import _config, _http
from ._common import warn

_ended = False
_failed = False


def _project_name():
    for key in ("FOUNDATIONS_PROJECT_NAME", "PROJECT_NAME"):
        if os.environ.get(key):
            return os.environ[key]
    path = os.path.join(os.getcwd(), "job.config.yaml")
    if os.path.isfile(path):
        try:
            name = _config.read_flat_yaml(path).get("project_name")
            if name:
                return str(name)
        except (OSError, ValueError):
            pass
    return os.path.basename(os.getcwd())


def _user():
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def start():
    """Starts recording this process as a local run: sets the job's
    environment (FOUNDATIONS_JOB_ID, ATLAS_JOB_SECRET, ATLAS_API_URL) and
    answers True, or warns why not and answers False."""
    try:
        url = _config.local_run_url()
    except ValueError as e:
        warn(f"an execution config 'default' exists, but this local run is not recorded: {e}")
        return False
    job_id = os.environ.get("FOUNDATIONS_JOB_ID") or str(uuid.uuid4())
    project = _project_name()
    body = {"job_id": job_id,
            "spec": {"command": [os.path.basename(sys.executable)] + sys.argv},
            "metadata": {"project_name": project, "username": _user()}}
    try:
        answer = _http.call_json("POST", url + "/api/v1/local_runs", body,
                                 token=_config.token(), ok=(201,), timeout=10)
    except (_http.HttpError, ValueError, KeyError, TypeError) as e:
        warn(f"this local run is not recorded: the scheduler at {url} did not take it: {e}")
        return False
    os.environ.update({"FOUNDATIONS_JOB_ID": answer["job_id"],
                       "ATLAS_JOB_SECRET": answer["secret"], "ATLAS_API_URL": url,
                       "FOUNDATIONS_PROJECT_NAME": project, "ATLAS_LOCAL_RUN": "1"})
    warn(f"recording this local run as job {answer['job_id']} in project {project} "
         f"on {url}")
    previous = sys.excepthook

    def on_uncaught(kind, value, tb):
        global _failed
        _failed = True
        previous(kind, value, tb)

    sys.excepthook = on_uncaught
    return True


def is_local_run():
    return os.environ.get("ATLAS_LOCAL_RUN") == "1"


def end():
    """At exit, after the last entries are sent: completed, or failed when an
    uncaught exception ended the script."""
    global _ended
    if _ended or not is_local_run():
        return
    _ended = True
    code = 1 if _failed else 0
    payload = {"state": "failed" if _failed else "completed", "return_code": code}
    if _failed:
        payload["reason"] = "an uncaught exception ended the script"
    url = (f"{os.environ['ATLAS_API_URL']}/api/v1/local_runs/"
           f"{_http.quote(os.environ['FOUNDATIONS_JOB_ID'])}/end")
    body = json.dumps(payload).encode()
    try:
        status, raw = _http.request("POST", url, body, {
            "Content-Type": "application/json",
            "x-atlas-job-secret": os.environ["ATLAS_JOB_SECRET"]}, None, 30)
        if status != 200:
            warn(f"could not record the end of this local run ({status}): {raw.decode(errors='replace')}")
    except _http.HttpError as e:
        warn(f"could not record the end of this local run: {e}")
