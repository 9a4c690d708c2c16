"""Pub/sub: a Pub/Sub topic per topic, a pull subscription per subscription (its ack deadline, retention,
retry policy, message ordering and exactly-once delivery as declared, never expiring), and for each
subscription with a retry limit a dead-letter topic, a subscription on it that keeps the dead letters
(a topic keeps nothing by itself), the dead-letter policy wired to it, and the IAM the Pub/Sub service
agent needs to move messages there (publisher on the dead-letter topic, subscriber on the source
subscription).

Pub/Sub's limits, which the declaration's exceed: max delivery attempts are 5 to 100, ack deadlines 10 s
to 600 s, retention 10 minutes to 7 days. The subscription takes the clamped values; the data plane
(:mod:`skyrig_gcp.runtime.pubsub`) keeps the declared ones itself: it dead-letters after ``max_retries``
retries and shortens a message's deadline to the declared ack deadline on receipt, and Pub/Sub's own
dead-lettering is the backstop for consumers that crash.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping
from typing import Any

from skyrig.provider import Context, Node, NotFound, Observed, ProviderError, Scope, duration_seconds
from skyrig_gcp import names
from skyrig_gcp.api import Conflict
from skyrig_gcp.nodes import NamedNodeType

MIN_DELIVERY_ATTEMPTS, MAX_DELIVERY_ATTEMPTS = 5, 100
"""Pub/Sub's bounds on a dead-letter policy's max delivery attempts (``max_retries + 1`` is clamped)."""
MIN_ACK_DEADLINE, MAX_ACK_DEADLINE = 10, 600
MIN_RETENTION, MAX_RETENTION = 600, 7 * 86400
DEAD_LETTER_RETENTION = 7 * 86400
"""How long the subscription of a dead-letter topic keeps a letter: the longest Pub/Sub allows."""
ROLE_LABEL = "skyrig-pubsub"
"""The label that tells a topic of ours from a dead-letter topic, and a subscription from the one keeping
dead letters (what :meth:`inventory` lists by)."""
IAM_GAP = "pubsub.iam"
"""What the Pub/Sub emulator lacks: the IAM methods (501). Under ``emulator = "fake"`` the service agent's
bindings are not set, and read back as asked."""

_numbers: dict[str, str] = {}
_numbers_lock = threading.Lock()


def topic_path(context: Context, name: str) -> str:
    return f"projects/{context.client.project}/topics/{name}"


def subscription_path(context: Context, name: str) -> str:
    return f"projects/{context.client.project}/subscriptions/{name}"


def lacks(context: Context, feature: str) -> bool:
    """Whether the endpoints are the Pub/Sub emulator, which does not implement ``feature``."""
    return context.settings.emulator == "fake" and feature == IAM_GAP


def seconds(value: Any) -> float:
    """Seconds of a duration as the Pub/Sub library returns it (a ``timedelta`` or a protobuf
    ``Duration``)."""
    if value is None:
        return 0.0
    if hasattr(value, "total_seconds"):
        return float(value.total_seconds())
    return float(getattr(value, "seconds", 0)) + getattr(value, "nanos", 0) / 1e9


def _owned(context: Context, labels: Mapping[str, str], role: str) -> bool:
    wanted = names.labels(context.app, context.environment.name, "")
    return all(labels.get(key) == wanted[key] for key in ("skyrig-app", "skyrig-env")) and (
        labels.get(ROLE_LABEL) == role
    )


def _publisher(context: Context) -> Any:
    return context.client.library("pubsub.publisher")


def _subscriber(context: Context) -> Any:
    return context.client.library("pubsub.subscriber")


def _reachable(context: Context) -> bool:
    """Whether Pub/Sub can be listed: not where the endpoints are emulators and Pub/Sub's did not start
    (the calls would go to Google)."""
    return not (context.settings.emulator == "fake" and context.settings.endpoint("pubsub") is None)


def _listing(context: Context, list_all: Any) -> dict[str, Any]:
    """What ``list_all(context)`` lists, for an inventory: nothing where Pub/Sub is unreachable or its API
    is not enabled in the project (then nothing of ours is there)."""
    if not _reachable(context):
        return {}
    try:
        return list_all(context)
    except ProviderError as error:
        if "permission denied" in str(error):
            return {}
        raise


def _topics(context: Context) -> dict[str, Any]:
    """Every topic of the project, by short name (one list call, paged)."""
    listed = _publisher(context).list_topics(request={"project": f"projects/{context.client.project}"})
    return {topic.name.rpartition("/")[2]: topic for topic in listed}


def _subscriptions(context: Context) -> dict[str, Any]:
    listed = _subscriber(context).list_subscriptions(
        request={"project": f"projects/{context.client.project}"}
    )
    return {found.name.rpartition("/")[2]: found for found in listed}


def service_agent(context: Context) -> str:
    """The IAM member of the project's Pub/Sub service agent, which dead-letters messages."""
    project = context.client.project
    with _numbers_lock:
        number = _numbers.get(project)
    if number is None:
        client = context.client
        found = client.execute(client.api("cloudresourcemanager").projects().get(name=f"projects/{project}"))
        number = str(found["name"]).rpartition("/")[2]
        with _numbers_lock:
            _numbers[project] = number
    return f"serviceAccount:{names.pubsub_service_agent(number)}"


