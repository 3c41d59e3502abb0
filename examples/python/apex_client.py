"""A small client for the APEX Portraits API, on the Python standard library only (no install).

The API's address and key come from the environment: APEX_API_URL (default http://localhost:8001)
and APEX_API_KEY (leave it unset when the API runs open). portrait.py and generation.py use it.
"""

import json
import mimetypes
import os
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

API_URL = os.environ.get("APEX_API_URL", "http://localhost:8001").rstrip("/")
API_KEY = os.environ.get("APEX_API_KEY", "")
TERMINAL = {"completed", "failed_validation", "failed", "cancelled"}


class ApiError(Exception):
    """The API's error shape: {"error": {"code", "message", "field"}}."""

    def __init__(self, status, body):
        error = body.get("error", {}) if isinstance(body, dict) else {}
        self.status, self.code, self.field = status, error.get("code"), error.get("field")
        super().__init__(f"{status} {error.get('code', '')}: {error.get('message', body)}")


def _open(method, path, body=None, headers=None, timeout=60):
    """Opens one API request (or a full URL, such as a presigned image URL, which takes no key)."""
    url = path if path.startswith("http") else API_URL + path
    headers = dict(headers or {})
    if API_KEY and not path.startswith("http"):
        headers["Authorization"] = f"Bearer {API_KEY}"
    try:
        return urllib.request.urlopen(urllib.request.Request(url, data=body, method=method, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as err:
        raw = err.read()
        try:
            raise ApiError(err.code, json.loads(raw)) from None
        except json.JSONDecodeError:
            raise ApiError(err.code, raw.decode(errors="replace")) from None


def call(method, path, json_body=None, headers=None):
    """A JSON request; returns the decoded answer."""
    body = None
    headers = dict(headers or {})
    if json_body is not None:
        body = json.dumps(json_body).encode()
        headers["Content-Type"] = "application/json"
    with _open(method, path, body, headers) as response:
        return json.loads(response.read())


def post_multipart(path, fields, files, headers=None):
    """multipart/form-data: `fields` {name: text}, `files` {name: file path}."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, file in files.items():
        file = Path(file)
        kind = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{file.name}"\r\nContent-Type: {kind}\r\n\r\n'.encode())
        parts.append(file.read_bytes() + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    headers = {**(headers or {}), "Content-Type": f"multipart/form-data; boundary={boundary}"}
    with _open("POST", path, b"".join(parts), headers) as response:
        return json.loads(response.read())


def follow_events(path):
    """Yields (event, data) from a Server-Sent Events stream until the terminal status; a dropped
    connection is resumed with Last-Event-ID, so nothing is missed or seen twice."""
    last_id = None
    while True:
        try:
            with _open("GET", path, headers={"Accept": "text/event-stream", **({"Last-Event-ID": last_id} if last_id else {})}) as stream:
                event, data = "message", []
                for raw in stream:
                    line = raw.decode().rstrip("\r\n")
                    if line.startswith("id:"):
                        last_id = line[3:].strip()
                    elif line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].strip())
                    elif line == "" and data:
                        payload = json.loads("\n".join(data))
                        yield event, payload
                        if event == "status" and payload.get("status") in TERMINAL:
                            return
                        event, data = "message", []
        except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
            print(f"event stream interrupted ({err}); resuming")
            time.sleep(2)


def download(path, target):
    """Saves an image (an API path or a presigned URL) to `target`; returns (path, content type, bytes)."""
    with _open("GET", path) as response:
        data = response.read()
        kind = response.headers.get("Content-Type", "")
    target = Path(target)
    if target.suffix == "":
        target = target.with_suffix("." + (kind.split("/")[-1] or "bin"))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return target, kind, len(data)


def new_idempotency_key():
    """One key per request: sent again after a lost answer, it returns the first job, not a second."""
    return str(uuid.uuid4())
