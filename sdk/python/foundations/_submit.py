"""foundations.submit(): what `foundations submit <env> <dir> <command>`
does, from Python. The directory is packed deterministically and uploaded
to the scheduler's bundle store only when the store does not hold that
content yet, so a sweep of N trials uploads its code once."""

import json
import os
import shlex
import tempfile
import uuid

from . import _bundle, _config, _http
from ._common import warn, warn_once
from ._deployment import DeploymentWrapper, print_stream

MAX_PARAMS_BYTES = 64 * 1024  # the scheduler's limit on "params"

# Set by set_job_resources(): defaults for later submissions from this process.
_resources = {}


def set_job_resources(num_gpus=0, ram=None):
    """Resources for the jobs this process submits next (submit()'s num_gpus
    and ram, and job.config.yaml, still win). ram: GB, > 0 or None."""
    if ram is not None and ram <= 0:
        raise ValueError("Invalid RAM quantity. Please provide a RAM quantity greater than zero.")
    if not isinstance(num_gpus, int) or isinstance(num_gpus, bool) or num_gpus < 0:
        raise ValueError("Invalid GPU quantity. Please provide a non-negative integer GPU quantity.")
    _resources.clear()
    _resources.update({"num_gpus": num_gpus, "ram": ram})


def _job_config(directory):
    path = os.path.join(directory, "job.config.yaml")
    if not os.path.isfile(path):
        return {}
    try:
        config = _config.read_flat_yaml(path)
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: {e}") from e
    # Without PyYAML only `key: value` lines are read: say what was skipped.
    skipped = [k for k in ("params", "worker") if k in config and config[k] is None]
    if skipped:
        warn_once("job_config_nested", f"{path}: {', '.join(skipped)} need PyYAML (pip install pyyaml) "
                  "to be read; ignored")
    return config


def _words(value):
    return shlex.split(value) if isinstance(value, str) else [str(w) for w in value]


def _spec(command, entrypoint, job_config):
    """The job's spec as `foundations submit` builds it: the command's words,
    else job.config.yaml's worker args/command, else main.py; the entrypoint
    (the program run, default python) from the argument, the file's
    entrypoint or its worker's; the worker's image, working_dir, environment
    and volumes; log_level as FOUNDATIONS_LOG_LEVEL."""
    worker = job_config.get("worker") or {}
    if not isinstance(worker, dict):
        raise ValueError("job.config.yaml: worker: expected a mapping (PyYAML reads nested settings)")
    words = command or worker.get("args") or worker.get("command") or ["main.py"]
    spec = {"command": _words(words), "environment": {}}
    program = entrypoint or job_config.get("entrypoint") or worker.get("entrypoint")
    if program:
        spec["entrypoint"] = _words(program)
    for key in ("image", "working_dir", "volumes"):
        if worker.get(key):
            spec[key] = worker[key]
    spec["environment"] = {str(k): "" if v is None else str(v)
                           for k, v in (worker.get("environment") or {}).items()}
    if job_config.get("log_level") and "FOUNDATIONS_LOG_LEVEL" not in spec["environment"]:
        spec["environment"]["FOUNDATIONS_LOG_LEVEL"] = str(job_config["log_level"]).upper()
    return spec


def parse_time_limit(value):
    """Seconds from 120, "90s", "30m", "2h", "1d" or "[H:]MM:SS" (as --time)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        text = str(value).strip().lower()
        try:
            if ":" in text:
                seconds = 0.0
                for part in text.split(":"):
                    seconds = seconds * 60 + float(part)
            else:
                unit = {"s": 1, "m": 60, "h": 3600, "d": 86400}.get(text[-1:], None)
                seconds = float(text[:-1]) * unit if unit else float(text)
        except ValueError:
            raise ValueError(f"time_limit: expected seconds (120), 90s, 30m, 2h or [H:]MM:SS, "
                             f"got '{value}'") from None
    if not seconds > 0:
        raise ValueError(f"time_limit: must be > 0, got '{value}'")
    return seconds


def _params_json(params):
    if params is None:
        return None
    if not isinstance(params, dict):
        raise TypeError("params must be a dict (written to foundations_job_parameters.json)")
    text = json.dumps(params)
    if len(text.encode()) > MAX_PARAMS_BYTES:
        raise ValueError(f"params are {len(text.encode())} bytes as JSON; at most "
                         f"{MAX_PARAMS_BYTES} are accepted")
    return json.loads(text)  # JSON-safe copy


class _BundleStoreMissing(Exception):
    pass


def _ensure_bundle(url, token, path, digest):
    """Uploads the bundle unless the scheduler's store already holds it."""
    status, _ = _http.request("HEAD", f"{url}/api/v1/bundles/{digest}", token=token)
    if status == 200:
        return False
    status, raw = _http.upload_file(f"{url}/api/v1/bundles", "job_bundle", path,
                                    digest + ".tgz", token)
    if status in (404, 405) and b"no route" in raw:
        raise _BundleStoreMissing()
    if status != 200:
        raise _http.HttpError(status, _http._message(raw))
    answer = json.loads(raw)
    if answer.get("bundle") != digest:
        raise RuntimeError(f"the bundle store computed {answer.get('bundle')} for a bundle whose "
                           f"SHA-256 is {digest}")
    return True


