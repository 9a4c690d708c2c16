"""The fixtures an app's tests get under ``skyrig test``.

- ``skyrig_published``: what app code published to a topic (in this test), as messages of its type.
- ``skyrig_drain``: run the subscriptions' handlers for what was published, until nothing is pending.
- ``skyrig_cron``: call a cron job's endpoint by the job's name.
- ``skyrig_reset``: fresh state for the test (databases cloned anew from their migrated templates).
- ``skyrig_secrets``: set the values secrets have in the tests.

Messages never leak from one test into the next; the databases are fresh per test session (per worker
with pytest-xdist) and per test with ``skyrig_reset``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from skyrig.testing.harness import Harness
    from skyrig.testing.pubsub import Bus, Message


def _topic_name(topic: Any) -> str:
    return topic if isinstance(topic, str) else topic.name


class Published:
    """What was published in this test: ``skyrig_published(order_created)`` (a Topic or its name)."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    def __call__(self, topic: Any) -> list[Any]:
        """The messages published to ``topic``, in publish order, as instances of its message type."""
        return [self.bus.decode(message) for message in self.bus.published(_topic_name(topic))]

    def messages(self, topic: Any) -> list[Message]:
        """The records of the messages published to ``topic``: id, data, ordering key, time."""
        return self.bus.published(_topic_name(topic))


class Drain:
    """Delivers what was published: ``skyrig_drain()`` runs every subscription's handler (sync or async)
    for each pending message, in publish order, messages the handlers publish included; name
    subscriptions to run only those. Returns how many deliveries ran. A handler that raises fails the
    test, and its message stays pending."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    def __call__(self, *subscriptions: str) -> int:
        """Drain (all subscriptions, or those named)."""
        return self.bus.drain(list(subscriptions) or None)

    async def run_async(self, *subscriptions: str) -> int:
        """Drain from async code: async handlers run on the test's event loop."""
        return await self.bus.drain_async(list(subscriptions) or None)

    def pending(self, *subscriptions: str) -> list[tuple[str, Message]]:
        """``(subscription, message)`` not yet delivered."""
        return self.bus.pending(list(subscriptions) or None)


class Cron:
    """Triggers cron jobs: ``skyrig_cron("nightly-report")`` calls the job's endpoint now."""

    def __init__(self, harness: Harness) -> None:
        self.harness = harness

    def __call__(self, name: str) -> Any:
        """Call the endpoint of cron job ``name`` (an async one on its own event loop); returns its result."""
        return self.harness.run_cron(name)

    async def run_async(self, name: str) -> Any:
        """Call it from async code."""
        return await self.harness.run_cron_async(name)


class Fixtures:
    """The plugin object holding the fixtures, registered only in a run of ``skyrig test``."""

    def __init__(self, harness: Harness) -> None:
        self.harness = harness

    def pytest_report_header(self) -> str:
        """Say, at the top of the run, what the tests are bound to."""
        by_provider: dict[str, list[str]] = {}
        for kind, provider in sorted(self.harness.providers.items()):
            by_provider.setdefault(provider, []).append(kind)
        served = "; ".join(f"{', '.join(kinds)} from {name}" for name, kinds in by_provider.items())
        return f"skyrig: app {self.harness.model.app}, pub/sub in-process" + (f"; {served}" if served else "")

    @pytest.fixture(scope="session")
    def skyrig_harness(self) -> Harness:
        """The test session: the Application Model, the in-process bus, the providers' test resources."""
        return self.harness

    @pytest.fixture(autouse=True)
    def _skyrig_no_leftover_messages(self) -> Iterator[None]:
        self.harness.bus.clear()
        yield

    @pytest.fixture
    def skyrig_published(self) -> Published:
        """What app code published in this test, per topic: ``skyrig_published(topic)``."""
        return Published(self.harness.bus)

    @pytest.fixture
    def skyrig_drain(self) -> Drain:
        """Run the subscriptions for what was published: ``skyrig_drain()``."""
        return Drain(self.harness.bus)

    @pytest.fixture
    def skyrig_cron(self) -> Cron:
        """Trigger a cron job by name: ``skyrig_cron("nightly-report")``."""
        return Cron(self.harness)

    @pytest.fixture
    def skyrig_reset(self) -> None:
        """Fresh state for this test: every database cloned anew from its migrated template (same name,
        so URLs stay valid), caches and buckets emptied, no messages."""
        self.harness.reset()

    @pytest.fixture
    def skyrig_secrets(self) -> dict[str, str]:
        """Secret values for the tests: ``skyrig_secrets["stripe-api-key"] = "sk_test"`` (kept for the
        session)."""
        return self.harness.secrets
