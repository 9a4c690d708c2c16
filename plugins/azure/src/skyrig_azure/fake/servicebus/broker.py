"""``FakeServiceBus``: the FAKE broker's life cycle (a proton Container in a thread) and its Python API."""

from __future__ import annotations

import base64
import logging
import os
import secrets
import socket
import threading
from typing import Any

from proton.reactor import ApplicationEvent, Container, EventInjector

from .amqp import BrokerHandler
from .config import SubscriptionConfig, TopicConfig
from .store import Namespace, Subscription, Topic, not_found

_TICK = 0.05  # seconds between clock ticks (lock expiry, scheduled messages, TTL)
POLICY = "RootManageSharedAccessKey"
LOG_VARIABLE = "SKYRIG_FAKE_SERVICEBUS_LOG"
"""A file the broker appends its debug log to (deliveries, settlements, lock expiries), when set."""


def _log_to_file() -> None:
    """Send the broker's debug log to the file ``SKYRIG_FAKE_SERVICEBUS_LOG`` names (once a process)."""
    path = os.environ.get(LOG_VARIABLE)
    logger = logging.getLogger(__package__)
    if not path or any(getattr(h, "skyrig_fake", False) for h in logger.handlers):
        return
    handler = logging.FileHandler(path)
    handler.skyrig_fake = True  # type: ignore[attr-defined]
    handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(name)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)


def _new_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


