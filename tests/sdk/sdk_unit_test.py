"""Unit tests of the Python SDK (sdk/python/foundations), no server needed:
parameter flattening, list metrics, the parameters file, deterministic
bundles, TensorBoard and syncable directories, and submit()'s
upload-once logic against a stand-in scheduler (http.server)."""

import hashlib
import http.server
import io
import json
import os
import shutil
import sys
import tarfile
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "sdk", "python"))

import foundations  # noqa: E402
from foundations import _bundle, _config, _projects, _submit, _tracking  # noqa: E402


class FakeTracker:
    def __init__(self):
        self.entries = []
        self.steps = {}

    def add(self, entry):
        self.entries.append(entry)

    def next_step(self, key):
        step = self.steps.get(key, 0)
        self.steps[key] = step + 1
        return step

    def close(self):
        pass

    def of(self, kind):
        return [e for e in self.entries if e["kind"] == kind]


class JobTest(unittest.TestCase):
    """Runs each test as if inside a job, with a fake tracker and a temporary job dir."""

    def setUp(self):
        self.tracker = FakeTracker()
        _tracking._tracker = self.tracker
        self.dir = tempfile.mkdtemp(prefix="sdk-unit-")
        self.saved_env = dict(os.environ)
        os.environ.update({"FOUNDATIONS_JOB_ID": "job-1", "ATLAS_JOB_SECRET": "s",
                           "ATLAS_API_URL": "http://127.0.0.1:9", "FOUNDATIONS_WORKING_DIR": self.dir})

    def tearDown(self):
        _tracking._tracker = None
        _tracking._exit_hooks.clear()
        os.environ.clear()
        os.environ.update(self.saved_env)
        shutil.rmtree(self.dir, ignore_errors=True)


class FlattenTest(unittest.TestCase):
    def test_lists_and_dicts_flatten_as_the_original(self):
        flat = foundations.flatten_parameter_dictionary(
            {"layers": [64, 32], "opt": {"name": "adam", "betas": [0.9, 0.99]},
             "empty_list": [], "empty_dict": {}, "flag": True, "none": None,
             "nested": [[1, 2], {"a": 3}]})
        self.assertEqual(flat, {"layers_0": 64, "layers_1": 32, "opt_name": "adam",
                                "opt_betas_0": 0.9, "opt_betas_1": 0.99, "empty_list": None,
                                "empty_dict": None, "flag": True, "none": None,
                                "nested_0_0": 1, "nested_0_1": 2, "nested_1_a": 3})


class MetricsTest(JobTest):
    def test_a_list_logs_every_value_in_order(self):
        foundations.log_metric("acc", [0.5, 0.6, 0.7])
        foundations.log_metric("acc", 0.8)
        foundations.log_metric("phase", ["a", "b"])
        acc = [(e["step"], e["value"]) for e in self.tracker.of("metric") if e["key"] == "acc"]
        self.assertEqual(acc, [(0, 0.5), (1, 0.6), (2, 0.7), (3, 0.8)])
        self.assertEqual([e["value"] for e in self.tracker.of("metric") if e["key"] == "phase"],
                         ["a", "b"])

    def test_invalid_values_raise_as_the_original(self):
        with self.assertRaises(TypeError):
            foundations.log_metric("x", {"a": 1})
        with self.assertRaises(TypeError):
            foundations.log_metric("x", [1, [2]])
        with self.assertRaises(ValueError):
            foundations.log_metric(3, 1.0)
        self.assertEqual(self.tracker.entries, [])

    def test_params_and_tags(self):
        foundations.log_params({"layers": [64, 32], "lr": 0.1})
        foundations.set_tag("team", "a")
        foundations.set_tag("bare")
        self.assertEqual({e["key"]: e["value"] for e in self.tracker.of("param")},
                         {"layers_0": 64, "layers_1": 32, "lr": 0.1})
        self.assertEqual({e["key"]: e["value"] for e in self.tracker.of("tag")},
                         {"team": "a", "bare": ""})


