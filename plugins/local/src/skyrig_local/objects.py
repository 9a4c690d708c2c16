"""Object storage: a folder per bucket under ``.skyrig/local/ENV/objects/``, served over HTTP on loopback
by the object server (``skyrig run`` starts it) for public buckets and signed URLs; versions kept when asked.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import shutil
import time
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote, urlencode

from skyrig.provider import Context, Node, NodeType, Observed, Scope, duration_seconds
from skyrig_local.records import write_atomically

DEFAULT_PORT = 4999


def objects_folder(context: Context) -> Path:
    return (
        context.client.root / context.settings.data / context.environment.name.replace(":", "-") / "objects"
    )


def signing_key(folder: Path) -> bytes:
    """The environment's key for signed URLs (made once, readable only by the user)."""
    path = folder / ".signing-key"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().encode()


def check_key(key: str) -> str:
    """``key`` if it names an object inside a bucket (a relative path like ``a/b.txt``), else a ValueError.

    The object server applies the same check to request paths, so no key reaches outside the bucket.
    """
    parts = PurePosixPath(key).parts
    if (
        not key
        or key.startswith("/")
        or "\0" in key
        or ".." in parts
        or any(p.startswith(".") for p in parts)  # hidden names are the bucket's own (temporary files)
    ):
        raise ValueError(f"invalid object key {key!r}: use relative paths like 'a/b.txt'")
    return key


def signature(key: bytes, method: str, bucket: str, name: str, expires: int) -> str:
    message = f"{method}\n{bucket}\n{name}\n{expires}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


class BucketType(NodeType):
    """A bucket's folder and its settings."""

    type = "local.objects.bucket"
    stateful = True
    invariant = frozenset({"public"})

    def read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        settings = Path(provider_id) / ".bucket.json"
        if not settings.exists():
            return None
        properties = json.loads(settings.read_text())
        return Observed(provider_id, properties, {"folder": provider_id, "base_url": _base_url(context)})

    def find(self, context: Context, node: Node) -> Observed | None:
        return self.read(context, node, str(objects_folder(context) / node.properties["name"]))

    def create(self, context: Context, node: Node) -> Observed:
        folder = objects_folder(context) / node.properties["name"]
        (folder / "objects").mkdir(parents=True, exist_ok=True)
        return self.update(context, node, str(folder), dict(node.properties))

    def update(self, context: Context, node: Node, provider_id: str, changes: Any) -> Observed:
        settings = Path(provider_id) / ".bucket.json"
        current = json.loads(settings.read_text()) if settings.exists() else {}
        write_atomically(settings, json.dumps({**current, **changes}, sort_keys=True))
        return self.read(context, node, provider_id)  # type: ignore[return-value]

    def delete(self, context: Context, node: Node, provider_id: str) -> None:
        shutil.rmtree(provider_id, ignore_errors=True)

    def runtime_entry(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        return {"type": self.type, **observed.properties, **observed.outputs}


def _base_url(context: Context) -> str:
    return f"http://127.0.0.1:{context.settings.objects_port}"


BUCKET = BucketType()


TYPES = (BUCKET,)


def expand(scope: Scope) -> list[Node]:
    return [
        scope.node(
            f"objects.bucket/{r.name}",
            BUCKET.type,
            {"name": r.name, "public": r.public, "versioned": r.versioned},
            resource=r,
        )
        for r in scope.of_kind("bucket")
    ]


class ObjectNotFound(KeyError):
    """No object with that key."""


class BucketClient:
    """Objects of one bucket, as files. Keys are paths like ``receipts/42.txt``."""

    def __init__(self, entry: dict[str, Any], config: dict[str, Any] | None = None) -> None:
        self.folder = Path(entry["folder"])
        self.name = entry["name"]
        self.public = entry["public"]
        self.versioned = entry["versioned"]
        self.base_url = entry["base_url"]

    def _path(self, key: str, area: str = "objects") -> Path:
        return self.folder / area / check_key(key)

    def upload(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        if self.versioned and path.exists():
            kept = self._path(key, "versions") / f"{time.time_ns()}"
            kept.parent.mkdir(parents=True, exist_ok=True)
            path.replace(kept)
        temporary = path.with_name(f".{path.name}.{time.time_ns()}")
        temporary.write_bytes(data)
        temporary.replace(path)

    def download(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):  # a "folder" is no object either
            raise ObjectNotFound(f"bucket {self.name!r} has no object {key!r}") from None

    def list(self, prefix: str = "") -> list[str]:
        root = self.folder / "objects"
        keys = (
            p.relative_to(root).as_posix()
            for p in root.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        )
        return sorted(key for key in keys if key.startswith(prefix))

    def remove(self, key: str) -> None:
        path = self._path(key)
        if self.versioned and path.exists():
            kept = self._path(key, "versions") / f"{time.time_ns()}"
            kept.parent.mkdir(parents=True, exist_ok=True)
            path.replace(kept)
        else:
            path.unlink(missing_ok=True)

    def versions(self, key: str) -> list[bytes]:
        """Earlier versions of ``key``, oldest first (versioned buckets)."""
        folder = self._path(key, "versions")
        return (
            [p.read_bytes() for p in sorted(folder.iterdir(), key=lambda p: int(p.name))]
            if folder.exists()
            else []
        )

    def public_url(self, key: str) -> str:
        if not self.public:
            raise PermissionError(f"bucket {self.name!r} is not public: use signed_url for a temporary link")
        self._path(key)
        return f"{self.base_url}/{self.name}/{quote(key)}"

    def signed_url(self, key: str, expires_in: str = "1h", method: str = "GET") -> str:
        self._path(key)
        expires = int(time.time()) + duration_seconds(expires_in)
        sig = signature(signing_key(self.folder.parent), method.upper(), self.name, key, expires)
        return f"{self.base_url}/{self.name}/{quote(key)}?{urlencode({'expires': expires, 'signature': sig})}"
