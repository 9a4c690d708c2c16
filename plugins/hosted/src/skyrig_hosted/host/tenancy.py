"""What the API asks of the shared servers, by resource kind: one place that maps each kind to its
family's tenant module (:mod:`skyrig_hosted.host.tenants`) and each environment to its
:class:`~skyrig_hosted.host.servers.Tenant`."""

from __future__ import annotations

import importlib
from typing import Any, Protocol

from skyrig_hosted.host.store import Environment

FAMILIES = {
    "postgres": ("database",),
    "redis": ("cache",),
    "nats": ("topic", "subscription"),
    "objects": ("bucket",),
}
"""Each tenant module and the kinds it makes."""

FAMILY_OF = {kind: family for family, kinds in FAMILIES.items() for kind in kinds}

KINDS = (*FAMILY_OF, "secret", "service", "cron_job")
"""The kinds the API makes (a ``secret`` is the host store's own: no server holds it; a ``service`` is
its supervisor's, :mod:`skyrig_hosted.host.services`; a ``cron_job`` its scheduler's,
:mod:`skyrig_hosted.host.cron`)."""


class Tenancy(Protocol):
    """The servers' side of each request (see HOSTED.md: the tenant modules' five functions)."""

    def ensure(self, environment: Environment, family: str) -> dict[str, str]: ...

    def put(
        self,
        environment: Environment,
        login: dict[str, str],
        kind: str,
        name: str,
        properties: dict[str, Any],
    ) -> dict[str, Any]: ...

    def delete(self, environment: Environment, kind: str, name: str) -> None: ...

    def remove(self, environment: Environment, family: str) -> None: ...

    def usage(self, environment: Environment) -> int: ...


class ServersTenancy:
    """:class:`Tenancy` on the host's running :class:`~skyrig_hosted.host.servers.Servers`."""

    def __init__(self, servers: Any) -> None:
        self.servers = servers
        self._modules = {
            family: importlib.import_module(f"skyrig_hosted.host.tenants.{family}") for family in FAMILIES
        }

    @staticmethod
    def _tenant(environment: Environment) -> Any:
        from skyrig_hosted.host.servers import Tenant

        return Tenant(app=environment.app, env=environment.name, id=environment.id)

    def ensure(self, environment: Environment, family: str) -> dict[str, str]:
        return dict(self._modules[family].ensure(self.servers, self._tenant(environment)))

    def put(
        self,
        environment: Environment,
        login: dict[str, str],
        kind: str,
        name: str,
        properties: dict[str, Any],
    ) -> dict[str, Any]:
        module = self._modules[FAMILY_OF[kind]]
        return dict(module.put(self.servers, self._tenant(environment), login, kind, name, properties))

    def delete(self, environment: Environment, kind: str, name: str) -> None:
        self._modules[FAMILY_OF[kind]].delete(self.servers, self._tenant(environment), kind, name)

    def remove(self, environment: Environment, family: str) -> None:
        self._modules[family].remove(self.servers, self._tenant(environment))

    def usage(self, environment: Environment) -> int:
        tenant = self._tenant(environment)
        return sum(int(module.usage(self.servers, tenant)) for module in self._modules.values())
