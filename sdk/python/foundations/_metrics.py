"""log_metric and set_tag."""

import numbers
import time

from . import _tracking
from ._common import json_value


def _is_scalar(value):
    return isinstance(value, (str, numbers.Real))


def _short(value):
    text = str(value)
    return text[:30] + " ..." if len(text) > 30 else text


def log_metric(key, value):
    """Records `value` for metric `key`: a number or a string, or a list of
    them (each value is logged, in order, as the original did). Repeated calls
    make a series (steps 0, 1, 2, ...)."""
    if not isinstance(key, str):
        raise ValueError(f"Invalid metric name `{key}`")
    if _is_scalar(value):
        values = [value]
    elif isinstance(value, list) and all(_is_scalar(v) for v in value):
        values = value
    else:
        raise TypeError(f'Invalid metric with key="{key}" of value={_short(value)} with type '
                        f"{type(value)}. Value should be of type string or number, or a list of "
                        "strings / numbers")
    tracker = _tracking.current()
    if tracker is None:
        return
    for v in values:
        if isinstance(v, bool):
            v = int(v)  # the node keeps numbers and strings
        tracker.add({"kind": "metric", "key": key, "value": json_value(v),
                     "step": tracker.next_step(key), "time": time.time()})


def set_tag(key, value=""):
    """Tags the job (a bare tag when `value` is omitted); a later value for the
    same key replaces the earlier one."""
    tracker = _tracking.current()
    if tracker is not None:
        tracker.add({"kind": "tag", "key": str(key), "value": json_value(value)})
