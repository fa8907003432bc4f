"""Job code written for the ORIGINAL Atlas SDK runs unchanged on a node:
list metrics, nested/list params, set_tag, save_artifact,
set_tensorboard_logdir with an event file, create_syncable_directory (kept
by one job, downloaded by the next), load_parameters and
get_metrics_for_all_jobs. What it logged comes back through the REST API,
and the TensorBoard files with the job's artifacts."""

import io
import json
import struct
import tarfile
import uuid

import harness
from harness import Node

node = Node(slots=2).start()

# Written against the original `foundations` package (dessa-oss/atlas): only
# its public calls, with their original signatures.
ORIGINAL_JOB = r'''
import os, struct, time
import foundations

params = foundations.load_parameters()
foundations.log_params({"model": {"layers": [64, 32], "activation": "relu"}, "lr": 0.01})
foundations.log_metric("accuracy", [0.5, 0.625, 0.75])
foundations.log_metric("loss", 0.25)
foundations.log_metric("batch_size", params["batch"][0])
foundations.set_tag("team", "vision")
foundations.set_tag("baseline")

with open("confusion.png", "wb") as f:
    f.write(b"\x89PNG\r\n\x1a\n" + bytes(range(32)))
foundations.save_artifact("confusion.png", key="confusion")

# A TensorBoard event file as tf.summary writes it: TFRecord frames.
os.makedirs("tb_logs/train", exist_ok=True)
record = b"\x09" + struct.pack("<d", time.time()) + b"\x1a\x0dbrain.Event:2"
frame = struct.pack("<Q", len(record)) + b"\x00" * 4 + record + b"\x00" * 4
with open("tb_logs/train/events.out.tfevents.%d.atlas-host" % int(time.time()), "wb") as f:
    f.write(frame)
foundations.set_tensorboard_logdir("tb_logs")

checkpoints = foundations.create_syncable_directory("checkpoints", "ckpt")
with open(os.path.join(str(checkpoints), "model.txt"), "w") as f:
    f.write("weights of " + os.environ["FOUNDATIONS_JOB_ID"])
checkpoints.upload()
print("original job done", flush=True)
'''

RESUME_JOB = r'''
import os, foundations
source = foundations.load_parameters(log_parameters=False)["source_job"]
restored = foundations.create_syncable_directory("checkpoints", "restored", source_job_id=source)
with open(os.path.join(str(restored), "model.txt")) as f:
    foundations.set_tag("restored", f.read())
rows = foundations.get_metrics_for_all_jobs("parity")
row = [r for r in rows if r["job_id"] == source][0]
foundations.log_metric("seen_loss", row["loss"])
foundations.log_metric("seen_layers_1", row["model_layers_1"])
foundations.set_project_name("ignored")
foundations.redis_connection.get("not used")   # the original's internals: a warning only
print("resume job done", flush=True)
'''


