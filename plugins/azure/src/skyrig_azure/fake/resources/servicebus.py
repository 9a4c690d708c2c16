"""Microsoft.ServiceBus: namespaces (create and delete long-running, update a PATCH, as azure-mgmt-servicebus
calls them), their authorization rules (``listKeys``), topics and topics' subscriptions (synchronous).

Each write is also made on the FAKE broker (:mod:`skyrig_azure.fake.servicebus`) the fake was connected to
(``FakeAzure.connect(servicebus=broker)``): a topic or subscription PUT configures the broker's entity
with the properties stored here (lock duration, max delivery count, sessions, time to live, duplicate
detection, dead-lettering on expiration), a DELETE removes it with its messages, and ``listKeys`` answers
the broker's key of the namespace. Without a broker, the ARM side works alone.

What Azure enforces and the fake does too: a namespace name unique in all of Azure (6-50 characters,
starting with a letter, ending with a letter or digit, no ``--``); topics only from the Standard tier up;
a lock duration between 5 seconds and 5 minutes; a max delivery count of at least 1; a duplicate
detection window between 20 seconds and 7 days; ``requiresDuplicateDetection`` (topics) and
``requiresSession`` (subscriptions) only when the entity is created (400 otherwise); durations as ISO 8601.
What Azure fills in: the namespace's ``serviceBusEndpoint``, status, ``RootManageSharedAccessKey``
rule, TLS 1.2, local (SAS) auth on unless ``disableLocalAuth``; entities' defaults (TTL "infinite",
lock 1 minute, 10 deliveries, a 10-minute duplicate window, batched operations, 1 GB topics).
"""

from __future__ import annotations

import datetime
from typing import Any

from skyrig_azure.fake.errors import ArmError
from skyrig_azure.fake.registry import Context, ResourceType, register
from skyrig_azure.fake.servicebus.config import parse_duration

_MODELS = "azure.mgmt.servicebus.models"
_VERSIONS = ("2021-11-01", "2022-10-01-preview", "2024-01-01", "2026-01-01")
NAMESPACES = "Microsoft.ServiceBus/namespaces"
RULES = f"{NAMESPACES}/authorizationRules"
TOPICS = f"{NAMESPACES}/topics"
SUBSCRIPTIONS = f"{TOPICS}/subscriptions"
ROOT_RULE = "RootManageSharedAccessKey"
INFINITE = "P10675199DT2H48M5.4775807S"
"""Service Bus's "never" (TimeSpan.MaxValue), as ARM answers it."""
MIN_LOCK, MAX_LOCK = 5.0, 300.0
MIN_WINDOW, MAX_WINDOW = 20.0, 7 * 86400.0


def _bad(code: str, message: str) -> ArmError:
    return ArmError(400, code, message)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def iso_duration(seconds: float) -> str:
    """``seconds`` as Service Bus writes a TimeSpan back (``PT30S``, ``P7D``, ``P1DT2H``)."""
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    time = "".join(f"{v}{u}" for v, u in ((hours, "H"), (minutes, "M"), (secs, "S")) if v)
    text = "P" + (f"{days}D" if days else "") + (f"T{time}" if time else "")
    return text if text != "P" else "PT0S"


def _duration(
    p: dict[str, Any], key: str, default: str, low: float | None = None, high: float | None = None
) -> None:
    """Checks and normalises duration ``key`` of properties ``p`` (``default`` where absent)."""
    text = p.get(key) or default
    try:
        seconds = parse_duration(text)
    except ValueError:
        raise _bad(
            "InvalidRequestContent", f"'{text}' is not an ISO 8601 duration (properties.{key})."
        ) from None
    if (low is not None and seconds < low) or (high is not None and seconds > high):
        raise _bad(
            "InvalidProperty",
            f"properties.{key} '{text}' is out of range: it must be between {iso_duration(low or 0)} and "
            f"{iso_duration(high or 0)}.",
        )
    p[key] = text if text == INFINITE else iso_duration(seconds) if seconds < 10675199 * 86400 else INFINITE


def _broker(ctx: Context) -> Any:
    return getattr(ctx.fake, "servicebus", None)


def _names(resource_id: str) -> list[str]:
    """The names in an id below ``namespaces/`` (namespace, topic, subscription)."""
    parts = resource_id.split("/")
    at = next(i for i, part in enumerate(parts) if part.lower() == "namespaces")
    return parts[at + 1 :: 2]


