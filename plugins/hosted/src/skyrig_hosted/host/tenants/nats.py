"""A tenant on the shared NATS server: its own account ``e_<id>`` (JetStream on, file storage up to the
storage quota, no memory storage), one user in it. Accounts share no subjects and no streams: a client of
one account cannot see, publish to or read another's (the server keeps them apart; its stream API
answers only the account's own). Besides the tenant's user, each account has one for
the host (``host_e_<id>``, the host's password): the host makes and deletes the account's streams as it,
inside the account, so the account's limits apply. A topic is a stream ``topic-<name>`` on subject
``skyrig.topic.<name>``; a subscription a durable pull consumer ``<name>`` of its topic's stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from typing import Any

from skyrig_hosted.host.servers import Servers, Tenant
from skyrig_hosted.host.tenants import check_kind, login_name, new_password, resource_name

KINDS = ("topic", "subscription")
STORAGE = 1 << 30
"""The account's JetStream file storage limit (the default storage quota)."""


def topic_stream(name: str) -> str:
    """The stream of topic ``name``."""
    return f"topic-{resource_name(name, separator='-')}"


def topic_subject(name: str) -> str:
    """The subject messages of topic ``name`` are published on."""
    return f"skyrig.topic.{resource_name(name, separator='-')}"


def _run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


async def _connect(servers: Servers, login: dict[str, str], attempts: int = 100) -> Any:
    import nats

    for attempt in range(attempts):
        try:
            return await nats.connect(
                servers.nats.url,
                user=login["username"],
                password=login["password"],
                allow_reconnect=False,
                connect_timeout=2,
                max_reconnect_attempts=0,
            )
        except Exception:
            # a new account appears with the server's reload, a few milliseconds after the signal
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(0.05)
    raise AssertionError("unreachable")


def _host_login(servers: Servers, tenant: Tenant) -> dict[str, str]:
    account = login_name(tenant)
    return {"username": servers.nats.host_user(account), "password": servers.nats.admin["password"]}


def ensure(servers: Servers, tenant: Tenant) -> dict[str, str]:
    """The account and its user, made or given a new password (applied by a reload; waits until it
    logs in)."""
    user, password = login_name(tenant), new_password()
    servers.nats.set_account(user, user, password, STORAGE)
    login = {"username": user, "password": password}

    async def check() -> None:
        connection = await _connect(servers, login)
        await connection.close()

    _run(check())
    return login


def put(
    servers: Servers, tenant: Tenant, login: dict[str, str], kind: str, name: str, properties: dict[str, Any]
) -> dict[str, Any]:
    """A topic's stream (file storage, ``retention_seconds`` kept, 7 days by default) or a
    subscription's durable consumer (``topic`` names its topic)."""
    check_kind("nats", kind, KINDS)
    from nats.js import api
    from nats.js.errors import NotFoundError

    async def make() -> dict[str, Any]:
        connection = await _connect(servers, _host_login(servers, tenant))
        try:
            js = connection.jetstream()
            if kind == "topic":
                config = api.StreamConfig(
                    name=topic_stream(name),
                    subjects=[topic_subject(name)],
                    storage=api.StorageType.FILE,
                    max_age=float(properties.get("retention_seconds") or 7 * 86400),
                )
                try:
                    await js.stream_info(config.name)
                except NotFoundError:
                    await js.add_stream(config)
                else:
                    await js.update_stream(config)
                return {"stream": config.name, "subject": topic_subject(name)}
            topic = str(properties["topic"])
            durable = resource_name(name, separator="-")
            consumer = api.ConsumerConfig(durable_name=durable, ack_policy=api.AckPolicy.EXPLICIT)
            await js.add_consumer(topic_stream(topic), consumer)
            return {"stream": topic_stream(topic), "consumer": durable}
        finally:
            await connection.close()

    outputs = _run(make())
    return {"url": servers.nats.url, "username": login_name(tenant), **outputs}


def delete(servers: Servers, tenant: Tenant, kind: str, name: str) -> None:
    """The topic's stream, or the subscription's consumer."""
    check_kind("nats", kind, KINDS)
    if login_name(tenant) not in servers.nats.accounts:
        return
    from nats.js.errors import NotFoundError

    async def drop() -> None:
        connection = await _connect(servers, _host_login(servers, tenant))
        try:
            js = connection.jetstream()
            try:
                if kind == "topic":
                    await js.delete_stream(topic_stream(name))
                else:
                    for stream in await js.streams_info():
                        with contextlib.suppress(NotFoundError):
                            await js.delete_consumer(stream.config.name, resource_name(name, separator="-"))
            except NotFoundError:
                pass
        finally:
            await connection.close()

    _run(drop())


def _store(servers: Servers, tenant: Tenant) -> Any:
    return servers.nats.store / "jetstream" / login_name(tenant)


def remove(servers: Servers, tenant: Tenant) -> None:
    """The account (its connections closed by the reload), then its stored streams."""
    servers.nats.remove_account(login_name(tenant))
    folder = _store(servers, tenant)
    deadline = time.monotonic() + 5
    while folder.exists():
        shutil.rmtree(folder, ignore_errors=True)
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)


def usage(servers: Servers, tenant: Tenant) -> int:
    """The bytes of the account's stored streams."""
    folder = _store(servers, tenant)
    if not folder.exists():
        return 0
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
