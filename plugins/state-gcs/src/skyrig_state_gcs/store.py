"""The Cloud Storage store: an environment's state as an append-only log of numbered objects, each created
with ``ifGenerationMatch=0``, plus snapshots (the package's docstring says why and how)."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import random
import re
import threading
import time
import tomllib
import uuid
import warnings
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import requests.adapters
from google.api_core.exceptions import (
    Conflict,
    Forbidden,
    GoogleAPICallError,
    GoogleAPIError,
    NotFound,
    PreconditionFailed,
    RetryError,
    TooManyRequests,
    Unauthorized,
)
from google.auth.exceptions import DefaultCredentialsError, GoogleAuthError, RefreshError
from google.cloud import storage
from google.cloud.storage.retry import DEFAULT_RETRY

from skyrig.state import EnvironmentState, LeaseLost, Locked, NodeRecord, StateUnusable, masked

FORMAT = 1
"""The version of the objects' format; a newer one is refused (a newer skyrig wrote it)."""
DIGITS = 16
MOST_OPS = 64
"""Operations in one log entry at most (the group commit's bound)."""
SNAPSHOT_EVERY = 512
"""During writes, a snapshot once the log has grown by max(this, the number of nodes) entries since the
last one: O(N) bytes of snapshots per apply of N nodes."""
SNAPSHOT_AT_RELEASE = 16
"""At release, a snapshot once the log has grown by this many entries since the last one."""
CHUNK_NODES = 128
"""Nodes per snapshot chunk, on average."""
PATIENCE = 120.0
"""Seconds one write keeps looking for a free position of the log while others take them."""
_ENTRY = re.compile(rf"\d{{{DIGITS}}}\.json")
READERS = 16
"""Objects fetched at once when a reader catches up."""
TIMEOUT = (5.0, 30.0)
"""Seconds to connect, and to wait for an answer, per request."""
RETRY_FOR = 30.0
"""Seconds one call keeps retrying what Cloud Storage says is worth retrying (429, 5xx, a lost connection)."""
EMULATOR = "STORAGE_EMULATOR_HOST"
KEY_FILE = "GOOGLE_APPLICATION_CREDENTIALS"
FAILURES = (GoogleAPIError, GoogleAuthError, OSError)
"""What a call to Cloud Storage raises when it fails (OSError: requests' errors among them)."""


# -- what the log says ------------------------------------------------------------------------------


@dataclass
class _Lease:
    fence: int
    holder: str
    since: float
    expires: float


@dataclass
class _View:
    """The state the log describes up to ``position``."""

    position: int = 0
    fence: int = 0
    """The highest fence ever issued."""
    lease: _Lease | None = None
    serial: int = 0
    applied_at: float | None = None
    nodes: dict[str, str] = field(default_factory=dict)
    """Node id -> its record, as compact JSON (decoded afresh for every reader)."""
    intents: dict[str, list[Any]] = field(default_factory=dict)
    """Node id -> [action, token, time]."""
    runtime: dict[str, Any] = field(default_factory=dict)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _apply(view: _View, entry: dict[str, Any], chunks: Callable[[list[str]], dict[str, str]]) -> None:
    """Play one log entry onto ``view``. A fenced operation whose fence is not the lease's is ignored: its
    writer checked the fence before creating the entry, so there is none, but a reader does not rely on it."""
    for op in entry["ops"]:
        kind, lease = op["op"], view.lease
        if kind == "acquire":
            view.lease = _Lease(op["fence"], op["holder"], op["since"], op["expires"])
            view.fence = max(view.fence, op["fence"])
        elif kind == "break":
            view.lease = None
        elif lease is None or lease.fence != op["fence"]:
            continue
        elif kind == "renew":
            lease.expires = op["expires"]
        elif kind == "release":
            view.lease = None
        elif kind == "intent":
            view.intents[op["node"]] = [op["action"], op["token"], op["at"]]
        elif kind == "record":
            view.nodes[op["node"]["id"]] = _json(op["node"])
            view.intents.pop(op["node"]["id"], None)
            view.serial += 1
        elif kind == "forget":
            view.nodes.pop(op["node"], None)
            view.intents.pop(op["node"], None)
            view.serial += 1
        elif kind == "finish":
            view.runtime = op["runtime"]
            view.applied_at = op["at"]
            view.serial += 1
        elif kind == "load":
            view.nodes = chunks(op["chunks"])
            view.intents = {node: list(intent) for node, intent in op["intents"].items()}
            view.runtime = op["runtime"]
            view.applied_at = op["applied_at"]
            view.serial = max(op["serial"], view.serial + 1)
            view.fence = max(view.fence, op["highest"])
        else:
            raise ValueError(f"unknown operation {kind!r}")


