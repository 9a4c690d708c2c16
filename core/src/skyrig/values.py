"""Resource names and durations: the two value formats every declaration uses.

Pure functions with no dependencies, so that commands which only check a name stay instant.
"""

from __future__ import annotations

import re
from functools import lru_cache

NAME_PATTERN = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
NAME_MAX = 63

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_UNIT_SECONDS = (86400, 3600, 60, 1)


def check_name(value: str) -> str:
    """Return ``value`` if it is a valid resource name, else raise ``ValueError`` saying why."""
    if not isinstance(value, str):
        raise ValueError("a name must be a string")
    if not 1 <= len(value) <= NAME_MAX:
        raise ValueError(f"name {value!r} must be 1 to {NAME_MAX} characters long, not {len(value)}")
    if not NAME_PATTERN.match(value):
        raise ValueError(
            f"invalid name {value!r}: use lowercase letters, digits and '-', starting with a letter "
            f"and not ending with '-' (for example {suggest_name(value)!r})"
        )
    return value


def suggest_name(value: str) -> str:
    """A valid name close to ``value``, used in hints."""
    text = re.sub(r"[^a-z0-9]+", "-", re.sub(r"([a-z0-9])([A-Z])", r"\1-\2", value).lower())
    text = text.strip("-").lstrip("0123456789-")[:NAME_MAX].rstrip("-")
    return text or "my-resource"


@lru_cache(maxsize=4096)  # the same few durations are validated over and over
def duration_seconds(value: str) -> int:
    """Seconds in a duration string such as ``"30s"``, ``"10m"``, ``"1h30m"`` or ``"7d"``."""
    match = _DURATION.match(value) if isinstance(value, str) else None
    if not value or match is None:
        raise ValueError(
            f"invalid duration {value!r}: write whole numbers with units d, h, m, s in that order, "
            'like "30s", "10m", "1h30m" or "7d"'
        )
    return sum(int(part) * unit for part, unit in zip(match.groups(), _UNIT_SECONDS, strict=True) if part)


def format_duration(seconds: int) -> str:
    """The shortest duration string for ``seconds`` (inverse of :func:`duration_seconds`)."""
    if seconds == 0:
        return "0s"
    parts = []
    for unit, suffix in zip(_UNIT_SECONDS, "dhms", strict=True):
        count, seconds = divmod(seconds, unit)
        if count:
            parts.append(f"{count}{suffix}")
    return "".join(parts)
