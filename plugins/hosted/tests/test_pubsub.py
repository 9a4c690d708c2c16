"""Pub/sub on the host's NATS JetStream server: what the host declares in an environment's account is the
SDK's definition (the one the data plane consumes by), in file storage, and the data plane reaches it as
the environment's own user only. The servers start once per module (fast mode), on 127.0.0.1."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from skyrig.provider import JetStreamSubscriptionClient, JetStreamTopicClient, jetstream
from skyrig_hosted.host.servers import Servers, Tenant
from skyrig_hosted.host.tenants import nats as nats_tenant

A = Tenant("shop", "pr:1", "aaaa1111")
B = Tenant("shop", "pr:2", "bbbb2222")
SUBSCRIPTION = {
    "topic": "orders",
    "delivery": "at-least-once",
    "ordering_attribute": None,
    "ack_deadline_seconds": 10,
    "retention_seconds": 3600,
    "max_retries": 2,
    "min_backoff_seconds": 1,
    "max_backoff_seconds": 5,
    "max_concurrency": 4,
}


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    folder = Path(tempfile.mkdtemp(prefix="skyrig-hosted-pubsub-"))
    folder.chmod(0o711)  # as root, the PostgreSQL server's own user must reach DATA/postgres
    try:
        with Servers(folder, fast=True) as running:
            yield running
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def logins(servers: Servers) -> dict[str, dict[str, str]]:
    return {tenant.id: nats_tenant.ensure(servers, tenant) for tenant in (A, B)}


def _entries(servers: Servers, login: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The runtime config entries of topic ``orders`` and subscription ``receipts``, as the provider
    writes them (the password by reference)."""
    connection = {"url": servers.nats.url, "user": login["username"], "password": "ref"}
    topic = {**connection, **jetstream.streams.topic_entry({"name": "orders", **SUBSCRIPTION})}
    subscription = {
        **connection,
        **jetstream.streams.subscription_entry({"name": "receipts", **SUBSCRIPTION}),
    }
    return topic, subscription


def _read(servers: Servers, login: dict[str, str], read: Any) -> Any:
    server = jetstream.Server(servers.nats.url, login["username"], lambda: login["password"])

    async def run() -> Any:
        return await read(await jetstream.loop.jetstream(server))

    return jetstream.loop.run(run())


def test_a_subscription_is_the_sdks_definition_and_changes_in_place(servers: Servers, logins: Any) -> None:
    login = logins[A.id]
    outputs = nats_tenant.put(servers, A, login, "topic", "orders", {"retention_seconds": 3600})
    assert outputs["subject"] == jetstream.streams.topic_subject("orders")
    nats_tenant.put(servers, A, login, "subscription", "receipts", SUBSCRIPTION)
    found = _read(servers, login, lambda js: jetstream.streams.read_subscription(js, "orders", "receipts"))
    assert found == {"name": "receipts", **SUBSCRIPTION}
    stream = _read(servers, login, lambda js: js.stream_info(jetstream.streams.topic_stream("orders")))
    assert stream.config.storage == "file"  # messages survive the host's restart

    nats_tenant.put(
        servers, A, login, "subscription", "receipts", {**SUBSCRIPTION, "ack_deadline_seconds": 20}
    )
    found = _read(servers, login, lambda js: jetstream.streams.read_subscription(js, "orders", "receipts"))
    assert found["ack_deadline_seconds"] == 20


def test_the_data_plane_publishes_and_consumes_as_the_environments_user(
    servers: Servers, logins: Any
) -> None:
    login = logins[A.id]
    nats_tenant.put(servers, A, login, "topic", "orders", {"retention_seconds": 3600})
    nats_tenant.put(servers, A, login, "subscription", "receipts", SUBSCRIPTION)
    topic, subscription = _entries(servers, login)
    resolve = {"ref": login["password"]}.__getitem__
    JetStreamTopicClient(topic, {}, resolve).publish({"id": 7})
    got: list[Any] = []

    async def consume() -> None:
        stop = asyncio.Event()

        async def handler(data: dict[str, Any]) -> None:
            got.append(data)
            stop.set()

        await asyncio.wait_for(
            JetStreamSubscriptionClient(subscription, {}, resolve).consume(handler, stop), 20
        )

    asyncio.run(consume())
    assert got == [{"id": 7}]