def _chunked(nodes: dict[str, str]) -> dict[str, bytes]:
    """``nodes`` (id -> JSON) in chunks of about :data:`CHUNK_NODES`, each by the SHA-256 of its bytes:
    the same nodes make the same chunk, so a snapshot rewrites only the chunks that changed."""
    count = 1
    while len(nodes) > count * CHUNK_NODES:
        count *= 2
    groups: list[list[str]] = [[] for _ in range(count)]
    for node_id in nodes:
        digest = hashlib.blake2b(node_id.encode(), digest_size=8).digest()
        groups[int.from_bytes(digest, "big") % count].append(node_id)
    chunks = {}
    for group in groups:
        if group:
            body = ("{" + ",".join(f"{_json(n)}:{nodes[n]}" for n in sorted(group)) + "}").encode()
            chunks[hashlib.sha256(body).hexdigest()] = body
    return chunks


def _from(chunks: dict[str, bytes], digests: list[str]) -> dict[str, str]:
    return _unchunked(chunks[digest] for digest in digests)


def _unchunked(bodies: Iterable[bytes]) -> dict[str, str]:
    nodes: dict[str, str] = {}
    for body in bodies:
        nodes.update((node_id, _json(record)) for node_id, record in json.loads(body).items())
    return nodes


# -- writing --------------------------------------------------------------------------------------


