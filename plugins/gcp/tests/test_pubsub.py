"""The pubsub family, applied with the skyrig CLI and read back through Google's own Pub/Sub client: against
the Pub/Sub EMULATOR of the Google Cloud SDK (topics, subscriptions, dead-letter policies), with the
project and the network in skyrig's FAKE of the Google APIs. Skipped, with the reason, where the emulator
is not installed. The IAM of the Pub/Sub service agent is not shown here: the emulator does not implement
IAM methods (its bindings are checked on a stand-in policy below)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from skyrig.cli.testing import invoke
from skyrig_conformance import Profile
from skyrig_conformance.app import config
from skyrig_conformance.profile import environment
from skyrig_gcp import names, pubsub
from skyrig_gcp.conformance import PROJECT, settings

RESOURCES = """
from pydantic import BaseModel

from skyrig import Subscription, Topic


class Event(BaseModel):
    key: str = "k"


def handle(event) -> None:
    pass


orders = Topic("orders", Event, ordering_attribute="key")
once = Topic("once", Event, delivery="exactly-once")
plain = Topic("plain", Event)
Subscription(orders, "ship", handler=handle, ack_deadline="2s", max_retries=2, min_backoff="1s",
             max_backoff="30s", message_retention="1m")
Subscription(once, "bill", handler=handle, ack_deadline="45s", max_retries=500, message_retention="14d")
Subscription(plain, "log", handler=handle, max_retries=-1)
"""

WEB = "async def app(scope, receive, send):\n    pass\n"


class App:
    """The app above in ``root``, on the GCP provider over the emulator and the fake."""

    def __init__(self, root: Path, endpoints: dict[str, str]) -> None:
        self.root = root
        self.name = f"pst-{uuid.uuid4().hex[:6]}"
        # the service (and so cron) on the memory provider: only the pubsub family is looked at here
        profile = Profile(
            provider="gcp", settings=settings(endpoints), families={"compute": "memory", "cron": "memory"}
        )
        files = {
            "skyrig.toml": config(profile, self.name, ("dev",)),
            "alpha/__init__.py": 'from skyrig import Service\n\nservice = Service("alpha", app="alpha.web:app")\n',
            "alpha/web.py": WEB,
            "alpha/resources.py": RESOURCES,
        }
        for name, text in files.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(text)

    def ok(self, *args: str) -> str:
        result = invoke([*args, "--env", "dev", "-C", str(self.root)], stdin="")
        assert result.code == 0, result.text
        return result.out

    def subscription(self, declared: str) -> str:
        return f"projects/{PROJECT}/subscriptions/{names.subscription_name(self.name, 'dev', declared)}"

    def dead_letter(self, declared: str) -> str:
        return names.dead_letter_topic_name(self.name, "dev", declared)

    def changes(self) -> list[dict[str, Any]]:
        plan = json.loads(self.ok("plan", "--json", "--refresh"))
        return [c for c in plan["changes"] if c["action"] not in ("noop", "retain")]


@pytest.fixture(scope="module")
def emulated(gcp_backends: tuple[dict[str, str], dict[str, str], Any, dict[str, str]]) -> Iterator[Any]:
    endpoints, environ, _fake, limits = gcp_backends
    if "pubsub" in limits:
        pytest.skip(f"backend limit: {limits['pubsub']}")
    with environment({**environ, "SKYRIG_RETRY_BASE_MS": "1"}):
        yield endpoints


@pytest.fixture(scope="module")
def applied(emulated: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> App:
    app = App(tmp_path_factory.mktemp("pubsub"), emulated)
    app.ok("apply", "--yes")
    return app


def clients() -> tuple[Any, Any]:
    from google.cloud import pubsub_v1

    return pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()


def test_a_subscription_has_its_dead_letter_policy_retry_policy_and_ordering(applied: App) -> None:
    publisher, subscriber = clients()
    ship = subscriber.get_subscription(subscription=applied.subscription("ship"))
    dead = f"projects/{PROJECT}/topics/{applied.dead_letter('ship')}"
    assert ship.dead_letter_policy.dead_letter_topic == dead
    assert ship.dead_letter_policy.max_delivery_attempts == 5, "max_retries=2 is below Pub/Sub's 5 attempts"
    assert ship.retry_policy.minimum_backoff.total_seconds() == 1
    assert ship.retry_policy.maximum_backoff.total_seconds() == 30
    assert ship.enable_message_ordering and not ship.enable_exactly_once_delivery
    assert ship.ack_deadline_seconds == 10, "a 2 s ack deadline is below Pub/Sub's 10 s minimum"
    assert ship.message_retention_duration.total_seconds() == 600, "1m is below Pub/Sub's 10 minutes"
    assert not ship.expiration_policy.ttl, "a subscription of skyrig's must never expire"
    assert ship.topic == f"projects/{PROJECT}/topics/{names.topic_name(applied.name, 'dev', 'orders')}"
    # the dead-letter topic exists, and a subscription on it keeps the letters for 7 days
    publisher.get_topic(topic=dead)
    kept = subscriber.get_subscription(
        subscription=f"projects/{PROJECT}/subscriptions/{applied.dead_letter('ship')}"
    )
    assert kept.topic == dead
    assert kept.message_retention_duration.total_seconds() == 7 * 86400


def test_exactly_once_and_the_clamps_of_max_delivery_attempts_and_retention(applied: App) -> None:
    _, subscriber = clients()
    bill = subscriber.get_subscription(subscription=applied.subscription("bill"))
    assert bill.enable_exactly_once_delivery and not bill.enable_message_ordering
    assert bill.dead_letter_policy.max_delivery_attempts == 100, "max_retries=500 is past Pub/Sub's 100"
    assert bill.ack_deadline_seconds == 45
    assert bill.message_retention_duration.total_seconds() == 7 * 86400, "14d is past Pub/Sub's 7 days"
    assert bill.retry_policy.minimum_backoff.total_seconds() == 10  # the declaration's defaults
    assert bill.retry_policy.maximum_backoff.total_seconds() == 600


def test_retrying_forever_has_no_dead_letter_topic(applied: App) -> None:
    from google.api_core import exceptions

    publisher, subscriber = clients()
    log = subscriber.get_subscription(subscription=applied.subscription("log"))
    assert not log.dead_letter_policy.dead_letter_topic, "max_retries=-1 retries forever"
    with pytest.raises(exceptions.NotFound):
        publisher.get_topic(topic=f"projects/{PROJECT}/topics/{applied.dead_letter('log')}")


def test_the_next_plan_is_empty_and_console_changes_are_reverted(applied: App) -> None:
    assert applied.changes() == []
    _, subscriber = clients()
    ship = applied.subscription("ship")
    subscriber.update_subscription(
        request={
            "subscription": {"name": ship, "ack_deadline_seconds": 99},
            "update_mask": {"paths": ["ack_deadline_seconds"]},
        }
    )
    kept = f"projects/{PROJECT}/subscriptions/{applied.dead_letter('ship')}"
    subscriber.delete_subscription(subscription=kept)  # the dead letters' keeper, deleted by hand
    changed = {c["node"] for c in applied.changes()}
    assert changed == {"pubsub.subscription/ship", "pubsub.dead_letter/ship"}, changed
    applied.ok("apply", "--yes")
    assert subscriber.get_subscription(subscription=ship).ack_deadline_seconds == 10
    subscriber.get_subscription(subscription=kept)
    assert applied.changes() == []


def test_a_second_apply_makes_no_mutating_call(applied: App) -> None:
    from skyrig_gcp.api import CALLS, mutating_calls

    before = CALLS.copy()
    applied.ok("apply", "--yes")
    made = mutating_calls(CALLS - before)
    assert not made, f"a second apply changed things: {dict(made)}"


def test_a_publish_retried_with_the_same_id_is_handled_once_on_exactly_once(applied: App) -> None:
    import asyncio

    from skyrig_gcp.runtime.pubsub import SubscriptionClient, TopicClient

    topic = f"projects/{PROJECT}/topics/{names.topic_name(applied.name, 'dev', 'once')}"
    publisher = TopicClient({"topic": topic, "ordered": False})
    for _ in range(2):
        publisher.publish({"key": "twice"}, message_id="same-id")
    publisher.publish({"key": "once"})
    entry = {
        "subscription": applied.subscription("bill"),
        "name": "bill",
        "exactly_once": True,
        "max_retries": 500,
        "min_backoff_seconds": 1,
        "max_backoff_seconds": 2,
        "max_concurrency": 10,
        "ack_deadline_seconds": 45,
    }
    handled: list[str] = []

    async def handler(data: dict[str, Any]) -> None:
        handled.append(data["key"])

    async def consume() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(SubscriptionClient(entry).consume(handler, stop))
        for _ in range(300):
            if len(handled) >= 2:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(1.5)  # room for a duplicate
        stop.set()
        await task

    asyncio.run(consume())
    assert sorted(handled) == ["once", "twice"], handled


def test_destroy_leaves_no_topic_or_subscription(emulated: dict[str, str], tmp_path: Path) -> None:
    app = App(tmp_path, emulated)
    app.ok("apply", "--yes")
    publisher, subscriber = clients()
    prefix = f"{app.name}-dev-"
    assert any(prefix in t.name for t in publisher.list_topics(project=f"projects/{PROJECT}"))
    app.ok("destroy", "--yes", "--include-data")
    assert not [t.name for t in publisher.list_topics(project=f"projects/{PROJECT}") if prefix in t.name]
    left = [s.name for s in subscriber.list_subscriptions(project=f"projects/{PROJECT}") if prefix in s.name]
    assert not left


# -- without the emulator ------------------------------------------------------------------------------


class _Policies:
    """A stand-in for the IAM methods the emulator lacks: one policy per resource, with etags."""

    def __init__(self) -> None:
        from google.iam.v1 import policy_pb2

        self.policies: dict[str, Any] = {
            "t": policy_pb2.Policy(bindings=[{"role": "roles/viewer", "members": ["user:a@b.c"]}])
        }

    def get_iam_policy(self, request: dict[str, Any]) -> Any:
        from google.iam.v1 import policy_pb2

        found = policy_pb2.Policy()
        found.CopyFrom(self.policies.get(request["resource"], policy_pb2.Policy()))
        return found

    def set_iam_policy(self, request: dict[str, Any]) -> Any:
        from skyrig_gcp.api import Conflict

        current = self.policies.get(request["resource"])
        if current is not None and current.etag != request["policy"].etag:
            raise Conflict("etag mismatch")
        request["policy"].etag = uuid.uuid4().bytes
        self.policies[request["resource"]] = request["policy"]
        return request["policy"]


class _Racing(_Policies):
    """Another writer changes the policy between the first read and its write."""

    def __init__(self) -> None:
        super().__init__()
        self.raced = False

    def set_iam_policy(self, request: dict[str, Any]) -> Any:
        if not self.raced:
            self.raced = True
            other = self.get_iam_policy({"resource": request["resource"]})
            other.bindings.add(
                role="roles/pubsub.subscriber", members=["serviceAccount:svc@p.iam.gserviceaccount.com"]
            )
            super().set_iam_policy({"resource": request["resource"], "policy": other})
        return super().set_iam_policy(request)


def test_the_service_agent_is_granted_without_dropping_other_bindings() -> None:
    policies = _Policies()
    agent = f"serviceAccount:{names.pubsub_service_agent('123')}"
    pubsub._grant(policies, "t", "roles/pubsub.publisher", agent)
    pubsub._grant(policies, "t", "roles/pubsub.publisher", agent)  # again: nothing more
    bindings = {b.role: list(b.members) for b in policies.policies["t"].bindings}
    assert bindings == {"roles/viewer": ["user:a@b.c"], "roles/pubsub.publisher": [agent]}
    assert pubsub._granted(policies, "t", "roles/pubsub.publisher", agent)
    assert not pubsub._granted(policies, "t", "roles/pubsub.subscriber", agent)


def test_a_concurrent_change_of_the_policy_is_kept_and_the_grant_retried() -> None:
    policies = _Racing()
    agent = f"serviceAccount:{names.pubsub_service_agent('123')}"
    pubsub._grant(policies, "t", "roles/pubsub.subscriber", agent)
    [binding] = [b for b in policies.policies["t"].bindings if b.role == "roles/pubsub.subscriber"]
    assert sorted(binding.members) == sorted([agent, "serviceAccount:svc@p.iam.gserviceaccount.com"])


def test_max_delivery_attempts_are_clamped_to_pubsubs_bounds() -> None:
    assert [pubsub.max_delivery_attempts(r) for r in (0, 3, 4, 20, 99, 100, 1000)] == [
        5,
        5,
        5,
        21,
        100,
        100,
        100,
    ]


def test_without_the_emulator_the_pubsub_checks_skip_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    from skyrig.provider import KINDS
    from skyrig_conformance import requirements
    from skyrig_conformance.app import Capabilities
    from skyrig_gcp import GcpProvider, conformance
    from skyrig_gcp.settings import GcpSettings

    monkeypatch.setattr(conformance, "pubsub_emulator_command", lambda: None)
    with conformance.backends() as (endpoints, _environ, _fake, limits):
        assert "pubsub" not in endpoints
        assert "gcloud" in limits["pubsub"]
        # the inventory lists no Pub/Sub then (its calls would go to Google)
        context = SimpleNamespace(settings=GcpSettings(**settings(endpoints)))
        assert pubsub.TOPIC.inventory(context) == pubsub.SUBSCRIPTION.inventory(context) == []
    manifest = GcpProvider.manifest
    marker = pytest.mark.skyrig_requires(kinds=("topic", "subscription")).mark
    reason = requirements.check(marker, "gcp", manifest, {}, limits)
    assert reason == f"{requirements.LIMIT}: {limits['pubsub']}"
    feature = pytest.mark.skyrig_requires(feature="pubsub.dead_letter").mark
    assert requirements.check(feature, "gcp", manifest, {}, limits) == reason
    declared = Capabilities(manifest, "development", requirements.unavailable(limits))
    assert not declared.pubsub and not ({"topic", "subscription"} & declared.kinds)
    assert set(KINDS) >= declared.kinds
