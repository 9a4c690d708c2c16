"""skyrig: infrastructure from code, for Python.

Declare what your app needs as module-level objects, and skyrig provisions it in every environment::

    from skyrig import Service, SQLDatabase

    service = Service("orders", app="orders.api:app")
    db = SQLDatabase("orders", migrations="./migrations")

Names are imported lazily so that ``skyrig --help`` stays instant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"


if TYPE_CHECKING:
    from skyrig.declarations import (
        Bucket,
        CacheCluster,
        CronJob,
        DeclarationError,
        Keyspace,
        Secret,
        Service,
        SQLDatabase,
        Subscription,
        Topic,
    )


def __getattr__(name: str) -> Any:
    if name in __all__ and name != "__version__":
        from skyrig import declarations

        return getattr(declarations, name)
    raise AttributeError(f"module 'skyrig' has no attribute {name!r}")


__all__ = [
    "Bucket",
    "CacheCluster",
    "CronJob",
    "DeclarationError",
    "Keyspace",
    "SQLDatabase",
    "Secret",
    "Service",
    "Subscription",
    "Topic",
    "__version__",
]
