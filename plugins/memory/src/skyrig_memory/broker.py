"""The memory cloud's pub/sub service: messages in the SQLite file, leased to consumers.

What a cloud's broker does server-side happens here, in SQLite transactions, so that it holds across
processes:

- publishing stores one copy of the message per subscription the topic has at that moment (fan-out), and
  on an exactly-once topic drops a message id published again within :data:`DEDUPE_WINDOW`;
- receiving leases ready messages to one consumer for the ack deadline; on an ordered topic only the
  oldest message of each ordering key is ready, so one key is handled at a time, in publish order, even
  across retries and across consumers;
- a failed message is ready again after its backoff, or moves to the dead-letter queue once it has
  used its retries, as does one delivered more often than that without being acknowledged;
- acknowledging deletes the message; on an exactly-once topic it also records the id as handled, and a
  handled id is never handed out again.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from skyrig_memory.cloud import MemoryCloud

TOPIC_TYPE = "memory.pubsub.topic"
SUBSCRIPTION_TYPE = "memory.pubsub.subscription"
DEAD_LETTER_TYPE = "memory.pubsub.dead_letter"
DEDUPE_WINDOW = 600.0
"""Seconds within which an exactly-once topic drops a message id published again."""

log = logging.getLogger("skyrig.memory.broker")

_READY = """
SELECT seq, message_id, ordering_key, data, attempts FROM messages AS m
WHERE subscription = ?1 AND visible <= ?2 AND published > ?3
  AND (ordering_key IS NULL OR NOT EXISTS (
    SELECT 1 FROM messages AS e
    WHERE e.subscription = ?1 AND e.ordering_key = m.ordering_key AND e.seq < m.seq))
