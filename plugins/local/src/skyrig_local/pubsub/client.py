"""The local provider's pub/sub data plane: the SDK's JetStream clients, pointed at the environment's
broker (:mod:`skyrig.runtime.jetstream` does the publishing and consuming).

The broker runs as long as the process that started it (``skyrig run``): a client looks up the one
running now, and a message published while none runs fails with what to do about it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from skyrig.provider import JetStreamSubscriptionClient, JetStreamTopicClient, jetstream
from skyrig_local.pubsub import broker


def broker_url(entry: dict[str, Any]) -> str:
    """The URL of the broker serving ``entry``: the environment's running broker, else the one apply saw."""
    folder = entry.get("folder")
    found = broker.running(Path(folder)) if folder else None
    return found or entry["url"]


class _LocalBroker(jetstream.JetStreamClient):
    unreachable = broker.NOT_RUNNING
    missing = "provision it with skyrig apply (skyrig run does)"

    def server(self) -> jetstream.Server:
        return jetstream.Server(broker_url(self.entry), hint=self.unreachable)


class TopicClient(_LocalBroker, JetStreamTopicClient):
    """Publishes to one topic's stream; returns once the broker has stored the message."""


class SubscriptionClient(_LocalBroker, JetStreamSubscriptionClient):
    """Consumes one subscription (see :mod:`skyrig.runtime.jetstream.consumer` for the semantics)."""
