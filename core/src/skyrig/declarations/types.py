"""Value types shared by every declaration: resource names, durations and code references.

Both the runtime constructors and the static parser validate through these, so a value that the
parser accepts is exactly a value that the running app accepts.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Annotated, Any

from pydantic import AfterValidator

from skyrig.values import NAME_MAX, NAME_PATTERN, check_name, duration_seconds, format_duration, suggest_name

_REFERENCE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")

__all__ = [
    "JSON_TYPES",
    "MESSAGE_TYPES",
    "NAME_MAX",
    "NAME_PATTERN",
    "VALUE_TYPES",
    "Duration",
    "Name",
    "Reference",
    "check_name",
    "duration_between",
    "duration_seconds",
    "format_duration",
    "is_message_type",
    "suggest_name",
]

JSON_TYPES: tuple[type, ...] = (str, int, float, bool, list, dict)
"""The builtin types a keyspace may hold besides models and dataclasses: JSON values as they are."""

MESSAGE_TYPES = "a pydantic model or a dataclass"
VALUE_TYPES = "a pydantic model, a dataclass or a JSON type (str, int, float, bool, list, dict)"
"""What a topic's message type, and what a keyspace's value type, may be (the static parser's words too)."""


def is_message_type(value: Any, *, json_types: bool = False) -> bool:
    """Whether ``value`` may be a topic's message type: a pydantic model or a dataclass (for a keyspace's
    value type, with ``json_types``, also one of :data:`JSON_TYPES`)."""
    from pydantic import BaseModel

    if not isinstance(value, type):
        return False
    if json_types and value in JSON_TYPES:
        return True
    return issubclass(value, BaseModel) or dataclasses.is_dataclass(value)


def _check_duration(value: str) -> str:
    duration_seconds(value)
    return value


def duration_between(low: str, high: str) -> AfterValidator:
    """A validator that keeps a duration within ``low``..``high`` inclusive."""
    low_s, high_s = duration_seconds(low), duration_seconds(high)

    def check(value: str) -> str:
        if not low_s <= duration_seconds(value) <= high_s:
            raise ValueError(f"{value!r} is out of range: must be between {low} and {high}")
        return value

    return AfterValidator(check)


def _check_reference(value: str) -> str:
    if not _REFERENCE.match(value):
        raise ValueError(f"{value!r} is not a reference of the form 'package.module:name'")
    return value


Name = Annotated[str, AfterValidator(check_name)]
"""A resource name: ``^[a-z]([-a-z0-9]*[a-z0-9])?$``, 1 to 63 characters."""

Duration = Annotated[str, AfterValidator(_check_duration)]
"""A duration string: whole numbers with units d, h, m, s (``"30s"``, ``"1h30m"``, ``"7d"``)."""

Reference = Annotated[str, AfterValidator(_check_reference)]
"""Where a piece of code lives: ``"package.module:name"``."""
