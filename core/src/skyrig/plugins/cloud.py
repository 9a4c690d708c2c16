"""What every cloud provider's node types share: a vanished resource in the engine's terms, where the nodes
of this command are, and waiting for a resource that takes minutes.

A cloud provider's API layer turns its SDK's "no such resource" into :class:`NotFound`; its node types
subclass :class:`CloudNodeType` and implement ``_read``, ``_find``, ``_create``, ``_update`` and
``_delete`` (and ``_read_many`` and ``_find_many`` where the cloud answers for several resources in one
call); a resource whose provider id is its name subclasses :class:`NamedNodeType`, which finds it by
reading it by that name. The base turns a vanished resource into ``None`` (read, find) or success
(delete), a dependency not yet visible right after its creation (clouds are eventually consistent) into a
:class:`TransientError` the engine retries, and remembers where each node is for the nodes created after
it in the same command (the provider's client is a :class:`CloudClient`).

The rule every ``_find`` keeps (the engine's :meth:`~skyrig.engine.contract.NodeType.find`): whatever
point a create was interrupted at, and whether or not the node's dependencies exist, it answers found or
not found. The node is found once its main resource exists; a create adopts whatever other part an
earlier one left (it looks each up before making it), and a found resource reports the steps of its
create that are missing as properties that differ, so that the engine's update finishes it.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from skyrig.engine.contract import Context, NodeType, Observed
from skyrig.engine.graph import Node
from skyrig.errors import ProviderError, TransientError


class NotFound(ProviderError):
    """The resource a cloud call names does not exist."""


class CloudClient:
    """The base of a cloud provider's client (what its ``connect`` returns): where the nodes created or
    found in this command are, for the nodes that depend on them."""

    cloud = "the cloud"
    """The cloud's name in messages (``AWS``, ``GCP``)."""
    provider = "PROVIDER"
    """The provider's name: its settings are ``[env.NAME.<provider>]``."""

    def __init__(self) -> None:
        self.known: dict[str, str] = {}
        """Node id -> provider id of resources created or found in this command."""

    def remember(self, node_id: str, provider_id: str) -> None:
        """Note where node ``node_id`` is, for the nodes created after it in this command."""
        self.known[node_id] = provider_id


class CloudNodeType(NodeType):
    """One kind of cloud resource, whose calls raise :class:`NotFound` for a resource that is gone."""

    # -- the contract, wrapped ---------------------------------------------------------------------

    def read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        try:
            return self._read(context, node, provider_id)
        except NotFound:
            return None

    def read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        try:
            return self._read_many(context, nodes)
        except NotFound:
            return {node.id: self.read(context, node, provider_id) for node, provider_id in nodes}

    def find(self, context: Context, node: Node) -> Observed | None:
        try:
            found = self._find(context, node)
        except NotFound:
            return None
        if found is not None:
            context.client.remember(node.id, found.provider_id)
        return found

    def find_many(self, context: Context, nodes: list[Node]) -> dict[str, Observed | None]:
        try:
            found = self._find_many(context, nodes)
        except NotFound:
            found = {node.id: self.find(context, node) for node in nodes}
        for node in nodes:
            observed = found.get(node.id)
            if observed is not None:
                context.client.remember(node.id, observed.provider_id)
        return found

    def create(self, context: Context, node: Node) -> Observed:
        try:
            observed = self._create(context, node)
        except NotFound as error:
            raise TransientError(f"{node.id}: a resource it needs is not visible yet: {error}") from None
        context.client.remember(node.id, observed.provider_id)
        return observed

    def update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        try:
            return self._update(context, node, provider_id, changes)
        except NotFound as error:
            raise TransientError(f"{node.id}: {error}") from None

    def delete(self, context: Context, node: Node, provider_id: str) -> None:
        with contextlib.suppress(NotFound):
            self._delete(context, node, provider_id)

    # -- what subclasses implement ---------------------------------------------------------------

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        raise NotImplementedError

    def _read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        return {node.id: self.read(context, node, provider_id) for node, provider_id in nodes}

    def _find(self, context: Context, node: Node) -> Observed | None:
        raise NotImplementedError

    def _find_many(self, context: Context, nodes: list[Node]) -> dict[str, Observed | None]:
        return {node.id: self.find(context, node) for node in nodes}

    def _create(self, context: Context, node: Node) -> Observed:
        raise NotImplementedError

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        raise NotImplementedError

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        raise NotImplementedError

    # -- helpers -----------------------------------------------------------------------------------

    def observed(
        self,
        node: Node,
        provider_id: str,
        properties: Mapping[str, Any],
        outputs: Mapping[str, Any] | None = None,
    ) -> Observed:
        """What was read, in the node's terms: properties the cloud does not report back are taken as
        asked."""
        return Observed(provider_id, {**dict(node.properties), **dict(properties)}, dict(outputs or {}))


