"""SNS and SQS for the data plane: publishing to a topic, consuming a subscription's queue.

The consumer gives the semantics of :class:`skyrig.runtime.dataplane.SubscriptionClient`:

- at-least-once: a message is deleted only once its handler succeeded; while a handler runs, the
  message's visibility is extended, so a slow handler does not get it delivered twice;
- a failing handler's message comes back after ``min(max_backoff, min_backoff * 2**(attempt - 1))``
  (``ChangeMessageVisibility``; attempts are SQS's receive count), and after ``max_retries`` retries it is
  sent to the dead-letter queue with its attempts and last error, then deleted; messages received more
  often than that without an answer (a crashed consumer) are moved there by the queue's redrive policy;
- at most ``max_concurrency`` handlers at once in this process;
- FIFO queues (ordered or exactly-once topics): SQS hands over one message group (the ordering key) at a
  time, in order; a batch's messages of one group are handled one after the other, and those after a
  failure are given back at once, so the failed one comes first again. Publishing deduplicates by message
  id, so a message is handled once per subscription.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import uuid
from typing import Any

import skyrig.provider as sdk
from skyrig.provider import Consuming, Handler, drain
from skyrig_aws.runtime import aws

POLL_VARIABLE = "SKYRIG_AWS_POLL_SECONDS"
"""Long-poll wait of each receive (20 s by default, the longest SQS allows)."""


def backoff(entry: dict[str, Any], attempt: int) -> int:
    """Seconds before retrying a message whose ``attempt``-th delivery failed."""
    return int(min(entry["max_backoff_seconds"], entry["min_backoff_seconds"] * 2 ** max(0, attempt - 1)))


class TopicClient(sdk.TopicClient):
    """Publishes to one SNS topic; returns once SNS has stored the message."""

    def __init__(self, entry: dict[str, Any], config: dict[str, Any] | None = None) -> None:
        self.entry = entry
        self.sns = aws("sns", entry)

    def publish(
        self, data: dict[str, Any], *, ordering_key: str | None = None, message_id: str | None = None
    ) -> str:
        payload = json.dumps(data, separators=(",", ":")).encode()
        return self.publish_json(payload, ordering_key=ordering_key, message_id=message_id)

    def publish_json(
        self, payload: bytes, *, ordering_key: str | None = None, message_id: str | None = None
    ) -> str:
        """:meth:`publish` of a message already written as JSON."""
        message_id = message_id or uuid.uuid4().hex
        arguments: dict[str, Any] = {
            "TopicArn": self.entry["arn"],
            "Message": payload.decode(),
            "MessageAttributes": {"skyrig-id": {"DataType": "String", "StringValue": message_id}},
        }
        if self.entry.get("fifo"):
            arguments["MessageGroupId"] = (ordering_key or message_id)[:128] or "-"
            arguments["MessageDeduplicationId"] = message_id[:128]
        self.sns.publish(**arguments)
        return message_id


class SubscriptionClient(Consuming):
    """Consumes one subscription's SQS queue."""

    def __init__(self, entry: dict[str, Any], config: dict[str, Any] | None = None) -> None:
        self.entry = entry
        self.name: str = entry.get("name", "")
        self.sqs = aws("sqs", entry)
        self.url: str = entry["url"]
        self.fifo = bool(entry.get("fifo"))
        self.limit = int(entry.get("max_concurrency", 100))
        self.max_retries = int(entry.get("max_retries", -1))
        self.visibility = int(entry.get("visibility_timeout") or entry.get("ack_deadline_seconds") or 30)
        self.ack_deadline = self.visibility
        self.wait = int(os.environ.get(POLL_VARIABLE, "20"))

    async def run(self, handler: Handler, stop: asyncio.Event, drain_timeout: float) -> None:
        """Handle messages with ``handler`` until ``stop`` is set, then let running handlers finish (up to
        ``drain_timeout`` seconds) and give back what was not started."""
        slots = asyncio.Semaphore(self.limit)
        tasks: set[asyncio.Task[None]] = set()
        running = 0
        while not stop.is_set():
            free = self.limit - running
            if free <= 0:
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                continue
            receive = asyncio.create_task(asyncio.to_thread(self._receive, min(10, free)))
            stopped = asyncio.create_task(stop.wait())
            await asyncio.wait({receive, stopped}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            try:
                messages = await receive
            except Exception:
                await asyncio.sleep(1)  # the endpoint failed: try again, without spinning
                continue
            if stop.is_set():
                await asyncio.to_thread(self._release, messages)
                break
            for group in self._groups(messages):
                running += len(group)

                async def work(group: list[dict[str, Any]] = group) -> None:
                    nonlocal running
                    try:
                        await self._handle_group(group, handler, slots, stop)
                    finally:
                        running -= len(group)

                task = asyncio.create_task(work())
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        await drain(tasks, drain_timeout)

    def _receive(self, count: int) -> list[dict[str, Any]]:
        return self.sqs.receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=count,
            WaitTimeSeconds=self.wait,
            VisibilityTimeout=self.visibility,
            AttributeNames=["ApproximateReceiveCount", "MessageGroupId", "SentTimestamp"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])

    def _groups(self, messages: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        """Messages to handle one after the other: one list per message group on FIFO queues."""
        if not self.fifo:
            return [[m] for m in messages]
        groups: dict[str, list[dict[str, Any]]] = {}
        for message in messages:
            groups.setdefault(message["Attributes"].get("MessageGroupId", message["MessageId"]), []).append(
                message
            )
        return list(groups.values())

    async def _handle_group(
        self,
        group: list[dict[str, Any]],
        handler: Handler,
        slots: asyncio.Semaphore,
        stop: asyncio.Event,
    ) -> None:
        for index, message in enumerate(group):
            if stop.is_set():
                await asyncio.to_thread(self._release, group[index:])
                return
            done = await self._handle(message, handler, slots)
            if not done:  # failed and comes back later: what follows in its group must wait for it
                await asyncio.to_thread(self._release, group[index + 1 :])
                return

    async def _handle(
        self,
        message: dict[str, Any],
        handler: Handler,
        slots: asyncio.Semaphore,
    ) -> bool:
        """Handle one message; True if it is settled (handled or dead-lettered)."""
        attempt = int(message["Attributes"].get("ApproximateReceiveCount", "1"))
        if self.max_retries >= 0 and attempt > self.max_retries + 1:
            error = (
                f"delivered {attempt} times without being acknowledged within the ack deadline "
                f"({self.visibility}s)"
            )
            await asyncio.to_thread(self._dead_letter, message, attempt, error)
            return True
        async with slots:
            # The ack deadline is the handler's time per attempt: past it the message comes again. Only
            # ordered and exactly-once (FIFO) queues hold a message while its handler runs, as the other
            # providers do: a redelivery there would break the order or hand it over twice.
            beat = asyncio.create_task(self._keep_invisible(message) if self.fifo else asyncio.sleep(0))
            try:
                await handler(json.loads(message["Body"]))
                error = None
            except asyncio.CancelledError:
                beat.cancel()
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(self._set_visibility, message, 0)
                raise
            except Exception as failure:
                error = f"{type(failure).__name__}: {failure}"
            finally:
                beat.cancel()
        if error is None:
            await asyncio.to_thread(
                self.sqs.delete_message, QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"]
            )
            return True
        if self.max_retries >= 0 and attempt >= self.max_retries + 1:
            await asyncio.to_thread(self._dead_letter, message, attempt, error)
            return True
        await asyncio.to_thread(self._set_visibility, message, backoff(self.entry, attempt))
        return False

    async def _keep_invisible(self, message: dict[str, Any]) -> None:
        """Extend the message's visibility while its handler runs (ordered and exactly-once queues)."""
        while True:
            await asyncio.sleep(max(1.0, self.visibility / 2))
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self._set_visibility, message, self.visibility)

    def _set_visibility(self, message: dict[str, Any], seconds: int) -> None:
        self.sqs.change_message_visibility(
            QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=seconds
        )

    def _release(self, messages: list[dict[str, Any]]) -> None:
        for message in messages:
            with contextlib.suppress(Exception):
                self._set_visibility(message, 0)

    def _dead_letter(self, message: dict[str, Any], attempt: int, error: str) -> None:
        """Send ``message`` to the dead-letter queue with its attempts and error, then delete it."""
        target = self.entry.get("dead_letter_url")
        if target is None:
            self._set_visibility(message, 0)
            return
        arguments: dict[str, Any] = {
            "QueueUrl": target,
            "MessageBody": message["Body"],
            "MessageAttributes": {
                "skyrig-attempts": {"DataType": "Number", "StringValue": str(attempt)},
                "skyrig-error": {"DataType": "String", "StringValue": " ".join(error.split())[:1000] or "-"},
                "skyrig-subscription": {"DataType": "String", "StringValue": self.entry.get("name", "")},
            },
        }
        if self.fifo:
            arguments["MessageGroupId"] = message["Attributes"].get("MessageGroupId", message["MessageId"])
            arguments["MessageDeduplicationId"] = message["MessageId"]
        self.sqs.send_message(**arguments)
        self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