def bundle(job_id, files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{job_id}/job_source/{name}")
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def submit(main_py, params):
    """Uploads a bundle and queues it with `params` (the node writes them to
    foundations_job_parameters.json)."""
    job_id = "parity-" + uuid.uuid4().hex[:10]
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"job_bundle\"; "
            f"filename=\"{job_id}.tgz\"\r\nContent-Type: application/gzip\r\n\r\n").encode() \
        + bundle(job_id, {"main.py": main_py}) + f"\r\n--{boundary}--\r\n".encode()
    status, raw = node.request("POST", "/job_bundle", body,
                               {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert status == 200, (status, raw)
    spec = {"job_id": job_id, "spec": {"command": ["main.py"]}, "params": params,
            "metadata": {"project_name": "parity", "username": "alice"}, "gpu_spec": {"num_gpus": 0}}
    status, raw = node.request("POST", "/queued_jobs", json.dumps(spec),
                               {"Content-Type": "application/json"})
    assert status == 201, (status, raw)
    return job_id


def detail(job_id):
    status, body = node.json("GET", f"/api/v2beta/projects/parity/job_listing/{job_id}")
    assert status == 200, (status, body)
    return body


original_id = None


def test_a_job_written_for_the_original_sdk_runs_unchanged():
    global original_id
    original_id = submit(ORIGINAL_JOB, {"batch": [16, 32], "optimizer": {"name": "adam"}})
    job = node.wait_for_status(original_id, ["completed", "failed"], timeout=90)
    assert job["status"] == "completed", (job.get("logs"), node.node_log())
    assert "original job done" in job["logs"], job["logs"]
    assert "Traceback" not in job["logs"], job["logs"]


def test_list_metrics_every_value_comes_back_in_order():
    d = detail(original_id)
    assert [p[1] for p in d["series"]["accuracy"]] == [0.5, 0.625, 0.75], d["series"]
    assert [p[0] for p in d["series"]["accuracy"]] == [0, 1, 2]
    assert [p[1] for p in d["series"]["loss"]] == [0.25]
    metrics = {m["name"]: m["value"] for m in d["output_metrics"]}
    assert metrics == {"accuracy": [0.5, 0.625, 0.75], "loss": 0.25, "batch_size": 16}, metrics
    # The listing as the original's: every value of a metric logged several
    # times (its type "array number"), the scalar of one logged once.
    status, listing = node.json("GET", "/api/v2beta/projects/parity/job_listing")
    assert status == 200, (status, listing)
    [row] = [j for j in listing["jobs"] if j["job_id"] == original_id]
    shapes = {m["name"]: (m["value"], m["type"], m["latest"], m["count"]) for m in row["output_metrics"]}
    assert shapes["accuracy"] == ([0.5, 0.625, 0.75], "array number", 0.75, 3), shapes
    assert shapes["loss"] == (0.25, "number", 0.25, 1), shapes
    # Sorting by a metric uses its latest value.
    status, by_acc = node.json("GET", "/api/v2beta/projects/parity/job_listing?sort=-accuracy")
    assert status == 200 and by_acc["jobs"][0]["job_id"] == original_id, by_acc


def test_params_are_flattened_as_the_original_did():
    params = {p["name"]: p["value"] for p in detail(original_id)["job_parameters"]}
    assert params == {"model_layers_0": 64, "model_layers_1": 32, "model_activation": "relu",
                      "lr": 0.01, "batch_0": 16, "batch_1": 32, "optimizer_name": "adam"}, params


def test_tags_artifacts_and_tensorboard_files_are_kept():
    d = detail(original_id)
    assert d["tags"] == {"team": "vision", "baseline": "", "tf": "tf",
                         "tensorboard_logdir": "atlas_tensorboard",
                         "synced_directory_checkpoints": "atlas_synced/checkpoints"}, d["tags"]
    arts = {a["archive_key"]: a for a in d["artifacts"]}
    assert arts["confusion"]["filename"] == "confusion.png", arts
    status, raw = node.request("GET", arts["confusion"]["uri"])
    assert status == 200 and raw == b"\x89PNG\r\n\x1a\n" + bytes(range(32)), (status, raw[:20])
    [tb] = [a for k, a in arts.items() if k.startswith("tensorboard_")]
    assert tb["path"].startswith("atlas_tensorboard/train/events.out.tfevents."), tb
    status, raw = node.request("GET", tb["uri"])
    assert status == 200, (status, raw)
    length = struct.unpack("<Q", raw[:8])[0]
    assert raw[12:12 + length].endswith(b"brain.Event:2"), raw
    # And in the archived working directory, where `foundations get job` finds them.
    status, raw = node.request("GET", f"/job_bundle/{original_id}")
    assert status == 200, status
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        names = tar.getnames()
    assert any("job_source/atlas_tensorboard/train/events.out.tfevents." in n for n in names), names
    assert any(n.endswith("job_source/atlas_synced/checkpoints/model.txt") for n in names), names


def test_a_later_job_downloads_the_syncable_directory_and_reads_the_project():
    resume_id = submit(RESUME_JOB, {"source_job": original_id})
    job = node.wait_for_status(resume_id, ["completed", "failed"], timeout=90)
    assert job["status"] == "completed", (job.get("logs"), node.node_log())
    assert "resume job done" in job["logs"], job["logs"]
    assert "set_project_name('ignored') has no effect" in job["logs"], job["logs"]
    assert "redis_connection is part of the original Atlas's internals" in job["logs"]
    d = detail(resume_id)
    assert d["tags"]["restored"] == "weights of " + original_id, d["tags"]
    metrics = {m["name"]: m["value"] for m in d["output_metrics"]}
    assert metrics == {"seen_loss": 0.25, "seen_layers_1": 32}, metrics


try:
    harness.run_tests([
        test_a_job_written_for_the_original_sdk_runs_unchanged,
        test_list_metrics_every_value_comes_back_in_order,
        test_params_are_flattened_as_the_original_did,
        test_tags_artifacts_and_tensorboard_files_are_kept,
        test_a_later_job_downloads_the_syncable_directory_and_reads_the_project,
    ])
finally:
    node.cleanup()
