"""The data plane of topics and subscriptions on the host: the SDK's JetStream clients
(:mod:`skyrig.runtime.jetstream`), logged in as the environment's own user of its NATS account, whose
password is read from the host's credentials endpoint when a connection is made (and read again once
after the server refuses it)."""

from __future__ import annotations

from typing import Any

from skyrig.provider import JetStreamSubscriptionClient, JetStreamTopicClient
from skyrig_hosted.runtime import forget, login


def _resolver(entry: dict[str, Any]) -> Any:
    return lambda reference: login(entry["api"], reference)[1]


def _refused() -> bool:
    """The server refused the password read before: read it again from the host, once."""
    forget()
    return True


class TopicClient(JetStreamTopicClient):
    """Publishes to a topic's stream on the host; returns once the server has stored the message."""

    unreachable = "the host's pub/sub server is not answering: is the host running?"

    def __init__(self, entry: dict[str, Any], config: dict[str, Any] | None = None) -> None:
        super().__init__(entry, config, _resolver(entry))

    def refused(self) -> bool:
        return _refused()


class SubscriptionClient(JetStreamSubscriptionClient):
    """Consumes a subscription on the host (the SDK's semantics: acks, backoff, dead letters, ordering,
    exactly-once)."""

    unreachable = TopicClient.unreachable

    def __init__(self, entry: dict[str, Any], config: dict[str, Any] | None = None) -> None:
        super().__init__(entry, config, _resolver(entry))

    def refused(self) -> bool:
        return _refused()
