"""The ``SKYRIG_`` variables that tune how a command runs rather than what the app is: checked with the rest
of the configuration (:func:`skyrig.config.load_config`), so that a bad value is refused, naming the
variable, before anything is planned or changed.

Each is read where it is used, through :func:`value`, so that what passes the check here is what runs.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Variable:
    """One variable: what it is, its default, and how a value is checked."""

    name: str
    meaning: str
    default: str | None
    parse: Callable[[str], float | int | None]
    expected: str
    """What a value must be, as the error says it: "a number of seconds greater than 0"."""
    example: str


def _positive_seconds(value: str) -> float:
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise ValueError(value)
    return number


def _milliseconds(value: str) -> float:
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ValueError(value)
    return number


def _count(value: str) -> int | None:
    if not value.strip():
        return None  # set but empty: off, as the engine reads it
    number = int(value)
    if number < 1:
        raise ValueError(value)
    return number


VARIABLES: dict[str, Variable] = {
    v.name: v
    for v in (
        Variable(
            "SKYRIG_LOCK_TTL",
            "how long an environment's lock outlives its holder's last heartbeat",
            "30",
            _positive_seconds,
            "a number of seconds greater than 0",
            "30",
        ),
        Variable(
            "SKYRIG_RETRY_BASE_MS",
            "the backoff before a failed cloud call's first retry, doubled at each retry",
            "200",
            _milliseconds,
            "a number of milliseconds, 0 or more",
            "200",
        ),
        Variable(
            "SKYRIG_CRASH_AFTER_CREATE",
            "for crash tests, the create after which an apply exits hard, before recording it",
            None,
            _count,
            "a whole number, 1 or more",
            "3",
        ),
    )
}
"""The variables, by name. Names are exact (upper case), as the engine reads them."""


def problems(environ: Mapping[str, str] | None = None) -> list[str]:
    """One line per variable set to a value it cannot take: ``SKYRIG_X: 'value' is not ...``."""
    environ = os.environ if environ is None else environ
    found = []
    for name, variable in VARIABLES.items():
        value = environ.get(name)
        if value is None:
            continue
        try:
            variable.parse(value)
        except ValueError:
            default = f"; default {variable.default}" if variable.default is not None else ""
            found.append(
                f"{name}: {value!r} is not {variable.expected} ({variable.meaning}{default}): set it to "
                f"one, such as {name}={variable.example}, or unset it"
            )
    return found


def value(name: str) -> float | int | None:
    """The value of variable ``name`` now: its default when unset, None for one with no default. A bad
    value raises ``ValueError`` (:func:`problems` reports it first, when the configuration loads)."""
    variable = VARIABLES[name]
    raw = os.environ.get(name, variable.default)
    return None if raw is None else variable.parse(raw)