class NamedNodeType(CloudNodeType):
    """A cloud resource whose provider id is its name (``node.properties["name"]``): found, one or many, by
    reading it by that name, so the type implements ``_read`` and ``_read_many`` and not ``_find`` and
    ``_find_many``. Where ``_read_many`` lists the resources in one call (keyed by name), finding many
    nodes costs that one call too.

    A provider's base (its tags or labels) comes first: ``class NamedNodeType(GcpNodeType,
    skyrig.provider.NamedNodeType)``."""

    def _find(self, context: Context, node: Node) -> Observed | None:
        return self._read(context, node, node.properties["name"])

    def _find_many(self, context: Context, nodes: list[Node]) -> dict[str, Observed | None]:
        return self._read_many(context, [(node, node.properties["name"]) for node in nodes])


_SANITIZE = re.compile(r"[^a-z0-9-]+")


def join_name(*parts: str, limit: int = 63, lower: bool = True) -> str:
    """The deterministic cloud name of ``parts`` (``APP-ENV-PARTS``): what finds a resource again by name.

    Characters cloud names refuse (all but ``a-z0-9-``) become hyphens and the name starts with a letter;
    when anything was replaced, or the name is longer than ``limit``, a hash of the exact parts keeps it
    unique (and the same on every run).
    """
    exact = "\0".join(parts)
    cleaned = [_SANITIZE.sub("-", p.lower() if lower else p).strip("-") for p in parts]
    text = re.sub(r"-{2,}", "-", "-".join(p for p in cleaned if p))
    if not text[:1].isalpha():
        text = "s" + text
    if text.lower() != "-".join(parts).lower() or len(text) > limit:
        suffix = hashlib.sha256(exact.encode()).hexdigest()[:6]
        text = text[: limit - len(suffix) - 1].rstrip("-") + "-" + suffix
    return text


def common_prefix(names: list[str]) -> str:
    """The longest prefix all ``names`` share: what a list call filtered by name prefix is asked for."""
    if not names:
        return ""
    prefix = min(names)
    for name in names:
        while not name.startswith(prefix):
            prefix = prefix[:-1]
    return prefix


def resolve(context: Context, node_id: str, find: Callable[[], str | None]) -> str:
    """The provider id of dependency ``node_id``: remembered from this command, else recorded in state (an
    imported resource has a name of its own), else found in the cloud."""
    client = context.client
    known = client.known.get(node_id) or context.recorded.get(node_id)
    if known is not None:
        return known
    found = find()
    if found is None:
        raise TransientError(
            f"{node_id} is not visible in {client.cloud} yet (or was deleted outside skyrig)"
        )
    client.remember(node_id, found)
    return found


def wait_for(
    context: Context, what: str, check: Callable[[], tuple[bool, str]], *, timeout: float | None = None
) -> None:
    """Poll ``check`` (``(done, status)``) every ``wait_delay`` seconds of the provider's settings until
    done, showing progress on standard error every half minute; give up after its ``wait_timeout`` (the
    next apply adopts the resource once it is ready)."""
    settings, client = context.settings, context.client
    started = time.monotonic()
    limit = settings.wait_timeout if timeout is None else timeout
    shown = started
    while True:
        done, status = check()
        if done:
            return
        now = time.monotonic()
        if now - started > limit:
            raise ProviderError(
                f"{what} is still {status} after {int(limit)} s; it goes on in {client.cloud}: run the "
                "apply again later to pick it up (or raise wait_timeout in "
                f"[env.{context.environment.name}.{client.provider}])"
            )
        if now - shown >= 30:
            sys.stderr.write(f"    waiting for {what}: {status} ({int(now - started)} s)\n")
            sys.stderr.flush()
            shown = now
        time.sleep(settings.wait_delay)
