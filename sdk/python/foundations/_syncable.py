"""create_syncable_directory: a directory kept with the job's artifacts
(<job dir>/atlas_synced/<key>/) that a later job can download by key and
job id, as the original's syncable directories."""

import os
import shutil
import tarfile
import tempfile
from tempfile import mkdtemp

from . import _config, _http, _tracking
from ._artifacts import SYNCED_DIR, _files_stay_local, copy_tree, safe_name
from ._common import in_job, job_dir, job_id, warn


def _api_base():
    """The node's API inside a job; else the 'scheduler' environment's URL."""
    if in_job():
        return os.environ["ATLAS_API_URL"].rstrip("/")
    return _config.scheduler_url(_config.environment_name())


class SyncableDirectory:
    def __init__(self, key, directory_path, local_job_id, remote_job_id, auto_download=True):
        self._key = str(key)
        self._directory_path = directory_path
        self._local_job_id = local_job_id
        self._remote_job_id = remote_job_id
        if auto_download:
            self.download()

    def __str__(self):
        return self._directory_path

    def __fspath__(self):
        return self._directory_path

    def _kept_at(self):
        return os.path.join(job_dir(), SYNCED_DIR, safe_name(self._key))

    def upload(self):
        """Keeps the directory's files with this job's artifacts (files newer
        than their kept copy are copied again)."""
        if self._local_job_id is None or _tracking.current() is None:
            warn("local_job_id required for uploading artifacts (not running inside an Atlas "
                 "job); the syncable directory is not kept")
            return
        if _files_stay_local("SyncableDirectory.upload"):
            return
        target = self._kept_at()
        if os.path.realpath(target) == os.path.realpath(self._directory_path):
            return
        copy_tree(self._directory_path, target)
        _tracking.current().add({"kind": "tag", "key": "synced_directory_" + safe_name(self._key),
                                 "value": os.path.relpath(target, job_dir())})

    def download(self):
        """Fetches the files the source job kept under this key."""
        os.makedirs(self._directory_path, exist_ok=True)
        source = self._remote_job_id
        if source is None:
            return
        if source == self._local_job_id:
            kept = self._kept_at()  # this job's own copy (e.g. after a requeue)
            if os.path.isdir(kept) and os.path.realpath(kept) != os.path.realpath(self._directory_path):
                copy_tree(kept, self._directory_path)
            return
        try:
            self._download_from(source)
        except (OSError, ValueError, tarfile.TarError, _http.HttpError) as e:
            warn(f"create_syncable_directory: cannot download '{self._key}' of job {source}: {e}")

    def _download_from(self, source):
        marker = f"/{SYNCED_DIR}/{safe_name(self._key)}/"
        temp = tempfile.mkdtemp(prefix="atlas-sync-")
        try:
            archive = os.path.join(temp, "artifacts.tgz")
            _http.download(f"{_api_base()}/job_bundle/{_http.quote(source)}", archive,
                           token=_config.token())
            found = 0
            with tarfile.open(archive, "r:*") as tar:
                for member in tar:
                    name = "/" + member.name.lstrip("./")
                    if marker not in name or not member.isfile():
                        continue
                    rel = name.split(marker, 1)[1]
                    parts = rel.split("/")
                    if not rel or ".." in parts or rel.startswith("/"):
                        continue
                    target = os.path.join(self._directory_path, *parts)
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    with tar.extractfile(member) as src, open(target, "wb") as out:
                        shutil.copyfileobj(src, out)
                    os.utime(target, (member.mtime, member.mtime))
                    found += 1
            if found == 0:
                warn(f"create_syncable_directory: job {source} kept no files under '{self._key}'")
        finally:
            shutil.rmtree(temp, ignore_errors=True)


def create_syncable_directory(key, directory_path=None, source_job_id=None):
    """A directory (a new temporary one when directory_path is None) filled
    with what job `source_job_id` (default: this job) kept under `key`; call
    .upload() to keep its files with this job's artifacts."""
    if directory_path is None:
        directory_path = mkdtemp()
    local = job_id() if in_job() else None
    return SyncableDirectory(key, directory_path, local, source_job_id or local)
