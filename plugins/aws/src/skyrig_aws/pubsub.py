"""Pub/sub: an SNS topic per topic, an SQS queue per subscription subscribed to it (raw delivery), and a
dead-letter queue per subscription that has a retry limit, wired as the queue's redrive target.

Ordered and exactly-once topics are FIFO topics with FIFO queues: SQS hands over the messages of one
message group (the ordering key) one at a time, in order, and deduplicates by message id.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from skyrig.provider import Context, Node, Observed, Scope, common_prefix, duration_seconds, resolve
from skyrig_aws.api import tag_list
from skyrig_aws.names import queue_name, topic_name
from skyrig_aws.nodes import AwsNodeType

MAX_RECEIVE_COUNT = 1000
"""SQS's limit on deliveries before the redrive: max_retries above 999 are capped to it."""


def topic_arn(context: Context, name: str) -> str:
    client = context.client
    return f"arn:{client.partition()}:sns:{client.settings.region}:{client.account()}:{name}"


def queue_arn(context: Context, name: str) -> str:
    client = context.client
    return f"arn:{client.partition()}:sqs:{client.settings.region}:{client.account()}:{name}"


def _where(context: Context) -> dict[str, Any]:
    return {"region": context.settings.region, "endpoint_url": context.settings.endpoint_url}


def _queue_urls(context: Context) -> dict[str, str]:
    """Queue name -> URL of the environment's queues (subscriptions and dead letters): one ``ListQueues``
    by the prefix their names share, for every queue node type of the command (until it writes to SQS)."""
    app, env = context.app, context.environment.name
    prefix = common_prefix([queue_name(app, env, "a", False), queue_name(app, env, "b", False)])
    sqs = context.client.sqs

    def read() -> dict[str, str]:
        urls = sqs.pages("list_queues", "QueueUrls", QueueNamePrefix=prefix)
        return {url.rpartition("/")[2]: url for url in urls}

    return context.client.shared(("sqs", "ListQueues", prefix), read)


class TopicType(AwsNodeType):
    """An SNS topic (FIFO for ordering or exactly-once delivery)."""

    type = "aws.pubsub.topic"
    arn_types = ("sns",)
    replace_on = frozenset({"name", "fifo"})

    def inventory_id(self, arn: str) -> str:
        return arn

    def _observe(self, context: Context, node: Node, arn: str) -> Observed:
        return self.observed(node, arn, {"name": arn.rpartition(":")[2]}, {"arn": arn, **_where(context)})

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        attributes = context.client.sns.get_topic_attributes(TopicArn=provider_id)["Attributes"]
        return self._observe(context, node, attributes["TopicArn"])

    def _read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        existing = {t["TopicArn"] for t in context.client.sns.pages("list_topics", "Topics")}
        return {n.id: self._observe(context, n, pid) if pid in existing else None for n, pid in nodes}

    def _find(self, context: Context, node: Node) -> Observed | None:
        return self._read(context, node, topic_arn(context, node.properties["name"]))

    def _find_many(self, context: Context, nodes: list[Node]) -> dict[str, Observed | None]:
        return self._read_many(context, [(n, topic_arn(context, n.properties["name"])) for n in nodes])

    def _create(self, context: Context, node: Node) -> Observed:
        attributes = (
            {"FifoTopic": "true", "ContentBasedDeduplication": "false"} if node.properties["fifo"] else {}
        )
        arn = context.client.sns.create_topic(
            Name=node.properties["name"], Attributes=attributes, Tags=tag_list(context.tags(node))
        )["TopicArn"]
        return self._observe(context, node, arn)

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        return self.read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        context.client.sns.delete_topic(TopicArn=provider_id)

    def runtime_entry(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        return {
            "type": self.type,
            **observed.outputs,
            "fifo": node.properties["fifo"],
            "exactly_once": node.properties["exactly_once"],
        }


class QueueType(AwsNodeType):
    """An SQS queue (a subscription's, or its dead-letter queue), encrypted with SQS-managed keys."""

    type = "aws.pubsub.dead_letter"
    arn_types = ("sqs",)
    replace_on = frozenset({"name", "fifo"})
    invariant = frozenset({"encrypted"})

    def inventory_id(self, arn: str) -> str:
        return arn.rpartition(":")[2]

    def _attributes(self, context: Context, node: Node) -> dict[str, str]:
        properties = node.properties
        attributes = {
            "MessageRetentionPeriod": str(properties["retention_seconds"]),
            "SqsManagedSseEnabled": "true",
        }
        if properties["fifo"]:
            attributes["FifoQueue"] = "true"
        return attributes

    def _properties(self, context: Context, node: Node, attributes: Mapping[str, str]) -> dict[str, Any]:
        return {
            "retention_seconds": int(attributes.get("MessageRetentionPeriod", 0)),
            "encrypted": attributes.get("SqsManagedSseEnabled") == "true" or "KmsMasterKeyId" in attributes,
        }

    def _observe(self, context: Context, node: Node, url: str, attributes: Mapping[str, str]) -> Observed:
        return self.observed(
            node,
            url.rpartition("/")[2],
            self._properties(context, node, attributes),
            {"url": url, "arn": attributes.get("QueueArn"), **_where(context)},
        )

    def _url(self, context: Context, name: str) -> str:
        return context.client.sqs.get_queue_url(QueueName=name)["QueueUrl"]

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        return self._read_at(context, node, self._url(context, provider_id))

    def _read_at(self, context: Context, node: Node, url: str) -> Observed | None:
        attributes = context.client.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])[
            "Attributes"
        ]
        return self._observe(context, node, url, attributes)

    def _read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        # the URLs from one listing of the environment's queues (shared with the other queue type), then
        # each queue's attributes (SQS has no bulk read of them)
        urls = _queue_urls(context)
        return {
            node.id: self._read_at(context, node, urls[pid]) if pid in urls else self.read(context, node, pid)
            for node, pid in nodes
        }

    def _find(self, context: Context, node: Node) -> Observed | None:
        return self._read(context, node, node.properties["name"])

    def _find_many(self, context: Context, nodes: list[Node]) -> dict[str, Observed | None]:
        # one listing of the environment's queues (shared by both queue types); the attributes only of
        # the queues that exist
        urls = _queue_urls(context)
        found = {}
        for node in nodes:
            url = urls.get(node.properties["name"])
            found[node.id] = None if url is None else self._read_at(context, node, url)
        return found

    def _create(self, context: Context, node: Node) -> Observed:
        attributes = self._attributes(context, node)
        url = context.client.sqs.create_queue(
            QueueName=node.properties["name"], Attributes=attributes, tags=context.tags(node)
        )["QueueUrl"]
        # what was asked is what a new queue has: read back, it would only add SQS's defaults
        attributes["QueueArn"] = queue_arn(context, node.properties["name"])
        return self._created(context, node, url, attributes)

    def _created(self, context: Context, node: Node, url: str, attributes: Mapping[str, str]) -> Observed:
        return self._observe(context, node, url, attributes)

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        url = self._url(context, provider_id)
        context.client.sqs.set_queue_attributes(
            QueueUrl=url,
            Attributes={k: v for k, v in self._attributes(context, node).items() if k != "FifoQueue"},
        )
        return self.read(context, node, provider_id)  # type: ignore[return-value]

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        context.client.sqs.delete_queue(QueueUrl=self._url(context, provider_id))