def _immutable(ctx: Context, p: dict[str, Any], key: str, entity: str) -> None:
    before = ((ctx.previous or {}).get("properties") or {}).get(key)
    if ctx.previous is not None and bool(p.get(key, before)) != bool(before):
        raise _bad(
            "BadRequest",
            f"The value for the {key} property of an existing {entity} cannot be changed.",
        )


# -- namespaces ------------------------------------------------------------------------------------------


def _namespace_on_write(ctx: Context, namespace: dict[str, Any]) -> None:
    for key, entry in ctx.fake.store.items():
        if entry.type.type == NAMESPACES and key != ctx.id.lower() and entry.resource["name"] == ctx.name:
            raise ArmError(
                409, "Conflict", f"Namespace name '{ctx.name}' is not available: it is already in use."
            )
    if "--" in ctx.name or ctx.name.lower().endswith(("-sb", "-mgmt")):
        raise _bad("InvalidNamespaceName", f"The namespace name '{ctx.name}' is not valid.")
    before = ctx.previous or {}
    sku = namespace.get("sku") or before.get("sku")
    if not sku:
        raise _bad("MissingRequiredProperty", "sku is required.")
    sku["tier"] = sku.get("tier") or sku["name"]
    if sku["name"] == "Premium":
        sku.setdefault("capacity", 1)
    namespace["sku"] = sku
    p = namespace.setdefault("properties", {})
    was = before.get("properties") or {}
    for key, default in (
        ("disableLocalAuth", False),
        ("minimumTlsVersion", "1.2"),
        ("publicNetworkAccess", "Enabled"),
        ("zoneRedundant", False),
    ):
        p.setdefault(key, was.get(key, default))
    p["serviceBusEndpoint"] = f"https://{ctx.name}.servicebus.windows.net:443/"
    p["metricId"] = f"{ctx.subscription}:{ctx.name}"
    p["status"] = "Active"
    p["createdAt"] = was.get("createdAt") or _now()
    p["updatedAt"] = _now()
    if ctx.previous is None:
        ctx.fake.put_resource(
            f"{ctx.id}/authorizationRules/{ROOT_RULE}",
            {"properties": {"rights": ["Listen", "Manage", "Send"]}},
        )
    broker = _broker(ctx)
    if broker is not None:
        broker.key(ctx.name)


def _namespace_on_delete(ctx: Context, namespace: dict[str, Any]) -> None:
    broker = _broker(ctx)
    if broker is not None:
        broker.delete_namespace(namespace["name"])


def _list_keys(ctx: Context, rule: dict[str, Any], _body: Any) -> tuple[int, Any]:
    namespace = _names(ctx.id)[0]
    broker = _broker(ctx)
    key = broker.key(namespace) if broker is not None else "fake-key-without-a-broker"
    endpoint = (
        f"sb://{broker.address}/" if broker is not None else f"sb://{namespace}.servicebus.windows.net/"
    )
    connection = f"Endpoint={endpoint};SharedAccessKeyName={rule['name']};SharedAccessKey={key}"
    return 200, {
        "keyName": rule["name"],
        "primaryKey": key,
        "secondaryKey": key,
        "primaryConnectionString": connection,
        "secondaryConnectionString": connection,
    }


# -- topics and subscriptions ---------------------------------------------------------------------------


def _topic_on_write(ctx: Context, topic: dict[str, Any]) -> None:
    parent = ctx.fake.store.get(ctx.parent_id.lower())
    if parent is not None and (parent.resource.get("sku") or {}).get("name") == "Basic":
        raise _bad("BadRequest", "Topics are not supported in the Basic tier: use Standard or Premium.")
    p = topic.setdefault("properties", {})
    _immutable(ctx, p, "requiresDuplicateDetection", "topic")
    _immutable(ctx, p, "enablePartitioning", "topic")
    _duration(p, "defaultMessageTimeToLive", INFINITE, low=1)
    _duration(p, "duplicateDetectionHistoryTimeWindow", "PT10M", MIN_WINDOW, MAX_WINDOW)
    _duration(p, "autoDeleteOnIdle", INFINITE, low=300)
    for key, default in (
        ("maxSizeInMegabytes", 1024),
        ("requiresDuplicateDetection", False),
        ("enableBatchedOperations", True),
        ("supportOrdering", True),
        ("enablePartitioning", False),
        ("enableExpress", False),
        ("status", "Active"),
    ):
        p.setdefault(key, default)
    was = (ctx.previous or {}).get("properties") or {}
    p["createdAt"] = was.get("createdAt") or _now()
    p["updatedAt"] = _now()
    p["subscriptionCount"] = sum(
        1
        for key, e in ctx.fake.store.items()
        if e.type.type == SUBSCRIPTIONS and key.startswith(ctx.id.lower() + "/")
    )
    broker = _broker(ctx)
    if broker is not None:
        namespace, name = _names(ctx.id)[:2]
        broker.ensure_topic(namespace, name, p)


