"""foundations.config.set_environment, as in the original: the environment
(submission/<name>.config.yaml) that submit() and get_metrics_for_all_jobs()
use when they are not given one."""

from ._config import set_environment

__all__ = ["set_environment"]
