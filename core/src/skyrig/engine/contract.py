"""The provider contract per node type: what a provider implements so the engine can provision a node.

The engine does ordering, parallelism, retries, state, intents and locking; a node type only talks to
its cloud. Every method receives a :class:`Context` (the environment, the provider's settings and its
client, and the node's ownership tags and idempotency token) and must be safe to call again after a
crash: ``create`` of a node state does not record is always preceded by ``find`` (``find_many``), so
that what an interrupted create made, or what state forgot, is adopted instead of made twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from skyrig.config import Environment
    from skyrig.engine.graph import Node


@dataclass(frozen=True)
class Observed:
    """What a cloud says a resource is, as a node type reads it back."""

    provider_id: str
    """The cloud's own identifier (an ARN, a resource name, a row id)."""
    properties: Mapping[str, Any]
    """The properties as they are now, in the same terms as the node's desired properties."""
    outputs: Mapping[str, Any] = field(default_factory=dict)
    """What others need to reach it (endpoint, port, URL); never a secret value."""


@dataclass(frozen=True)
class Context:
    """What a node type's operations get besides the node: who is asking, and with which client."""

    app: str
    environment: Environment
    settings: Any
    """The provider's validated settings for this environment."""
    client: Any
    """Whatever the provider's ``connect`` returned (an SDK session, a database connection)."""
    recorded: Mapping[str, str] = field(default_factory=dict)
    """Node id -> provider id of every node state held when the command began: where a dependency is,
    even one imported under a name of its own (``skyrig import``). Nodes made during this command are
    not in it; find those by their deterministic names."""
    runtime_config: Callable[[str], Mapping[str, Any] | None] = field(
        default=lambda service: None, compare=False, repr=False
    )
    """During an apply, the runtime config service ``SERVICE`` would get from what is done so far (the
    resources it owns and uses, once their nodes are done: a service's node depends on them); None
    outside an apply. A compute provider that delivers runtime configs (``RuntimeDelivery``) gives a
    service it creates its real config at once, so that its first rollout is its only one."""

    def tags(self, node: Node) -> dict[str, str]:
        """Ownership tags every resource carries, so that it can be found (and adopted) by them."""
        return {"skyrig:app": self.app, "skyrig:env": self.environment.name, "skyrig:node": node.id}

    def token(self, node: Node) -> str:
        """The idempotency token of creating ``node`` here: the same on every retry and every run.

        Pass it as AWS ``ClientToken``, GCP ``requestId``; where a cloud has none, name the resource
        deterministically and look it up by name or tags before creating.
        """
        text = f"{self.app}\0{self.environment.name}\0{node.id}\0{node.type}"
        return hashlib.sha256(text.encode()).hexdigest()[:32]


class NodeType:
    """One kind of cloud resource: how to read, find, create, update and delete it.

    Class attributes declare how the engine diffs it:

    - ``tunable``: properties a person may change in the cloud console (sizes, replica counts). Changed
      there, they are adopted into state and never reverted; changed in code or config, they are applied.
    - ``invariant``: properties skyrig guarantees (backups, encryption, private networking, TLS, public
      access). Changed in the cloud, they are reported as drift and restored by the next apply.
    - ``replace_on``: properties that cannot change in place; a change replaces the resource.
    - ``identity``: properties that name the resource (its identifier). Once the resource exists, its
      own name stands: never diffed, so a resource adopted with ``skyrig import`` keeps its name.
    - ``stateful``: holds data (a database, a bucket): destroy keeps it unless ``--include-data``.
    """

    type: ClassVar[str]
    tunable: ClassVar[frozenset[str]] = frozenset()
    invariant: ClassVar[frozenset[str]] = frozenset()
    replace_on: ClassVar[frozenset[str]] = frozenset()
    identity: ClassVar[frozenset[str]] = frozenset()
    stateful: ClassVar[bool] = False

    def read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        """The resource as it is now, or None if it no longer exists."""
        raise NotImplementedError

    def read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        """Read several resources of this type at once (node id -> observed). Override it with one list or
        describe call where the cloud allows; by default it reads one by one."""
        return {node.id: self.read(context, node, provider_id) for node, provider_id in nodes}

    def find(self, context: Context, node: Node) -> Observed | None:
        """The resource made for ``node`` that state does not record, found by its identity (its
        deterministic name, idempotency token or ownership tags), or None if there is none.

        The engine asks before creating any node state has no record of: after a crash between a create
        and its record, after state was lost (``skyrig state recover`` asks too), and before retrying a
        create whose response was lost. So ``find`` answers found or not found, never an error, whatever
        point an earlier create was interrupted at and whether the node's dependencies exist yet: a
        lookup that the cloud answers with "no such thing", in whatever words (a missing parent, an
        unknown name), is not found. Where a node is made of several cloud resources, ``find`` answers
        found only once its main resource exists; ``create`` then adopts whatever subset an interrupted
        create left (looks each part up before making it). A resource found but not finished (a step of
        its create missing) reads back with the properties it has, so that the engine's update, which
        brings an adopted resource up to date, finishes it. Only what the cloud refuses for another
        reason (credentials, a name taken by someone else) is an error."""
        raise NotImplementedError

    def find_many(self, context: Context, nodes: list[Node]) -> dict[str, Observed | None]:
        """:meth:`find` for several nodes of this type at once (node id -> found, or None). The engine calls
        it once per node type before the creates of an apply, as refresh calls :meth:`read_many`. Override
        it with one list or describe call where the cloud allows; by default it finds one by one."""
        return {node.id: self.find(context, node) for node in nodes}

    def create(self, context: Context, node: Node) -> Observed:
        """Create the resource with ``context.token(node)`` and ``context.tags(node)``."""
        raise NotImplementedError

    def update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        """Change ``changes`` (property -> desired value) in place."""
        raise NotImplementedError

    def delete(self, context: Context, node: Node, provider_id: str) -> None:
        """Delete the resource; deleting one that is already gone is not an error."""
        raise NotImplementedError

    def runtime_entry(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        """The resource's entry in the runtime config of each service that uses it, if this is a model
        resource's main node: what the provider's data plane needs to reach it (host, port, queue URL,
        secret *reference*). skyrig adds ``"provider"`` (this provider's name), the code the service
        host runs for the resource and the operations granted. Never a secret value."""
        return None
