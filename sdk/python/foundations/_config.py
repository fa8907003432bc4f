"""The client configuration the C++ CLI reads: $FOUNDATIONS_HOME (default
~/.foundations), config/submission/<env>.config.yaml (scheduler_url) and the
login kept by `foundations login` (credentials.yaml), or FOUNDATIONS_TOKEN."""

import os
import re


def foundations_home():
    home = os.environ.get("FOUNDATIONS_HOME") or "~/.foundations"
    return os.path.expanduser(home)


def _scalar(text):
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if " #" in text:
        text = text.split(" #", 1)[0].rstrip()
    return text


def read_flat_yaml(path):
    """The top-level `key: scalar` pairs of a YAML file (PyYAML when it is
    importable; else a small reader that is enough for these files)."""
    with open(path) as f:
        text = f.read()
    try:
        import yaml  # optional
        doc = yaml.safe_load(text)
        return doc if isinstance(doc, dict) else {}
    except ImportError:
        pass
    out = {}
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z_][A-Za-z0-9_.-]*)\s*:(.*)$", line)
        if m and not line.startswith((" ", "\t")):
            value = _scalar(m.group(2))
            out[m.group(1)] = value if value != "" else None
    return out


_selected_environment = None


def set_environment(environment_name):
    """Makes `environment_name` the default scheduler_config of this process."""
    global _selected_environment
    path = submission_file(environment_name)
    if not os.path.isfile(path):
        raise ValueError(f"environment '{environment_name}' does not exist (expected {path})")
    _selected_environment = environment_name


def environment_name(explicit=None):
    """The environment to use: `explicit`, else set_environment's, else "scheduler"."""
    return explicit or _selected_environment or "scheduler"


def submission_file(env_name):
    if not env_name or env_name.startswith(".") or not re.fullmatch(r"[A-Za-z0-9._-]+", env_name):
        raise ValueError(f"environment name '{env_name}': expected letters, digits, '.', '_' or '-'")
    return os.path.join(foundations_home(), "config", "submission", env_name + ".config.yaml")


def scheduler_url(env_name):
    """scheduler_url of submission/<env_name>.config.yaml, without a trailing '/'."""
    path = submission_file(env_name)
    if not os.path.isfile(path):
        raise ValueError(f"no submission config for environment '{env_name}': expected {path}")
    url = read_flat_yaml(path).get("scheduler_url")
    if not url:
        raise ValueError(f"{path}: scheduler_url: required (the scheduler's URL, "
                         "e.g. http://<master>:5558)")
    url = str(url)
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"{path}: scheduler_url: expected a URL starting with http:// or "
                         f"https://, got '{url}'")
    return url.rstrip("/")


def token():
    """The bearer token the CLI would send: FOUNDATIONS_TOKEN, else the stored
    login's access_token, else "None" (what the CLI sends without a login)."""
    t = os.environ.get("FOUNDATIONS_TOKEN")
    if t:
        return t
    path = os.path.join(foundations_home(), "credentials.yaml")
    try:
        access = read_flat_yaml(path).get("access_token") or _original_token(path)
        if access:
            return str(access)
    except OSError:
        pass
    return "None"


def execution_config():
    """The path of the execution config named default, or None."""
    for base in (os.getcwd(), foundations_home()):
        for name in ("default.config.yaml", "default.config.yml"):
            path = os.path.join(base, "config", "execution", name)
            if os.path.isfile(path):
                return path
    return None


def local_run_url():
    """Where a local run is recorded: the execution config's scheduler_url,
    else that of the environment in use (submission/<env>.config.yaml)."""
    path = execution_config()
    url = read_flat_yaml(path).get("scheduler_url") if path else None
    if not url:
        return scheduler_url(environment_name())
    url = str(url)
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"{path}: scheduler_url: expected a URL starting with http:// or "
                         f"https://, got '{url}'")
    return url.rstrip("/")


def _original_token(path):
    """The original CLI's layout, `default: {token: <access token>}`."""
    with open(path) as f:
        text = f.read()
    try:
        import yaml  # optional
        doc = yaml.safe_load(text)
        default = doc.get("default") if isinstance(doc, dict) else None
        return default.get("token") if isinstance(default, dict) else None
    except ImportError:
        pass
    m = re.search(r"^default:\s*\n(?:[ \t]+.*\n)*?[ \t]+token:[ \t]*(\S+)", text + "\n", re.M)
    return _scalar(m.group(1)) if m else None


def execution_config_present():
    """Whether an execution config named default exists (config/execution/ in
    the current directory or under $FOUNDATIONS_HOME): what made the original
    track a plain `python main.py` run."""
    return execution_config() is not None
