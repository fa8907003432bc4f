"""The in-job SDK of Atlas, with the API of the original `foundations` package.

    import foundations
    params = foundations.load_parameters()       # foundations_job_parameters.json
    foundations.log_params({"layers": [64, 32]})  # layers_0, layers_1
    foundations.log_metric("loss", 0.25)         # repeated calls make a series
    foundations.log_metric("acc", [0.5, 0.7])    # every value of a list is logged
    foundations.set_tag("baseline")
    foundations.save_artifact("plot.png")
    foundations.set_tensorboard_logdir("tb/")    # kept under atlas_tensorboard/

    deployment = foundations.submit(scheduler_config="scheduler", job_directory=".",
                                    command=["main.py"], params={"lr": 0.1})
    deployment.wait_for_deployment_to_complete()
    deployment.get_metric("loss")

Standard library only (Python 3.8+; pandas is used when importable). The
node that runs a job puts this package on PYTHONPATH and passes
FOUNDATIONS_JOB_ID, ATLAS_JOB_SECRET and ATLAS_API_URL in the environment.
Calls are buffered and sent in batches by a background thread (and flushed
when the job exits). Outside a job the logging calls do nothing, after one
warning. submit() reads the CLI's configuration ($FOUNDATIONS_HOME).
"""

from ._artifacts import save_artifact, set_tensorboard_logdir
from ._compat import (ChangeDirectory, current_foundations_job, deserialize,
                      deserialize_from_file, pop_state, push_state, serialize,
                      serialize_to_file, set_up_default_environment_if_present)
from ._deployment import DeploymentWrapper
from ._metrics import log_metric, set_tag
from ._params import flatten_parameter_dictionary, load_parameters, log_param, log_params
from ._projects import get_metrics_for_all_jobs, set_project_name
from ._submit import set_job_resources, submit
from ._syncable import SyncableDirectory, create_syncable_directory
from ._tracking import flush

__version__ = "0.1.0+atlas"

set_up_default_environment_if_present()  # a local run is recorded from here, as the original did

__all__ = ["log_metric", "log_param", "log_params", "flatten_parameter_dictionary",
           "load_parameters", "set_tag", "save_artifact", "set_tensorboard_logdir",
           "create_syncable_directory", "SyncableDirectory", "get_metrics_for_all_jobs",
           "set_project_name", "set_job_resources", "submit", "DeploymentWrapper",
           "current_foundations_job", "push_state", "pop_state", "ChangeDirectory",
           "serialize", "deserialize", "serialize_to_file", "deserialize_from_file",
           "set_up_default_environment_if_present", "flush"]


def __getattr__(name):
    """The original's internal objects (redis_connection, config_manager ...):
    stand-ins that warn once when used."""
    from ._compat import UNSUPPORTED, _Unsupported
    if name in UNSUPPORTED:
        return _Unsupported(name)
    raise AttributeError(f"module 'foundations' has no attribute '{name}'")
