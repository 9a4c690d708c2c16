"""The state store over an object store: each environment's log read into a view, written by group commit,
and snapshotted (the package's docstring says why and how)."""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from skyrig.state import EnvironmentState, NodeRecord, StateUnusable, masked
from skyrig.state.objectlog.objects import ObjectStore
from skyrig.state.objectlog.view import FORMAT, Lease, View, apply, chunked, compact, unchunked
from skyrig.state.objectlog.writes import Op, check

DIGITS = 16
"""Digits of a position in an object's key."""
MOST_OPS = 64
"""Operations in one log entry at most (the group commit's bound)."""
SNAPSHOT_EVERY = 512
"""During writes, a snapshot once the log has grown by max(this, the number of nodes) entries since the
last one: O(N) bytes of snapshots per apply of N nodes."""
SNAPSHOT_AT_RELEASE = 16
"""At release, a snapshot once the log has grown by this many entries since the last one."""
PATIENCE = 120.0
"""Seconds one write keeps looking for a free position of the log while others take them."""
READERS = 16
"""Objects fetched at once when a reader catches up."""
_ENTRY = re.compile(rf"\d{{{DIGITS}}}\.json")


def _from(chunks: dict[str, bytes], digests: list[str]) -> dict[str, str]:
    return unchunked(chunks[digest] for digest in digests)