class ParametersFileTest(JobTest):
    def write(self, text):
        with open(os.path.join(self.dir, "foundations_job_parameters.json"), "w") as f:
            f.write(text)

    def test_reads_and_logs_flattened(self):
        self.write(json.dumps({"lr": 0.5, "layers": [8, 4]}))
        self.assertEqual(foundations.load_parameters(), {"lr": 0.5, "layers": [8, 4]})
        self.assertEqual({e["key"]: e["value"] for e in self.tracker.of("param")},
                         {"lr": 0.5, "layers_0": 8, "layers_1": 4})

    def test_log_parameters_false_logs_nothing(self):
        self.write('{"a": 1}')
        self.assertEqual(foundations.load_parameters(log_parameters=False), {"a": 1})
        self.assertEqual(self.tracker.entries, [])

    def test_missing_and_empty_files_are_empty(self):
        cwd = os.getcwd()
        os.chdir(self.dir)
        try:
            self.assertEqual(foundations.load_parameters(), {})
            self.write("")
            self.assertEqual(foundations.load_parameters(), {})
            self.write("[1, 2]")
            with self.assertRaises(ValueError):
                foundations.load_parameters()
        finally:
            os.chdir(cwd)


def make_tree(root, mtime, mode):
    os.makedirs(os.path.join(root, "pkg", "sub"))
    os.makedirs(os.path.join(root, ".git"))
    os.makedirs(os.path.join(root, "__pycache__"))
    files = {"main.py": "print(1)\n", "pkg/__init__.py": "", "pkg/sub/data.bin": "\x00" * 100,
             ".git/HEAD": "ref", "__pycache__/x.pyc": "junk", "a-b.txt": "x"}
    for name, text in files.items():
        path = os.path.join(root, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        os.utime(path, (mtime, mtime))
    os.symlink("main.py", os.path.join(root, "link.py"))


class BundleTest(unittest.TestCase):
    def test_identical_content_gives_identical_bytes(self):
        base = tempfile.mkdtemp(prefix="sdk-bundle-")
        try:
            make_tree(base + "/one", 1000000, 0o644)
            make_tree(base + "/two", 2000000, 0o664)  # other times, group-writable
            d1 = _bundle.create_bundle(base + "/one", base + "/one.tgz")
            d2 = _bundle.create_bundle(base + "/two", base + "/two.tgz")
            self.assertEqual(d1, d2)
            with open(base + "/one.tgz", "rb") as f:
                self.assertEqual(hashlib.sha256(f.read()).hexdigest(), d1)
            with tarfile.open(base + "/one.tgz") as tar:
                names = tar.getnames()
                self.assertEqual(names, sorted(names))
                self.assertEqual(names[0], "job_source")
                self.assertIn("job_source/pkg/sub/data.bin", names)
                self.assertFalse([n for n in names if ".git" in n or "__pycache__" in n])
                self.assertTrue(tar.getmember("job_source/link.py").issym())
                self.assertEqual({m.mtime for m in tar}, {_bundle.FIXED_MTIME})
            with open(base + "/two/main.py", "a") as f:
                f.write("# changed\n")
            self.assertNotEqual(_bundle.create_bundle(base + "/two", base + "/three.tgz"), d1)
        finally:
            shutil.rmtree(base, ignore_errors=True)


class TensorBoardAndSyncTest(JobTest):
    def test_event_files_are_kept_under_atlas_tensorboard(self):
        logdir = tempfile.mkdtemp(prefix="sdk-tb-")
        try:
            os.makedirs(logdir + "/train")
            with open(logdir + "/train/events.out.tfevents.1.host", "wb") as f:
                f.write(b"\x18\x00\x00\x00\x00\x00\x00\x00event")
            foundations.set_tensorboard_logdir(logdir)
            _tracking._exit()
            kept = os.path.join(self.dir, "atlas_tensorboard", "train", "events.out.tfevents.1.host")
            self.assertTrue(os.path.isfile(kept))
            arts = {e["key"]: e["path"] for e in self.tracker.of("artifact")}
            self.assertEqual(arts, {"tensorboard_train_events.out.tfevents.1.host":
                                    "atlas_tensorboard/train/events.out.tfevents.1.host"})
            tags = {e["key"]: e["value"] for e in self.tracker.of("tag")}
            self.assertEqual(tags, {"tf": "tf", "tensorboard_logdir": "atlas_tensorboard"})
        finally:
            shutil.rmtree(logdir, ignore_errors=True)

    def test_syncable_directory_upload_keeps_files(self):
        sync = foundations.create_syncable_directory("ckpt")
        with open(os.path.join(str(sync), "model.bin"), "w") as f:
            f.write("weights")
        sync.upload()
        with open(os.path.join(self.dir, "atlas_synced", "ckpt", "model.bin")) as f:
            self.assertEqual(f.read(), "weights")
        again = foundations.create_syncable_directory("ckpt", tempfile.mkdtemp())
        with open(os.path.join(str(again), "model.bin")) as f:  # this job's own copy
            self.assertEqual(f.read(), "weights")


class Scheduler(http.server.BaseHTTPRequestHandler):
    """A stand-in scheduler: the bundle store and /queued_jobs."""
    store, jobs, uploads = {}, [], []

    def log_message(self, *args):
        pass

    def answer(self, status, doc=None):
        body = json.dumps(doc).encode() if doc is not None else b""
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_HEAD(self):
        self.answer(200 if self.path.rsplit("/", 1)[-1] in self.store else 404)

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/api/v1/bundles":
            start = body.index(b"\r\n\r\n") + 4
            data = body[start:body.rindex(b"\r\n--")]
            digest = hashlib.sha256(data).hexdigest()
            stored = digest not in self.store
            self.store[digest] = data
            self.uploads.append(digest)
            return self.answer(200, {"bundle": digest, "size": len(data), "stored": stored})
        if self.path == "/queued_jobs":
            doc = json.loads(body)
            self.jobs.append(doc)
            return self.answer(201, doc["job_id"])
        self.answer(404, {"error": "no route"})


class SubmitTest(unittest.TestCase):
    def test_a_sweep_uploads_its_bundle_once(self):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Scheduler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        home = tempfile.mkdtemp(prefix="sdk-home-")
        saved = dict(os.environ)
        try:
            os.makedirs(home + "/config/submission")
            with open(home + "/config/submission/scheduler.config.yaml", "w") as f:
                f.write(f"# comment\nscheduler_url: 'http://127.0.0.1:{server.server_port}/'\n")
            os.makedirs(home + "/project")
            with open(home + "/project/main.py", "w") as f:
                f.write("import foundations\n")
            with open(home + "/project/job.config.yaml", "w") as f:
                f.write("project_name: sweep\ntime_limit: 30m\n")
            os.environ["FOUNDATIONS_HOME"] = home
            os.environ.pop("FOUNDATIONS_TOKEN", None)
            deployments = [foundations.submit(job_directory=home + "/project", params={"trial": i},
                                              num_gpus=0, ram=1.5, sweep_id="s1")
                           for i in range(3)]
            self.assertEqual(len(Scheduler.uploads), 1)
            self.assertEqual(len(Scheduler.store), 1)
            digest = next(iter(Scheduler.store))
            self.assertEqual([j["params"] for j in Scheduler.jobs], [{"trial": i} for i in range(3)])
            job = Scheduler.jobs[0]
            self.assertEqual(job["bundle"], digest)
            self.assertEqual(job["sweep_id"], "s1")
            self.assertEqual(job["time_limit"], 1800.0)
            self.assertEqual(job["metadata"]["project_name"], "sweep")
            self.assertEqual(job["spec"], {"command": ["main.py"], "environment": {}, "mem_limit": "1.5g"})
            self.assertEqual([d.job_name() for d in deployments], [j["job_id"] for j in Scheduler.jobs])
            with self.assertRaises(ValueError):
                foundations.submit(job_directory=home + "/project", params={"x": "y" * 70000})
        finally:
            os.environ.clear()
            os.environ.update(saved)
            server.shutdown()
            server.server_close()
            shutil.rmtree(home, ignore_errors=True)


class ConfigTest(unittest.TestCase):
    def test_token_from_credentials_and_time_limits(self):
        home = tempfile.mkdtemp(prefix="sdk-home-")
        saved = dict(os.environ)
        try:
            os.environ["FOUNDATIONS_HOME"] = home
            os.environ.pop("FOUNDATIONS_TOKEN", None)
            self.assertEqual(_config.token(), "None")
            with open(home + "/credentials.yaml", "w") as f:
                f.write("# written by `foundations login`\nscheduler_url: http://x\n"
                        "access_token: abc.def\nexpires_at: 5\n")
            self.assertEqual(_config.token(), "abc.def")
            # The original CLI's layout: yaml.dump({"default": {"token": ...}}).
            with open(home + "/credentials.yaml", "w") as f:
                f.write("default:\n  token: orig.tok.en\n")
            self.assertEqual(_config.token(), "orig.tok.en")
            os.environ["FOUNDATIONS_TOKEN"] = "t"
            self.assertEqual(_config.token(), "t")
            with self.assertRaises(ValueError):
                _config.scheduler_url("missing")
        finally:
            os.environ.clear()
            os.environ.update(saved)
            shutil.rmtree(home, ignore_errors=True)
        self.assertEqual(_submit.parse_time_limit("90s"), 90)
        self.assertEqual(_submit.parse_time_limit("1:30"), 90)
        self.assertEqual(_submit.parse_time_limit(2), 2)
        with self.assertRaises(ValueError):
            _submit.parse_time_limit("soon")


class ProjectRowsTest(unittest.TestCase):
    def test_rows_have_params_metrics_and_tags(self):
        listing = {"jobs": [{"job_id": "j1", "project": "p", "user": "u", "status": "completed",
                             "start_ts": 0, "completed_ts": 0,
                             "job_parameters": [{"name": "lr", "value": 0.1}],
                             "output_metrics": [{"name": "loss", "value": 0.2},
                                                {"name": "acc", "value": [0.5, 0.75]}],
                             "tags": {"team": "a"}}]}
        # A metric logged several times is a list in the listing; rows keep its latest.
        self.assertEqual(_projects.job_rows(listing),
                         [{"job_id": "j1", "project_name": "p", "user": "u", "status": "completed",
                           "start_time": None, "completed_time": None, "lr": 0.1, "loss": 0.2,
                           "acc": 0.75, "tag_team": "a"}])


class JobConfigTest(unittest.TestCase):
    def test_spec_as_the_cli_builds_it_from_job_config(self):
        config = {"entrypoint": "python3 -u", "log_level": "error",
                  "worker": {"command": ["train.py", "--fast"], "image": "my/worker:1",
                             "environment": {"SEED": 7}, "volumes": {"/srv": {"bind": "/data"}}}}
        self.assertEqual(_submit._spec(None, None, config),
                         {"command": ["train.py", "--fast"], "entrypoint": ["python3", "-u"],
                          "image": "my/worker:1", "volumes": {"/srv": {"bind": "/data"}},
                          "environment": {"SEED": "7", "FOUNDATIONS_LOG_LEVEL": "ERROR"}})
        # The call's arguments win over the file; nothing set: python main.py.
        self.assertEqual(_submit._spec(["eval.py"], "bash", config)["command"], ["eval.py"])
        self.assertEqual(_submit._spec(["eval.py"], "bash", config)["entrypoint"], ["bash"])
        self.assertEqual(_submit._spec(None, None, {}), {"command": ["main.py"], "environment": {}})


class CompatTest(unittest.TestCase):
    def test_internals_warn_and_never_raise(self):
        foundations.redis_connection.get("x")
        foundations.config_manager["log_level"] = "INFO"
        self.assertFalse(foundations.message_router)
        with self.assertRaises(AttributeError):
            foundations.no_such_function  # noqa: B018
        self.assertEqual(foundations.deserialize(foundations.serialize({"a": [1]})), {"a": [1]})

    def test_log_level_error_silences_warnings(self):
        from foundations import _common
        old, sys.stderr = sys.stderr, io.StringIO()
        try:
            os.environ["FOUNDATIONS_LOG_LEVEL"] = "ERROR"
            _common.warn("hidden")
            os.environ["FOUNDATIONS_LOG_LEVEL"] = "warning"
            _common.warn("shown")
            printed = sys.stderr.getvalue()
        finally:
            sys.stderr = old
            os.environ.pop("FOUNDATIONS_LOG_LEVEL", None)
        self.assertEqual(printed, "foundations: shown\n")


if __name__ == "__main__":
    unittest.main(verbosity=1)