def test_another_environments_user_reaches_none_of_it(servers: Servers, logins: Any) -> None:
    nats_tenant.put(servers, A, logins[A.id], "topic", "orders", {"retention_seconds": 3600})
    nats_tenant.put(servers, A, logins[A.id], "subscription", "receipts", SUBSCRIPTION)
    topic, subscription = _entries(servers, logins[B.id])
    resolve = {"ref": logins[B.id]["password"]}.__getitem__
    with pytest.raises(jetstream.TopicError, match="no stream"):
        JetStreamTopicClient(topic, {}, resolve).publish({"id": 8})

    async def consume() -> None:
        client = JetStreamSubscriptionClient(subscription, {}, resolve)
        await client.consume(lambda data: asyncio.sleep(0), asyncio.Event())

    with pytest.raises(RuntimeError, match="does not exist"):
        asyncio.run(consume())


def test_a_wrong_password_is_refused_without_showing_it(servers: Servers) -> None:
    # a user this process has no connection of yet (connections are shared per server and user)
    login = nats_tenant.ensure(servers, Tenant("shop", "pr:3", "cccc3333"))
    topic, _ = _entries(servers, login)
    client = JetStreamTopicClient(topic, {}, lambda reference: "not-the-password")
    with pytest.raises(PermissionError, match=login["username"]) as refused:
        client.publish({"id": 9})
    assert "not-the-password" not in str(refused.value)
    assert "not-the-password" not in repr(client.server())


def test_bad_properties_are_refused(servers: Servers, logins: Any) -> None:
    login = logins[A.id]
    with pytest.raises(ValueError, match="token"):
        nats_tenant.put(servers, A, login, "topic", "or.ders", {})
    with pytest.raises(ValueError, match="topic"):
        nats_tenant.put(servers, A, login, "subscription", "lost", {})
    with pytest.raises(ValueError, match="does not exist"):
        nats_tenant.put(servers, A, login, "subscription", "lost", {**SUBSCRIPTION, "topic": "nowhere"})


def test_deleting_a_subscription_removes_its_dead_letters_too(servers: Servers, logins: Any) -> None:
    login = logins[A.id]
    nats_tenant.put(servers, A, login, "topic", "events", {})
    nats_tenant.put(servers, A, login, "subscription", "audit", {**SUBSCRIPTION, "topic": "events"})

    async def names(js: Any) -> set[str]:
        return {info.config.name for info in await js.streams_info()}

    assert jetstream.streams.dead_letter_stream("audit") in _read(servers, login, names)
    nats_tenant.delete(servers, A, "subscription", "audit")
    assert jetstream.streams.dead_letter_stream("audit") not in _read(servers, login, names)
    assert (
        _read(servers, login, lambda js: jetstream.streams.read_subscription(js, "events", "audit")) is None
    )
    nats_tenant.delete(servers, A, "topic", "events")
    assert jetstream.streams.topic_stream("events") not in _read(servers, login, names)


def test_a_refused_password_is_read_again_once(servers: Servers) -> None:
    """A password changed on the host (the data plane kept the old one): read again after the refusal."""
    login = nats_tenant.ensure(servers, Tenant("shop", "pr:4", "dddd4444"))
    nats_tenant.put(servers, Tenant("shop", "pr:4", "dddd4444"), login, "topic", "orders", {})
    topic, _ = _entries(servers, login)
    passwords = ["stale", login["password"]]

    class Rereading(JetStreamTopicClient):
        def refused(self) -> bool:
            passwords.pop(0)
            return True

    client = Rereading(topic, {}, lambda reference: passwords[0])
    assert client.publish({"id": 10})
    assert passwords == [login["password"]]
