"""A subscription's consumer: polls the memory cloud's broker for leased messages and runs the handler.

The broker (:mod:`skyrig_memory.broker`) decides what is ready, retries, backoff and dead letters, in
SQLite transactions, so any number of consumer processes can share one subscription. Here:

- at most ``max_concurrency`` handlers run at once in this consumer (one instance of the service, as
  the declaration says: more instances handle more at once);
- a handler that returns acknowledges the message; one that raises fails it (retried after its backoff,
  or dead-lettered by the broker); a message not settled within the ack deadline is delivered again;
- on ordered and exactly-once topics the leases of messages being handled are renewed while they run,
  so a slow handler neither lets the next message of its key overtake it nor gets a second delivery;
- once ``stop`` is set, no more messages are taken and running handlers may finish (up to the drain
  timeout); those cut short are given back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from skyrig.provider import Handler, drain
from skyrig_memory.broker import Broker, Delivery, Policy

POLL = 0.005, 0.02
"""Seconds between two polls of a subscription: the first right after work, growing to the second while
nothing comes (new work here wakes the consumer at once)."""
EXPIRE_EVERY = 30.0
"""Seconds between two sweeps of messages past their retention."""

log = logging.getLogger("skyrig.memory.consumer")
T = TypeVar("T")


class Consumer:
    """Consumes one subscription in the running event loop until ``stop`` is set."""

    def __init__(
        self,
        broker: Broker,
        policy: Policy,
        handler: Handler,
        stop: asyncio.Event,
        drain_timeout: float,
    ) -> None:
        self.broker = broker
        self.policy = policy
        self.handler = handler
        self.stop = stop
        self.drain_timeout = drain_timeout
        self.id = uuid.uuid4().hex[:12]
        self.holds = policy.ordered or policy.exactly_once
        self.slots = asyncio.Semaphore(policy.max_concurrency)
        self.running: dict[int, Delivery] = {}
        """Messages whose handler runs here, by sequence number."""
        self.tasks: set[asyncio.Task[None]] = set()
        self.wake = asyncio.Event()
        # one thread for the cloud's calls: SQLite waits for its lock there, never in the event loop
        self.pool = ThreadPoolExecutor(1, thread_name_prefix=f"skyrig-memory-{policy.name}")

    async def _call(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.pool, function, *args)

    async def run(self) -> None:
        """Poll, hand messages to the handler, renew held leases; drain once ``stop`` is set."""
        try:
            if not await self._call(self.broker.exists, self.policy):
                raise RuntimeError(
                    f"subscription {self.policy.name!r} does not exist in the memory cloud: "
                    f"provision it with skyrig apply"
                )
            beat_every = max(0.2, self.policy.ack_deadline / 3)
            next_beat = next_expiry = time.monotonic()
            interval = POLL[0]
            while not self.stop.is_set():
                room = self.policy.max_concurrency - len(self.tasks)
                try:
                    # the read runs here: WAL readers never wait, and a thread hop per idle poll costs more
                    ready = room > 0 and self.broker.ready(self.policy)
                    received = (
                        await self._call(self.broker.receive, self.policy, room, self.id) if ready else []
                    )
                except sqlite3.OperationalError as error:  # the file stayed locked past the busy timeout
                    log.warning("subscription %s: polling failed (%s); trying again", self.policy.name, error)
                    await asyncio.sleep(1)
                    continue
                for delivery in received:
                    self._start(delivery)
                now = time.monotonic()
                if self.holds and self.running and now >= next_beat:
                    await self._call(self.broker.extend, self.policy, list(self.running.values()))
                    next_beat = now + beat_every
                if now >= next_expiry:
                    await self._call(self.broker.expire, self.policy)
                    next_expiry = now + EXPIRE_EVERY
                if received and len(received) == room:
                    await asyncio.sleep(0)  # there may be more: ask again once the handlers started
                    continue
                interval = POLL[0] if received else min(POLL[1], interval * 2)
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), interval)
            await drain(self.tasks, self.drain_timeout)  # those cut short are given back
        finally:
            self.pool.shutdown(wait=False)

    def _start(self, delivery: Delivery) -> None:
        held = self.running.get(delivery.seq)
        if self.holds and held is not None:
            # delivered again while handled here (a renewal came late): answer as the newest delivery
            held.lease, held.attempt = delivery.lease, delivery.attempt
            return
        self.running[delivery.seq] = delivery
        task = asyncio.ensure_future(self._handle(delivery))
        self.tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        self.wake.set()

    async def _handle(self, delivery: Delivery) -> None:
        try:
            async with self.slots:
                try:
                    await self.handler(json.loads(delivery.data))
                    error = None
                except Exception as raised:
                    error = f"{type(raised).__name__}: {raised}"
            if error is None:
                await self._call(self.broker.ack, self.policy, delivery)
            else:
                await self._call(self.broker.fail, self.policy, delivery, error)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._call(self.broker.release, [delivery]))
            raise
        except Exception:  # the cloud failed to take the answer: the lease expires, the message comes again
            log.exception(
                "subscription %s: settling message %s failed", self.policy.name, delivery.message_id
            )
        finally:
            if self.running.get(delivery.seq) is delivery:
                del self.running[delivery.seq]