ORDER BY seq LIMIT ?4
"""


class NoSuchResource(LookupError):
    """The topic or subscription does not exist in the cloud (never applied, or destroyed)."""


@dataclass(frozen=True)
class Policy:
    """How a subscription delivers: its settings, as its runtime config entry gives them."""

    id: int
    name: str
    ack_deadline: float
    max_retries: int
    min_backoff: float
    max_backoff: float
    max_concurrency: int
    retention: float
    dead_letter: str | None
    ordered: bool
    exactly_once: bool

    @classmethod
    def from_entry(cls, entry: dict[str, Any]) -> Policy:
        """The policy of the subscription whose runtime config entry is ``entry``."""
        return cls(
            id=int(entry["resource_id"]),
            name=entry["name"],
            ack_deadline=float(entry["ack_deadline_seconds"]),
            max_retries=int(entry["max_retries"]),
            min_backoff=float(entry["min_backoff_seconds"]),
            max_backoff=float(entry["max_backoff_seconds"]),
            max_concurrency=int(entry["max_concurrency"]),
            retention=float(entry["retention_seconds"]),
            dead_letter=entry.get("dead_letter"),
            ordered=bool(entry.get("ordered")),
            exactly_once=bool(entry.get("exactly_once")),
        )

    def backoff(self, attempt: int) -> float:
        """Seconds before retrying a message whose ``attempt``-th delivery failed."""
        return min(self.max_backoff, self.min_backoff * 2 ** max(0, attempt - 1))

    def exhausted(self, attempt: int) -> bool:
        """Whether a message whose ``attempt``-th delivery failed has used all its retries."""
        return self.max_retries >= 0 and attempt >= self.max_retries + 1


@dataclass
class Delivery:
    """One delivery of a message: its lease names the consumer and the attempt."""

    seq: int
    message_id: str
    ordering_key: str | None
    data: str
    attempt: int
    lease: str


class Broker:
    """Pub/sub operations on one memory cloud (the data plane's calls: no faults injected)."""

    def __init__(self, cloud: MemoryCloud) -> None:
        self.cloud = cloud

    # -- publishing ------------------------------------------------------------------------------

    def publish(
        self,
        topic_id: int,
        topic: str,
        data: str,
        *,
        message_id: str,
        ordering_key: str | None = None,
        dedupe: bool = False,
    ) -> bool:
        """Store message ``data`` (JSON text) for every subscription of topic ``topic`` (its declared
        name) now; False if ``dedupe`` dropped it as a duplicate."""
        now = time.time()
        with self.cloud.transaction() as connection:
            owner = connection.execute(
                "SELECT app, env FROM resources WHERE id = ? AND type = ?", (topic_id, TOPIC_TYPE)
            ).fetchone()
            if owner is None:
                raise NoSuchResource(f"topic {topic!r} does not exist in the memory cloud")
            if dedupe:
                connection.execute(
                    "DELETE FROM published_ids WHERE topic = ? AND at < ?", (topic_id, now - DEDUPE_WINDOW)
                )
                added = connection.execute(
                    "INSERT OR IGNORE INTO published_ids VALUES (?, ?, ?)", (topic_id, message_id, now)
                )
                if added.rowcount == 0:
                    return False
            subscriptions = connection.execute(
                "SELECT id FROM resources WHERE type = ? AND app = ? AND env = ? "
                "AND json_extract(properties, '$.topic') = ?",
                (SUBSCRIPTION_TYPE, *owner, topic),
            ).fetchall()
            connection.executemany(
                "INSERT INTO messages (subscription, message_id, ordering_key, data, published, visible) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(sid, message_id, ordering_key, data, now, now) for (sid,) in subscriptions],
            )
        return True

    # -- consuming -------------------------------------------------------------------------------

    def exists(self, policy: Policy) -> bool:
        """Whether the subscription exists in the cloud."""
        row = self.cloud.connection.execute(
            "SELECT 1 FROM resources WHERE id = ? AND type = ?", (policy.id, SUBSCRIPTION_TYPE)
        ).fetchone()
        return row is not None

    def ready(self, policy: Policy) -> bool:
        """Whether a message is ready to be leased: a read, which never waits for the write lock."""
        now = time.time()
        query = self.cloud.connection.execute(_READY, (policy.id, now, now - policy.retention, 1))
        return query.fetchone() is not None

    def receive(self, policy: Policy, limit: int, consumer: str) -> list[Delivery]:
        """Lease up to ``limit`` ready messages to ``consumer`` for the ack deadline."""
        if limit <= 0 or not self.ready(policy):  # polling with nothing ready takes no write lock
            return []
        deliveries = []
        with self.cloud.transaction() as connection:
            now = time.time()
            for seq, message_id, key, data, attempts in connection.execute(
                _READY, (policy.id, now, now - policy.retention, limit)
            ).fetchall():
                if policy.exhausted(attempts):  # every delivery so far outlived its ack deadline
                    error = (
                        f"delivered {attempts} times without being acknowledged within the ack deadline "
                        f"({policy.ack_deadline:g}s)"
                    )
                    self._dead_letter(connection, policy, seq, attempts, error)
                    continue
                if policy.exactly_once and self._handled(connection, policy, message_id):
                    connection.execute("DELETE FROM messages WHERE seq = ?", (seq,))
                    continue
                lease = f"{consumer}:{attempts + 1}"
                connection.execute(
                    "UPDATE messages SET attempts = ?, lease = ?, visible = ? WHERE seq = ?",
                    (attempts + 1, lease, now + policy.ack_deadline, seq),
                )
                deliveries.append(Delivery(seq, message_id, key, data, attempts + 1, lease))
        return deliveries

    def ack(self, policy: Policy, delivery: Delivery) -> None:
        """The handler succeeded: the message is done (a late acknowledgement still counts)."""
        with self.cloud.transaction() as connection:
            if policy.exactly_once:
                connection.execute(
                    "INSERT OR IGNORE INTO handled_ids VALUES (?, ?, ?)",
                    (policy.id, delivery.message_id, time.time()),
                )
            connection.execute("DELETE FROM messages WHERE seq = ?", (delivery.seq,))

    def fail(self, policy: Policy, delivery: Delivery, error: str) -> None:
        """The handler failed: retry after the backoff, or dead-letter once the retries are used up.
        Ignored if the lease was lost meanwhile (the message was delivered again, or settled)."""
        with self.cloud.transaction() as connection:
            if not self._holds(connection, delivery):
                return
            if policy.exhausted(delivery.attempt):
                self._dead_letter(connection, policy, delivery.seq, delivery.attempt, error)
            else:
                connection.execute(
                    "UPDATE messages SET lease = NULL, visible = ?, error = ? WHERE seq = ?",
                    (time.time() + policy.backoff(delivery.attempt), error, delivery.seq),
                )

    def extend(self, policy: Policy, deliveries: list[Delivery]) -> None:
        """Keep held messages leased for another ack deadline (they are still being worked on)."""
        visible = time.time() + policy.ack_deadline
        with self.cloud.transaction() as connection:
            connection.executemany(
                "UPDATE messages SET visible = ? WHERE seq = ? AND lease = ?",
                [(visible, d.seq, d.lease) for d in deliveries],
            )

    def release(self, deliveries: list[Delivery]) -> None:
        """Give messages back unsettled (a stopping consumer): ready again at once, the delivery not
        counted."""
        with self.cloud.transaction() as connection:
            connection.executemany(
                "UPDATE messages SET lease = NULL, visible = ?, attempts = attempts - 1 "
                "WHERE seq = ? AND lease = ?",
                [(time.time(), d.seq, d.lease) for d in deliveries],
            )

    def expire(self, policy: Policy) -> None:
        """Drop messages older than the retention period, and handled ids no duplicate can reach now."""
        now = time.time()
        with self.cloud.transaction() as connection:
            connection.execute(
                "DELETE FROM messages WHERE subscription = ? AND published < ?",
                (policy.id, now - policy.retention),
            )
            connection.execute(
                "DELETE FROM handled_ids WHERE subscription = ? AND at < ?",
                (policy.id, now - max(policy.retention, DEDUPE_WINDOW)),
            )

    # -- dead letters ----------------------------------------------------------------------------

    def dead_letters(self, app: str, env: str, subscription: str) -> list[dict[str, Any]]:
        """The dead-letter queue of subscription ``subscription`` (its declared name), oldest first."""
        connection = self.cloud.connection
        queue = connection.execute(
            "SELECT id FROM resources WHERE type = ? AND app = ? AND env = ? AND node = ?",
            (DEAD_LETTER_TYPE, app, env, f"pubsub.dead_letter/{subscription}"),
        ).fetchone()
        if queue is None:
            found = connection.execute(
                "SELECT 1 FROM resources WHERE type = ? AND app = ? AND env = ? AND node = ?",
                (SUBSCRIPTION_TYPE, app, env, f"pubsub.subscription/{subscription}"),
            ).fetchone()
            if found is None:
                raise NoSuchResource(f"subscription {subscription!r} does not exist in {app}/{env}")
            return []  # max_retries=-1: it never dead-letters
        rows = connection.execute(
            "SELECT data, attempts, error FROM dead_letters WHERE queue = ? ORDER BY seq", (queue[0],)
        )
        return [
            {"data": json.loads(data), "attempts": attempts, "error": error} for data, attempts, error in rows
        ]

    # -- inside transactions ---------------------------------------------------------------------

    @staticmethod
    def _holds(connection: sqlite3.Connection, delivery: Delivery) -> bool:
        row = connection.execute("SELECT lease FROM messages WHERE seq = ?", (delivery.seq,)).fetchone()
        return row is not None and row[0] == delivery.lease

    @staticmethod
    def _handled(connection: sqlite3.Connection, policy: Policy, message_id: str) -> bool:
        row = connection.execute(
            "SELECT 1 FROM handled_ids WHERE subscription = ? AND message_id = ?", (policy.id, message_id)
        ).fetchone()
        return row is not None

    @staticmethod
    def _dead_letter(
        connection: sqlite3.Connection, policy: Policy, seq: int, attempts: int, error: str
    ) -> None:
        """Move message ``seq`` to the subscription's dead-letter queue, found in its environment."""
        queue = connection.execute(
            "SELECT d.id FROM resources AS s JOIN resources AS d ON d.app = s.app AND d.env = s.env "
            "WHERE s.id = ? AND d.type = ? AND json_extract(d.properties, '$.queue') = ?",
            (policy.id, DEAD_LETTER_TYPE, policy.dead_letter),
        ).fetchone()
        if queue is None:  # deleted behind skyrig's back: keep the message rather than lose it
            log.error("subscription %s: its dead-letter queue %s is missing", policy.name, policy.dead_letter)
            connection.execute(
                "UPDATE messages SET lease = NULL, visible = ?, error = ? WHERE seq = ?",
                (time.time() + max(policy.max_backoff, 1.0), error, seq),
            )
            return
        connection.execute(
            "INSERT INTO dead_letters "
            "(queue, subscription, message_id, ordering_key, data, attempts, error, published, at) "
            "SELECT ?, ?, message_id, ordering_key, data, ?, ?, published, ? FROM messages WHERE seq = ?",
            (queue[0], policy.name, attempts, error, time.time(), seq),
        )
        connection.execute("DELETE FROM messages WHERE seq = ?", (seq,))
