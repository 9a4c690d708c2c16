"""Optional capabilities of a provider: small protocols, each tied to what its manifest claims.

A provider that claims ``cron.managed`` implements :class:`ManagedCron`, one that provisions secrets
:class:`SecretStore`, and so on; one that implements a claimed capability's methods without the claim
is as wrong as a claim without them. :func:`check` holds a provider to both when it loads. Capabilities
tied to no claim (serving ``skyrig run``, the dashboard's messages, test servers, runtime config
delivery, Kubernetes manifests) are used where a provider has them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from skyrig.kinds import KINDS

if TYPE_CHECKING:
    from collections.abc import Mapping

    from skyrig.engine.contract import Context
    from skyrig.engine.graph import Node


@runtime_checkable
class SecretStore(Protocol):
    """Storing secret values (every provider of the ``secret`` kind): skyrig never keeps the value."""

    def set_secret(self, context: Context, name: str, value: str) -> None:
        """Store the value of secret ``name`` in the cloud's secret store (``skyrig secret set``)."""

    def secret_is_set(self, context: Context, name: str) -> bool:
        """Whether a value has been stored for secret ``name``."""


@runtime_checkable
class ManagedCron(Protocol):
    """``cron.managed``: cron jobs fired on schedule by the provider, with signed requests."""

    def run_cron_job(self, context: Context, job: str, url: str) -> None:
        """Trigger cron job ``job`` now, exactly as the provider's scheduler does on schedule: a request
        to ``url`` (the base URL of the service that declares the job) signed with the environment's
        signing key (:func:`skyrig.provider.signed_cron_call`)."""


@runtime_checkable
class DeadLetters(Protocol):
    """``pubsub.dead_letter``: reading what landed in a subscription's dead-letter destination."""

    def dead_letters(self, context: Context, subscription: str) -> list[dict[str, Any]]:
        """The messages in the dead-letter destination of ``subscription``, oldest first, without
        removing them: each ``{"data": the message as JSON, "attempts": deliveries made or None,
        "error": the last handler error or None}``."""


@runtime_checkable
class Branching(Protocol):
    """``sql.branching``: copy-on-write branches of a database."""

    def branch_database(self, context: Context, database: str, branch: str) -> dict[str, Any]:
        """Branch SQL database ``database`` copy-on-write into a new database ``branch`` and return its
        runtime config entry (the parent's data as of now; writes to either side stay on that side)."""


@runtime_checkable
class RuntimeDelivery(Protocol):
    """A compute provider whose services read their runtime config from the cloud."""

    def deliver_runtime(self, context: Context, configs: dict[str, dict[str, Any]]) -> None:
        """Hand each service's runtime config (service -> config) to where its running service reads it
        (``SKYRIG_RUNTIME_CONFIG``): a cloud's parameter store, say, restarting the services whose config
        changed. Called on the environment's compute provider after every successful apply. The configs
        hold references, never secret values. Without it, services read the files skyrig writes under
        ``.skyrig/runtime/``."""


@runtime_checkable
class KubernetesManifests(Protocol):
    """A compute provider that runs the services on Kubernetes (EKS, GKE): ``skyrig build k8s`` writes the
    objects it would apply, for people who want to read them."""

    def kubernetes_manifests(
        self, context: Context, nodes: list[Node], configs: Mapping[str, Mapping[str, Any]]
    ) -> str:
        """The Kubernetes objects the provider applies for ``nodes`` (its nodes of the environment's graph),
        as one YAML stream, each service with its runtime config from ``configs`` (what state last
        recorded; none for a service not applied yet). Never a secret value."""


@runtime_checkable
class LocalServers(Protocol):
    """A provider whose environments run servers on this machine while ``skyrig run`` serves the app."""

    def local_servers(self, context: Context, model: Any) -> list[dict[str, Any]]:
        """Servers to run beside the services (an object server, say): each ``{"name", "app":
        "module:attribute", "port", "env": {...}}``, run under uvicorn."""

    def stop_local_servers(self, context: Context) -> None:
        """Stop the servers this machine runs for the environment (databases, caches, brokers), once
        ``skyrig run`` has stopped the services: nothing may outlive ``skyrig run``. Data stays."""


@runtime_checkable
class MessageHistory(Protocol):
    """A pub/sub provider that can show recent messages (the dashboard)."""

    def recent_messages(self, context: Context, limit: int = 50) -> list[dict[str, Any]]:
        """The last ``limit`` messages of the environment, newest first: each ``{"topic", "id",
        "published_at" (ISO 8601), "data" (the message as JSON), "deliveries": [{"subscription",
        "attempt", "outcome" ("ok" | "failed" | "dead-lettered" | "pending"), "error", "at"}]}``."""


@runtime_checkable
class ThrowawayServers(Protocol):
    """A provider that runs some kinds on fast, throwaway servers in ``skyrig test``."""

    def test_support(self) -> Any:
        """Its :class:`skyrig.provider.TestSupport` (import it lazily)."""


@dataclass(frozen=True)
class Capability:
    """A protocol and the manifest claim that goes with it: a feature, or a kind."""

    protocol: type
    feature: str | None = None
    kind: str | None = None

    @property
    def claim(self) -> str:
        return self.feature or f"the {self.kind} kind"

    @property
    def members(self) -> list[str]:
        return sorted(name for name in vars(self.protocol) if not name.startswith("_"))


CLAIMED = (
    Capability(SecretStore, kind="secret"),
    Capability(ManagedCron, feature="cron.managed"),
    Capability(DeadLetters, feature="pubsub.dead_letter"),
    Capability(Branching, feature="sql.branching"),
)
"""The capabilities that go with a claim, checked both ways when a provider loads."""

P = TypeVar("P")


def capability(provider: Any, protocol: type[P]) -> P | None:
    """``provider`` as ``protocol`` if it implements it, else None."""
    return provider if isinstance(provider, protocol) else None


def problems(provider: Any) -> list[str]:
    """How ``provider``'s implementation and its manifest disagree, one sentence each."""
    manifest = provider.manifest
    found = []
    for item in CLAIMED:
        claimed = item.feature in manifest.features if item.feature else item.kind in manifest.kinds
        present = [name for name in item.members if callable(getattr(provider, name, None))]
        methods = ", ".join(f"{name}()" for name in item.members)
        if claimed and len(present) < len(item.members):
            missing = ", ".join(f"{name}()" for name in item.members if name not in present)
            found.append(
                f"it claims {item.claim} but does not implement {missing} "
                f"(skyrig.provider.{item.protocol.__name__}): implement it, or drop the claim"
            )
        elif present and not claimed:
            found.append(
                f"it implements {methods} (skyrig.provider.{item.protocol.__name__}) but does not claim "
                f"{item.claim}: claim it in its manifest, or remove the implementation"
            )
    planes = set(provider.data_planes)
    needed = {k for k in manifest.kinds if KINDS[k].needs_data_plane(manifest.features)}
    if missing := sorted(needed - planes):
        found.append(
            f"it provisions {', '.join(missing)} but names no data plane for "
            f"{'it' if len(missing) == 1 else 'them'} (Provider.data_planes)"
        )
    if stray := sorted(planes - needed):
        found.append(
            f"it names data planes for {', '.join(stray)}, which its manifest does not claim "
            "(or, for cron_job, without cron.managed)"
        )
    return found
