"""The rest of the original package's public names: small working versions
where they make sense (current_foundations_job, ChangeDirectory, the
serializer), and stand-ins that warn once and do nothing for the original's
internals (Redis connection, message router, config manager ...)."""

import os
import pickle

from ._common import in_job, warn_once


class _FoundationsJob:
    """What current_foundations_job() returns: the job this process runs as."""

    @property
    def job_id(self):
        if not in_job():
            raise ValueError("not running inside an Atlas job")
        return os.environ["FOUNDATIONS_JOB_ID"]

    @property
    def project_name(self):
        return os.environ.get("FOUNDATIONS_PROJECT_NAME") or os.path.basename(os.getcwd())

    @property
    def user_name(self):
        return os.environ.get("FOUNDATIONS_USER")

    def is_in_running_job(self):
        return in_job()


_job = _FoundationsJob()


def current_foundations_job():
    return _job


def push_state():
    """The original saved its configuration around submit(); nothing to save here."""


def pop_state():
    """See push_state()."""


class ChangeDirectory:
    """`with ChangeDirectory(path):` runs the block in `path`."""

    def __init__(self, path):
        self._path = path
        self._previous = None

    def __enter__(self):
        self._previous = os.getcwd()
        os.chdir(self._path)
        return self

    def __exit__(self, *exc):
        os.chdir(self._previous)
        return False


def serialize(item):
    return pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)


def deserialize(serialized_item):
    return None if serialized_item is None else pickle.loads(serialized_item)


def serialize_to_file(item, file):
    pickle.dump(item, file, protocol=pickle.HIGHEST_PROTOCOL)


def deserialize_from_file(file):
    return None if file is None else pickle.load(file)


def set_up_default_environment_if_present():
    """As the original at import: outside a job (and not in the CLI), when an
    execution config named default exists, this process is recorded as a
    local run (_local_run.py). True when it is."""
    from . import _config, _local_run
    if in_job() or os.environ.get("FOUNDATIONS_COMMAND_LINE", "False") == "True":
        return False
    if not _config.execution_config_present():
        return False
    return _local_run.start()


class _Unsupported:
    """A stand-in for one of the original's internal objects: any use warns
    once and does nothing (never raises)."""

    def __init__(self, name):
        self._name = name

    def _warn(self):
        warn_once("unsupported:" + self._name,
                  f"foundations.{self._name} is part of the original Atlas's internals "
                  "(Redis, message router, archives) and does nothing in this Atlas")

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        self._warn()
        return self

    def __call__(self, *args, **kwargs):
        self._warn()
        return self

    def __getitem__(self, key):
        self._warn()
        return None

    def __setitem__(self, key, value):
        self._warn()

    def __bool__(self):
        return False

    def __repr__(self):
        return f"<foundations.{self._name}: not supported>"


UNSUPPORTED = ("config_manager", "deployment_manager", "log_manager", "default_executor",
               "message_router", "redis_connection", "module_manager", "BucketPipelineArchive",
               "BucketPipelineListing", "PrefixedBucket", "BucketJobDeployment")
