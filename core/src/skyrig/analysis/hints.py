"""The hints that go with the linker's diagnostics: what to write instead.

Examples of whole declarations come from :data:`skyrig.kinds.KINDS` (``Kind.example``); hints about one
parameter or one kind of reference are here.
"""

from __future__ import annotations

from skyrig import declarations as decl
from skyrig.analysis.declared import Declared
from skyrig.kinds import KINDS

LITERAL = "skyrig reads declarations without running your code: write the value itself"
"""For an argument that is not written out as a literal."""

REFERENCE_NOUN = {"topic": "Topic", "function": "function", "type": "type"}
"""What a reference parameter must name, by its reference kind."""

REFERENCE = {
    "topic": "pass the object returned by Topic(...), declared at module top level or imported from "
    "the module that declares it",
    "function": "pass a function defined with 'def' at module top level of the app (or imported from "
    "such a module), not a lambda or a call",
    "type": "pass a class (a pydantic model or a dataclass) defined in or imported into this module",
}
"""What to pass to a reference parameter, by its reference kind."""

KEYSPACE_EXAMPLE = 'cluster.keyspace("session/{id}", value=Session)'

_DURATION = 'durations are whole numbers with units d, h, m, s, like "30s", "10m", "1h30m" or "7d"'
_PARAMETERS = {
    "name": "names are lowercase letters, digits and '-', starting with a letter, like 'order-created'",
    "schedule": 'five fields: minute hour day-of-month month day-of-week, like "0 3 * * *" (UTC)',
    **dict.fromkeys(
        ("ack_deadline", "message_retention", "min_backoff", "max_backoff", "default_expiry", "every"),
        _DURATION,
    ),
}


def for_parameter(param: str, item: Declared) -> str | None:
    """The hint for a value of ``param`` that its spec refuses, if ``item`` was given that argument."""
    return _PARAMETERS.get(param) if param in item.args else None


def example(item: Declared) -> str:
    """A whole declaration of ``item``'s kind, for when an argument is missing."""
    text = KEYSPACE_EXAMPLE if item.cls is decl.Keyspace else KINDS[item.kind].example
    return f"for example: {text}" if text else "see docs/declarations.md"


def count(number: int, noun: str) -> str:
    """``1 positional argument``, ``2 positional arguments``."""
    return f"{number} {noun}{'' if number == 1 else 's'}"
