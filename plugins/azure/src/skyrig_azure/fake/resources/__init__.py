"""The resource types the FAKE ARM serves, one module per Azure namespace (importing them registers them).

To add a type: in the module of its namespace (a new module: add it to the import below), call
``register(ResourceType(...))`` with its full type, the api-versions the SDK sends, the SDK models of its
PUT and PATCH bodies, whether PUT/PATCH/DELETE are long-running, its immutable properties, and an optional
``on_write`` hook that fills defaults and read-only outputs (see :mod:`skyrig_azure.fake.registry`).
"""

from skyrig_azure.fake.resources import (
    app,
    authorization,
    cache,
    cdn,
    containerregistry,
    keyvault,
    msi,
    network,
    postgresql,
    resources,
    servicebus,
    storage,
    web,
)

__all__ = [
    "app",
    "authorization",
    "cache",
    "cdn",
    "containerregistry",
    "keyvault",
    "msi",
    "network",
    "postgresql",
    "resources",
    "servicebus",
    "storage",
    "web",
]