class FakeServiceBus:
    """A FAKE Azure Service Bus broker speaking AMQP 1.0 on 127.0.0.1 (see the package docstring)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.namespaces: dict[str, Namespace] = {}
        self._handler = BrokerHandler(self)
        self._injector = EventInjector()
        self._container: Container | None = None
        self._thread: threading.Thread | None = None
        self._port = 0

    # -- life cycle ----------------------------------------------------------------------------------------
    def __enter__(self) -> FakeServiceBus:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Listen on a free port and run the reactor in a daemon thread."""
        _log_to_file()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self._port = probe.getsockname()[1]
        container = Container(self._handler)
        container.selectable(self._injector)
        self._acceptor = container.listen(f"127.0.0.1:{self._port}")
        container.schedule(_TICK, self._handler)
        self._container = container
        self._thread = threading.Thread(target=container.run, name="fake-servicebus", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the reactor and wait for its thread."""
        if self._thread is None:
            return
        self._injector.trigger(ApplicationEvent("broker_stop"))
        self._thread.join(timeout=5)
        self._thread = None

    def shutdown(self) -> None:
        """Close the listener and stop the reactor (called from the reactor thread)."""
        self._acceptor.close()
        if self._container is not None:
            self._container.stop()

    def schedule_tick(self) -> None:
        """Re-arm the clock (called from the reactor thread)."""
        if self._container is not None:
            self._container.schedule(_TICK, self._handler)

    def wake(self) -> None:
        """Ask the reactor to hand out messages now (after a change made from another thread)."""
        self._injector.trigger(ApplicationEvent("broker_wake"))

    # -- addresses -----------------------------------------------------------------------------------------
    @property
    def address(self) -> str:
        """``host:port`` of the AMQP listener."""
        return f"127.0.0.1:{self._port}"

    def connection_string(self, namespace: str) -> str:
        """``namespace``'s connection string (created if new) for ``ServiceBusClient.from_connection_string``.

        The namespace is told apart by the key that signs the client's SAS token.
        """
        ns = self._namespace(namespace)
        return (
            f"Endpoint=sb://{self.address};SharedAccessKeyName={POLICY};SharedAccessKey={ns.key};"
            "UseDevelopmentEmulator=true"
        )

    def key(self, namespace: str) -> str:
        """The namespace's primary key."""
        return self._namespace(namespace).key

    def access_keys(self, namespace: str) -> dict[str, str]:
        """What ARM's ``authorizationRules/RootManageSharedAccessKey/listKeys`` answers (camelCase).

        Both keys sign valid tokens.
        """
        ns = self._namespace(namespace)
        secondary = self.connection_string(namespace).replace(ns.key, ns.secondary_key)
        return {
            "keyName": POLICY,
            "primaryKey": ns.key,
            "secondaryKey": ns.secondary_key,
            "primaryConnectionString": self.connection_string(namespace),
            "secondaryConnectionString": secondary,
        }

    def regenerate_key(self, namespace: str, key_type: str = "PrimaryKey") -> dict[str, str]:
        """Replace the primary or secondary key (ARM's regenerateKeys); tokens the old key signs fail."""
        with self.lock:
            ns = self._namespace(namespace)
            if key_type == "PrimaryKey":
                ns.key = _new_key()
            elif key_type == "SecondaryKey":
                ns.secondary_key = _new_key()
            else:
                raise ValueError(f"keyType must be PrimaryKey or SecondaryKey, not {key_type!r}")
        return self.access_keys(namespace)

    def namespace_or_error(self, name: str) -> Namespace:
        """The namespace, or not-found (a namespace deleted under a connection)."""
        with self.lock:
            ns = self.namespaces.get(name)
        if ns is None:
            raise not_found(f"The namespace '{name}' could not be found.")
        return ns

    def _namespace(self, name: str) -> Namespace:
        with self.lock:
            ns = self.namespaces.get(name)
            if ns is None:
                ns = self.namespaces[name] = Namespace(name, _new_key(), _new_key())
            return ns

    # -- entities (what ARM's PUT/DELETE do) ---------------------------------------------------------------
    def ensure_topic(self, namespace: str, topic: str, properties: dict[str, Any] | None = None) -> None:
        """Create the topic, or update its settings (messages and subscriptions stay)."""
        config = TopicConfig.from_arm(properties)
        with self.lock:
            ns = self._namespace(namespace)
            existing = ns.topics.get(topic.lower())
            if existing is None:
                ns.topics[topic.lower()] = Topic(topic, config)
            else:
                existing.config = config

    def ensure_subscription(
        self, namespace: str, topic: str, subscription: str, properties: dict[str, Any] | None = None
    ) -> None:
        """Create the subscription (the topic must exist), or update its settings (messages stay)."""
        config = SubscriptionConfig.from_arm(properties)
        with self.lock:
            t = self._namespace(namespace).topic(topic)
            existing = t.subscriptions.get(subscription.lower())
            if existing is None:
                t.subscriptions[subscription.lower()] = Subscription(subscription, config)
            else:
                existing.config = config

    def delete_topic(self, namespace: str, topic: str) -> None:
        """Delete the topic and its subscriptions with their messages (no error if absent)."""
        with self.lock:
            self._namespace(namespace).topics.pop(topic.lower(), None)
        self.wake()

    def delete_subscription(self, namespace: str, topic: str, subscription: str) -> None:
        """Delete the subscription and its messages (no error if absent)."""
        with self.lock:
            t = self._namespace(namespace).topics.get(topic.lower())
            if t is not None:
                t.subscriptions.pop(subscription.lower(), None)
        self.wake()

    def delete_namespace(self, namespace: str) -> None:
        """Forget the namespace, its key and its entities."""
        with self.lock:
            self.namespaces.pop(namespace, None)
        self.wake()

    # -- inspection ----------------------------------------------------------------------------------------
    def counts(self, namespace: str, topic: str, subscription: str) -> dict[str, int]:
        """``{"active", "deferred", "dead_lettered"}`` counts of a subscription (locked ones are active)."""
        with self.lock:
            return self._namespace(namespace).subscription(topic, subscription).counts()

    def scheduled_count(self, namespace: str, topic: str) -> int:
        """How many scheduled messages the topic holds."""
        with self.lock:
            return len(self._namespace(namespace).topic(topic).scheduled)

    def topics(self, namespace: str) -> dict[str, list[str]]:
        """Topic name -> its subscription names."""
        with self.lock:
            return {
                t.name: [s.name for s in t.subscriptions.values()]
                for t in self._namespace(namespace).topics.values()
            }