class _Op:
    """One operation waiting to be written; ``settle`` ends the wait with a result or an error."""

    __slots__ = ("chunks", "done", "error", "fence", "holder", "kind", "payload", "result", "ttl")

    def __init__(self, kind: str, fence: int = 0, payload: dict[str, Any] | None = None, **extra: Any):
        self.kind, self.fence, self.payload = kind, fence, payload or {}
        self.holder: str = extra.get("holder", "")
        self.ttl: float = extra.get("ttl", 0.0)
        self.chunks: dict[str, bytes] = extra.get("chunks", {})
        """What the entry refers to, written before it: a ``load``'s records, by digest."""
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None

    def settle(self, result: Any = None, error: BaseException | None = None) -> None:
        self.result, self.error, self.done = result, error, True

    def outcome(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.result


class _Taken(Exception):
    """The position aimed at was created by someone else first."""


@dataclass
class _Env:
    """One environment as this handle knows it."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    """Held while reading the log into the view or writing an entry."""
    view: _View = field(default_factory=_View)
    loaded: bool = False
    snapshot: int = 0
    """The position of the newest snapshot known to exist."""
    chunks: set[str] = field(default_factory=set)
    """Digests of chunks known to exist."""
    queue: threading.Condition = field(default_factory=lambda: threading.Condition(threading.Lock()))
    pending: list[_Op] = field(default_factory=list)
    writing: bool = False


class GCSStore:
    """State of every environment of one app, under ``gs://BUCKET/PREFIX/``."""

    def __init__(self, url: str, root: Path) -> None:
        self.url = url
        self.bucket, self.prefix = _parse(url, root)
        self._envs: dict[str, _Env] = {}
        self._envs_lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._retry = DEFAULT_RETRY.with_timeout(RETRY_FOR)
        try:
            with warnings.catch_warnings():
                # gcloud's user credentials without a quota project: fine for Cloud Storage
                warnings.filterwarnings("ignore", message=".*end user credentials.*")
                self._client = storage.Client(project=None)
        except (GoogleAuthError, GoogleAPIError, OSError, ValueError) as error:
            raise self._unusable("cannot make a Cloud Storage client", error) from None
        http = self._client._http
        if isinstance(http, requests.Session):  # room for READERS and the writers at once
            adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=READERS * 2)
            http.mount("https://", adapter)
            http.mount("http://", adapter)
        self._bucket = self._client.bucket(self.bucket)
        # a list, not a GET of the bucket: it needs storage.objects.list only, which reads need anyway
        self._list(f"{self.prefix}/", most=1, what="open the bucket")

    def __repr__(self) -> str:
        return f"GCSStore({masked(self.url)!r})"

    # -- objects --------------------------------------------------------------------------------

    def _base(self, env: str) -> str:
        return f"{self.prefix}/{env}" if self.prefix else env

    def _log_key(self, env: str, position: int) -> str:
        return f"{self._base(env)}/log/{position:0{DIGITS}d}.json"

    def _snapshot_key(self, env: str, position: int) -> str:
        return f"{self._base(env)}/snapshots/{10**DIGITS - 1 - position:0{DIGITS}d}.json"

    def _chunk_key(self, env: str, digest: str) -> str:
        return f"{self._base(env)}/chunks/{digest}.json"

    def _unusable(self, what: str, error: BaseException) -> StateUnusable:
        where = f"state: {masked(self.url)}"
        if isinstance(error, RetryError) and error.cause is not None:
            error = error.cause
        emulator = os.environ.get(EMULATOR)
        endpoint = f"the emulator at {emulator}" if emulator else "Cloud Storage"
        if isinstance(error, DefaultCredentialsError) and os.environ.get(KEY_FILE):
            return StateUnusable(
                f"{where}: the credentials file that {KEY_FILE} names cannot be used ({_short(error)})",
                f"point {KEY_FILE} at a service account's key file or a workload identity federation "
                "configuration, or unset it and run gcloud auth application-default login",
            )
        if isinstance(error, DefaultCredentialsError):
            return StateUnusable(
                f"{where}: no Google credentials found (Application Default Credentials)",
                "run gcloud auth application-default login, or set GOOGLE_APPLICATION_CREDENTIALS to a "
                "service account's key file, or run where a service account is attached; skyrig.toml "
                "holds none",
            )
        if isinstance(error, RefreshError):
            return StateUnusable(
                f"{where}: the Google credentials were refused when trying to {what.removeprefix('cannot ')} "
                f"({_short(error)})",
                "log in again (gcloud auth application-default login), or check "
                "GOOGLE_APPLICATION_CREDENTIALS",
            )
        if isinstance(error, NotFound) and (
            what == "cannot open the bucket" or "bucket does not exist" in str(error).lower()
        ):
            return StateUnusable(
                f"{where}: the bucket {self.bucket!r} does not exist (in {endpoint})",
                "create it (with object versioning on), or point state at another bucket; skyrig never "
                "creates it",
            )
        if isinstance(error, Forbidden | Unauthorized):
            return StateUnusable(
                f"{where}: access denied ({error.code}) when trying to {what.removeprefix('cannot ')}",
                "the Application Default Credentials need storage.objects.list, storage.objects.get and "
                "storage.objects.create on the bucket (roles/storage.objectViewer and "
                "roles/storage.objectCreator); never storage.objects.delete",
            )
        if isinstance(error, GoogleAPICallError):
            return StateUnusable(
                f"{where}: {what}: {error.code}: {_short(error)}", "check the bucket, and the network"
            )
        return StateUnusable(
            f"{where}: {what} in {endpoint}: {_short(error)}",
            f"check the network, and {EMULATOR} if you use an emulator",
        )

    def _get(self, key: str) -> bytes:
        try:
            return self._bucket.blob(key).download_as_bytes(retry=self._retry, timeout=TIMEOUT)
        except FAILURES as error:
            raise self._unusable(f"cannot read {key}", error) from None

    def _get_many(self, keys: list[str]) -> list[bytes]:
        if len(keys) <= 2:
            return [self._get(key) for key in keys]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(READERS, thread_name_prefix="skyrig-gcs")
        return list(self._pool.map(self._get, keys))

    def _create(self, key: str, body: bytes) -> None:
        """Create ``key``; :class:`_Taken` if it exists (or another create of it is in flight)."""
        blob = self._bucket.blob(key)
        try:
            blob.upload_from_string(
                body,
                content_type="application/json",
                if_generation_match=0,
                retry=self._retry,  # safe: a create conditioned on generation 0 happens at most once
                timeout=TIMEOUT,
            )
        except PreconditionFailed:
            raise _Taken() from None
        except (Conflict, TooManyRequests):
            time.sleep(random.uniform(0.005, 0.05))
            raise _Taken() from None
        except Forbidden as error:
            # without storage.objects.delete, a create of a name that exists may be refused as a replace
            if self._exists(key):
                raise _Taken() from None
            raise self._unusable(f"cannot write {key}", error) from None
        except FAILURES as error:
            raise self._unusable(f"cannot write {key}", error) from None

    def _exists(self, key: str) -> bool:
        try:
            return bool(self._bucket.blob(key).exists(retry=self._retry, timeout=TIMEOUT))
        except FAILURES as error:
            raise self._unusable(f"cannot read {key}", error) from None

    def _list(self, prefix: str, start: str = "", most: int | None = None, what: str = "") -> list[str]:
        """The names under ``prefix`` from ``start`` on (inclusive), in order; at most ``most``."""
        try:
            listed = self._client.list_blobs(
                self._bucket,
                prefix=prefix,
                start_offset=start or None,
                max_results=most,
                fields="items(name),nextPageToken",
                retry=self._retry,
                timeout=TIMEOUT,
            )
            return [blob.name for blob in listed]
        except FAILURES as error:
            raise self._unusable(f"cannot {what or 'list ' + prefix}", error) from None

    def _decoded(self, key: str, body: bytes) -> dict[str, Any]:
        try:
            data = json.loads(body)
            version = data["v"]
        except (ValueError, KeyError, TypeError) as error:
            raise StateUnusable(
                f"state: {masked(self.url)}: {key} is damaged ({error})",
                "restore it from the bucket's noncurrent versions; without one, rebuild state from the cloud "
                "in a new prefix: skyrig state recover --env ENV",
            ) from None
        if version > FORMAT:
            raise StateUnusable(
                f"state: {masked(self.url)}: {key} has format {version}, newer than this skyrig's ({FORMAT})",
                "upgrade skyrig (pip install -U skyrig skyrig-state-gcs) to the version that wrote it",
            )
        return data

    # -- the view -------------------------------------------------------------------------------

    def _env(self, env: str) -> _Env:
        with self._envs_lock:
            return self._envs.setdefault(env, _Env())

    def _load_snapshot(self, env: str, e: _Env) -> None:
        """The view as the newest snapshot says it (empty if there is none)."""
        newest = self._list(f"{self._base(env)}/snapshots/", most=1)
        if not newest:
            e.view, e.snapshot, e.chunks = _View(), 0, set()
            return
        data = self._decoded(newest[0], self._get(newest[0]))
        digests = data["chunks"]
        bodies = self._get_many([self._chunk_key(env, digest) for digest in digests])
        lease = data["lease"]
        e.view = _View(
            position=data["position"],
            fence=data["fence"],
            lease=_Lease(*lease) if lease else None,
            serial=data["serial"],
            applied_at=data["applied_at"],
            nodes=_unchunked(bodies),
            intents=data["intents"],
            runtime=data["runtime"],
        )
        e.snapshot, e.chunks = data["position"], set(digests)

    def _catch_up(self, env: str, e: _Env) -> set[str]:
        """Bring the view up to the end of the log (from the newest snapshot when the view was never loaded,
        or lags far behind one); the ids of the entries read. Holds ``e.lock``."""
        if not e.loaded:
            self._load_snapshot(env, e)
            e.loaded = True
        prefix = f"{self._base(env)}/log/"
        keys = self._entries(prefix, e.view.position)
        if len(keys) > SNAPSHOT_EVERY:
            newest = self._list(f"{self._base(env)}/snapshots/", most=1)
            if newest and 10**DIGITS - 1 - int(newest[0].rsplit("/", 1)[1][:DIGITS]) > e.view.position:
                self._load_snapshot(env, e)
                keys = self._entries(prefix, e.view.position)
        seen: set[str] = set()
        for key, body in zip(keys, self._get_many(keys), strict=True):
            position = int(key.rsplit("/", 1)[1][:DIGITS])
            if position != e.view.position + 1:
                raise StateUnusable(
                    f"state: {masked(self.url)}: the log of environment {env!r} has no entry "
                    f"{e.view.position + 1} (objects under {prefix} were deleted)",
                    "restore them from the bucket's noncurrent versions (never delete the log's objects, nor "
                    "let a lifecycle rule expire them); without them, rebuild state in a new prefix: "
                    "skyrig state recover --env " + env,
                )
            entry = self._decoded(key, body)
            try:
                _apply(e.view, entry, lambda digests: self._fetch_chunks(env, e, digests))
            except (KeyError, TypeError, ValueError) as error:
                raise StateUnusable(
                    f"state: {masked(self.url)}: {key} does not decode ({error!r})",
                    "a newer skyrig may have written it: upgrade skyrig and skyrig-state-gcs",
                ) from None
            e.view.position = position
            seen.add(entry["id"])
        return seen

    def _entries(self, prefix: str, position: int) -> list[str]:
        """The keys of the log's entries after ``position``, in order (other objects there are no entry)."""
        start = f"{prefix}{position + 1:0{DIGITS}d}.json"
        return [key for key in self._list(prefix, start=start) if _ENTRY.fullmatch(key[len(prefix) :])]

    def _fetch_chunks(self, env: str, e: _Env, digests: list[str]) -> dict[str, str]:
        nodes = _unchunked(self._get_many([self._chunk_key(env, digest) for digest in digests]))
        e.chunks.update(digests)
        return nodes

    def _put_chunks(self, env: str, e: _Env, chunks: dict[str, bytes]) -> None:
        for digest, body in chunks.items():
            if digest not in e.chunks:
                with contextlib.suppress(_Taken):  # the same bytes are there already
                    self._create(self._chunk_key(env, digest), body)
                e.chunks.add(digest)

    def _snapshot(self, env: str, e: _Env) -> None:
        """Write a snapshot of the view (derived data: a failure only means the next reader reads more of
        the log). Holds ``e.lock``."""
        view = e.view
        try:
            chunks = _chunked(view.nodes)
            self._put_chunks(env, e, chunks)
            lease = view.lease
            manifest = {
                "v": FORMAT,
                "position": view.position,
                "fence": view.fence,
                "lease": [lease.fence, lease.holder, lease.since, lease.expires] if lease else None,
                "serial": view.serial,
                "applied_at": view.applied_at,
                "intents": view.intents,
                "runtime": view.runtime,
                "chunks": sorted(chunks),
            }
            with contextlib.suppress(_Taken):  # the same snapshot, from another process
                self._create(self._snapshot_key(env, view.position), _json(manifest).encode())
            e.snapshot = view.position
        except StateUnusable:
            pass

    # -- the write path: group commit onto the next position of the log -------------------------

    def _submit(self, env: str, op: _Op) -> Any:
        """Write ``op`` in the next entry of ``env``'s log, with whatever other threads queued meanwhile; its
        result, or its error, once the entry is written (or the operation refused)."""
        e = self._env(env)
        with e.queue:
            e.pending.append(op)
            while not op.done:
                if e.writing:
                    e.queue.wait()
                    continue
                e.writing = True
                batch = e.pending[:MOST_OPS]
                del e.pending[:MOST_OPS]
                e.queue.release()
                try:
                    with e.lock:
                        self._write(env, e, batch)
                except BaseException as error:
                    for other in batch:
                        if not other.done:
                            other.settle(
                                error=error
                                if other is op or isinstance(error, Exception)
                                else StateUnusable(f"state: {masked(self.url)}: the write was interrupted")
                            )
                finally:
                    e.queue.acquire()
                    e.writing = False
                    e.queue.notify_all()
        return op.outcome()

    def _write(self, env: str, e: _Env, batch: list[_Op]) -> None:
        deadline = time.monotonic() + PATIENCE
        fresh = False
        if not e.loaded or any(op.kind == "acquire" for op in batch):
            self._catch_up(env, e)
            fresh = True
        while True:
            now = time.time()
            valid, refused = self._check(env, e.view, batch, now)
            if refused and not fresh:  # the view may lag: look again before refusing
                self._catch_up(env, e)
                fresh = True
                continue
            for op, (result, error) in refused.items():
                op.settle(result, error)
            if not valid:
                return
            entry = {"v": FORMAT, "id": uuid.uuid4().hex, "at": now, "ops": [op.payload for op, _ in valid]}
            position = e.view.position + 1
            local: dict[str, bytes] = {}
            for op, _ in valid:  # what the entry refers to first
                self._put_chunks(env, e, op.chunks)
                local.update(op.chunks)
            try:
                self._create(self._log_key(env, position), _json(entry).encode())
            except _Taken:
                seen = self._catch_up(env, e)
                fresh = True
                if entry["id"] in seen:  # it was ours: a retried request that had landed
                    for op, result in valid:
                        op.settle(result)
                    return
                if time.monotonic() > deadline:
                    raise StateUnusable(
                        f"state: {masked(self.url)}: could not write to the log of environment {env!r} for "
                        f"{PATIENCE:.0f} s: other writers kept taking its next position",
                        "run the command again",
                    ) from None
                batch = [op for op in batch if not op.done]
                continue
            _apply(e.view, entry, functools.partial(_from, local))
            e.view.position = position
            for op, result in valid:
                op.settle(result)
            if e.view.position - e.snapshot >= max(SNAPSHOT_EVERY, len(e.view.nodes)):
                self._snapshot(env, e)
            return

    def _check(
        self, env: str, view: _View, batch: list[_Op], now: float
    ) -> tuple[list[tuple[_Op, Any]], dict[_Op, tuple[Any, BaseException | None]]]:
        """Which operations of ``batch`` the log allows after ``view`` (each with its result), in order, and
        what each of the others answers: renew False, release nothing, a write :class:`LeaseLost`..."""
        lease = dataclasses.replace(view.lease) if view.lease else None
        highest = view.fence
        valid: list[tuple[_Op, Any]] = []
        refused: dict[_Op, tuple[Any, BaseException | None]] = {}
        for op in batch:
            if op.kind == "acquire":
                if lease is not None and lease.expires > now:
                    refused[op] = (None, Locked(env, lease.holder, lease.since, lease.expires))
                    continue
                highest += 1
                lease = _Lease(highest, op.holder, now, now + op.ttl)
                op.payload = {"op": "acquire", **dataclasses.asdict(lease)}
                valid.append((op, highest))
            elif op.kind == "break":
                if lease is None:
                    refused[op] = (None, None)
                else:
                    lease = None
                    valid.append((op, None))
            elif lease is None or lease.fence != op.fence:
                refused[op] = {"renew": (False, None), "release": (None, None)}.get(
                    op.kind, (None, _lease_lost(env))
                )
            elif op.kind == "renew":
                lease.expires = now + op.ttl
                op.payload = {"op": "renew", "fence": op.fence, "expires": lease.expires}
                valid.append((op, True))
            elif op.kind == "release":
                lease = None
                valid.append((op, None))
            elif lease.expires < now:
                refused[op] = (None, _lease_lost(env))
            else:
                valid.append((op, None))
        return valid, refused

    # -- reading (no lease needed) --------------------------------------------------------------

    def _read(self, env: str, read: Callable[[_View], Any]) -> Any:
        e = self._env(env)
        with e.lock:
            self._catch_up(env, e)
            return read(e.view)

    def serial(self, env: str) -> int:
        return self._read(env, lambda view: view.serial)

    def applied_at(self, env: str) -> float | None:
        return self._read(env, lambda view: view.applied_at)

    def nodes(self, env: str) -> dict[str, NodeRecord]:
        records = self._read(env, lambda view: list(view.nodes.items()))
        return {node_id: NodeRecord(**json.loads(record)) for node_id, record in records}

    def snapshot(self, env: str, *, lean: bool = False) -> tuple[int, dict[str, NodeRecord]]:
        """The serial and every record at one position of the log (``skyrig.state.store.Snapshots``);
        ``lean``: each record's outputs and drift empty and its ``updated_at`` 0 (what a plan reads)."""
        serial, records = self._read(env, lambda view: (view.serial, list(view.nodes.items())))
        nodes = {node_id: NodeRecord(**json.loads(record)) for node_id, record in records}
        if lean:
            for node in nodes.values():
                node.outputs, node.drift, node.updated_at = {}, [], 0.0
        return serial, nodes

    def intents(self, env: str) -> dict[str, str]:
        return self._read(env, lambda view: {node: intent[0] for node, intent in view.intents.items()})

    def runtime_configs(self, env: str) -> dict[str, dict[str, Any]]:
        return json.loads(self._read(env, lambda view: _json(view.runtime)))

    # -- the lease ------------------------------------------------------------------------------

    def acquire(self, env: str, holder: str, ttl: float) -> int:
        return self._submit(env, _Op("acquire", holder=holder, ttl=ttl))

    def renew(self, env: str, fence: int, ttl: float) -> bool:
        return self._submit(env, _Op("renew", fence, ttl=ttl))

    def release(self, env: str, fence: int) -> None:
        self._submit(env, _Op("release", fence, {"op": "release", "fence": fence}))
        e = self._env(env)
        with e.lock:
            if e.loaded and e.view.position - e.snapshot >= SNAPSHOT_AT_RELEASE:
                self._snapshot(env, e)

    # -- writing (each one entry of the log, or part of one, fenced) ----------------------------

    def add_intent(self, env: str, fence: int, node_id: str, action: str, token: str) -> None:
        payload = {"op": "intent", "fence": fence, "node": node_id, "action": action, "token": token}
        self._submit(env, _Op("intent", fence, {**payload, "at": time.time()}))

    def record(self, env: str, fence: int, node: NodeRecord) -> None:
        written = {**dataclasses.asdict(node), "updated_at": time.time()}
        self._submit(env, _Op("record", fence, {"op": "record", "fence": fence, "node": written}))

    def forget(self, env: str, fence: int, node_id: str) -> None:
        self._submit(env, _Op("forget", fence, {"op": "forget", "fence": fence, "node": node_id}))

    def finish(self, env: str, fence: int, runtime: dict[str, dict[str, Any]]) -> None:
        payload = {"op": "finish", "fence": fence, "at": time.time(), "runtime": json.loads(_json(runtime))}
        self._submit(env, _Op("finish", fence, payload))

    # -- moving state between stores, breaking a lease (skyrig.state.StateTransfer) -------------

    def export(self, env: str) -> EnvironmentState:
        def exported(view: _View) -> EnvironmentState:
            return EnvironmentState(
                nodes={node_id: NodeRecord(**json.loads(record)) for node_id, record in view.nodes.items()},
                intents={node: (intent[0], intent[1]) for node, intent in view.intents.items()},
                runtime=json.loads(_json(view.runtime)),
                applied_at=view.applied_at,
                serial=view.serial,
                fence=view.fence,
            )

        return self._read(env, exported)

    def load(self, env: str, fence: int, state: EnvironmentState) -> None:
        nodes = {node_id: _json(dataclasses.asdict(record)) for node_id, record in state.nodes.items()}
        chunks = _chunked(nodes)  # written before the entry, which names them
        now = time.time()
        payload = {
            "op": "load",
            "fence": fence,
            "chunks": sorted(chunks),
            "intents": {node: [action, token, now] for node, (action, token) in state.intents.items()},
            "runtime": json.loads(_json(state.runtime)),
            "applied_at": state.applied_at,
            "serial": state.serial,
            "highest": state.fence,
        }
        self._submit(env, _Op("load", fence, payload, chunks=chunks))

    def break_lease(self, env: str) -> None:
        self._submit(env, _Op("break", 0, {"op": "break"}))

    # -- the handle -----------------------------------------------------------------------------

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)
        self._client.close()