class SubscriptionType(QueueType):
    """A subscription: its queue (visibility timeout = ack deadline, redrive to its dead-letter queue after
    max_retries + 1 deliveries) subscribed to its topic with raw message delivery."""

    type = "aws.pubsub.subscription"
    invariant = frozenset({"encrypted", "max_receive_count", "subscribed"})
    replace_on = frozenset({"name", "fifo", "topic"})

    def _dead_letter_arn(self, context: Context, node: Node) -> str | None:
        dead_letter = node.properties["dead_letter"]
        if dead_letter is None:
            return None
        return queue_arn(context, node.properties["dead_letter_name"])

    def _attributes(self, context: Context, node: Node) -> dict[str, str]:
        attributes = super()._attributes(context, node)
        attributes["VisibilityTimeout"] = str(node.properties["visibility_timeout"])
        attributes["ReceiveMessageWaitTimeSeconds"] = "20"
        target = self._dead_letter_arn(context, node)
        if target is not None:
            attributes["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": target, "maxReceiveCount": node.properties["max_receive_count"]}
            )
        else:
            attributes["RedrivePolicy"] = ""
        topic = topic_arn(context, node.properties["topic_name"])
        attributes["Policy"] = json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "topic",
                        "Effect": "Allow",
                        "Principal": {"Service": "sns.amazonaws.com"},
                        "Action": "sqs:SendMessage",
                        "Resource": queue_arn(context, node.properties["name"]),
                        "Condition": {"ArnEquals": {"aws:SourceArn": topic}},
                    }
                ],
            }
        )
        return attributes

    def _properties(self, context: Context, node: Node, attributes: Mapping[str, str]) -> dict[str, Any]:
        properties = super()._properties(context, node, attributes)
        redrive = json.loads(attributes.get("RedrivePolicy") or "null")
        properties["visibility_timeout"] = int(attributes.get("VisibilityTimeout", 30))
        properties["max_receive_count"] = int(redrive["maxReceiveCount"]) if redrive else None
        return properties

    def _observe(
        self,
        context: Context,
        node: Node,
        url: str,
        attributes: Mapping[str, str],
        subscribed: str | None = None,
    ) -> Observed:
        observed = super()._observe(context, node, url, attributes)
        if subscribed is None:
            subscribed = self._subscription(context, node, attributes.get("QueueArn"))
        properties = {**observed.properties, "subscribed": subscribed is not None}
        outputs = {**observed.outputs, "subscription_arn": subscribed}
        if node.properties["dead_letter"] is not None:
            outputs["dead_letter_url"] = url.rpartition("/")[0] + "/" + node.properties["dead_letter_name"]
        return Observed(observed.provider_id, properties, outputs)

    def _subscription(self, context: Context, node: Node, queue: str | None) -> str | None:
        topic = topic_arn(context, node.properties["topic_name"])
        sns = context.client.sns
        try:  # one listing per topic, shared by its subscriptions' nodes
            found = context.client.shared(
                ("sns", "ListSubscriptionsByTopic", topic),
                lambda: sns.pages("list_subscriptions_by_topic", "Subscriptions", TopicArn=topic),
            )
        except Exception:
            return None
        return next((s["SubscriptionArn"] for s in found if s["Endpoint"] == queue), None)

    def _subscribe(self, context: Context, node: Node, queue: str) -> str:
        topic = resolve(
            context, node.properties["topic"], lambda: topic_arn(context, node.properties["topic_name"])
        )
        return context.client.sns.subscribe(
            TopicArn=topic,
            Protocol="sqs",
            Endpoint=queue,
            Attributes={"RawMessageDelivery": "true"},
            ReturnSubscriptionArn=True,
        )["SubscriptionArn"]

    def _created(self, context: Context, node: Node, url: str, attributes: Mapping[str, str]) -> Observed:
        subscribed = self._subscribe(context, node, attributes["QueueArn"])
        return self._observe(context, node, url, attributes, subscribed)

    def _update(self, context: Context, node: Node, provider_id: str, changes: Mapping[str, Any]) -> Observed:
        observed = super()._update(context, node, provider_id, changes)
        if not observed.properties.get("subscribed"):
            self._subscribe(context, node, observed.outputs["arn"])
            observed = self.read(context, node, provider_id)  # type: ignore[assignment]
        return observed

    def _delete(self, context: Context, node: Node, provider_id: str) -> None:
        subscribed = self._subscription(context, node, queue_arn(context, provider_id))
        if subscribed is not None:
            context.client.sns.unsubscribe(SubscriptionArn=subscribed)
        super()._delete(context, node, provider_id)

    def runtime_entry(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        keys = (
            "name",
            "fifo",
            "ordered",
            "exactly_once",
            "max_retries",
            "min_backoff_seconds",
            "max_backoff_seconds",
            "max_concurrency",
            "visibility_timeout",
        )
        return {
            "type": self.type,
            **{key: node.properties[key] for key in keys},
            "ack_deadline_seconds": node.properties["visibility_timeout"],
            **observed.outputs,
        }


TOPIC = TopicType()
DEAD_LETTER = QueueType()
SUBSCRIPTION = SubscriptionType()
TYPES = (TOPIC, DEAD_LETTER, SUBSCRIPTION)


def expand(scope: Scope) -> list[Node]:
    app, env = scope.app, scope.environment.name
    topics = {r.name: r for r in scope.model.of_kind("topic")}
    nodes = []
    for r in scope.of_kind("topic"):
        fifo = r.ordering_attribute is not None or r.delivery == "exactly-once"
        properties = {
            "name": topic_name(app, env, r.name, fifo),
            "fifo": fifo,
            "exactly_once": r.delivery == "exactly-once",
        }
        nodes.append(scope.node(f"pubsub.topic/{r.name}", TOPIC.type, properties, resource=r))
    for r in scope.of_kind("subscription"):
        topic = topics[r.topic]
        fifo = topic.ordering_attribute is not None or topic.delivery == "exactly-once"
        retention = min(max(duration_seconds(r.message_retention), 60), 14 * 86400)
        properties = {
            "name": queue_name(app, env, r.name, fifo),
            "topic": f"pubsub.topic/{r.topic}",
            "topic_name": topic_name(app, env, r.topic, fifo),
            "fifo": fifo,
            "ordered": topic.ordering_attribute is not None,
            "exactly_once": topic.delivery == "exactly-once",
            "visibility_timeout": duration_seconds(r.ack_deadline),
            "retention_seconds": retention,
            "encrypted": True,
            "subscribed": True,
            "max_retries": r.max_retries,
            "max_receive_count": None,
            "dead_letter": None,
            "dead_letter_name": None,
            "min_backoff_seconds": duration_seconds(r.min_backoff),
            "max_backoff_seconds": duration_seconds(r.max_backoff),
            "max_concurrency": r.max_concurrency,
        }
        depends = [f"@topic/{r.topic}"]
        if r.max_retries != -1:
            dead_letter = f"pubsub.dead_letter/{r.name}"
            name = queue_name(app, env, r.name, fifo, dead_letter=True)
            nodes.append(
                scope.node(
                    dead_letter,
                    DEAD_LETTER.type,
                    {"name": name, "fifo": fifo, "retention_seconds": 14 * 86400, "encrypted": True},
                )
            )
            properties["dead_letter"] = dead_letter
            properties["dead_letter_name"] = name
            properties["max_receive_count"] = min(r.max_retries + 1, MAX_RECEIVE_COUNT)
            depends.append(dead_letter)
        nodes.append(
            scope.node(
                f"pubsub.subscription/{r.name}",
                SUBSCRIPTION.type,
                properties,
                tuple(depends),
                resource=r,
            )
        )
    return nodes
