"""The FAKE broker's entities and their semantics, without AMQP: topics, subscriptions, locks, sessions.

Everything here runs under the broker's one lock and takes ``now`` (epoch seconds) from the caller, so
the rules (lock expiry, max delivery count, time to live, scheduled enqueue, duplicate detection) are
plain functions of the state and the clock.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

from proton import Message, symbol

from .config import SubscriptionConfig, TopicConfig

SCHEDULED_ENQUEUE_TIME = symbol("x-opt-scheduled-enqueue-time")
MAX_DELIVERY_REASON = "MaxDeliveryCountExceeded"
TTL_EXPIRED_REASON = "TTLExpiredException"

log = logging.getLogger(__name__)


class BrokerError(Exception):
    """A refusal the broker answers with an AMQP error condition (Service Bus' own codes)."""

    def __init__(self, condition: str, description: str) -> None:
        super().__init__(description)
        self.condition = condition
        self.description = description


def not_found(description: str) -> BrokerError:
    """The error Service Bus answers for a missing entity (the client raises MessagingEntityNotFoundError)."""
    return BrokerError("amqp:not-found", description)


def lock_lost(
    description: str = "The lock supplied is invalid. Either the lock expired, or the message has "
    "already been removed from the queue.",
) -> BrokerError:
    """The error for a settlement or renewal with a lock that is gone (MessageLockLostError)."""
    return BrokerError("com.microsoft:message-lock-lost", description)


@dataclass
class StoredMessage:
    """One message in one subscription (each subscription holds its own copy)."""

    seq: int
    message: Message
    enqueued_at: float
    expires_at: float | None
    delivery_count: int = 0
    deferred: bool = False
    lock_token: uuid.UUID | None = None
    locked_until: float = 0.0
    holder: Any = None

    @property
    def session_id(self) -> str | None:
        """The message's session (AMQP group-id)."""
        return self.message.group_id

    def unlock(self) -> None:
        """Drop the lock (the message is available again)."""
        self.lock_token, self.locked_until, self.holder = None, 0.0, None


@dataclass
class SessionLock:
    """Who holds a session and until when, and the session's state."""

    holder: Any = None
    locked_until: float = 0.0
    state: bytes | None = None


@dataclass
class Subscription:
    """A subscription: its active/deferred messages, its dead-letter queue, its locks and sessions."""

    name: str
    config: SubscriptionConfig
    messages: dict[int, StoredMessage] = field(default_factory=dict)
    dead_letters: dict[int, StoredMessage] = field(default_factory=dict)
    sessions: dict[str, SessionLock] = field(default_factory=dict)

    def queue(self, dead_letter: bool) -> dict[int, StoredMessage]:
        """The main queue or the dead-letter queue."""
        return self.dead_letters if dead_letter else self.messages

    def counts(self) -> dict[str, int]:
        """Active (incl. locked), deferred and dead-lettered message counts."""
        deferred = sum(1 for m in self.messages.values() if m.deferred)
        return {
            "active": len(self.messages) - deferred,
            "deferred": deferred,
            "dead_lettered": len(self.dead_letters),
        }

    # -- receive -------------------------------------------------------------------------------------------
    def next_available(self, dead_letter: bool, session_id: str | None, now: float) -> StoredMessage | None:
        """The first message (by sequence number) a receiver may take now, in ``session_id`` if given."""
        for seq in sorted(self.queue(dead_letter)):
            m = self.queue(dead_letter)[seq]
            if m.deferred or m.lock_token is not None:
                continue
            if m.expires_at is not None and m.expires_at <= now and not dead_letter:
                continue
            if session_id is not None and not dead_letter and m.session_id != session_id:
                continue
            return m
        return None

    def take(
        self, dead_letter: bool, session_id: str | None, holder: Any, lock: bool, now: float
    ) -> StoredMessage | None:
        """Lock (peek lock) or remove (receive and delete) the next available message for ``holder``."""
        m = self.next_available(dead_letter, session_id, now)
        if m is None:
            return None
        if lock:
            m.lock_token, m.holder = uuid.uuid4(), holder
            m.locked_until = now + self.config.lock_duration
        else:
            del self.queue(dead_letter)[m.seq]
        return m

    def find_locked(self, token: uuid.UUID, now: float) -> tuple[StoredMessage, bool]:
        """The message holding lock ``token`` and whether it is dead-lettered; lock-lost if none."""
        for dead_letter in (False, True):
            for m in self.queue(dead_letter).values():
                if m.lock_token == token and m.locked_until > now:
                    return m, dead_letter
        raise lock_lost()

    # -- settle --------------------------------------------------------------------------------------------
    def complete(self, token: uuid.UUID, now: float) -> None:
        """Remove the locked message."""
        m, dead_letter = self.find_locked(token, now)
        del self.queue(dead_letter)[m.seq]

    def abandon(self, token: uuid.UUID, now: float, annotations: dict | None = None) -> None:
        """Release the lock; the delivery count grows and may reach the max delivery count."""
        m, dead_letter = self.find_locked(token, now)
        if annotations:
            m.message.annotations = {**(m.message.annotations or {}), **annotations}
        self._failed_delivery(m, dead_letter)

    def defer(self, token: uuid.UUID, now: float) -> None:
        """Set the message aside: only receive-by-sequence-number reaches it again."""
        m, _ = self.find_locked(token, now)
        m.unlock()
        m.deferred = True
        m.delivery_count += 1

    def dead_letter(self, token: uuid.UUID, now: float, reason: str | None, description: str | None) -> None:
        """Move the locked message to the dead-letter queue with its reason and description."""
        m, dead_letter = self.find_locked(token, now)
        if dead_letter:
            raise BrokerError("amqp:not-allowed", "A message in a dead-letter queue cannot be dead-lettered.")
        self._to_dead_letters(m, reason, description)

    def renew(self, token: uuid.UUID, now: float) -> float:
        """Extend the lock by the lock duration; the new locked-until."""
        m, _ = self.find_locked(token, now)
        m.locked_until = now + self.config.lock_duration
        return m.locked_until

    def _failed_delivery(self, m: StoredMessage, dead_letter: bool) -> None:
        m.unlock()
        m.delivery_count += 1
        if not dead_letter and m.delivery_count >= self.config.max_delivery_count:
            self._to_dead_letters(
                m,
                MAX_DELIVERY_REASON,
                f"Message could not be consumed after {self.config.max_delivery_count} delivery attempts.",
            )

    def _to_dead_letters(self, m: StoredMessage, reason: str | None, description: str | None) -> None:
        self.messages.pop(m.seq, None)
        m.unlock()
        m.deferred = False
        props = dict(m.message.properties or {})
        if reason is not None:
            props["DeadLetterReason"] = reason
        if description is not None:
            props["DeadLetterErrorDescription"] = description
        m.message.properties = props
        self.dead_letters[m.seq] = m

    # -- time ----------------------------------------------------------------------------------------------
    def tick(self, now: float) -> None:
        """Apply the clock: expired locks redeliver (or dead-letter), expired messages go, sessions free."""
        for dead_letter in (False, True):
            for m in list(self.queue(dead_letter).values()):
                if m.lock_token is not None and m.locked_until <= now:
                    log.debug("lock %s of %s seq %s expired", m.lock_token, self.name, m.seq)
                    self._failed_delivery(m, dead_letter)
        for m in list(self.messages.values()):
            if m.lock_token is None and m.expires_at is not None and m.expires_at <= now:
                if self.config.dead_lettering_on_expiration:
                    self._to_dead_letters(m, TTL_EXPIRED_REASON, "The message expired and was dead lettered.")
                else:
                    del self.messages[m.seq]
        for sid, lock in list(self.sessions.items()):
            if lock.holder is not None and lock.locked_until <= now:
                lock.holder = None
            if lock.holder is None and lock.state is None:
                del self.sessions[sid]

    # -- sessions ------------------------------------------------------------------------------------------
    def lock_session(self, session_id: str | None, holder: Any, now: float) -> tuple[str, float] | None:
        """Lock ``session_id`` (or, when None, the first session with a message and no holder) for ``holder``.

        Returns (session id, locked until), None when no session is free yet; raises
        session-cannot-be-locked when another receiver holds the named session.
        """
        if session_id is None:
            for seq in sorted(self.messages):
                m = self.messages[seq]
                sid = m.session_id
                if sid is None or m.deferred or (m.expires_at is not None and m.expires_at <= now):
                    continue
                lock = self.sessions.get(sid)
                if lock is None or lock.holder is None:
                    session_id = sid
                    break
            else:
                return None
        lock = self.sessions.setdefault(session_id, SessionLock())
        if lock.holder is not None and lock.holder is not holder:
            raise BrokerError(
                "com.microsoft:session-cannot-be-locked",
                f"The requested session '{session_id}' cannot be accepted. "
                "It may be locked by another receiver.",
            )
        lock.holder, lock.locked_until = holder, now + self.config.lock_duration
        return session_id, lock.locked_until

    def session_for(self, session_id: str, holder: Any, now: float) -> SessionLock:
        """The session lock ``holder`` holds; session-lock-lost otherwise."""
        lock = self.sessions.get(session_id)
        if lock is None or lock.holder is not holder or lock.locked_until <= now:
            raise BrokerError(
                "com.microsoft:session-lock-lost", f"The session lock for '{session_id}' was lost."
            )
        return lock

    def release_holder(self, holder: Any, now: float) -> None:
        """A receiver went away: its sessions are free and their locked messages available again.

        Messages a non-session receiver had locked stay locked until their locks expire, as in Service Bus.
        """
        released = [sid for sid, lock in self.sessions.items() if lock.holder is holder]
        for sid in released:
            self.sessions[sid].holder = None
        for m in list(self.messages.values()):
            if m.holder is holder and m.session_id in released:
                self._failed_delivery(m, dead_letter=False)


@dataclass
class Topic:
    """A topic: its subscriptions, its scheduled messages and the message ids it has seen."""

    name: str
    config: TopicConfig
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    scheduled: dict[int, tuple[float, Message]] = field(default_factory=dict)
    seen_ids: dict[str, float] = field(default_factory=dict)
    next_seq: int = 1

    def _seq(self) -> int:
        self.next_seq += 1
        return self.next_seq - 1

    def publish(self, message: Message, now: float) -> int | None:
        """Accept a message: dropped if a duplicate, held if scheduled, else copied to each subscription.

        Returns its sequence number (None when dropped as a duplicate).
        """
        if self.config.requires_duplicate_detection and message.id is not None:
            key = str(message.id)
            seen = self.seen_ids.get(key)
            if seen is not None and now - seen < self.config.duplicate_window:
                return None
            self.seen_ids[key] = now
        seq = self._seq()
        at = (message.annotations or {}).get(SCHEDULED_ENQUEUE_TIME)
        at_seconds = float(at) / 1000 if at is not None else None
        if at_seconds is not None and at_seconds > now:
            self.scheduled[seq] = (at_seconds, message)
        else:
            self._fan_out(seq, message, now)
        return seq

    def cancel(self, seq: int) -> None:
        """Cancel a scheduled message (message-not-found when it is not scheduled any more)."""
        if self.scheduled.pop(seq, None) is None:
            raise BrokerError(
                "com.microsoft:message-not-found", f"No scheduled message with sequence number {seq}."
            )

    def _fan_out(self, seq: int, message: Message, now: float) -> None:
        for sub in self.subscriptions.values():
            ttls = [t for t in (message.ttl or None, self.config.default_ttl, sub.config.default_ttl) if t]
            ttl = min(ttls) if ttls else None
            copied = Message()
            copied.decode(message.encode())
            copied.ttl = ttl if ttl is not None and ttl * 1000 < 2**32 else 0
            sub.messages[seq] = StoredMessage(
                seq=seq,
                message=copied,
                enqueued_at=now,
                expires_at=now + ttl if ttl is not None else None,
            )

    def tick(self, now: float) -> None:
        """Enqueue the scheduled messages whose time has come, forget old message ids, tick subscriptions."""
        for seq, (at, message) in sorted(self.scheduled.items()):
            if at <= now:
                del self.scheduled[seq]
                self._fan_out(seq, message, now)
        window = self.config.duplicate_window
        for key, seen in list(self.seen_ids.items()):
            if now - seen >= window:
                del self.seen_ids[key]
        for sub in self.subscriptions.values():
            sub.tick(now)


@dataclass
class Namespace:
    """A namespace: its SAS keys and its topics (names compared without case, as Service Bus does)."""

    name: str
    key: str
    secondary_key: str = ""
    topics: dict[str, Topic] = field(default_factory=dict)

    def topic(self, name: str) -> Topic:
        """The topic, or not-found."""
        topic = self.topics.get(name.lower())
        if topic is None:
            raise not_found(f"The messaging entity '{self.name}:topic:{name}' could not be found.")
        return topic

    def subscription(self, topic: str, name: str) -> Subscription:
        """The subscription, or not-found."""
        sub = self.topic(topic).subscriptions.get(name.lower())
        if sub is None:
            raise not_found(f"The messaging entity '{self.name}:topic:{topic}|{name}' could not be found.")
        return sub
