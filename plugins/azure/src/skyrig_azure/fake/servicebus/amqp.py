"""The FAKE broker's AMQP side: a proton handler that serves ``$cbs``, ``$management`` and the entities.

It runs in the reactor thread; every touch of the entities is under the broker's lock.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from proton import Condition, Delivery, Endpoint, Handler, Message, symbol

from . import codec
from .management import handle
from .store import BrokerError, Subscription

if TYPE_CHECKING:
    from .broker import FakeServiceBus

log = logging.getLogger(__name__)

SESSION_FILTER = symbol("com.microsoft:session-filter")
SESSION_LOCKED_UNTIL = symbol("com.microsoft:locked-until-utc")
OPERATION_TIMEOUT = symbol("com.microsoft:timeout")
MANAGEMENT = "$management"
_CREDIT = 100
_SESSIONFUL_NEXT_AVAILABLE_TIMEOUT = 65.0


@dataclass(eq=False)
class Consumer:
    """A client's receiver link on a subscription (or its dead-letter queue)."""

    link: Any
    namespace: str
    topic: str
    subscription: str
    dead_letter: bool
    lock: bool
    session_wanted: bool
    session_id: str | None = None
    pending_until: float | None = None  # a NEXT_AVAILABLE session receiver waiting for a session


class BrokerHandler(Handler):
    """Proton events -> the entities (see the package docstring for what is served)."""

    def __init__(self, broker: FakeServiceBus) -> None:
        super().__init__()
        self.broker = broker
        self.consumers: list[Consumer] = []

    # -- connection plumbing -------------------------------------------------------------------------------
    def on_connection_bound(self, event: Any) -> None:
        sasl = event.transport.sasl()
        sasl.allowed_mechs("ANONYMOUS")
        sasl.allow_insecure_mechs = True

    def on_connection_remote_open(self, event: Any) -> None:
        if event.connection.state & Endpoint.LOCAL_UNINIT:
            event.connection.open()

    def on_session_remote_open(self, event: Any) -> None:
        if event.session.state & Endpoint.LOCAL_UNINIT:
            event.session.open()

    def on_link_remote_close(self, event: Any) -> None:
        self._forget(event.link)
        if not event.link.state & Endpoint.LOCAL_CLOSED:
            event.link.close()

    def on_session_remote_close(self, event: Any) -> None:
        if not event.session.state & Endpoint.LOCAL_CLOSED:
            event.session.close()

    def on_connection_remote_close(self, event: Any) -> None:
        self._forget_connection(event.connection)
        if not event.connection.state & Endpoint.LOCAL_CLOSED:
            event.connection.close()

    def on_transport_closed(self, event: Any) -> None:
        if event.connection is not None:
            self._forget_connection(event.connection)

    def _forget_connection(self, connection: Any) -> None:
        for consumer in [c for c in self.consumers if c.link.connection == connection]:
            self._forget(consumer.link)

    def _forget(self, link: Any) -> None:
        consumer = getattr(link, "consumer", None)
        if consumer is None or consumer not in self.consumers:
            return
        self.consumers.remove(consumer)
        with self.broker.lock:
            sub = self._subscription_or_none(consumer)
            if sub is not None:
                sub.release_holder(consumer, time.time())

    # -- links ---------------------------------------------------------------------------------------------
    def on_link_remote_open(self, event: Any) -> None:
        link = event.link
        if not link.state & Endpoint.LOCAL_UNINIT:
            return
        link.source.copy(link.remote_source)
        link.target.copy(link.remote_target)
        address = (link.remote_target.address if link.is_receiver else link.remote_source.address) or ""
        if address == "$cbs" or address.endswith("/" + MANAGEMENT) or address == MANAGEMENT:
            self._open(link)
            return
        try:
            namespace = self._namespace_of(link.connection)
            topic, sub, dead_letter = codec.parse_entity(address)
            with self.broker.lock:
                ns = self.broker.namespace_or_error(namespace)
                if link.is_receiver:
                    if sub is not None:
                        raise BrokerError("amqp:not-allowed", "Send to a subscription is not supported.")
                    ns.topic(topic)
                    self._open(link)
                    return
                if sub is None:
                    raise BrokerError("amqp:not-allowed", f"Cannot receive from topic '{topic}'.")
                subscription = ns.subscription(topic, sub)
                self._open_consumer(link, namespace, topic, subscription, dead_letter)
        except ValueError as exc:
            self._refuse(link, BrokerError("amqp:not-found", str(exc)))
        except BrokerError as exc:
            self._refuse(link, exc)

    def _open(self, link: Any) -> None:
        link.open()
        if link.is_receiver:
            link.flow(_CREDIT)

    def _refuse(self, link: Any, error: BrokerError) -> None:
        log.debug("refusing link %s: %s %s", link.name, error.condition, error.description)
        link.open()
        link.condition = _condition(error)
        link.close()

    def _open_consumer(
        self, link: Any, namespace: str, topic: str, sub: Subscription, dead_letter: bool
    ) -> None:
        filters = _read(link.remote_source.filter)
        session_wanted = isinstance(filters, dict) and SESSION_FILTER in filters
        if not dead_letter and session_wanted != sub.config.requires_session:
            raise BrokerError(
                "amqp:not-allowed",
                "It is not possible for an entity that requires sessions to create a non-sessionful message "
                "receiver."
                if sub.config.requires_session
                else "It is not possible for an entity that does not require sessions to create a sessionful "
                "receiver.",
            )
        consumer = Consumer(
            link=link,
            namespace=namespace,
            topic=topic,
            subscription=sub.name,
            dead_letter=dead_letter,
            lock=link.remote_snd_settle_mode != link.SND_SETTLED,
            session_wanted=session_wanted and not dead_letter,
        )
        link.consumer = consumer
        if consumer.session_wanted:
            wanted = filters.get(SESSION_FILTER)
            consumer.session_id = str(wanted) if wanted is not None else None
            timeout = (link.remote_properties or {}).get(OPERATION_TIMEOUT)
            wait = float(timeout) / 1000 if timeout else _SESSIONFUL_NEXT_AVAILABLE_TIMEOUT
            consumer.pending_until = time.time() + wait
            self.consumers.append(consumer)
            self._try_session(consumer, sub, time.time())
            return
        self.consumers.append(consumer)
        link.open()

    def _try_session(self, consumer: Consumer, sub: Subscription, now: float) -> None:
        """Give a waiting session receiver its session, or time it out, as Service Bus does."""
        link = consumer.link
        try:
            got = sub.lock_session(consumer.session_id, consumer, now)
        except BrokerError as exc:
            self.consumers.remove(consumer)
            self._refuse(link, exc)
            return
        if got is None:
            if consumer.pending_until is not None and consumer.pending_until <= now:
                self.consumers.remove(consumer)
                self._refuse(link, BrokerError("com.microsoft:timeout", "No session is available to accept."))
            return
        consumer.session_id, locked_until = got
        consumer.pending_until = None
        link.source.filter.clear()
        link.source.filter.put_dict({SESSION_FILTER: consumer.session_id})
        link.properties = {SESSION_LOCKED_UNTIL: codec.ticks(locked_until)}
        link.open()

    def _namespace_of(self, connection: Any) -> str:
        namespace = getattr(connection, "sb_namespace", None)
        if namespace is None:
            raise BrokerError(
                "amqp:unauthorized-access", "Unauthorized access. No valid token was put on $cbs."
            )
        return namespace

    def _subscription_or_none(self, consumer: Consumer) -> Subscription | None:
        ns = self.broker.namespaces.get(consumer.namespace)
        try:
            return ns.subscription(consumer.topic, consumer.subscription) if ns else None
        except BrokerError:
            return None

    # -- deliveries ----------------------------------------------------------------------------------------
    def on_link_flow(self, event: Any) -> None:
        self.pump()

    def on_delivery(self, event: Any) -> None:
        link, delivery = event.link, event.delivery
        if link.is_receiver:
            if delivery.partial:
                return
            raw = link.recv(delivery.pending)
            link.advance()
            self._received(link, delivery, raw)
            if link.credit < _CREDIT // 2:
                link.flow(_CREDIT - link.credit)
        elif delivery.remote_state:
            self._settled_by_client(link, delivery)
        elif delivery.settled:  # settled by the client without an outcome: nothing to apply
            delivery.settle()
        self.pump()

    def _received(self, link: Any, delivery: Any, raw: bytes) -> None:
        address = link.remote_target.address or ""
        try:
            messages = codec.decode_messages(raw)
            if address == "$cbs":
                self._put_token(link, messages[0])
            elif address.endswith(MANAGEMENT):
                self._management(link, address, messages[0])
            else:
                namespace = self._namespace_of(link.connection)
                topic, _, _ = codec.parse_entity(address)
                with self.broker.lock:
                    entity = self.broker.namespace_or_error(namespace).topic(topic)
                    now = time.time()
                    for message in messages:
                        entity.publish(message, now)
            delivery.update(Delivery.ACCEPTED)
        except BrokerError as exc:
            delivery.local.condition = _condition(exc)
            delivery.update(Delivery.REJECTED)
        except Exception:  # a bug of the fake must not stop the reactor (and hang every client)
            log.exception("FAKE Service Bus: failed to take a message on %s", address)
            delivery.local.condition = _condition(BrokerError("amqp:internal-error", "FAKE broker error."))
            delivery.update(Delivery.REJECTED)
        delivery.settle()

    def _reply(
        self,
        link: Any,
        node: str,
        request: Message,
        status: int,
        description: str,
        body: Any = None,
        condition: str | None = None,
        cbs: bool = False,
    ) -> None:
        properties: dict[str, Any] = (
            {"status-code": status, "status-description": description}
            if cbs
            else {"statusCode": status, "statusDescription": description}
        )
        if condition:
            properties["errorCondition"] = symbol(condition)
        reply = Message(body=body, correlation_id=request.id, address=request.reply_to, properties=properties)
        for candidate in self._links(link.connection):
            if candidate.is_sender and (candidate.remote_source.address or "") == node:
                if request.reply_to and candidate.remote_target.address not in (None, request.reply_to):
                    continue
                out = candidate.delivery(uuid.uuid4().bytes)
                candidate.send(reply.encode())
                candidate.advance()
                out.settle()
                return
        log.debug("no reply link for %s", node)

    @staticmethod
    def _links(connection: Any) -> list[Any]:
        links, link = [], connection.link_head(Endpoint.LOCAL_ACTIVE)
        while link:
            links.append(link)
            link = link.next(Endpoint.LOCAL_ACTIVE)
        return links

    def _put_token(self, link: Any, request: Message) -> None:
        """Check the SAS token's signature (401), then that its audience exists (404), as Service Bus does."""
        token = request.body if isinstance(request.body, str) else ""
        audience = str((request.properties or {}).get("name", ""))
        with self.broker.lock:
            keys = {name: (ns.key, ns.secondary_key) for name, ns in self.broker.namespaces.items()}
            namespace = codec.sas_namespace(token, keys)
            if namespace is None:
                self._reply(
                    link,
                    "$cbs",
                    request,
                    401,
                    "InvalidSignature: The token has an invalid signature.",
                    cbs=True,
                )
                return
            path = audience.split("://", 1)[-1].partition("/")[2]
            if path.strip("/"):
                try:
                    topic, sub, _ = codec.parse_entity(path)
                    ns = self.broker.namespace_or_error(namespace)
                    ns.subscription(topic, sub) if sub is not None else ns.topic(topic)
                except (ValueError, BrokerError):
                    self._reply(
                        link,
                        "$cbs",
                        request,
                        404,
                        f"The messaging entity '{audience}' could not be found.",
                        cbs=True,
                    )
                    return
        link.connection.sb_namespace = namespace
        self._reply(link, "$cbs", request, 202, "Accepted", cbs=True)

    def _management(self, link: Any, node: str, request: Message) -> None:
        operation = (request.properties or {}).get("operation", "")
        try:
            namespace = self._namespace_of(link.connection)
            entity = node[: -len(MANAGEMENT)].rstrip("/")
            with self.broker.lock:
                status, body = handle(self, namespace, entity, str(operation), request.body or {}, link)
            self._reply(link, node, request, status, "OK" if status == 200 else "No content", body)
        except BrokerError as exc:
            status = {
                "amqp:not-found": 404,
                "com.microsoft:message-not-found": 404,
                "amqp:unauthorized-access": 401,
                "com.microsoft:message-lock-lost": 410,
                "com.microsoft:session-lock-lost": 410,
            }.get(exc.condition, 400)
            self._reply(link, node, request, status, exc.description, None, condition=exc.condition)
        except Exception:  # a bug of the fake answers 500 rather than stopping the reactor
            log.exception("FAKE Service Bus: %s on %s failed", operation, node)
            self._reply(link, node, request, 500, "FAKE broker error.", None, condition="amqp:internal-error")

    def _settled_by_client(self, link: Any, delivery: Any) -> None:
        """Apply the client's outcome to the message; answer it unless the client settled it already.

        Service Bus applies a pre-settled disposition too: the client releases that way, at once and
        unanswered, what reaches its link outside a receive call (with prefetch 0, on credit a receive
        left) and what it holds unreturned when its receiver closes. A released message is available
        again at once with its delivery count unchanged, not left locked until its lock expires.
        """
        consumer = getattr(link, "consumer", None)
        outcome = delivery.remote_state
        answer = not delivery.settled
        log.debug(
            "settle %s%s for lock %s on link %s",
            outcome,
            "" if answer else " (pre-settled)",
            getattr(delivery, "lock_token", None),
            link.name,
        )
        try:
            with self.broker.lock:
                sub = self._subscription_or_none(consumer) if consumer else None
                if sub is None:
                    raise BrokerError("amqp:not-found", "The subscription no longer exists.")
                # proton reads tags back as UTF-8 text, so the token rides on the delivery object instead
                token, now = getattr(delivery, "lock_token", None), time.time()
                if token is None:
                    raise BrokerError("com.microsoft:message-lock-lost", "The delivery holds no lock.")
                if outcome == Delivery.ACCEPTED:
                    sub.complete(token, now)
                elif outcome == Delivery.REJECTED:
                    info = delivery.remote.condition.info if delivery.remote.condition else None
                    info = info or {}
                    sub.dead_letter(
                        token, now, info.get("DeadLetterReason"), info.get("DeadLetterErrorDescription")
                    )
                elif outcome == Delivery.MODIFIED and delivery.remote.undeliverable:
                    sub.defer(token, now)
                elif outcome == Delivery.MODIFIED:
                    sub.abandon(token, now, delivery.remote.annotations)
                elif outcome == Delivery.RELEASED:
                    m, _ = sub.find_locked(token, now)
                    m.unlock()
            if answer:
                delivery.update(outcome)
        except BrokerError as exc:
            log.debug("settle %s refused: %s", outcome, exc.description)
            if answer:
                delivery.local.condition = _condition(exc)
                delivery.update(Delivery.REJECTED)
        delivery.settle()

    # -- the pump: hand messages to receivers with credit ---------------------------------------------------
    def pump(self) -> None:
        """Apply the clock and hand out what receivers have credit for (runs in the reactor thread)."""
        now = time.time()
        with self.broker.lock:
            for ns in self.broker.namespaces.values():
                for topic in ns.topics.values():
                    topic.tick(now)
            for consumer in list(self.consumers):
                sub = self._subscription_or_none(consumer)
                link = consumer.link
                if sub is None:
                    self.consumers.remove(consumer)
                    self._refuse_open(
                        link, BrokerError("amqp:not-found", "The messaging entity was deleted.")
                    )
                    continue
                if consumer.pending_until is not None:
                    self._try_session(consumer, sub, now)
                    continue
                if not link.state & Endpoint.LOCAL_ACTIVE:
                    continue
                self._feed(consumer, sub, now)

    def _refuse_open(self, link: Any, error: BrokerError) -> None:
        if link.state & Endpoint.LOCAL_ACTIVE:
            link.condition = _condition(error)
            link.close()

    def _feed(self, consumer: Consumer, sub: Subscription, now: float) -> None:
        link = consumer.link
        if consumer.session_id is not None:
            try:
                sub.session_for(consumer.session_id, consumer, now)
            except BrokerError as exc:
                self.consumers.remove(consumer)
                self._refuse_open(link, exc)
                return
        while link.credit > 0:
            session = consumer.session_id if consumer.session_wanted else None
            stored = sub.take(consumer.dead_letter, session, consumer, consumer.lock, now)
            if stored is None:
                break
            if stored.lock_token is not None and consumer.session_id is not None:
                stored.locked_until = sub.sessions[consumer.session_id].locked_until
            tag = stored.lock_token.bytes_le if stored.lock_token else uuid.uuid4().bytes_le
            delivery = link.delivery(tag)
            delivery.lock_token = stored.lock_token
            log.debug(
                "deliver %s seq %s count %s lock %s on link %s",
                sub.name,
                stored.seq,
                stored.delivery_count,
                stored.lock_token,
                link.name,
            )
            link.send(codec.delivered(stored, locked=consumer.lock))
            link.advance()
            if not consumer.lock:
                delivery.settle()
        if link.drain_mode and link.credit > 0:
            link.drained()

    def on_timer_task(self, event: Any) -> None:
        try:
            self.pump()
        except Exception:  # the clock must keep ticking whatever a bug of the fake did
            log.exception("FAKE Service Bus: the clock tick failed")
        finally:
            self.broker.schedule_tick()

    def on_broker_wake(self, event: Any) -> None:
        self.pump()

    def on_broker_stop(self, event: Any) -> None:
        self.broker.shutdown()


def _read(data: Any) -> Any:
    """The value a proton Data holds (None if empty)."""
    if data is None:
        return None
    data.rewind()
    return data.get_object() if data.next() is not None else None


def _condition(error: BrokerError) -> Condition:
    """The AMQP error for a refusal, with a tracking id in its info as Service Bus sends.

    The client reads the info of a rejected transfer's error by position, so it must be present.
    """
    return Condition(
        error.condition, error.description, {symbol("com.microsoft:tracking-id"): str(uuid.uuid4())}
    )
