"""Name resolution across the app's modules: what a (dotted) name written in one module refers to.

A name is a module of the app, a definition in one (function, class, variable), a declaration, something
outside the app (``"module:name"``), or unknown. Imports are followed through the app's modules;
nothing is imported or run.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass

from skyrig.analysis.declared import Declared
from skyrig.analysis.extract import ModuleFacts
from skyrig.analysis.files import SourceFile

_MAX_DEPTH = 50
"""Imports followed from one name at most (a longer chain is a cycle)."""


@dataclass(frozen=True)
class Module:
    """A module of the app."""

    name: str


@dataclass(frozen=True)
class Definition:
    """A top-level definition in a module of the app."""

    module: str
    name: str
    what: str
    """``function``, ``class`` or ``variable``."""


@dataclass(frozen=True)
class External:
    """Something outside the app: ``"module:name"``, or ``"module"`` for a module."""

    target: str


@dataclass(frozen=True)
class Unknown:
    """Nothing the app defines or imports."""

    broken: bool = False
    """Resolved into a module that does not parse (its problems are reported already)."""


Symbol = Module | Definition | External | Unknown | Declared


class Names:
    """Resolves names in the app's modules, from their facts and the declarations found in them."""

    def __init__(self, sources: dict[str, SourceFile], facts: dict[str, ModuleFacts]) -> None:
        self.sources = sources
        """Module name -> its file."""
        self.facts = facts
        """Module name -> its facts."""
        self.declared: dict[tuple[str, str], Declared] = {}
        self._resolved: dict[tuple[str, str], Symbol] = {}

    def declare(self, module: str, target: str, item: Declared) -> None:
        """The module-level variable ``target`` of ``module`` holds the declaration ``item``."""
        self.declared[(module, target)] = item

    def resolve(self, module: str, name: str, depth: int = 0) -> Symbol:
        """What the top-level ``name`` of ``module`` refers to."""
        key = (module, name)
        if key not in self._resolved:
            self._resolved[key] = self._resolve(module, name, depth)
        return self._resolved[key]

    def _resolve(self, module: str, name: str, depth: int) -> Symbol:
        facts = self.facts.get(module)
        if facts is None or depth > _MAX_DEPTH:
            return Unknown()
        declared = self.declared.get((module, name))
        if declared is not None:
            return declared
        target = facts.imports.get(name)
        if target is not None:
            imported, attribute = target
            if attribute is None:
                return Module(imported) if imported in self.sources else External(imported)
            full = f"{imported}.{attribute}" if imported else attribute
            if full in self.sources:
                return Module(full)
            if imported in self.sources:
                if self.facts[imported].broken:
                    return Unknown(broken=True)
                return self.resolve(imported, attribute, depth + 1)
            return External(f"{imported}:{attribute}")
        if name in facts.definitions:
            return Definition(module, name, facts.definitions[name])
        return Unknown(broken=facts.broken)

    def resolve_chain(self, module: str, chain: tuple[str, ...]) -> tuple[Symbol, tuple[str, ...]]:
        """What the dotted name ``chain`` written in ``module`` refers to, and the attributes left over."""
        symbol = self.resolve(module, chain[0])
        rest = chain[1:]
        while rest and isinstance(symbol, Module):
            submodule = f"{symbol.name}.{rest[0]}"
            symbol = Module(submodule) if submodule in self.sources else self.resolve(symbol.name, rest[0])
            rest = rest[1:]
        if rest and isinstance(symbol, External):
            symbol = External(symbol.target + ("." if ":" in symbol.target else ":") + ".".join(rest))
            rest = ()
        return symbol, rest


def type_reference(symbol: Symbol, rest: tuple[str, ...], chain: tuple[str, ...]) -> str | None:
    """``"module:Name"`` of the type that the dotted name ``chain`` (resolved to ``symbol`` and ``rest``)
    names, or ``None`` when it names no type that a reference can record."""
    if rest:
        return None
    if isinstance(symbol, Definition):
        return f"{symbol.module}:{symbol.name}"
    if isinstance(symbol, External):
        return symbol.target if ":" in symbol.target else None
    if (
        isinstance(symbol, Unknown)
        and len(chain) == 1
        and isinstance(getattr(builtins, chain[0], None), type)
    ):
        return f"builtins:{chain[0]}"
    return None