def _granted(library: Any, resource: str, role: str, member: str) -> bool:
    policy = library.get_iam_policy(request={"resource": resource})
    return any(b.role == role and member in b.members for b in policy.bindings)


def _grant(library: Any, resource: str, role: str, member: str, attempts: int = 5) -> None:
    """Add ``member`` to ``role`` on ``resource``, keeping the policy's other bindings; its etag guards
    against a concurrent change (the iam family's bindings on the same subscription), read again then."""
    for attempt in range(attempts):
        policy = library.get_iam_policy(request={"resource": resource})
        for binding in policy.bindings:
            if binding.role == role:
                if member in binding.members:
                    return
                binding.members.append(member)
                break
        else:
            policy.bindings.add(role=role, members=[member])
        try:
            library.set_iam_policy(request={"resource": resource, "policy": policy})
            return
        except Conflict:
            if attempt == attempts - 1:
                raise


class TopicType(NamedNodeType):
    """A Pub/Sub topic. Ordering and exactly-once are not the topic's: the publisher sends ordering keys,
    the subscriptions deliver in order or once."""

    type = "gcp.pubsub.topic"
    identity = frozenset({"name"})
    replace_on = frozenset({"name"})
    role = "topic"

    def labels(self, context: Context, node: Node) -> dict[str, str]:
        return {**super().labels(context, node), ROLE_LABEL: self.role}

    def _observe(self, context: Context, node: Node, name: str) -> Observed:
        return self.observed(
            node,
            name,
            {"name": name},
            {"topic": topic_path(context, name), "project": context.client.project},
        )

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        found = _publisher(context).get_topic(request={"topic": topic_path(context, provider_id)})
        return self._observe(context, node, found.name.rpartition("/")[2])

    def _read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        existing = _topics(context)
        return {n.id: self._observe(context, n, pid) if pid in existing else None for n, pid in nodes}

    def _create_topic(self, context: Context, node: Node, name: str) -> None:
        with contextlib.suppress(Conflict):  # made by an earlier apply that did not record it: adopted
            _publisher(context).create_topic(
                request={"name": topic_path(context, name), "labels": self.labels(context, node)}
            )

    def _create(self, context: Context, node: Node) -> Observed:
        self._create_topic(context, node, node.properties["name"])
        return self._observe(context, node, node.properties["name"])

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        return self.read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        _publisher(context).delete_topic(request={"topic": topic_path(context, provider_id)})

    def inventory(self, context: Context) -> list[str]:
        """The topics labelled as this environment's (of this node type's role)."""
        topics = _listing(context, _topics)
        return [name for name, t in topics.items() if _owned(context, t.labels, self.role)]

    def runtime_entry(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        return {
            "type": self.type,
            **observed.outputs,
            "ordered": node.properties["ordered"],
            "exactly_once": node.properties["exactly_once"],
        }


class DeadLetterType(TopicType):
    """A subscription's dead-letter destination: a topic, and a subscription of the same name on it that
    keeps the letters for 7 days (``kept``: an invariant, made again if deleted) for ``skyrig`` and the
    app to read."""

    type = "gcp.pubsub.dead_letter"
    invariant = frozenset({"kept"})
    role = "dead-letter"

    def _kept(self, context: Context, name: str) -> bool:
        try:
            _subscriber(context).get_subscription(request={"subscription": subscription_path(context, name)})
        except NotFound:
            return False
        return True

    def _observe(self, context: Context, node: Node, name: str, kept: bool | None = None) -> Observed:
        observed = super()._observe(context, node, name)
        kept = self._kept(context, name) if kept is None else kept
        outputs = {**observed.outputs, "subscription": subscription_path(context, name)}
        return Observed(observed.provider_id, {**observed.properties, "kept": kept}, outputs)

    def _read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        topics, subscriptions = _topics(context), _subscriptions(context)
        return {
            n.id: self._observe(context, n, pid, pid in subscriptions) if pid in topics else None
            for n, pid in nodes
        }

    def _keep(self, context: Context, node: Node, name: str) -> None:
        with contextlib.suppress(Conflict):
            _subscriber(context).create_subscription(
                request={
                    "name": subscription_path(context, name),
                    "topic": topic_path(context, name),
                    "labels": self.labels(context, node),
                    "message_retention_duration": {"seconds": DEAD_LETTER_RETENTION},
                    "expiration_policy": {},
                    "ack_deadline_seconds": 60,
                }
            )

    def _create(self, context: Context, node: Node) -> Observed:
        name = node.properties["name"]
        self._create_topic(context, node, name)
        self._keep(context, node, name)
        return self._observe(context, node, name, True)

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        if not self._kept(context, provider_id):
            self._keep(context, node, provider_id)
        return self.read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        with contextlib.suppress(NotFound):
            _subscriber(context).delete_subscription(
                request={"subscription": subscription_path(context, provider_id)}
            )
        super()._delete(context, node, provider_id)

    def inventory(self, context: Context) -> list[str]:
        """The dead-letter topics and the subscriptions keeping their letters (one name for both)."""
        found = set(super().inventory(context))
        subscriptions = _listing(context, _subscriptions)
        found.update(n for n, s in subscriptions.items() if _owned(context, s.labels, self.role))
        return sorted(found)

    def runtime_entry(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        return None


class SubscriptionType(NamedNodeType):
    """A pull subscription of its topic, with the dead-letter policy to its dead-letter topic after
    ``max_delivery_attempts``, and the service agent's bindings (``dead_letter_access``, an invariant)."""

    type = "gcp.pubsub.subscription"
    identity = frozenset({"name"})
    # ordering cannot be changed on a subscription; nor can the topic it reads
    replace_on = frozenset({"name", "topic_name", "ordered"})
    invariant = frozenset({"dead_letter_access", "never_expires"})
    role = "subscription"

    def labels(self, context: Context, node: Node) -> dict[str, str]:
        return {**super().labels(context, node), ROLE_LABEL: self.role}

    def _properties(self, context: Context, node: Node, found: Any) -> dict[str, Any]:
        retry = found.retry_policy if "retry_policy" in found else None
        dead = found.dead_letter_policy if "dead_letter_policy" in found else None
        expiry = found.expiration_policy if "expiration_policy" in found else None
        dead_topic = dead.dead_letter_topic.rpartition("/")[2] if dead and dead.dead_letter_topic else None
        properties = {
            "topic_name": found.topic.rpartition("/")[2],
            "ack_deadline_seconds": int(found.ack_deadline_seconds),
            "retention_seconds": int(seconds(found.message_retention_duration)),
            "min_backoff_seconds": int(seconds(retry.minimum_backoff)) if retry else None,
            "max_backoff_seconds": int(seconds(retry.maximum_backoff)) if retry else None,
            "ordered": bool(found.enable_message_ordering),
            "exactly_once": bool(found.enable_exactly_once_delivery),
            "dead_letter_name": dead_topic,
            "max_delivery_attempts": int(dead.max_delivery_attempts) if dead_topic else None,
            "never_expires": expiry is None or not seconds(expiry.ttl),
        }
        if dead_topic and not lacks(context, IAM_GAP):
            properties["dead_letter_access"] = self._access(context, node)
        return properties

    def _access(self, context: Context, node: Node) -> bool:
        member = service_agent(context)
        dead_letter = topic_path(context, node.properties["dead_letter_name"])
        source = subscription_path(context, node.properties["name"])
        try:
            return _granted(_publisher(context), dead_letter, "roles/pubsub.publisher", member) and _granted(
                _subscriber(context), source, "roles/pubsub.subscriber", member
            )
        except NotFound:
            return False

    def _observe(self, context: Context, node: Node, found: Any) -> Observed:
        name = found.name.rpartition("/")[2]
        outputs = {
            "subscription": found.name,
            "project": context.client.project,
            "dead_letter_topic": (
                topic_path(context, node.properties["dead_letter_name"])
                if node.properties["dead_letter_name"]
                else None
            ),
        }
        return self.observed(node, name, self._properties(context, node, found), outputs)

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        found = _subscriber(context).get_subscription(
            request={"subscription": subscription_path(context, provider_id)}
        )
        return self._observe(context, node, found)

    def _read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        existing = _subscriptions(context)
        return {n.id: self._observe(context, n, existing[p]) if p in existing else None for n, p in nodes}

    def _settings(self, context: Context, node: Node) -> dict[str, Any]:
        """The subscription's fields that can change in place, as the API takes them."""
        p = node.properties
        fields: dict[str, Any] = {
            "ack_deadline_seconds": p["ack_deadline_seconds"],
            "message_retention_duration": {"seconds": p["retention_seconds"]},
            "retry_policy": {
                "minimum_backoff": {"seconds": p["min_backoff_seconds"]},
                "maximum_backoff": {"seconds": p["max_backoff_seconds"]},
            },
            "enable_exactly_once_delivery": p["exactly_once"],
            "expiration_policy": {},
            "labels": self.labels(context, node),
            "dead_letter_policy": (
                {
                    "dead_letter_topic": topic_path(context, p["dead_letter_name"]),
                    "max_delivery_attempts": p["max_delivery_attempts"],
                }
                if p["dead_letter_name"]
                else None
            ),
        }
        return fields

    def _grant(self, context: Context, node: Node) -> None:
        """The service agent's bindings: publisher on the dead-letter topic, subscriber on this one."""
        if not node.properties["dead_letter_name"] or lacks(context, IAM_GAP):
            return
        member = service_agent(context)
        _grant(
            _publisher(context),
            topic_path(context, node.properties["dead_letter_name"]),
            "roles/pubsub.publisher",
            member,
        )
        _grant(
            _subscriber(context),
            subscription_path(context, node.properties["name"]),
            "roles/pubsub.subscriber",
            member,
        )

    def _create(self, context: Context, node: Node) -> Observed:
        p = node.properties
        request = {
            "name": subscription_path(context, p["name"]),
            "topic": topic_path(context, p["topic_name"]),
            "enable_message_ordering": p["ordered"],
            **{k: v for k, v in self._settings(context, node).items() if v is not None},
        }
        try:
            _subscriber(context).create_subscription(request=request)
        except Conflict:
            pass  # made by an earlier apply that did not record it: adopted, and set as asked below
        else:
            self._grant(context, node)
            return self.read(context, node, p["name"])  # type: ignore[return-value]
        found = self.read(context, node, p["name"])
        differ = {k: v for k, v in p.items() if found is None or found.properties.get(k) != v}
        return self._update(context, node, p["name"], differ)

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        fields = self._settings(context, node)
        paths = sorted({_PATHS[key] for key in changes if key in _PATHS})
        if paths:  # only what changed (the emulator refuses some fields in a mask, even unchanged)
            subscription = {"name": subscription_path(context, provider_id)}  # a policy cleared: {}
            subscription.update({path: {} if fields[path] is None else fields[path] for path in paths})
            _subscriber(context).update_subscription(
                request={"subscription": subscription, "update_mask": {"paths": paths}}
            )
        self._grant(context, node)
        return self.read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        _subscriber(context).delete_subscription(
            request={"subscription": subscription_path(context, provider_id)}
        )

    def inventory(self, context: Context) -> list[str]:
        """The subscriptions labelled as this environment's (not those keeping dead letters)."""
        subscriptions = _listing(context, _subscriptions)
        return [n for n, s in subscriptions.items() if _owned(context, s.labels, self.role)]

    def runtime_entry(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        keys = (
            "ordered",
            "exactly_once",
            "max_retries",
            "min_backoff_seconds",
            "max_backoff_seconds",
            "max_concurrency",
        )
        return {
            "type": self.type,
            **{key: node.properties[key] for key in keys},
            "name": node.properties["declared"],
            "ack_deadline_seconds": node.properties["declared_ack_deadline"],
            **observed.outputs,
        }


_PATHS = {
    "ack_deadline_seconds": "ack_deadline_seconds",
    "retention_seconds": "message_retention_duration",
    "min_backoff_seconds": "retry_policy",
    "max_backoff_seconds": "retry_policy",
    "exactly_once": "enable_exactly_once_delivery",
    "never_expires": "expiration_policy",
    "dead_letter_name": "dead_letter_policy",
    "max_delivery_attempts": "dead_letter_policy",
}
"""A subscription's property -> the field of the API that sets it in place."""

TOPIC = TopicType()
DEAD_LETTER = DeadLetterType()
SUBSCRIPTION = SubscriptionType()
TYPES = (TOPIC, DEAD_LETTER, SUBSCRIPTION)


def max_delivery_attempts(max_retries: int) -> int:
    """The dead-letter policy's max delivery attempts for ``max_retries``: ``max_retries + 1`` within
    Pub/Sub's 5 to 100 (the data plane dead-letters earlier itself where fewer are declared)."""
    return min(max(max_retries + 1, MIN_DELIVERY_ATTEMPTS), MAX_DELIVERY_ATTEMPTS)


def expand(scope: Scope) -> list[Node]:
    """A topic node per topic; per subscription its node and, with a retry limit, its dead-letter node."""
    app, env = scope.app, scope.environment.name
    topics = {r.name: r for r in scope.model.of_kind("topic")}
    nodes = []
    for r in scope.of_kind("topic"):
        properties = {
            "name": names.topic_name(app, env, r.name),
            "ordered": r.ordering_attribute is not None,
            "exactly_once": r.delivery == "exactly-once",
        }
        nodes.append(
            scope.node(f"pubsub.topic/{r.name}", TOPIC.type, properties, (names.PROJECT_ID,), resource=r)
        )
    for r in scope.of_kind("subscription"):
        topic = topics[r.topic]
        ack_deadline = duration_seconds(r.ack_deadline)
        retention = duration_seconds(r.message_retention)
        properties = {
            "name": names.subscription_name(app, env, r.name),
            "declared": r.name,
            "topic_name": names.topic_name(app, env, r.topic),
            "ordered": topic.ordering_attribute is not None,
            "exactly_once": topic.delivery == "exactly-once",
            "ack_deadline_seconds": min(max(ack_deadline, MIN_ACK_DEADLINE), MAX_ACK_DEADLINE),
            "declared_ack_deadline": ack_deadline,
            "retention_seconds": min(max(retention, MIN_RETENTION), MAX_RETENTION),
            "min_backoff_seconds": duration_seconds(r.min_backoff),
            "max_backoff_seconds": duration_seconds(r.max_backoff),
            "max_retries": r.max_retries,
            "max_concurrency": r.max_concurrency,
            "dead_letter_name": None,
            "max_delivery_attempts": None,
            "dead_letter_access": None,
            "never_expires": True,
        }
        depends = [f"@topic/{r.topic}", names.PROJECT_ID]
        if r.max_retries != -1:
            dead_letter = f"pubsub.dead_letter/{r.name}"
            name = names.dead_letter_topic_name(app, env, r.name)
            nodes.append(
                scope.node(
                    dead_letter,
                    DEAD_LETTER.type,
                    {"name": name, "ordered": False, "exactly_once": False, "kept": True},
                    (names.PROJECT_ID,),
                )
            )
            properties["dead_letter_name"] = name
            properties["max_delivery_attempts"] = max_delivery_attempts(r.max_retries)
            properties["dead_letter_access"] = True
            depends.append(dead_letter)
        nodes.append(
            scope.node(
                f"pubsub.subscription/{r.name}", SUBSCRIPTION.type, properties, tuple(depends), resource=r
            )
        )
    return nodes
