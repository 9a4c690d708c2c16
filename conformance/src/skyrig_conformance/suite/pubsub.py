"""Pub/sub through the runtime SDK and the provider's consumer: delivery exactly as typed to every
subscription, publishing from an event loop, retries with backoff, the ack deadline, max_concurrency,
draining on stop; dead letters (after max_retries, at once with max_retries=0, and for a message
delivered again past max_retries), ordering and exactly-once when claimed.

Every test marks its messages with a fresh ``note`` and acknowledges any other message it meets, so
tests never see each other's messages.
"""

from __future__ import annotations

import asyncio
import datetime
import itertools
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from skyrig_conformance import requirements as needs
from skyrig_conformance.deployment import MAIN
from skyrig_conformance.plugin import Suite


def _marker() -> str:
    return f"m-{uuid.uuid4().hex[:12]}"


def _failing(marker: str) -> tuple[list[float], Callable[[dict[str, Any]], Awaitable[None]]]:
    """A handler that fails on every delivery of the messages marked ``marker``, and when it was called."""
    attempts: list[float] = []

    async def handler(data: dict[str, Any]) -> None:
        if data.get("note") == marker:
            attempts.append(time.monotonic())
            raise RuntimeError("the handler fails on purpose")

    return attempts, handler


def _dead_letters(deployment: Any, subscription: str, marker: str) -> Callable[[], list[dict[str, Any]]]:
    """What reads the dead letters of ``subscription`` marked ``marker``, through the provider's reader.
    One context serves every read: a test asks often while it consumes, in the consumer's event loop."""
    provider, context = deployment.provider(), deployment.context(MAIN)

    def read() -> list[dict[str, Any]]:
        letters = provider.dead_letters(context, subscription)
        return [letter for letter in letters if letter["data"].get("note") == marker]

    return read


