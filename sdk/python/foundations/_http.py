"""Small HTTP client on urllib: JSON calls and file uploads to the
scheduler, with the bearer token the CLI would send."""

import json
import os
import urllib.error
import urllib.parse
import urllib.request
import uuid


class HttpError(Exception):
    def __init__(self, status, message):
        super().__init__(f"HTTP {status}: {message}" if status else message)
        self.status = status
        self.message = message


def _message(raw):
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
    try:
        doc = json.loads(text)
        if isinstance(doc, dict):
            for k in ("error", "message", "detail"):
                if isinstance(doc.get(k), str):
                    return doc[k]
        if isinstance(doc, str):
            return doc
    except ValueError:
        pass
    return text.strip().split("\n", 1)[0][:200]


def request(method, url, body=None, headers=None, token=None, timeout=60):
    """(status, raw body); raises HttpError on a connection failure only."""
    hdrs = dict(headers or {})
    if token is not None:
        hdrs.setdefault("Authorization", f"Bearer {token}")
    req = urllib.request.Request(url, data=body, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (OSError, ValueError) as e:
        raise HttpError(0, f"cannot reach {url}: {e}") from e


def call_json(method, url, payload=None, token=None, ok=(200, 201), timeout=60):
    """The JSON answer of a call; HttpError when the status is not in `ok`."""
    body = json.dumps(payload).encode() if payload is not None else None
    headers = {"Content-Type": "application/json"} if body is not None else {}
    status, raw = request(method, url, body, headers, token, timeout)
    if status not in ok:
        raise HttpError(status, _message(raw))
    return json.loads(raw) if raw else None


def upload_file(url, field, path, filename, token=None, timeout=600):
    """POSTs `path` as multipart/form-data field `field`; (status, raw)."""
    boundary = "atlas-" + uuid.uuid4().hex
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; "
            f"filename=\"{filename}\"\r\nContent-Type: application/gzip\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    with open(path, "rb") as f:
        data = f.read()
    return request("POST", url, head + data + tail,
                   {"Content-Type": f"multipart/form-data; boundary={boundary}"}, token, timeout)


def quote(part):
    return urllib.parse.quote(str(part), safe="")


def download(url, target, token=None, timeout=600):
    """Saves the answer's body at `target`; HttpError unless 200."""
    hdrs = {"Authorization": f"Bearer {token}"} if token is not None else {}
    req = urllib.request.Request(url, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r, open(target, "wb") as out:
            while True:
                chunk = r.read(1 << 20)
                if not chunk:
                    break
                out.write(chunk)
    except urllib.error.HTTPError as e:
        raise HttpError(e.code, _message(e.read())) from e
    except OSError as e:
        if os.path.exists(target):
            os.unlink(target)
        raise HttpError(0, f"cannot reach {url}: {e}") from e
