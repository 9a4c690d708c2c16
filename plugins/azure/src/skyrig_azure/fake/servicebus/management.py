"""The ``$management`` operations of the FAKE broker that azure-servicebus uses (runs under the lock)."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

from proton import Message, timestamp

from . import codec
from .store import BrokerError, Subscription, not_found

if TYPE_CHECKING:
    from .amqp import BrokerHandler

_VENDOR = "com.microsoft:"
_MESSAGE_STATE_ACTIVE, _MESSAGE_STATE_DEFERRED, _MESSAGE_STATE_SCHEDULED = 0, 1, 2
_MANAGEMENT_HOLDER = object()  # holds locks taken through receive-by-sequence-number


def handle(
    handler: BrokerHandler, namespace: str, entity: str, operation: str, body: dict, link: Any
) -> tuple[int, Any]:
    """Run one operation on ``entity`` (a topic, or a subscription or its dead-letter queue).

    Returns (status code, response body); raises BrokerError for the refusals.
    """
    ns = handler.broker.namespace_or_error(namespace)
    try:
        topic_name, sub_name, dead_letter = codec.parse_entity(entity)
    except ValueError as exc:
        raise not_found(str(exc)) from exc
    now = time.time()
    name = operation.removeprefix(_VENDOR)
    body = {str(k): v for k, v in (body or {}).items()}
    if sub_name is None:
        topic = ns.topic(topic_name)
        if name == "schedule-message":
            numbers = []
            for item in codec.flat(body.get("messages")):
                message = Message()
                message.decode(bytes(item["message"]))
                seq = topic.publish(message, now)
                numbers.append(seq if seq is not None else -1)
            return 200, {"sequence-numbers": numbers}
        if name == "cancel-scheduled-message":
            for seq in codec.flat(body.get("sequence-numbers")):
                topic.cancel(int(seq))
            return 200, {}
        raise BrokerError("amqp:not-implemented", f"Operation {operation} is not supported on a topic.")
    sub = ns.subscription(topic_name, sub_name)
    session_id = body.get("session-id")
    if name == "renew-lock":
        tokens = [uuid.UUID(str(t)) for t in codec.flat(body.get("lock-tokens"))]
        return 200, {"expirations": [timestamp(int(sub.renew(t, now) * 1000)) for t in tokens]}
    if name == "update-disposition":
        return _update_disposition(sub, body, now)
    if name == "peek-message":
        return _peek(sub, dead_letter, body, session_id)
    if name == "receive-by-sequence-number":
        return _receive_deferred(sub, dead_letter, body, session_id, now)
    if name in ("renew-session-lock", "get-session-state", "set-session-state"):
        holder = _session_holder(handler, link, sub, str(session_id))
        lock = sub.session_for(str(session_id), holder, now)
        if name == "renew-session-lock":
            lock.locked_until = now + sub.config.lock_duration
            for m in sub.messages.values():
                if m.holder is holder and m.session_id == session_id:
                    m.locked_until = lock.locked_until
            return 200, {"expiration": timestamp(int(lock.locked_until * 1000))}
        if name == "get-session-state":
            return 200, {"session-state": lock.state}
        state = body.get("session-state")
        lock.state = bytes(state) if state is not None else None
        return 200, {}
    raise BrokerError("amqp:not-implemented", f"Operation {operation} is not supported by this FAKE broker.")


def _session_holder(handler: BrokerHandler, link: Any, sub: Subscription, session_id: str) -> Any:
    for consumer in handler.consumers:
        if consumer.link.connection == link.connection and consumer.session_id == session_id:
            return consumer
    raise BrokerError("com.microsoft:session-lock-lost", f"The session lock for '{session_id}' was lost.")


def _update_disposition(sub: Subscription, body: dict, now: float) -> tuple[int, Any]:
    status = str(body.get("disposition-status"))
    for raw in codec.flat(body.get("lock-tokens")):
        token = uuid.UUID(str(raw))
        if status == "completed":
            sub.complete(token, now)
        elif status == "abandoned":
            sub.abandon(token, now)
        elif status == "defered":
            sub.defer(token, now)
        elif status == "suspended":
            sub.dead_letter(token, now, body.get("deadletter-reason"), body.get("deadletter-description"))
        else:
            raise BrokerError("com.microsoft:argument-error", f"Unknown disposition status {status!r}.")
    return 200, {}


def _peek(sub: Subscription, dead_letter: bool, body: dict, session_id: Any) -> tuple[int, Any]:
    start = int(body.get("from-sequence-number") or 0)
    count = int(body.get("message-count") or 1)
    found = []
    for seq in sorted(sub.queue(dead_letter)):
        m = sub.queue(dead_letter)[seq]
        if seq < start or (session_id is not None and m.session_id != session_id):
            continue
        state = _MESSAGE_STATE_DEFERRED if m.deferred else _MESSAGE_STATE_ACTIVE
        found.append({"message": codec.delivered(m, locked=False, state=state)})
        if len(found) >= count:
            break
    if not found:
        return 204, {}
    return 200, {"messages": found}


def _receive_deferred(
    sub: Subscription, dead_letter: bool, body: dict, session_id: Any, now: float
) -> tuple[int, Any]:
    lock = int(body.get("receiver-settle-mode", 1) or 0) == 1  # 0 = receive-and-delete, 1 = peek lock
    found = []
    for seq in codec.flat(body.get("sequence-numbers")):
        m = sub.queue(dead_letter).get(int(seq))
        if m is None or not m.deferred or (session_id is not None and m.session_id != session_id):
            raise BrokerError(
                "com.microsoft:message-not-found",
                f"Failed to retrieve the deferred message with number {seq}.",
            )
        entry: dict[str, Any] = {}
        if lock:
            m.lock_token, m.holder = uuid.uuid4(), _MANAGEMENT_HOLDER
            m.locked_until = now + sub.config.lock_duration
            entry["lock-token"] = m.lock_token
        else:
            del sub.queue(dead_letter)[m.seq]
        entry["message"] = codec.delivered(m, locked=lock, state=_MESSAGE_STATE_DEFERRED)
        found.append(entry)
    return 200, {"messages": found}
