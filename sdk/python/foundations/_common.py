"""Helpers shared by the SDK's modules: warnings, the job's environment and
JSON-safe values. Standard library only."""

import math
import numbers
import os
import sys

_warned = set()


def warn(message):
    """A warning on stderr, unless the job's log_level (job.config.yaml, as
    FOUNDATIONS_LOG_LEVEL) asks for errors only."""
    if os.environ.get("FOUNDATIONS_LOG_LEVEL", "").upper() in ("ERROR", "CRITICAL"):
        return
    print("foundations: " + message, file=sys.stderr, flush=True)


def warn_once(topic, message):
    """Prints `message` the first time `topic` comes up in this process."""
    if topic not in _warned:
        _warned.add(topic)
        warn(message)


def in_job():
    """Whether this process runs as an Atlas job (the node sets these)."""
    return all(os.environ.get(k) for k in ("FOUNDATIONS_JOB_ID", "ATLAS_JOB_SECRET", "ATLAS_API_URL"))


def job_id():
    return os.environ.get("FOUNDATIONS_JOB_ID") or None


def job_dir():
    """The job's working directory (archived as its artifacts at the end)."""
    return os.environ.get("FOUNDATIONS_WORKING_DIR") or os.getcwd()


def json_value(value):
    """A JSON-safe copy of `value` (non-finite numbers and unknown types as text)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return json_value(float(value))
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    return str(value)
