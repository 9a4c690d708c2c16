"""Caches: Redis clusters and the typed keyspaces on them."""

from __future__ import annotations

import re
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator

from skyrig.declarations._base import Declaration, DeclarationError, Spec, qualified_name
from skyrig.declarations.types import (
    VALUE_TYPES,
    Duration,
    Name,
    Reference,
    duration_between,
    is_message_type,
)

V = TypeVar("V")

EvictionPolicy = Literal[
    "noeviction",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
]

_PATTERN = re.compile(r"^(?:[^{}]|\{[A-Za-z_]\w*\})+$")


def _check_pattern(value: str) -> str:
    if not _PATTERN.match(value):
        raise ValueError(
            f"invalid keyspace pattern {value!r}: write fixed text with {{field}} placeholders, "
            'like "session/{id}"'
        )
    return value


class CacheClusterSpec(Spec):
    """Settings of a :class:`CacheCluster`."""

    name: Name
    eviction_policy: EvictionPolicy = "allkeys-lru"
    """Which keys Redis removes when memory is full (its ``maxmemory-policy``)."""


class KeyspaceSpec(Spec):
    """Settings of a :class:`Keyspace`."""

    pattern: Annotated[str, AfterValidator(_check_pattern)]
    """The key pattern, fixed text with ``{field}`` placeholders: ``"session/{id}"``."""
    value_type: Reference
    """The type of the values stored, as ``"package.module:Name"``."""
    default_expiry: Annotated[Duration, duration_between("1s", "3650d")] | None = None
    """How long a key lives unless ``set`` says otherwise; ``None`` keeps keys until evicted."""


class CacheCluster(Declaration):
    """A Redis cache cluster, used only by the service that declares it::

    cluster = CacheCluster("sessions", eviction_policy="allkeys-lru")
    sessions = cluster.keyspace("session/{id}", value=Session, default_expiry="1h")
    """

    kind = "cache_cluster"
    spec_model = CacheClusterSpec

    def __init__(self, name: str, *, eviction_policy: EvictionPolicy = "allkeys-lru") -> None:
        self._declare(name=name, eviction_policy=eviction_policy)

    @classmethod
    def all_operations(cls) -> frozenset[str]:
        """A cluster is used through its keyspaces: passed around, it may do what they do."""
        return Keyspace.all_operations()

    def keyspace(self, pattern: str, *, value: type[V], default_expiry: str | None = None) -> Keyspace[V]:
        """A typed keyspace on this cluster: keys follow ``pattern``, values are of type ``value``."""
        return Keyspace(self, pattern, value=value, default_expiry=default_expiry)


class Keyspace(Declaration, Generic[V]):
    """Keys of one pattern on a :class:`CacheCluster`, holding values of one type."""

    kind = "keyspace"
    spec_model = KeyspaceSpec
    references = {"value": "type"}
    operations = {"get": "get", "set": "set", "delete": "delete"}

    def __init__(
        self, cluster: CacheCluster, pattern: str, *, value: type[V], default_expiry: str | None = None
    ) -> None:
        if not is_message_type(value, json_types=True):
            shown = getattr(value, "__name__", value)
            raise DeclarationError(f"keyspace({pattern!r}): value {shown!r} is not {VALUE_TYPES}")
        self.cluster = cluster
        self.value_type = value
        self._declare(pattern=pattern, value_type=qualified_name(value), default_expiry=default_expiry)

    @property
    def name(self) -> str:
        """The pattern, which names a keyspace within its cluster."""
        return self.spec.pattern  # type: ignore[attr-defined]

    def key(self, *parts: Any, **fields: Any) -> str:
        """The key for these placeholder values, given in order or by name: ``key(42)`` -> ``cart/42``."""
        names = re.findall(r"\{(\w+)\}", self.name)
        if len(parts) > len(names):
            raise TypeError(f"keyspace {self.name!r} takes {len(names)} key part(s), got {len(parts)}")
        values = dict(zip(names, parts, strict=False)) | fields
        missing = [name for name in names if name not in values]
        if missing:
            raise TypeError(f"keyspace {self.name!r}: missing {', '.join(missing)}")
        return re.sub(r"\{(\w+)\}", lambda match: str(values[match.group(1)]), self.name)

    def get(self, *parts: Any, **fields: Any) -> V | None:
        """The value at the key, or None if there is none (or it expired)."""
        from skyrig.runtime.binding import client

        data = client(self, "get").get(self.key(*parts, **fields))
        return None if data is None else _decode(self.value_type, data)

    def set(self, *parts: Any, value: V | None = None, expiry: str | None = None, **fields: Any) -> None:
        """Store ``value`` (the last positional argument, or ``value=``); it expires after ``expiry``, else
        the keyspace's ``default_expiry``."""
        from skyrig.runtime.binding import client
        from skyrig.values import duration_seconds

        if value is None:
            *parts, value = parts  # type: ignore[assignment]
        if not isinstance(value, self.value_type):
            raise TypeError(
                f"keyspace {self.name!r} holds {self.value_type.__name__}, not {type(value).__name__}"
            )
        lifetime = expiry or self.spec.default_expiry  # type: ignore[attr-defined]
        seconds = duration_seconds(lifetime) if lifetime else None
        client(self, "set").set(self.key(*parts, **fields), _encode(value), seconds)

    def delete(self, *parts: Any, **fields: Any) -> None:
        """Remove the key (no error if it is not there)."""
        from skyrig.runtime.binding import client

        client(self, "delete").delete(self.key(*parts, **fields))


def _encode(value: Any) -> bytes:
    import dataclasses
    import json

    if hasattr(value, "model_dump_json"):
        return value.model_dump_json().encode()
    if dataclasses.is_dataclass(value):
        return json.dumps(dataclasses.asdict(value)).encode()  # type: ignore[arg-type]
    return json.dumps(value).encode()


def _decode(value_type: type, data: bytes) -> Any:
    import dataclasses
    import json

    if hasattr(value_type, "model_validate_json"):
        return value_type.model_validate_json(data)
    if dataclasses.is_dataclass(value_type):
        return value_type(**json.loads(data))
    return value_type(json.loads(data))
