"""Pub/sub on NATS JetStream: the data plane and the stream definitions every JetStream provider shares.

A topic is a stream on subject ``skyrig.topic.NAME`` with a duplicate window for exactly-once delivery; a
subscription is a durable pull consumer of it (ack wait = ack deadline, max ack pending = max
concurrency) with a dead-letter stream of its own and, for exactly-once topics, a key-value bucket of the
ids it has handled. The modules:

- :mod:`.streams` declares, reads and removes the JetStream objects behind a topic or a subscription's
  definition, and says what its runtime config entry holds (:func:`~.streams.topic_entry`,
  :func:`~.streams.subscription_entry`);
- :mod:`.clients` is the data plane: :class:`TopicClient` publishes (through :mod:`.outbox`: on the
  calling loop's own connection, or in bursts from threads), :class:`SubscriptionClient` consumes
  (through :mod:`.consumer`: acks, backoff, dead letters, ordering, exactly-once);
- :mod:`.loop` is the process's NATS loop and its shared connections, one per :class:`Server`.

A runtime config entry names its broker with ``url`` (``nats://HOST:PORT``) and, when the broker asks
for a login, ``user`` and ``password`` (a secret *reference*, resolved by the provider's ``resolve``
when a connection is made: never the password itself). nats-py is imported only when a connection is.
"""

from __future__ import annotations

from skyrig.runtime.jetstream.clients import (
    JetStreamClient,
    SubscriptionClient,
    TopicClient,
    TopicError,
    new_id,
    server_of,
)
from skyrig.runtime.jetstream.loop import BrokerUnreachable, Server

__all__ = [
    "BrokerUnreachable",
    "JetStreamClient",
    "Server",
    "SubscriptionClient",
    "TopicClient",
    "TopicError",
    "new_id",
    "server_of",
]
