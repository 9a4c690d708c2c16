"""Binding declarations to what the running service may use, and to the provider's data plane.

A declaration binds lazily, by name, the first time app code calls it: its entry in the runtime config
says which provider provisioned it, how to reach it and which operations this service declared. The
provider's data plane client for the resource is imported only then.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

from skyrig.runtime import load_runtime_config


class BindingError(RuntimeError):
    """App code used a resource the runtime config does not give this service, or an undeclared operation."""


_lock = threading.Lock()
_clients: dict[tuple[str, str], Any] = {}
_installed: dict[str, Any] = {}
_bound: dict[tuple[str, str | None], Any] = {}
"""(resource key, operation) -> the client :func:`client` gave, checked against the grants."""
_generation = 0
"""Changed by :func:`reset` and :func:`install`: a lookup begun before is not kept."""


@cache
def runtime_config() -> dict[str, Any]:
    """This process's runtime config, read once from ``SKYRIG_RUNTIME_CONFIG``."""
    return load_runtime_config()


def resource_key(declaration: Any) -> str:
    """``kind/name`` of the resource behind ``declaration`` (a keyspace's is its cluster's)."""
    target = getattr(declaration, "cluster", declaration) if declaration.kind == "keyspace" else declaration
    return f"{target.kind}/{target.name}"


def entry(declaration: Any, operation: str | None) -> dict[str, Any]:
    """The runtime config entry of ``declaration``, checking that this service declared ``operation``."""
    config = runtime_config()
    key = resource_key(declaration)
    found = config["resources"].get(key)
    service = config["service"]
    if found is None:
        raise BindingError(
            f"{key.replace('/', ' ')!r} is not available to service {service!r}: the Application Model has "
            f"no use of it by this service. Call it from code inside the service's package (so skyrig sees "
            f"the use), and check that it is declared at module top level (skyrig model)"
        )
    if operation is not None and operation not in found["operations"]:
        declared = ", ".join(found["operations"]) or "none"
        raise BindingError(
            f"service {service!r} did not declare the operation {operation!r} on {key.replace('/', ' ')!r} "
            f"(it declared: {declared}); skyrig grants a service only the operations its code performs"
        )
    return found


def client(declaration: Any, operation: str | None) -> Any:
    """The data plane client of ``declaration``'s resource, from the provider that provisioned it (looked
    up and checked once per resource and operation: a publish calls this for each message)."""
    key = resource_key(declaration)
    found = _bound.get((key, operation))
    if found is None:
        generation = _generation
        found = _client(key, entry(declaration, operation))
        with _lock:
            if generation == _generation:  # not reset or installed over meanwhile
                _bound[key, operation] = found
    return found


def client_for_key(key: str) -> Any:
    """The data plane client of the resource ``kind/name`` this service owns or uses (the service host
    drives its subscriptions through these)."""
    return _client(key, runtime_config()["resources"][key])


def _client(key: str, found: dict[str, Any]) -> Any:
    with _lock:
        if key in _installed:
            return _installed[key]
        if (found["provider"], key) not in _clients:
            from skyrig.plugins.registry import load_provider

            kind = key.partition("/")[0]
            provider = load_provider(found["provider"])
            _clients[found["provider"], key] = provider.data_plane(kind, found, runtime_config())
        return _clients[found["provider"], key]


def install(key: str, client: Any | None) -> None:
    """Serve resource ``key`` (``kind/name``) with ``client`` in this process, whatever provider the runtime
    config names; ``None`` removes it. The runtime config's grants still apply. ``skyrig test`` installs
    its in-process topics and test databases this way."""
    global _generation
    with _lock:
        _generation += 1
        _bound.clear()
        if client is None:
            _installed.pop(key, None)
        else:
            _installed[key] = client


def reset() -> None:
    """Forget the runtime config and clients, installed ones too (tests switch between services in one
    process)."""
    from skyrig.runtime import pools

    global _generation
    runtime_config.cache_clear()
    pools.close_all()
    with _lock:
        _generation += 1
        _bound.clear()
        _clients.clear()
        _installed.clear()
