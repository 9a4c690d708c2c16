"""The object server: serves local buckets on loopback, public objects to anyone, private ones only on a
valid, unexpired signed URL; a signed PUT URL uploads (never a public one). ``skyrig run`` starts it with
``SKYRIG_LOCAL_OBJECTS`` naming the objects folder of the environment."""

from __future__ import annotations

import hmac
import json
import os
import time
from pathlib import Path
from urllib.parse import parse_qs

from skyrig.provider import read_body
from skyrig_local.objects import BucketClient, check_key, signature, signing_key


async def app(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    upload = await read_body(receive) if scope["method"] == "PUT" else b""
    status, body = _serve(scope["method"], scope["path"], scope.get("query_string", b"").decode(), upload)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/octet-stream" if status == 200 else b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _serve(method: str, path: str, query: str, upload: bytes = b"") -> tuple[int, bytes]:
    if method not in ("GET", "HEAD", "PUT"):
        return 405, b"the object server serves GET, HEAD and signed PUT\n"
    folder = Path(os.environ["SKYRIG_LOCAL_OBJECTS"])
    # The ASGI server has already percent-decoded ``path``: decoding again would change keys holding "%".
    bucket, _, key = path.lstrip("/").partition("/")
    try:
        check_key(key)  # also refuses absolute keys: ``folder / "/etc/passwd"`` is ``/etc/passwd``
    except ValueError:
        return 404, b"no such object\n"
    settings = folder / bucket / ".bucket.json"
    if not bucket or bucket.startswith(".") or not settings.exists():
        return 404, b"no such object\n"
    properties = json.loads(settings.read_text())
    if method == "PUT" or not properties.get("public"):  # a URL signed for GET neither writes nor deletes
        params = {name: values[0] for name, values in parse_qs(query).items()}
        try:
            expires = int(params["expires"])
        except (KeyError, ValueError):
            return 403, b"this bucket is private: use a signed URL\n"
        wanted = signature(signing_key(folder), method, bucket, key, expires)
        if not hmac.compare_digest(wanted, params.get("signature", "")):
            return 403, b"the signature does not match\n"
        if expires < time.time():
            return 403, b"the signed URL has expired\n"
    if method == "PUT":
        entry = {**properties, "folder": str(folder / bucket), "name": bucket, "base_url": ""}
        BucketClient(entry).upload(key, upload)  # versioned buckets keep the previous bytes
        return 200, b""
    target = folder / bucket / "objects" / key
    if not target.is_file():
        return 404, b"no such object\n"
    return 200, target.read_bytes()