@dataclass
class _Env:
    """One environment as this handle knows it."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    """Held while reading the log into the view or writing an entry."""
    view: View = field(default_factory=View)
    loaded: bool = False
    snapshot: int = 0
    """The position of the newest snapshot known to exist."""
    chunks: set[str] = field(default_factory=set)
    """Digests of chunks known to exist."""
    queue: threading.Condition = field(default_factory=lambda: threading.Condition(threading.Lock()))
    pending: list[Op] = field(default_factory=list)
    writing: bool = False


class ObjectLogStore:
    """State of every environment of one app, under ``prefix`` in ``objects``: a
    :class:`~skyrig.state.StateStore`, :class:`~skyrig.state.StateTransfer` and
    :class:`~skyrig.state.store.Snapshots`. A store plugin subclasses it, to open its client and name
    itself, and passes its :class:`ObjectStore` up."""

    def __init__(self, objects: ObjectStore, url: str, prefix: str, *, package: str, versions: str) -> None:
        """``url`` is the store's as configured (errors show it masked); ``package``, the distribution the
        hints tell to upgrade (``skyrig-state-s3``); ``versions``, where the hints say a deleted or damaged
        object is restored from (``the bucket's versions``)."""
        self.url = url
        self.prefix = prefix
        self._objects = objects
        self._package = package
        self._versions = versions
        self._envs: dict[str, _Env] = {}
        self._envs_lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({masked(self.url)!r})"

    # -- objects --------------------------------------------------------------------------------

    def _base(self, env: str) -> str:
        return f"{self.prefix}/{env}" if self.prefix else env

    def _log_key(self, env: str, position: int) -> str:
        return f"{self._base(env)}/log/{position:0{DIGITS}d}.json"

    def _snapshot_key(self, env: str, position: int) -> str:
        return f"{self._base(env)}/snapshots/{10**DIGITS - 1 - position:0{DIGITS}d}.json"

    def _chunk_key(self, env: str, digest: str) -> str:
        return f"{self._base(env)}/chunks/{digest}.json"

    def _read_many(self, keys: list[str]) -> list[bytes]:
        if len(keys) <= 2:
            return [self._objects.read(key) for key in keys]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(READERS, thread_name_prefix=self._package)
        return list(self._pool.map(self._objects.read, keys))

    def _decoded(self, key: str, body: bytes) -> dict[str, Any]:
        try:
            data = json.loads(body)
            version = data["v"]
        except (ValueError, KeyError, TypeError) as error:
            raise StateUnusable(
                f"state: {masked(self.url)}: {key} is damaged ({error})",
                f"restore it from {self._versions}; without one, rebuild state from the cloud in a new "
                "prefix: skyrig state recover --env ENV",
            ) from None
        if version > FORMAT:
            raise StateUnusable(
                f"state: {masked(self.url)}: {key} has format {version}, newer than this skyrig's ({FORMAT})",
                f"upgrade skyrig (pip install -U skyrig {self._package}) to the version that wrote it",
            )
        return data

    # -- the view -------------------------------------------------------------------------------

    def _env(self, env: str) -> _Env:
        with self._envs_lock:
            return self._envs.setdefault(env, _Env())

    def _load_snapshot(self, env: str, e: _Env) -> None:
        """The view as the newest snapshot says it (empty if there is none)."""
        newest = self._objects.list(f"{self._base(env)}/snapshots/", most=1)
        if not newest:
            e.view, e.snapshot, e.chunks = View(), 0, set()
            return
        data = self._decoded(newest[0], self._objects.read(newest[0]))
        digests = data["chunks"]
        bodies = self._read_many([self._chunk_key(env, digest) for digest in digests])
        lease = data["lease"]
        e.view = View(
            position=data["position"],
            fence=data["fence"],
            lease=Lease(*lease) if lease else None,
            serial=data["serial"],
            applied_at=data["applied_at"],
            nodes=unchunked(bodies),
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
            newest = self._objects.list(f"{self._base(env)}/snapshots/", most=1)
            if newest and 10**DIGITS - 1 - int(newest[0].rsplit("/", 1)[1][:DIGITS]) > e.view.position:
                self._load_snapshot(env, e)
                keys = self._entries(prefix, e.view.position)
        seen: set[str] = set()
        for key, body in zip(keys, self._read_many(keys), strict=True):
            position = int(key.rsplit("/", 1)[1][:DIGITS])
            if position != e.view.position + 1:
                raise StateUnusable(
                    f"state: {masked(self.url)}: the log of environment {env!r} has no entry "
                    f"{e.view.position + 1} (objects under {prefix} were deleted)",
                    f"restore them from {self._versions} (never delete the log's objects, nor let a "
                    "lifecycle rule expire them); without them, rebuild state in a new prefix: skyrig state "
                    "recover --env " + env,
                )
            entry = self._decoded(key, body)
            try:
                apply(e.view, entry, lambda digests: self._fetch_chunks(env, e, digests))
            except (KeyError, TypeError, ValueError) as error:
                raise StateUnusable(
                    f"state: {masked(self.url)}: {key} does not decode ({error!r})",
                    f"a newer skyrig may have written it: upgrade skyrig and {self._package}",
                ) from None
            e.view.position = position
            seen.add(entry["id"])
        return seen

    def _entries(self, prefix: str, position: int) -> list[str]:
        """The keys of the log's entries after ``position``, in order (other objects there are no entry)."""
        after = f"{prefix}{position:0{DIGITS}d}.json"
        return [
            key for key in self._objects.list(prefix, after=after) if _ENTRY.fullmatch(key[len(prefix) :])
        ]

    def _fetch_chunks(self, env: str, e: _Env, digests: list[str]) -> dict[str, str]:
        nodes = unchunked(self._read_many([self._chunk_key(env, digest) for digest in digests]))
        e.chunks.update(digests)
        return nodes

    def _put_chunks(self, env: str, e: _Env, chunks: dict[str, bytes]) -> None:
        for digest, body in chunks.items():
            if digest not in e.chunks:
                self._objects.create(self._chunk_key(env, digest), body)  # False: the same bytes are there
                e.chunks.add(digest)

    def _snapshot(self, env: str, e: _Env) -> None:
        """Write a snapshot of the view (derived data: a failure only means the next reader reads more of
        the log). Holds ``e.lock``."""
        view = e.view
        try:
            chunks = chunked(view.nodes)
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
            # False: the same snapshot, from another process
            self._objects.create(self._snapshot_key(env, view.position), compact(manifest).encode())
            e.snapshot = view.position
        except StateUnusable:
            pass

    # -- the write path: group commit onto the next position of the log -------------------------

    def _submit(self, env: str, op: Op) -> Any:
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

    def _write(self, env: str, e: _Env, batch: list[Op]) -> None:
        deadline = time.monotonic() + PATIENCE
        fresh = False
        if not e.loaded or any(op.kind == "acquire" for op in batch):
            self._catch_up(env, e)
            fresh = True
        while True:
            now = time.time()
            valid, refused = check(env, e.view, batch, now)
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
            if not self._objects.create(self._log_key(env, position), compact(entry).encode()):
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
                    )
                batch = [op for op in batch if not op.done]
                continue
            apply(e.view, entry, functools.partial(_from, local))
            e.view.position = position
            for op, result in valid:
                op.settle(result)
            if e.view.position - e.snapshot >= max(SNAPSHOT_EVERY, len(e.view.nodes)):
                self._snapshot(env, e)
            return

    # -- reading (no lease needed) --------------------------------------------------------------

    def _read(self, env: str, read: Callable[[View], Any]) -> Any:
        e = self._env(env)
        with e.lock:
            self._catch_up(env, e)
            return read(e.view)

    def serial(self, env: str) -> int:
        """See :meth:`skyrig.state.StateStore.serial`."""
        return self._read(env, lambda view: view.serial)

    def applied_at(self, env: str) -> float | None:
        """See :meth:`skyrig.state.StateStore.applied_at`."""
        return self._read(env, lambda view: view.applied_at)

    def nodes(self, env: str) -> dict[str, NodeRecord]:
        """See :meth:`skyrig.state.StateStore.nodes`."""
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
        """See :meth:`skyrig.state.StateStore.intents`."""
        return self._read(env, lambda view: {node: intent[0] for node, intent in view.intents.items()})

    def runtime_configs(self, env: str) -> dict[str, dict[str, Any]]:
        """See :meth:`skyrig.state.StateStore.runtime_configs`."""
        return json.loads(self._read(env, lambda view: compact(view.runtime)))

    # -- the lease ------------------------------------------------------------------------------

    def acquire(self, env: str, holder: str, ttl: float) -> int:
        """See :meth:`skyrig.state.StateStore.acquire`."""
        return self._submit(env, Op("acquire", holder=holder, ttl=ttl))

    def renew(self, env: str, fence: int, ttl: float) -> bool:
        """See :meth:`skyrig.state.StateStore.renew`."""
        return self._submit(env, Op("renew", fence, ttl=ttl))

    def release(self, env: str, fence: int) -> None:
        """See :meth:`skyrig.state.StateStore.release`; a snapshot afterwards if the log has grown enough."""
        self._submit(env, Op("release", fence, {"op": "release", "fence": fence}))
        e = self._env(env)
        with e.lock:
            if e.loaded and e.view.position - e.snapshot >= SNAPSHOT_AT_RELEASE:
                self._snapshot(env, e)

    # -- writing (each one entry of the log, or part of one, fenced) ----------------------------

    def add_intent(self, env: str, fence: int, node_id: str, action: str, token: str) -> None:
        """See :meth:`skyrig.state.StateStore.add_intent`."""
        payload = {"op": "intent", "fence": fence, "node": node_id, "action": action, "token": token}
        self._submit(env, Op("intent", fence, {**payload, "at": time.time()}))

    def record(self, env: str, fence: int, node: NodeRecord) -> None:
        """See :meth:`skyrig.state.StateStore.record`."""
        written = {**dataclasses.asdict(node), "updated_at": time.time()}
        self._submit(env, Op("record", fence, {"op": "record", "fence": fence, "node": written}))

    def forget(self, env: str, fence: int, node_id: str) -> None:
        """See :meth:`skyrig.state.StateStore.forget`."""
        self._submit(env, Op("forget", fence, {"op": "forget", "fence": fence, "node": node_id}))

    def finish(self, env: str, fence: int, runtime: dict[str, dict[str, Any]]) -> None:
        """See :meth:`skyrig.state.StateStore.finish`."""
        payload = {"op": "finish", "fence": fence, "at": time.time(), "runtime": json.loads(compact(runtime))}
        self._submit(env, Op("finish", fence, payload))

    # -- moving state between stores, breaking a lease (skyrig.state.StateTransfer) -------------

    def export(self, env: str) -> EnvironmentState:
        """See :meth:`skyrig.state.StateTransfer.export`."""

        def exported(view: View) -> EnvironmentState:
            return EnvironmentState(
                nodes={node_id: NodeRecord(**json.loads(record)) for node_id, record in view.nodes.items()},
                intents={node: (intent[0], intent[1]) for node, intent in view.intents.items()},
                runtime=json.loads(compact(view.runtime)),
                applied_at=view.applied_at,
                serial=view.serial,
                fence=view.fence,
            )

        return self._read(env, exported)

    def load(self, env: str, fence: int, state: EnvironmentState) -> None:
        """See :meth:`skyrig.state.StateTransfer.load`: the records in chunks, then one entry naming them."""
        nodes = {node_id: compact(dataclasses.asdict(record)) for node_id, record in state.nodes.items()}
        chunks = chunked(nodes)  # written before the entry, which names them
        now = time.time()
        payload = {
            "op": "load",
            "fence": fence,
            "chunks": sorted(chunks),
            "intents": {node: [action, token, now] for node, (action, token) in state.intents.items()},
            "runtime": json.loads(compact(state.runtime)),
            "applied_at": state.applied_at,
            "serial": state.serial,
            "highest": state.fence,
        }
        self._submit(env, Op("load", fence, payload, chunks=chunks))

    def break_lease(self, env: str) -> None:
        """See :meth:`skyrig.state.StateTransfer.break_lease`."""
        self._submit(env, Op("break", 0, {"op": "break"}))

    # -- the handle -----------------------------------------------------------------------------

    def close(self) -> None:
        """See :meth:`skyrig.state.StateStore.close`."""
        if self._pool is not None:
            self._pool.shutdown(wait=False)
        self._objects.close()
