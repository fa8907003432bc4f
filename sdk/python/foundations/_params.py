"""Parameters: log_param, log_params (flattened as the original did) and
load_parameters (foundations_job_parameters.json, written by the node from
the submission's params)."""

import json
import os

from . import _tracking
from ._common import job_dir, json_value

PARAMETERS_FILE = "foundations_job_parameters.json"


def _is_scalar(value):
    # The original's test: bool counts (it is an int), None too.
    return value is None or isinstance(value, (str, int, float))


def flatten_parameter_dictionary(param_dictionary):
    """Flattens nested dicts and lists the way the original did:
    {"a": {"b": 1}} -> {"a_b": 1}, {"layers": [64, 32]} -> {"layers_0": 64,
    "layers_1": 32}; an empty dict or list becomes None."""
    flattened = {}
    for key, value in param_dictionary.items():
        if _is_scalar(value):
            flattened[key] = value
        elif isinstance(value, dict):
            if not value:
                flattened[key] = None
            else:
                flattened.update(flatten_parameter_dictionary(
                    {f"{key}_{k}": v for k, v in value.items()}))
        elif isinstance(value, (list, tuple)):
            if not value:
                flattened[key] = None
            else:
                flattened.update(flatten_parameter_dictionary(
                    {f"{key}_{i}": v for i, v in enumerate(value)}))
        else:
            flattened[key] = value  # e.g. a numpy number: logged as itself (or its text)
    return flattened


def log_param(key, value):
    """Records one parameter of the job."""
    tracker = _tracking.current()
    if tracker is not None:
        tracker.add({"kind": "param", "key": str(key), "value": json_value(value)})


def log_params(parameters):
    """Records every parameter of a dict, flattened (see flatten_parameter_dictionary)."""
    if not isinstance(parameters, dict):
        raise TypeError("log_params takes a dict")
    for key, value in flatten_parameter_dictionary(parameters).items():
        log_param(key, value)


def read_parameters_file(path):
    """The parameters in `path`: {} for an empty file; ValueError when it is
    not a JSON object; FileNotFoundError when it is missing."""
    with open(path) as f:
        text = f.read()
    if text.strip() == "":
        return {}
    try:
        params = json.loads(text)
    except ValueError as e:
        raise ValueError(f"cannot read {path}: {e}") from e
    if not isinstance(params, dict):
        raise ValueError(f"{path} must hold a JSON object")
    return params


def load_parameters(log_parameters=True):
    """The parameters the job was submitted with (foundations_job_parameters.json
    in the job's directory; {} when there is none). As in the original, they
    are also logged (flattened) unless log_parameters is False."""
    seen = set()
    for candidate in (os.path.join(job_dir(), PARAMETERS_FILE), PARAMETERS_FILE):
        full = os.path.abspath(candidate)
        if full in seen:
            continue
        seen.add(full)
        try:
            params = read_parameters_file(candidate)
        except FileNotFoundError:
            continue
        if log_parameters and params:
            log_params(params)
        return params
    return {}
