"""Entity settings of the FAKE Service Bus, from ARM's camelCase SBTopic/SBSubscription ``properties``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# Service Bus' "infinite" TimeSpan (P10675199DT2H48M5.4775807S) and anything that large means no expiry.
_INFINITE = 10675199 * 86400.0
_DURATION = re.compile(
    r"^P(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(text: str) -> float:
    """Seconds in an ISO 8601 duration as ARM writes them (``PT30S``, ``P14D``, ``PT10M``, ``P1DT2H``).

    Raises ValueError for anything else (years and months are not TimeSpans, so ARM refuses them too).
    """
    match = _DURATION.match(text or "")
    if not match or text in ("P", "PT") or text.endswith("T"):
        raise ValueError(f"not an ISO 8601 duration: {text!r}")
    parts = {k: float(v) for k, v in match.groupdict().items() if v}
    return (
        parts.get("days", 0.0) * 86400
        + parts.get("hours", 0.0) * 3600
        + parts.get("minutes", 0.0) * 60
        + parts.get("seconds", 0.0)
    )


def _ttl(properties: dict[str, Any]) -> float | None:
    text = properties.get("defaultMessageTimeToLive")
    if not text:
        return None
    seconds = parse_duration(text)
    return None if seconds >= _INFINITE else seconds


@dataclass(frozen=True)
class TopicConfig:
    """What the broker enforces for a topic."""

    default_ttl: float | None = None
    requires_duplicate_detection: bool = False
    duplicate_window: float = 600.0

    @classmethod
    def from_arm(cls, properties: dict[str, Any] | None) -> TopicConfig:
        """Read SBTopic ``properties`` (ARM JSON, camelCase); absent keys take Service Bus' defaults."""
        properties = properties or {}
        window = properties.get("duplicateDetectionHistoryTimeWindow")
        return cls(
            default_ttl=_ttl(properties),
            requires_duplicate_detection=bool(properties.get("requiresDuplicateDetection", False)),
            duplicate_window=parse_duration(window) if window else 600.0,
        )


@dataclass(frozen=True)
class SubscriptionConfig:
    """What the broker enforces for a subscription."""

    lock_duration: float = 60.0
    max_delivery_count: int = 10
    requires_session: bool = False
    default_ttl: float | None = None
    dead_lettering_on_expiration: bool = False

    @classmethod
    def from_arm(cls, properties: dict[str, Any] | None) -> SubscriptionConfig:
        """Read SBSubscription ``properties`` (ARM JSON); absent keys take Service Bus' defaults."""
        properties = properties or {}
        lock = properties.get("lockDuration")
        return cls(
            lock_duration=parse_duration(lock) if lock else 60.0,
            max_delivery_count=int(properties.get("maxDeliveryCount", 10)),
            requires_session=bool(properties.get("requiresSession", False)),
            default_ttl=_ttl(properties),
            dead_lettering_on_expiration=bool(properties.get("deadLetteringOnMessageExpiration", False)),
        )