# directory -> (fingerprint, sha256) of its last bundle: a sweep packs its
# directory once while nothing in it changes.
_packed = {}


def _upload_bundle(url, token, directory, job_id):
    """The SHA-256 of the directory's bundle, uploaded to the store unless it
    holds it already; None when the scheduler has no store (then the bundle
    was uploaded for this job the old way)."""
    fingerprint = _bundle.signature(directory)
    known = _packed.get(directory)
    if known and known[0] == fingerprint:
        status, _ = _http.request("HEAD", f"{url}/api/v1/bundles/{known[1]}", token=token)
        if status == 200:
            return known[1]
    fd, path = tempfile.mkstemp(prefix="atlas-bundle-", suffix=".tgz")
    os.close(fd)
    try:
        digest = _bundle.create_bundle(directory, path)
        try:
            _ensure_bundle(url, token, path, digest)
        except _BundleStoreMissing:  # an older scheduler: upload the bundle for this job
            status, raw = _http.upload_file(f"{url}/job_bundle", "job_bundle", path,
                                            job_id + ".tgz", token)
            if status != 200:
                raise _http.HttpError(status, _http._message(raw))
            return None
        _packed[directory] = (fingerprint, digest)
        return digest
    finally:
        os.unlink(path)


def submit(scheduler_config=None, job_directory=None, project_name=None, entrypoint=None,
           params=None, ram=None, num_gpus=None, stream_job_logs=None, command=None,
           time_limit=None, priority=None, cpus=None, sweep_id=None):
    """Submits a job like `foundations submit` and returns its DeploymentWrapper.

    scheduler_config: the environment, submission/<name>.config.yaml under
    $FOUNDATIONS_HOME/config (default "scheduler"); job_directory: what is packed
    (default: the current directory); command: the command line (list or string,
    default main.py); entrypoint: the program that runs it (default python);
    params: a dict the job reads with load_parameters(); ram in GB; num_gpus;
    stream_job_logs: print the job's output until it ends. Atlas additions:
    time_limit (seconds), priority, cpus, sweep_id."""
    env = _config.environment_name(scheduler_config)
    url = _config.scheduler_url(env)
    token = _config.token()
    directory = os.path.abspath(job_directory or os.getcwd())
    if not os.path.isdir(directory):
        raise ValueError(f"{directory} is not a directory")
    job_config = _job_config(directory)
    spec = _spec(command, entrypoint, job_config)
    words = spec["command"]
    if words and not os.path.exists(os.path.join(directory, words[0])):
        warn(f"the command '{words[0]}' is not a file in {directory}; fine for a command on "
             "the image's PATH")
    project = project_name or job_config.get("project_name") or os.path.basename(directory)
    params = _params_json(params if params is not None else job_config.get("params"))
    resources = dict(_resources)
    for key, value in (("num_gpus", job_config.get("num_gpus")), ("ram", job_config.get("ram")),
                       ("num_gpus", num_gpus), ("ram", ram)):
        if value is not None:
            resources[key] = value
    job_id = str(uuid.uuid4())

    bundle = _upload_bundle(url, token, directory, job_id)
    if resources.get("ram") is not None:
        spec["mem_limit"] = f"{float(resources['ram']):g}g"
    if cpus is not None:
        spec["cpus"] = float(cpus)
    payload = {"job_id": job_id, "spec": spec,
               "metadata": {"project_name": project,
                            "username": os.environ.get("USER") or os.environ.get("LOGNAME") or "unknown"},
               "gpu_spec": {"num_gpus": int(resources.get("num_gpus") or 0)},
               "priority": int(priority or 0)}
    limit = time_limit if time_limit is not None else job_config.get("time_limit")
    if limit is not None:
        payload["time_limit"] = parse_time_limit(limit)
    if bundle is not None:
        payload["bundle"] = bundle
    if params is not None:
        payload["params"] = params
    if sweep_id is not None:
        payload["sweep_id"] = str(sweep_id)
    answer = _http.call_json("POST", f"{url}/queued_jobs", payload, token=token, ok=(200, 201))
    if isinstance(answer, str) and answer:
        job_id = answer
    deployment = DeploymentWrapper(job_id, url, project, token)
    if stream_job_logs:
        print_stream(deployment)
    return deployment
