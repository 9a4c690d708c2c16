"""One declaration as the linker sees it: the call as written, then its bound arguments, its resolved
references, its validated spec and the service that owns it, filled in pass by pass.

A declaration's class is the one :data:`skyrig.kinds.KINDS` names for its kind (or ``Keyspace``, which a
cache cluster's ``keyspace(...)`` declares); its parameters are read from the signature users call.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from functools import cache
from typing import Any, NamedTuple

from skyrig import declarations as decl
from skyrig.analysis.diagnostics import Where
from skyrig.analysis.extract import KEYSPACE, Arg, RawDeclaration
from skyrig.analysis.files import SourceFile
from skyrig.kinds import KINDS

_CLASSES: dict[str, type[decl.Declaration]] = {k.declaration.__name__: k.declaration for k in KINDS.values()}
_CLASSES[KEYSPACE] = decl.Keyspace


def declaration_class(name: str) -> type[decl.Declaration]:
    """The declaration class a call names: ``Topic``, ... or ``keyspace`` for ``cluster.keyspace(...)``."""
    return _CLASSES[name]


@dataclass(eq=False)
class Declared:
    """A declaration found in the app's code, and what the linker has learnt of it so far."""

    raw: RawDeclaration
    source: SourceFile
    cls: type[decl.Declaration]
    values: dict[str, Any] = field(default_factory=dict)
    """Reference parameters -> what they resolve to (a :class:`Declared` topic, or ``"module:name"``);
    ``None`` where the reference goes into a module that does not parse."""
    args: dict[str, Arg] = field(default_factory=dict)
    """Parameter -> its argument, once bound."""
    spec: Any = None
    """The validated spec, or ``None`` while (or when) it is not valid."""
    service: str | None = None
    """The service that owns it."""
    cluster: Declared | None = None
    """For a keyspace: its cache cluster."""

    @property
    def kind(self) -> str:
        """Its kind, as the model names it."""
        return self.cls.kind

    @property
    def name(self) -> str:
        """Its validated name (a keyspace's pattern)."""
        return self.spec.name if self.cls is not decl.Keyspace else self.spec.pattern

    def location(self, param: str | None = None) -> Where:
        """Where the argument for ``param`` is written, else where the call is."""
        arg = self.args.get(param) if param else None
        line, column = (arg.line, arg.column) if arg else (self.raw.line, self.raw.column)
        return Where(self.source.path, line, column)

    def where(self, arg: Arg) -> Where:
        """Where ``arg``, one of its arguments, is written."""
        return Where(self.source.path, arg.line, arg.column)

    @property
    def label(self) -> str:
        """``Topic 'order-created'``: how messages name it, from its name as written."""
        param = "pattern" if self.cls is decl.Keyspace else "name"
        arg = next((a for a in self.raw.args if a.param == param), None)
        if arg is None:
            index = parameters(self.raw.cls).order.index(param)
            positional = [a for a in self.raw.args if a.param is None]
            arg = positional[index] if index < len(positional) else None
        if arg is not None and arg.is_literal and isinstance(arg.literal, str):
            return f"{self.raw.cls} {arg.literal!r}"
        return self.raw.cls


class Parameters(NamedTuple):
    """The parameters of a declaration."""

    names: frozenset[str]
    positional: tuple[str, ...]
    """Those that may be passed by position, in order."""
    required: tuple[str, ...]
    order: tuple[str, ...]
    """All of them, in order."""


@cache
def parameters(cls_name: str) -> Parameters:
    """The parameters of the declaration ``cls_name`` (as :func:`declaration_class` takes it), read from
    the signature users call."""
    cls = _CLASSES[cls_name]
    function = decl.CacheCluster.keyspace if cls is decl.Keyspace else cls.__init__
    params = list(inspect.signature(function).parameters.values())[1:]
    return Parameters(
        names=frozenset(p.name for p in params),
        positional=tuple(p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD),
        required=tuple(p.name for p in params if p.default is inspect.Parameter.empty),
        order=tuple(p.name for p in params),
    )
