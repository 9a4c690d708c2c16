"""The provider base class: what every provider has (manifest, node types, expansion, client, data plane,
inventory). What only some have are the capabilities of :mod:`skyrig.plugins.capabilities`."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar

import pluggy

from skyrig.plugins.manifest import Manifest

if TYPE_CHECKING:
    from pathlib import Path
    from types import ModuleType

    from skyrig.config import Environment
    from skyrig.engine.contract import Context, NodeType
    from skyrig.engine.graph import Node, Scope


@dataclass(frozen=True)
class ConfigProblem:
    """A reason an environment's configuration cannot work with a provider, found by
    :meth:`Provider.check_environment`: ``skyrig check`` (and every command that reads the configuration)
    shows it at the field's line in ``skyrig.toml``, as ``skyrig.toml:LINE: env.NAME.FIELD: MESSAGE``."""

    field: tuple[str, ...]
    """The field it is about, within ``[env.NAME]``: ``("neon", "branch_from")`` for
    ``[env.NAME.neon] branch_from``, ``("sql",)`` for the override, ``("provider",)``."""
    message: str
    """Why it cannot work and what to do, in one sentence."""


hookimpl = pluggy.HookimplMarker("skyrig")
"""Marks a provider's or plugin's method as the implementation of a hook in :mod:`skyrig.hookspecs`."""


class Provider:
    """The object a provider's entry point (group ``skyrig.providers``) names.

    A provider is one module per resource family (``network``, ``sql``, ``pubsub``, ...), listed in
    :attr:`modules`; each has ``TYPES`` (its node types) and ``expand(scope) -> list[Node]`` (its share
    of the model). Its data plane clients are listed by kind in :attr:`data_planes`. Keep the module
    that defines the provider light: cloud SDKs are imported only by the modules that call them, so
    that ``skyrig --help`` and ``skyrig providers`` stay instant.

    Optional capabilities (managed cron, dead-letter reading, secret storage, ...) are the protocols of
    :mod:`skyrig.provider`; a provider implements exactly those its manifest claims.
    """

    manifest: ClassVar[Manifest]
    modules: ClassVar[tuple[str, ...]] = ()
    """The provider's family modules (``"skyrig_aws.network"``, ...), imported on first use, in the
    order their nodes are expanded."""
    data_planes: ClassVar[Mapping[str, str]] = {}
    """Kind -> ``"module:factory"`` of its data plane client: ``factory(entry, config)`` is called the first
    time app code uses a resource of the kind, with the resource's runtime config entry and the
    service's whole runtime config; it returns the kind's protocol (:class:`skyrig.provider.TopicClient`,
    ...). Every kind the manifest claims but ``service`` has one."""

    def families(self) -> list[ModuleType]:
        """The family modules, imported now."""
        return [importlib.import_module(name) for name in self.modules]

    def node_types(self) -> dict[str, NodeType]:
        """Every node type this provider provisions, by type name (``memory.sql.cluster``): by default the
        ``TYPES`` of its family modules."""
        if not self.modules:
            raise NotImplementedError(f"provider {self.manifest.name!r} defines no node types")
        return {t.type: t for family in self.families() for t in family.TYPES}

    def expand(self, scope: Scope) -> list[Node]:
        """The nodes for ``scope``: this provider's share of the model in one environment; by default what
        each family module's ``expand(scope)`` returns.

        Expansion rules live in the provider, never in the core. The environment type is an input: local
        favours provisioning speed, preview speed and cost, development and production reliability,
        security and scalability (production gets high availability, backups and deletion
        protection). A node that needs another provider's resource depends on it as ``@kind/name``.
        """
        if not self.modules:
            raise NotImplementedError(f"provider {self.manifest.name!r} cannot expand a model")
        return [node for family in self.families() for node in family.expand(scope)]

    def connect(self, app: str, environment: Environment, settings: Any, root: Path) -> Any:
        """The client its node types use (an SDK session, say), made once per command; ``root`` is the
        app's folder. Called only when a command is about to talk to the cloud."""
        return None

    def data_plane(self, kind: str, entry: dict[str, Any], config: dict[str, Any]) -> Any:
        """The client the runtime SDK uses for one resource of ``kind`` in a running service (see
        :attr:`data_planes`)."""
        target = self.data_planes.get(kind)
        if target is None:
            raise NotImplementedError(f"provider {self.manifest.name!r} has no data plane for {kind}")
        return _factory(target)(entry, config)

    def check_environment(
        self, environment: Environment, environments: Mapping[str, Environment]
    ) -> list[ConfigProblem]:
        """What this provider needs of ``environment``'s configuration that its settings model and
        manifest cannot say alone: rules across fields, or across ``environments`` (every environment of
        ``skyrig.toml``, resolved, by name), such as a setting that names another environment. Called for
        every environment that uses this provider and whose settings for it are valid (they are
        ``environment.settings[NAME]``), whenever the configuration is read; no API may be called. By
        default nothing: an empty list."""
        return []

    def inventory(self, context: Context) -> list[tuple[str, str]]:
        """Every resource of the environment that exists in the backend now, as ``(node type, provider
        id)``, found through the provider's own API (ownership tags, deterministic names), whatever
        skyrig's state says. After ``skyrig destroy --include-data`` it must be empty; after an apply it
        holds each node exactly once. The conformance suite checks both against it.

        By default, the union of the node types' own listings: each node type with an ``inventory(context)
        -> list[provider id]`` method lists what its deterministic names and tags say is the
        environment's."""
        listings = [
            (node_type.type, listing)
            for node_type in self.node_types().values()
            if (listing := getattr(node_type, "inventory", None)) is not None
        ]
        if not listings:
            raise NotImplementedError(f"provider {self.manifest.name!r} cannot list what it provisioned")
        return sorted({(kind, provider_id) for kind, listing in listings for provider_id in listing(context)})


@cache
def _factory(target: str) -> Any:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)
