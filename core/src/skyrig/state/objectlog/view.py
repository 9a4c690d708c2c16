"""What a log says: the state its entries describe up to a position (:class:`View`), one entry played onto
it (:func:`apply`), and the records of a snapshot in content-addressed chunks (:func:`chunked`)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

FORMAT = 1
"""The version of the objects' format; a newer one is refused (a newer skyrig wrote it)."""
CHUNK_NODES = 128
"""Nodes per snapshot chunk, on average."""


@dataclass
class Lease:
    """The lease as the log says it."""

    fence: int
    holder: str
    since: float
    expires: float


@dataclass
class View:
    """The state the log describes up to ``position``."""

    position: int = 0
    fence: int = 0
    """The highest fence ever issued."""
    lease: Lease | None = None
    serial: int = 0
    applied_at: float | None = None
    nodes: dict[str, str] = field(default_factory=dict)
    """Node id -> its record, as compact JSON (decoded afresh for every reader)."""
    intents: dict[str, list[Any]] = field(default_factory=dict)
    """Node id -> [action, token, time]."""
    runtime: dict[str, Any] = field(default_factory=dict)


def compact(value: Any) -> str:
    """``value`` as the objects hold it: JSON with sorted keys and no spaces."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def apply(view: View, entry: dict[str, Any], chunks: Callable[[list[str]], dict[str, str]]) -> None:
    """Play one log entry onto ``view``; ``chunks`` gives the records of the chunks a ``load`` names. A
    fenced operation whose fence is not the lease's is ignored: its writer checked the fence before creating
    the entry, so there is none, but a reader does not rely on it."""
    for op in entry["ops"]:
        kind, lease = op["op"], view.lease
        if kind == "acquire":
            view.lease = Lease(op["fence"], op["holder"], op["since"], op["expires"])
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
            view.nodes[op["node"]["id"]] = compact(op["node"])
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


def chunked(nodes: dict[str, str]) -> dict[str, bytes]:
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
            body = ("{" + ",".join(f"{compact(n)}:{nodes[n]}" for n in sorted(group)) + "}").encode()
            chunks[hashlib.sha256(body).hexdigest()] = body
    return chunks


def unchunked(bodies: Iterable[bytes]) -> dict[str, str]:
    """The records (id -> JSON) of chunks' bodies."""
    nodes: dict[str, str] = {}
    for body in bodies:
        nodes.update((node_id, compact(record)) for node_id, record in json.loads(body).items())
    return nodes