def _lease_lost(env: str) -> LeaseLost:
    return LeaseLost(
        f"the lock on environment {env!r} was lost; nothing more is written",
        "another apply may have taken over: run skyrig status to see where things stand",
    )


def _parse(url: str, root: Path) -> tuple[str, str]:
    """``gs://BUCKET/PREFIX`` -> (bucket, prefix); no prefix: the app's name (``SKYRIG_APP``, else
    ``skyrig.toml``'s ``app``), so that every app has one of its own."""
    found = re.fullmatch(r"gs://([^/?#]*)(/[^?#]*)?", url)
    if found is None or "@" in found[1] or ":" in found[1]:
        raise StateUnusable(
            f"state: {masked(url)} is not a Cloud Storage state URL: gs://BUCKET/PREFIX, with no "
            "credentials, port or query in it",
            "credentials come from Google's Application Default Credentials (gcloud auth "
            "application-default login, GOOGLE_APPLICATION_CREDENTIALS, an attached service account) and an "
            f"emulator's address from {EMULATOR}, never from the URL",
        )
    bucket, prefix = found[1], (found[2] or "").strip("/")
    if not _bucket_name(bucket):
        raise StateUnusable(
            f"state: {masked(url)}: {bucket!r} is not a bucket name (3 to 63 lowercase letters, digits, "
            "'-', '_' and '.', starting and ending with a letter or digit)",
            "write the URL as gs://BUCKET/PREFIX",
        )
    if not prefix:
        prefix = _app(root)
        if not prefix:
            raise StateUnusable(
                f"state: {masked(url)} has no prefix, and no app name says one",
                "write the URL as gs://BUCKET/PREFIX: one prefix per app",
            )
    return bucket, prefix


def _bucket_name(name: str) -> bool:
    """Cloud Storage's rule: 3 to 63 characters, or up to 222 in dot-separated parts of at most 63."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*[a-z0-9]", name) or ".." in name:
        return False
    parts = name.split(".")
    return 3 <= len(name) <= (222 if len(parts) > 1 else 63) and all(len(part) <= 63 for part in parts)


def _short(error: BaseException) -> str:
    """An error's text, on one line and cut short (a response body can be long)."""
    text = " ".join(str(getattr(error, "message", "") or error).split())
    return text if len(text) <= 300 else text[:297] + "..."


def _app(root: Path) -> str | None:
    app = next((value for key, value in os.environ.items() if key.upper() == "SKYRIG_APP"), None)
    if app:
        return app
    try:
        return tomllib.loads((root / "skyrig.toml").read_text(encoding="utf-8")).get("app")
    except (OSError, tomllib.TOMLDecodeError):
        return None
