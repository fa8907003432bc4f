"""Job bundles packed the way the CLI packs them (job_source/<relative
path>, without .git, __pycache__ and .venv), but deterministic: entries in
name order, fixed times, owners and modes, and a gzip header without time or
name, so identical directories give byte-identical bundles (and the same
SHA-256, which the scheduler's bundle store is keyed by)."""

import gzip
import hashlib
import os
import stat
import tarfile

EXCLUDE = (".git", "__pycache__", ".venv")  # as `foundations submit` (runtime/cli/commands.cpp)
PREFIX = "job_source"
FIXED_MTIME = 946684800  # 2000-01-01 UTC: a fixed time, but not 0 (some tools dislike 1970)


def _entries(root):
    """(relative path, full path) of everything to pack, in name order."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in EXCLUDE)
        rel_dir = os.path.relpath(dirpath, root)
        for name in sorted(dirnames + [f for f in filenames if f not in EXCLUDE]):
            rel = name if rel_dir == "." else rel_dir + "/" + name
            out.append((rel.replace(os.sep, "/"), os.path.join(dirpath, name)))
    out.sort()
    return out


def _info(name, mode_kind, size=0, link=""):
    info = tarfile.TarInfo(name)
    info.mtime = FIXED_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.size = size
    if mode_kind == "dir":
        info.type, info.mode = tarfile.DIRTYPE, 0o755
    elif mode_kind == "link":
        info.type, info.mode, info.linkname = tarfile.SYMTYPE, 0o777, link
    else:
        info.type = tarfile.REGTYPE
        info.mode = 0o755 if mode_kind == "exec" else 0o644
    return info


def create_bundle(src_dir, out_file):
    """Packs `src_dir` into the gzip tar `out_file`; returns its SHA-256 (hex)."""
    if not os.path.isdir(src_dir):
        raise ValueError(f"{src_dir} is not a directory")
    with open(out_file, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz:
            with tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar:
                tar.addfile(_info(PREFIX, "dir"))
                for rel, full in _entries(src_dir):
                    st = os.lstat(full)
                    name = PREFIX + "/" + rel
                    if stat.S_ISLNK(st.st_mode):
                        tar.addfile(_info(name, "link", link=os.readlink(full)))
                    elif stat.S_ISDIR(st.st_mode):
                        tar.addfile(_info(name, "dir"))
                    elif stat.S_ISREG(st.st_mode):
                        kind = "exec" if st.st_mode & 0o111 else "file"
                        with open(full, "rb") as f:
                            tar.addfile(_info(name, kind, size=os.fstat(f.fileno()).st_size), f)
                    # other file types are skipped, as the CLI does
    return file_sha256(out_file)


def signature(src_dir):
    """A cheap fingerprint of what create_bundle would pack (names, types,
    sizes, times, modes, link targets): equal fingerprints, equal bundles."""
    digest = hashlib.sha256()
    for rel, full in _entries(src_dir):
        st = os.lstat(full)
        link = os.readlink(full) if stat.S_ISLNK(st.st_mode) else ""
        digest.update(f"{rel}\0{st.st_mode}\0{st.st_size}\0{st.st_mtime_ns}\0{link}\n".encode())
    return digest.hexdigest()


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
