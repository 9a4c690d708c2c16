"""Providers and plugins: found through entry points, loaded by name only when configuration names them.

- ``skyrig.providers``: one entry point per provider, naming its :class:`Provider` object.
- ``skyrig.plugins``: cross-cutting plugins (policies, cost estimates) that implement hooks from
  :mod:`skyrig.hookspecs`; every installed one takes part.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import pluggy

from skyrig.plugins.manifest import (
    ENVIRONMENT_TYPES,
    FAMILIES,
    FEATURES,
    KIND_FAMILIES,
    Manifest,
    ManifestError,
)

if TYPE_CHECKING:
    from pathlib import Path

    from skyrig.config import Environment
    from skyrig.engine.contract import Context, NodeType
    from skyrig.engine.graph import Node, Scope

hookimpl = pluggy.HookimplMarker("skyrig")
"""Marks a provider's or plugin's method as the implementation of a hook in :mod:`skyrig.hookspecs`."""


class Provider:
    """The object a provider's entry point names.

    A provider publishes a :class:`Manifest` and may implement hooks from :mod:`skyrig.hookspecs` with
    :data:`hookimpl`. Keep the module that defines it light: import cloud SDKs only in the modules that
    call them, so that ``skyrig --help`` and ``skyrig providers`` stay instant.
    """

    manifest: ClassVar[Manifest]

    def node_types(self) -> dict[str, NodeType]:
        """Every node type this provider provisions, by type name (``memory.sql.cluster``)."""
        raise NotImplementedError(f"provider {self.manifest.name!r} defines no node types")

    def expand(self, scope: Scope) -> list[Node]:
        """The nodes for ``scope``: this provider's share of the model in one environment.

        Expansion rules live here, never in the core. The environment type is an input: local favours
        provisioning speed, preview speed and cost, development and production reliability, security and
        scalability (production gets high availability, backups and deletion protection). A node that
        needs another provider's resource depends on it as ``@kind/name``.
        """
        raise NotImplementedError(f"provider {self.manifest.name!r} cannot expand a model")

    def connect(self, app: str, environment: Environment, settings: Any, root: Path) -> Any:
        """The client its node types use (an SDK session, say), made once per command; ``root`` is the
        app's folder. Called only when a command is about to talk to the cloud."""
        return None

    def data_plane(self, kind: str, entry: dict[str, Any], config: dict[str, Any]) -> Any:
        """The client the runtime SDK uses for one resource of ``kind`` in a running service.

        ``entry`` is the resource's runtime config entry (what the node type's ``runtime`` returned, plus
        ``operations``); ``config`` the service's whole runtime config. Imported only when app code first
        uses the resource. Secrets: an object with ``value() -> str``.
        """
        raise NotImplementedError(f"provider {self.manifest.name!r} has no data plane for {kind}")

    def local_servers(self, context: Context, model: Any) -> list[dict[str, Any]]:
        """Servers this provider needs running while ``skyrig run`` serves the app (an object server,
        say): each ``{"name", "app": "module:attribute", "port", "env": {...}}``, run under uvicorn."""
        return []

    def stop_local_servers(self, context: Context) -> None:
        """Stop the servers this machine runs for the environment (databases, caches, brokers), once
        ``skyrig run`` has stopped the services: nothing may outlive ``skyrig run``. Data stays."""

    def recent_messages(self, context: Context, limit: int = 50) -> list[dict[str, Any]]:
        """The last ``limit`` pub/sub messages of the environment, newest first, for the dashboard.

        Each ``{"topic", "id", "published_at" (ISO 8601), "data" (the message as JSON), "deliveries":
        [{"subscription", "attempt", "outcome" ("ok" | "failed" | "dead-lettered" | "pending"),
        "error", "at"}]}``. Providers that cannot tell return ``[]``.
        """
        return []

    def test_support(self) -> Any:
        """What ``skyrig test`` runs this provider's kinds on in tests (fast, throwaway servers), as a
        :class:`skyrig.testing.support.TestSupport`, or None if it offers none. Import it lazily."""
        return None

    def deliver_runtime(self, context: Context, configs: dict[str, dict[str, Any]]) -> None:
        """Hand each service's runtime config (service -> config) to where its running service reads it
        (``SKYRIG_RUNTIME_CONFIG``): a cloud's parameter store, say, restarting the services whose config
        changed. Called on the environment's compute provider after every successful apply. The configs
        hold references, never secret values. By default nothing: local services read the files skyrig
        writes under ``.skyrig/runtime/``."""

    def inventory(self, context: Context) -> list[tuple[str, str]]:
        """Every resource of the environment that exists in the backend now, as ``(node type, provider
        id)``, found through the provider's own API (ownership tags, deterministic names), whatever
        skyrig's state says. After ``skyrig destroy --include-data`` it must be empty; after an apply it
        holds each node exactly once. The conformance suite checks both against it."""
        raise NotImplementedError(f"provider {self.manifest.name!r} cannot list what it provisioned")

    def dead_letters(self, context: Context, subscription: str) -> list[dict[str, Any]]:
        """The messages in the dead-letter destination of ``subscription``, oldest first, without
        removing them: each ``{"data": the message as JSON, "attempts": deliveries made or None,
        "error": the last handler error or None}``. Needed when the manifest claims
        ``pubsub.dead_letter``."""
        raise NotImplementedError(f"provider {self.manifest.name!r} cannot read dead letters")

    def run_cron_job(self, context: Context, job: str, url: str) -> None:
        """Trigger cron job ``job`` now, exactly as the provider's scheduler does on schedule: a request
        to ``url`` (the base URL of the service that declares the job) signed with the environment's
        signing key (:mod:`skyrig.runtime.signing`). Needed when the manifest claims ``cron.managed``."""
        raise NotImplementedError(f"provider {self.manifest.name!r} does not trigger cron jobs")

    def branch_database(self, context: Context, database: str, branch: str) -> dict[str, Any]:
        """Branch SQL database ``database`` copy-on-write into a new database ``branch`` and return its
        runtime config entry (the parent's data as of now; writes to either side stay on that side).
        Needed when the manifest claims ``sql.branching``."""
        raise NotImplementedError(f"provider {self.manifest.name!r} cannot branch databases")

    def set_secret(self, context: Context, name: str, value: str) -> None:
        """Store a secret's value in the cloud's secret store. skyrig never keeps the value."""
        raise NotImplementedError(f"provider {self.manifest.name!r} cannot store secrets")

    def secret_is_set(self, context: Context, name: str) -> bool:
        """Whether a value has been stored for secret ``name``."""
        raise NotImplementedError(f"provider {self.manifest.name!r} cannot store secrets")


__all__ = [
    "ENVIRONMENT_TYPES",
    "FAMILIES",
    "FEATURES",
    "KIND_FAMILIES",
    "Manifest",
    "ManifestError",
    "Provider",
    "hookimpl",
]
