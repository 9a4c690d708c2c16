"""State: what was provisioned, per environment, written the moment each node completes.

The store is a plugin point chosen by the URL scheme of ``state`` in ``skyrig.toml``: ``sqlite://`` is
built in; other backends register a factory in the entry point group ``skyrig.state`` under their scheme.
Every store is a :class:`StateStore` (its contract: :mod:`skyrig.state.store`) and passes the shared
store test suite, :mod:`skyrig.state.suite`. Secret values never reach the store: node properties and
outputs hold references only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skyrig.engine.contract import Observed
from skyrig.engine.graph import Node
from skyrig.errors import UserError
from skyrig.state.store import STORE_METHODS, StateStore, StateTransfer

__all__ = [
    "EnvironmentState",
    "LeaseLost",
    "Locked",
    "NodeRecord",
    "StateMoved",
    "StateStore",
    "StateTransfer",
    "StateUnusable",
    "masked",
    "open_store",
]


class Locked(UserError):
    """Another process holds the environment's lock."""

    def __init__(self, environment: str, holder: str, since: float, expires: float) -> None:
        import time

        held = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since))
        left = max(0.0, expires - time.time())
        super().__init__(
            f"environment {environment!r} is locked by {holder} since {held}",
            f"wait for it to finish (or pass --wait); if that process died, its lock expires in {left:.0f} s",
        )
        self.environment = environment
        self.holder = holder
        self.since = since
        self.expires = expires


class LeaseLost(UserError):
    """This process's lock expired or was taken over: it must stop writing (fencing)."""


class StateMoved(UserError):
    """A saved plan was made against state that has changed since."""


class StateUnusable(UserError):
    """The store cannot be read or written: a damaged or foreign file, a newer schema, a folder that is a
    file or not writable, a full disk. The message names the file; the hint says what to do."""


@dataclass
class NodeRecord:
    """One provisioned node, as state remembers it."""

    id: str
    type: str
    provider: str
    provider_id: str
    desired: dict[str, Any]
    """The desired properties as last applied: tells a change in code from a change in the cloud."""
    observed: dict[str, Any]
    outputs: dict[str, Any] = field(default_factory=dict)
    resource: str | None = None
    depends_on: list[str] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)
    """Invariant properties found changed in the cloud at the last refresh, to be restored."""
    updated_at: float = 0.0

    @classmethod
    def of(cls, node: Node, observed: Observed, desired: Mapping[str, Any] | None = None) -> NodeRecord:
        """The record of ``node`` as its cloud ``observed`` it just now; ``desired``: the properties last
        applied, if not the node's own (a console change adopted into state keeps what was applied)."""
        return cls(
            node.id,
            node.type,
            node.provider,
            observed.provider_id,
            dict(desired if desired is not None else node.properties),
            dict(observed.properties),
            dict(observed.outputs),
            node.resource,
            list(node.depends_on),
        )

    def node(self) -> Node:
        """The node as it was last applied."""
        return Node(self.id, self.type, self.provider, self.desired, tuple(self.depends_on), self.resource)

    def observation(self) -> Observed:
        """The resource as state last saw it."""
        return Observed(self.provider_id, self.observed, self.outputs)


@dataclass
class EnvironmentState:
    """One environment's whole state but its lease, as :meth:`StateTransfer.export` gives it and
    :meth:`StateTransfer.load` takes it (``skyrig state migrate``)."""

    nodes: dict[str, NodeRecord] = field(default_factory=dict)
    intents: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Node id -> (action, idempotency token)."""
    runtime: dict[str, dict[str, Any]] = field(default_factory=dict)
    applied_at: float | None = None
    serial: int = 0
    fence: int = 0
    """The highest fence ever issued for the environment."""


PLUGINS = {
    "s3": "skyrig-state-s3",
    "gs": "skyrig-state-gcs",
    "azblob": "skyrig-state-azblob",
    "postgresql": "skyrig-state-postgres",
    "postgres": "skyrig-state-postgres",
}
"""The distributions that provide the stores of the schemes skyrig knows of (for the hint when one is
missing)."""


def open_store(url: str, root: Path) -> StateStore:
    """The state store for ``url``; relative SQLite paths are relative to the app root ``root``."""
    scheme, _, rest = url.partition("://")
    where = _where_set(url)
    if scheme == "sqlite":
        from skyrig.state.sqlite import SQLiteStore

        # as SQLAlchemy spells it: sqlite:///relative/to/the/app.db, sqlite:////absolute/path.db
        path = Path(rest[1:] if rest.startswith("/") else rest)
        return SQLiteStore(path if path.is_absolute() else root / path)
    from skyrig.plugins.registry import STORES, NotInstalled, named

    try:
        factory = named(STORES, scheme)
    except NotInstalled:
        factory = None
    if factory is not None:
        store = factory(url, root)
        if not isinstance(store, StateStore):
            missing = sorted(name for name in STORE_METHODS if not callable(getattr(store, name, None)))
            raise UserError(
                f"{where}: the store plugin for {scheme!r} made a {type(store).__name__}, which is not a "
                f"StateStore (missing: {', '.join(missing)})",
                "this is a fault of the plugin's distribution: upgrade or report it",
            )
        return store
    if scheme in PLUGINS:
        hint = f"install the store's plugin: pip install {PLUGINS[scheme]}"
    else:
        hint = "use sqlite:///.skyrig/state.db (the default), or install the plugin that provides this scheme"
    raise UserError(f"{where}: no store for URL scheme {scheme!r} ({masked(url)})", hint)


def _where_set(url: str) -> str:
    """Where the state URL ``url`` came from, as configuration errors name it."""
    import os
    import re

    for key, value in os.environ.items():
        if value != url:
            continue
        if key.upper() == "SKYRIG_STATE":
            return "SKYRIG_STATE: state"
        env = re.fullmatch(r"SKYRIG_ENV__(\w+)__STATE", key.upper())
        if env:
            return f"{key.upper()}: env.{env[1].lower()}.state"
    return "state"


def masked(url: str) -> str:
    """``url`` with any password (``scheme://user:PASSWORD@host``, ``?password=...``) replaced by ``****``:
    a store never shows one."""
    import re

    url = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1****@", url)
    return re.sub(r"([?&](?:password|secret|token)=)[^&]*", r"\1****", url, flags=re.IGNORECASE)
