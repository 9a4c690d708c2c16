"""Recent messages of an environment and their delivery attempts, for the development dashboard.

Messages are read from the topics' streams, attempts from the events stream the consumers write to. Only
a running broker can tell (messages live in memory): without one there is nothing to show.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from skyrig.runtime.jetstream import loop as natsio
from skyrig.runtime.jetstream import streams
from skyrig.runtime.jetstream.consumer import message_id
from skyrig_local.pubsub import broker


def recent_messages(folder: Path, limit: int = 50) -> list[dict[str, Any]]:
    """The last ``limit`` messages of the environment in ``folder``, newest first, each with its
    deliveries (``pending`` for a subscription that has not seen it yet)."""
    url = broker.running(folder)
    if url is None or limit <= 0:
        return []
    return natsio.run(_recent(url, broker.definitions(folder), limit))


async def _recent(url: str, found: dict[str, dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    js = await natsio.jetstream(url)
    per_topic = await asyncio.gather(*(_topic_messages(js, topic, limit) for topic in found["topics"]))
    messages = sorted(
        (m for batch in per_topic for m in batch), key=lambda m: m["published_at"], reverse=True
    )
    messages = messages[:limit]
    events = await _events(js, {m["id"] for m in messages}, min((m["time"] for m in messages), default=None))
    for message in messages:
        del message["time"]
        attempts = sorted(events.get(message["id"], []), key=lambda e: (e["at"], e["attempt"]))
        deliveries = [
            {
                "subscription": e["subscription"],
                "attempt": e["attempt"],
                "outcome": e["outcome"],
                "error": e["error"],
                "at": _iso(e["at"]),
            }
            for e in attempts
        ]
        seen = {e["subscription"] for e in attempts}
        for name, subscription in sorted(found["subscriptions"].items()):
            if subscription["topic"] == message["topic"] and name not in seen:
                deliveries.append(
                    {"subscription": name, "attempt": 0, "outcome": "pending", "error": None, "at": None}
                )
        message["deliveries"] = deliveries
    return messages


async def _topic_messages(js: Any, topic: str, limit: int) -> list[dict[str, Any]]:
    from nats.js.errors import NotFoundError

    stream = streams.topic_stream(topic)
    try:
        state = (await js.stream_info(stream)).state
    except NotFoundError:
        return []
    if not state.messages:
        return []
    sequences = range(state.last_seq, max(state.first_seq, state.last_seq - limit + 1) - 1, -1)
    found = await asyncio.gather(*(js.get_msg(stream, seq) for seq in sequences), return_exceptions=True)
    messages = []
    for raw in found:
        if isinstance(raw, BaseException):
            continue  # expired or deleted since the stream was looked at
        messages.append(
            {
                "topic": topic,
                "id": message_id(raw.headers, raw.seq),
                "published_at": raw.time.isoformat(),
                "data": json.loads(raw.data),
                "time": raw.time,
            }
        )
    return messages


async def _events(js: Any, ids: set[str], since: datetime | None) -> dict[str, list[dict[str, Any]]]:
    """The recorded attempts of the messages ``ids`` (published at ``since`` or later, so recorded
    later still), read through a short-lived consumer from that time on."""
    from nats.js import api

    if not ids or since is None:
        return {}
    name = f"recent-{uuid.uuid4().hex[:12]}"
    config = api.ConsumerConfig(
        name=name,
        deliver_policy=api.DeliverPolicy.BY_START_TIME,
        opt_start_time=since,
        ack_policy=api.AckPolicy.NONE,
        mem_storage=True,
        inactive_threshold=10.0,
    )
    info = await js.add_consumer(streams.EVENTS_STREAM, config)
    found: dict[str, list[dict[str, Any]]] = {}
    try:
        left = info.num_pending
        subscription = await js.pull_subscribe_bind(name, streams.EVENTS_STREAM)
        while left > 0:
            batch = await subscription.fetch(min(left, 1000), timeout=2)
            left -= len(batch)
            for msg in batch:
                for line in msg.data.splitlines():  # a burst of attempts, one a line
                    event = json.loads(line)
                    if event["id"] in ids:
                        found.setdefault(event["id"], []).append(event)
        await subscription.unsubscribe()
    finally:
        await js.delete_consumer(streams.EVENTS_STREAM, name)
    return found


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()