def _subscription_on_write(ctx: Context, subscription: dict[str, Any]) -> None:
    p = subscription.setdefault("properties", {})
    _immutable(ctx, p, "requiresSession", "subscription")
    _duration(p, "lockDuration", "PT1M", MIN_LOCK, MAX_LOCK)
    _duration(p, "defaultMessageTimeToLive", INFINITE, low=1)
    _duration(p, "autoDeleteOnIdle", INFINITE, low=300)
    _duration(p, "duplicateDetectionHistoryTimeWindow", "PT10M", MIN_WINDOW, MAX_WINDOW)
    count = p.setdefault("maxDeliveryCount", 10)
    if not isinstance(count, int) or count < 1:
        raise _bad("InvalidProperty", f"properties.maxDeliveryCount {count!r} must be at least 1.")
    for key, default in (
        ("requiresSession", False),
        ("deadLetteringOnMessageExpiration", False),
        ("deadLetteringOnFilterEvaluationExceptions", True),
        ("enableBatchedOperations", True),
        ("isClientAffine", False),
        ("status", "Active"),
    ):
        p.setdefault(key, default)
    was = (ctx.previous or {}).get("properties") or {}
    p["createdAt"] = was.get("createdAt") or _now()
    p["updatedAt"] = _now()
    p["messageCount"] = 0
    broker = _broker(ctx)
    if broker is not None:
        namespace, topic, name = _names(ctx.id)[:3]
        broker.ensure_subscription(namespace, topic, name, p)


def _topic_on_delete(ctx: Context, topic: dict[str, Any]) -> None:
    broker = _broker(ctx)
    if broker is not None:
        namespace, name = _names(topic["id"])[:2]
        broker.delete_topic(namespace, name)


def _subscription_on_delete(ctx: Context, subscription: dict[str, Any]) -> None:
    broker = _broker(ctx)
    if broker is not None:
        namespace, topic, name = _names(subscription["id"])[:3]
        broker.delete_subscription(namespace, topic, name)


_ENTITY_NAME = r"[A-Za-z0-9]([A-Za-z0-9._~-]{0,258}[A-Za-z0-9_])?"
_SUBSCRIPTION_NAME = r"[A-Za-z0-9]([A-Za-z0-9._-]{0,48}[A-Za-z0-9_])?"

register(
    ResourceType(
        type=NAMESPACES,
        api_versions=_VERSIONS,
        put_model=f"{_MODELS}:SBNamespace",
        patch_model=f"{_MODELS}:SBNamespaceUpdateParameters",
        read_model=f"{_MODELS}:SBNamespace",
        async_put=True,
        async_delete=True,
        immutable=("location",),
        name_pattern=r"[a-zA-Z][a-zA-Z0-9-]{4,48}[a-zA-Z0-9]",
        name_error="InvalidNamespaceName",
        on_write=_namespace_on_write,
        on_delete=_namespace_on_delete,
    ),
    ResourceType(
        type=RULES,
        api_versions=_VERSIONS,
        put_model=f"{_MODELS}:SBAuthorizationRule",
        read_model=f"{_MODELS}:SBAuthorizationRule",
        tracked=False,
        provisioning_state=False,
        created_status=200,
        actions={"listKeys": _list_keys},
    ),
    ResourceType(
        type=TOPICS,
        api_versions=_VERSIONS,
        put_model=f"{_MODELS}:SBTopic",
        read_model=f"{_MODELS}:SBTopic",
        tracked=False,
        provisioning_state=False,
        created_status=200,
        name_pattern=_ENTITY_NAME,
        on_write=_topic_on_write,
        on_delete=_topic_on_delete,
    ),
    ResourceType(
        type=SUBSCRIPTIONS,
        api_versions=_VERSIONS,
        put_model=f"{_MODELS}:SBSubscription",
        read_model=f"{_MODELS}:SBSubscription",
        tracked=False,
        provisioning_state=False,
        created_status=200,
        name_pattern=_SUBSCRIPTION_NAME,
        on_write=_subscription_on_write,
        on_delete=_subscription_on_delete,
    ),
)
