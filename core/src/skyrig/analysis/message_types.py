"""What a topic's message type and a keyspace's value type may be, told from the app's source.

A message type is a pydantic model or a dataclass (messages travel as JSON objects with named fields); a
keyspace's value type may also be a JSON type (``str``, ``int``, ``float``, ``bool``, ``list``, ``dict``):
:func:`skyrig.declarations.types.is_message_type`, which the constructors apply when the app is imported.

Nothing is imported: a class of the app is judged by its bases and decorators, followed through the app's
modules. Only what is certainly neither is refused: a builtin type, a type of the standard library, a
function, a class whose bases and decorators are all plain (``object``, ``TypedDict``, ``Enum``, other
plain classes of the app). What the parser cannot see through is accepted and left to the constructor: a
class imported from an installed library, a class deriving from one or decorated by one (other than
``dataclasses.dataclass``), a class made by a call, a class with a metaclass.
"""

from __future__ import annotations

import builtins
import sys
from typing import Literal

from skyrig.analysis.extract import OPAQUE
from skyrig.analysis.names import Definition, External, Names, Symbol, Unknown
from skyrig.declarations.types import JSON_TYPES, MESSAGE_TYPES, VALUE_TYPES

Shape = Literal["model", "dataclass", "plain", "opaque"]

_DATACLASS = frozenset(
    {"dataclasses:dataclass", "pydantic.dataclasses:dataclass", "pydantic:dataclasses.dataclass"}
)
"""Decorators that make a class a dataclass."""
_MODEL = frozenset(
    {"pydantic:BaseModel", "pydantic.main:BaseModel", "pydantic:RootModel", "pydantic.root_model:RootModel"}
)
"""Bases that make a class a pydantic model."""
_JSON = frozenset(t.__name__ for t in JSON_TYPES)
_DEPTH = 50
"""Bases followed from one class at most (a longer chain is a cycle)."""


def refusal(
    names: Names, module: str, chain: tuple[str, ...], symbol: Symbol, *, json_types: bool
) -> tuple[str, str] | None:
    """Why the type that ``chain`` (written in ``module``, resolved to ``symbol``) names cannot be a
    message type (with ``json_types``: a keyspace's value type), and what to do; ``None`` when it can be
    or the parser cannot tell."""
    allowed = VALUE_TYPES if json_types else MESSAGE_TYPES
    hint = (
        "a keyspace holds a pydantic model, a dataclass or a JSON value: declare a class deriving from "
        "pydantic.BaseModel or decorated with @dataclass, or use str, int, float, bool, list or dict"
        if json_types
        else "messages travel as JSON objects with named fields: declare a class deriving from "
        "pydantic.BaseModel, or decorate one with @dataclass"
    )
    if isinstance(symbol, Definition):
        if symbol.what == "function":
            return "is a function, not a class", hint
        if symbol.what == "class" and _shape(names, symbol, 0) == "plain":
            return (
                f"is a plain class, not {allowed}",
                f"derive {symbol.name} from pydantic.BaseModel, or decorate it with @dataclass",
            )
        return None
    target = _target(symbol, chain)
    if target is None:
        return None
    home, _, name = target.partition(":")
    if home == "builtins":
        return None if json_types and name in _JSON else (f"is the builtin type {name}, not {allowed}", hint)
    if _standard(target):
        return f"is {home}.{name} from the standard library, not {allowed}", hint
    return None


def _shape(names: Names, cls: Definition, depth: int) -> Shape:
    """What the app's class ``cls`` is, from its decorators and bases."""
    facts = names.facts.get(cls.module)
    shape = facts.class_shapes.get(cls.name) if facts else None
    if shape is None or depth > _DEPTH:
        return "opaque"
    bases, decorators = shape
    found: Shape = "plain"
    for decorator in decorators:
        target = _resolved(names, cls.module, decorator)
        if target in _DATACLASS:
            return "dataclass"
        if not (isinstance(target, str) and _standard(target)):
            found = "opaque"  # a decorator of the app or of a library may make it anything
    for base in bases:
        kind = _base(names, cls.module, base, depth)
        if kind in ("model", "dataclass"):
            return kind
        if kind == "opaque":
            found = "opaque"
    return found


def _base(names: Names, module: str, chain: tuple[str, ...], depth: int) -> Shape:
    """What a base class (written ``chain`` in ``module``) makes of the classes deriving from it."""
    target = _resolved(names, module, chain)
    if isinstance(target, Definition):
        return _shape(names, target, depth + 1) if target.what == "class" else "opaque"
    if target is None:
        return "opaque"
    if target in _MODEL:
        return "model"
    return "plain" if _standard(target) else "opaque"  # object, Exception, TypedDict, Enum, Generic...


def _resolved(names: Names, module: str, chain: tuple[str, ...]) -> str | Definition | None:
    """A class of the app, ``"module:name"`` outside it, or ``None`` when it cannot be told."""
    if chain == OPAQUE:
        return None
    symbol, rest = names.resolve_chain(module, chain)
    if rest:
        return None
    if isinstance(symbol, Definition):
        return symbol
    return _target(symbol, chain)


def _target(symbol: Symbol, chain: tuple[str, ...]) -> str | None:
    """``"module:name"`` of something outside the app (``"builtins:dict"`` for a builtin)."""
    if isinstance(symbol, External):
        return symbol.target if ":" in symbol.target else None
    if isinstance(symbol, Unknown) and not symbol.broken and len(chain) == 1:
        return f"builtins:{chain[0]}" if isinstance(getattr(builtins, chain[0], None), type) else None
    return None


def _standard(target: str) -> bool:
    """Whether ``"module:name"`` comes from the standard library (or ``typing_extensions``, its backport)."""
    top = target.partition(":")[0].partition(".")[0]
    return top in sys.stdlib_module_names or top == "typing_extensions"