class TestPubSub(Suite):
    """Topics and subscriptions as the app sees them."""

    @pytest.fixture
    def app(self, deployment):
        yield deployment.bind("alpha")
        deployment.unbind()

    @needs.kinds("topic", "subscription")
    def test_a_message_reaches_each_subscription_exactly_as_typed(self, deployment, app):
        from skyrig.declarations.pubsub import decode_message

        marker = _marker()
        at = datetime.datetime(2026, 11, 30, 12, 30, 15, 250000, tzinfo=datetime.UTC)
        sent = app.messages.Event(id=1, key="a/b", note=f"{marker} héllo ✓", at=at, tags=["x", "y"])
        message_id = app.resources.events.publish(sent)
        assert isinstance(message_id, str) and message_id, (
            f"publish returned {message_id!r}, not a message id"
        )
        for service, subscriptions in (("alpha", ("record", "audit")), ("beta", ("inbox",))):
            bound = deployment.bind(service)
            for subscription in subscriptions:
                received: list[dict[str, Any]] = []

                async def handler(data: dict[str, Any], received: list[dict[str, Any]] = received) -> None:
                    if marker in data.get("note", ""):
                        received.append(data)

                deployment.consume(
                    subscription, handler, until=lambda received=received: bool(received), settle=0.5
                )
                assert len(received) == 1, f"{subscription}: {len(received)} deliveries of one message"
                got = decode_message(bound.messages.Event, received[0])
                assert got.model_dump() == sent.model_dump(), (
                    f"{subscription} received {got!r}, sent {sent!r}"
                )

    @needs.kinds("topic", "subscription")
    def test_publish_async_from_an_event_loop(self, deployment, app):
        marker = _marker()

        async def publish() -> list[str]:
            events = (app.messages.Event(id=number, note=marker) for number in range(5))
            return await asyncio.gather(*(app.resources.events.publish_async(event) for event in events))

        ids = asyncio.run(publish())
        assert len(set(ids)) == 5, f"five messages published at once, their ids: {ids}"
        got: list[int] = []

        async def handler(data: dict[str, Any]) -> None:
            if data.get("note") == marker:
                got.append(data["id"])

        deployment.consume("record", handler, until=lambda: len(got) >= 5)
        assert sorted(got) == list(range(5)), f"published 0 to 4 from an event loop, handled {got}"

    @needs.kinds("topic", "subscription")
    def test_a_failing_handler_is_retried_with_exponential_backoff(self, deployment, app):
        marker = _marker()
        attempts, handler = _failing(marker)
        app.resources.doomed.publish(app.messages.Event(id=2, note=marker))
        deployment.consume("doomed", handler, until=lambda: len(attempts) >= 3, timeout=40)
        gaps = [later - earlier for earlier, later in itertools.pairwise(attempts[:3])]
        # min_backoff 1s, max_backoff 2s: the first retry after 1 s, the second after 2 s
        assert 0.8 <= gaps[0] <= 8, f"first retry after {gaps[0]:.2f} s, asked 1 s"
        assert 1.6 <= gaps[1] <= 10, f"second retry after {gaps[1]:.2f} s, asked 2 s (doubled, capped)"

    @needs.feature("pubsub.dead_letter")
    def test_after_max_retries_the_message_is_dead_lettered(self, deployment, app):
        marker = _marker()
        attempts, handler = _failing(marker)
        dead = _dead_letters(deployment, "doomed", marker)

        app.resources.doomed.publish(app.messages.Event(id=3, note=marker))
        deployment.consume(
            "doomed", handler, until=lambda: len(attempts) >= 3 and bool(dead()), timeout=40, settle=2.5
        )
        assert len(attempts) == 3, f"max_retries=2 means 3 deliveries, there were {len(attempts)}"
        [letter] = dead()
        assert letter["data"]["id"] == 3
        assert letter.get("attempts") in (None, 3), letter
        assert letter.get("error") is None or "the handler fails on purpose" in letter["error"], letter

    @needs.feature("pubsub.dead_letter")
    def test_with_max_retries_zero_the_first_failure_is_dead_lettered(self, deployment, app):
        marker = _marker()
        attempts, handler = _failing(marker)
        dead = _dead_letters(deployment, "fatal", marker)

        app.resources.fatal.publish(app.messages.Event(id=5, note=marker))
        deployment.consume(
            "fatal", handler, until=lambda: bool(attempts) and bool(dead()), timeout=40, settle=2.5
        )
        assert len(attempts) == 1, f"max_retries=0 means 1 delivery, there were {len(attempts)}"
        [letter] = dead()
        assert letter["data"]["id"] == 5
        assert letter.get("attempts") in (None, 1), letter
        assert letter.get("error") is None or "the handler fails on purpose" in letter["error"], letter

    @needs.feature("pubsub.dead_letter")
    def test_a_message_delivered_again_past_max_retries_is_dead_lettered_unhandled(self, deployment, app):
        marker = _marker()
        calls: list[float] = []

        async def handler(data: dict[str, Any]) -> None:
            if data.get("note") != marker:
                return
            calls.append(time.monotonic())
            await asyncio.sleep(3)  # past the 2 s ack deadline: a second delivery would be past max_retries=0

        dead = _dead_letters(deployment, "fatal", marker)

        app.resources.fatal.publish(app.messages.Event(id=6, note=marker))
        deployment.consume("fatal", handler, until=lambda: bool(calls) and bool(dead()), timeout=40, settle=1)
        assert len(calls) == 1, f"the handler was called {len(calls)} times, past max_retries=0"
        [letter] = dead()
        assert letter["data"]["id"] == 6
        assert letter.get("error") is None or "ack deadline" in letter["error"], letter

    @needs.kinds("topic", "subscription")
    def test_a_message_not_acknowledged_within_the_ack_deadline_comes_again(self, deployment, app):
        marker = _marker()
        starts: list[float] = []

        async def handler(data: dict[str, Any]) -> None:
            if data.get("note") != marker:
                return
            starts.append(time.monotonic())
            if len(starts) == 1:
                await asyncio.sleep(4)  # past the 2 s ack deadline

        app.resources.slow.publish(app.messages.Event(id=4, note=marker))
        deployment.consume("slow", handler, until=lambda: len(starts) >= 2, timeout=40)
        assert starts[1] - starts[0] >= 1.5, "delivered again before its ack deadline passed"

    @needs.kinds("topic", "subscription")
    def test_max_concurrency_is_reached_and_never_exceeded(self, deployment, app):
        marker = _marker()
        state = {"active": 0, "peak": 0}
        done: list[int] = []

        async def handler(data: dict[str, Any]) -> None:
            if data.get("note") != marker:
                return
            state["active"] += 1
            state["peak"] = max(state["peak"], state["active"])
            await asyncio.sleep(0.4)
            state["active"] -= 1
            done.append(data["id"])

        for number in range(9):
            app.resources.busy.publish(app.messages.Event(id=number, note=marker))
        deployment.consume("limited", handler, until=lambda: len(done) >= 9, timeout=40)
        assert state["peak"] == 3, f"max_concurrency=3, but {state['peak']} handlers ran at once at most"
        assert sorted(done) == list(range(9)), f"each of 9 messages handled once, handled {sorted(done)}"

    @needs.kinds("topic", "subscription")
    def test_a_stopped_consumer_lets_running_handlers_finish_and_acknowledges_them(self, deployment, app):
        marker = _marker()
        started: list[int] = []
        finished: list[int] = []

        async def handler(data: dict[str, Any]) -> None:
            if data.get("note") != marker:
                return
            started.append(data["id"])
            await asyncio.sleep(0.5)
            finished.append(data["id"])

        for number in range(3):
            app.resources.slow.publish(app.messages.Event(id=number, note=marker))
        deployment.consume("slow", handler, until=lambda: len(started) >= 3, timeout=40)
        assert sorted(finished) == [0, 1, 2], f"stopping cut running handlers short: finished {finished}"
        again: list[int] = []

        async def watch(data: dict[str, Any]) -> None:
            if data.get("note") == marker:
                again.append(data["id"])

        deployment.consume("slow", watch, until=lambda: True, settle=3)  # past the 2 s ack deadline
        assert again == [], f"handled while stopping, yet delivered again (not acknowledged): {again}"

    @needs.feature("pubsub.ordering")
    def test_messages_with_one_ordering_key_are_handled_in_publish_order(self, deployment, app):
        marker = _marker()
        handled: dict[str, list[int]] = {}
        failed = set()

        async def handler(data: dict[str, Any]) -> None:
            if data.get("note") != marker:
                return
            if data["id"] == 3 and 3 not in failed:
                failed.add(3)
                raise RuntimeError("fails once: the rest of its key must wait")
            await asyncio.sleep(0.01 * (data["id"] % 3))
            handled.setdefault(data["key"], []).append(data["id"])

        for number in range(24):
            key = "abc"[number % 3]
            app.resources.sequence.publish(app.messages.Event(id=number, key=key, note=marker))
        deployment.consume(
            "in-order", handler, until=lambda: sum(map(len, handled.values())) >= 24, timeout=60
        )
        for key, ids in handled.items():
            assert ids == sorted(ids), f"key {key!r} handled out of publish order: {ids}"
        assert sorted(itertools.chain(*handled.values())) == list(range(24))

    @needs.feature("pubsub.exactly_once")
    def test_exactly_once_hands_each_message_over_once(self, deployment, app):
        marker = _marker()
        calls: Counter[int] = Counter()

        async def handler(data: dict[str, Any]) -> None:
            if data.get("note") != marker:
                return
            calls[data["id"]] += 1
            if data["id"] < 3:
                await asyncio.sleep(3.5)  # longer than the 2 s ack deadline: held, not handed over again

        for number in range(10):
            app.resources.once.publish(app.messages.Event(id=number, note=marker))
        deployment.consume("once", handler, until=lambda: len(calls) >= 10, timeout=60, settle=3)
        assert calls == Counter(dict.fromkeys(range(10), 1)), f"handed over more than once: {calls}"

    @needs.kinds("topic", "subscription")
    def test_a_service_cannot_publish_to_what_it_does_not_use(self, deployment):
        from skyrig.runtime.binding import BindingError

        beta = deployment.bind("beta")
        with pytest.raises(BindingError, match=r"did not declare|not available"):
            beta.beta.events.publish(beta.messages.Event(id=0))
