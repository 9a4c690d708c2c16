"""A tenant on the shared NATS server: its own account ``e_<id>`` (JetStream on, file storage up to the
storage quota, no memory storage), one user in it. Accounts share no subjects and no streams: a client of
one account cannot see, publish to or read another's (the server keeps them apart; its stream API
answers only the account's own). Besides the tenant's user, each account has one for
the host (``host_e_<id>``, the host's password): the host makes and deletes the account's streams as it,
inside the account, so the account's limits apply. Topics and subscriptions are the SDK's JetStream
definitions (:mod:`skyrig.runtime.jetstream.streams`, which the data plane consumes by), in file
storage: a topic is a stream ``topic-<name>`` on subject ``skyrig.topic.<name>``; a subscription a
durable pull consumer ``<name>`` of its topic's stream, with a dead-letter stream and (exactly-once) a
bucket of the ids it handled.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import time
from typing import Any

from skyrig.runtime.jetstream import streams
from skyrig_hosted.host.servers import Servers, Tenant
from skyrig_hosted.host.tenants import check_kind, login_name, new_password

KINDS = ("topic", "subscription")
STORAGE = 1 << 30
"""The account's JetStream file storage limit (the default storage quota)."""


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")
"""A topic's or subscription's name: one token of a subject, and a stream's name."""
TOPIC_DEFAULTS: dict[str, Any] = {
    "delivery": "at-least-once",
    "ordering_attribute": None,
    "retention_seconds": 7 * 86400,
}
SUBSCRIPTION_DEFAULTS: dict[str, Any] = {
    **TOPIC_DEFAULTS,
    "ack_deadline_seconds": 30,
    "max_retries": 5,
    "min_backoff_seconds": 10,
    "max_backoff_seconds": 600,
    "max_concurrency": 16,
}
"""What a subscription is when its properties do not say (the model's defaults)."""


def topic_stream(name: str) -> str:
    """The stream of topic ``name``."""
    return streams.topic_stream(name)


def topic_subject(name: str) -> str:
    """The subject messages of topic ``name`` are published on."""
    return streams.topic_subject(name)


def definition(kind: str, name: str, properties: dict[str, Any]) -> dict[str, Any]:
    """The SDK's definition of topic or subscription ``name`` from the API's properties (ValueError: the
    API answers 422)."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"{kind} name {name!r} must be letters, digits, '-' and '_' (a subject's token)")
    defaults = TOPIC_DEFAULTS if kind == "topic" else SUBSCRIPTION_DEFAULTS
    found = {**defaults, **{k: v for k, v in properties.items() if k in defaults}, "name": name}
    if kind == "subscription":
        topic = properties.get("topic")
        if not isinstance(topic, str) or not _NAME.fullmatch(topic):
            raise ValueError("a subscription's properties name its topic (topic)")
        found["topic"] = topic
    if found["delivery"] not in ("at-least-once", "exactly-once"):
        raise ValueError(f"delivery is at-least-once or exactly-once, not {found['delivery']!r}")
    for key, value in found.items():
        if key.endswith(("_seconds", "_retries", "_concurrency")) and not isinstance(value, int):
            raise ValueError(f"{key} is a whole number, not {value!r}")
    return found


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
    """A topic's stream or a subscription's consumer (``topic`` names its topic), with the settings of
    :data:`SUBSCRIPTION_DEFAULTS` the properties give, in file storage, as the SDK defines them."""
    check_kind("nats", kind, KINDS)
    found = definition(kind, name, properties)

    async def make() -> dict[str, Any]:
        connection = await _connect(servers, _host_login(servers, tenant))
        try:
            js = connection.jetstream(timeout=10)
            if kind == "topic":
                await streams.declare_topic(js, found, storage="file")
                return {"stream": topic_stream(name), "subject": topic_subject(name)}
            from nats.js.errors import NotFoundError

            try:
                await streams.declare_subscription(js, found, storage="file")
            except NotFoundError:
                raise ValueError(f"topic {found['topic']!r} does not exist: make it first") from None
            return {"stream": topic_stream(found["topic"]), "consumer": name}
        finally:
            await connection.close()

    outputs = _run(make())
    return {"url": servers.nats.url, "username": login_name(tenant), **outputs}


def delete(servers: Servers, tenant: Tenant, kind: str, name: str) -> None:
    """The topic's stream, or the subscription's consumer."""
    check_kind("nats", kind, KINDS)
    if login_name(tenant) not in servers.nats.accounts:
        return

    async def drop() -> None:
        connection = await _connect(servers, _host_login(servers, tenant))
        try:
            js = connection.jetstream(timeout=10)
            if kind == "topic":
                await streams.remove_topic(js, name)
                return
            for stream in await js.streams_info():
                if stream.config.name.startswith("topic-"):
                    await streams.remove_subscription(js, stream.config.name[len("topic-") :], name)
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
