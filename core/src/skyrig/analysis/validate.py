"""Validating declarations: arguments bound to parameters, references resolved to what they must name,
settings checked by the declaration's spec, names unique per kind. Every problem is reported with a hint
(:mod:`skyrig.analysis.hints`) and the declaration is left without a spec.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from skyrig import declarations as decl
from skyrig.analysis import hints
from skyrig.analysis.declared import Declared, parameters
from skyrig.analysis.diagnostics import Problems
from skyrig.analysis.message_types import refusal
from skyrig.analysis.names import Definition, Names, Unknown, type_reference
from skyrig.declarations._base import spec_errors
from skyrig.kinds import KINDS

_SPEC_FIELD = {"value": "value_type"}
"""Parameter -> the spec field it fills, where they differ."""


def bind_arguments(item: Declared, problems: Problems) -> None:
    """Bind the arguments of ``item``'s call to its parameters, as Python would (into ``item.args``)."""
    params = parameters(item.raw.cls)
    next_positional = 0
    for arg in item.raw.args:
        if arg.shape in ("*args", "**kwargs"):
            problems.add(item.where(arg), f"{item.label}: write each argument out", hints.LITERAL)
            continue
        if arg.param is None:
            if next_positional >= len(params.positional):
                most = hints.count(len(params.positional), "positional argument")
                problems.add(
                    item.where(arg),
                    f"{item.label} takes at most {most} ({', '.join(params.positional)})",
                    "pass the other settings by keyword",
                )
                continue
            param = params.positional[next_positional]
            next_positional += 1
        else:
            param = arg.param
        if param not in params.names:
            close = difflib.get_close_matches(param, sorted(params.names), n=1)
            guess = f"did you mean {close[0]!r}? " if close else ""
            problems.add(
                item.where(arg),
                f"{item.label}: unknown keyword {param!r}",
                f"{guess}{item.cls.__name__} takes: {', '.join(sorted(params.names))}",
            )
            continue
        if param in item.args:
            problems.add(item.where(arg), f"{item.label}: argument {param!r} given twice")
            continue
        item.args[param] = arg
    for name in params.required:
        if name not in item.args:
            problems.add(item.location(), f"{item.label}: missing argument {name!r}", hints.example(item))


def resolve_references(item: Declared, names: Names, problems: Problems) -> None:
    """Resolve the arguments of ``item`` that name code (a topic, a function, a type) into
    ``item.values``."""
    module = item.source.module
    for param, what in item.cls.references.items():
        arg = item.args.get(param)
        if arg is None:
            continue
        where = item.location(param)
        if arg.chain is None:
            shape = arg.shape or f"the literal {arg.literal!r}"
            problems.add(
                where,
                f"{item.label}: {param} must name a {hints.REFERENCE_NOUN[what]}, not {shape}",
                hints.REFERENCE[what],
            )
            continue
        symbol, rest = names.resolve_chain(module, arg.chain)
        dotted_name = ".".join(arg.chain)
        if isinstance(symbol, Unknown) and symbol.broken:
            item.values[param] = None
            continue
        if what == "topic":
            if isinstance(symbol, Declared) and symbol.cls is decl.Topic and not rest:
                item.values[param] = symbol
                continue
            problems.add(
                where, f"{item.label}: {dotted_name!r} is not a declared Topic", hints.REFERENCE[what]
            )
        elif what == "function":
            if isinstance(symbol, Definition) and symbol.what == "function" and not rest:
                item.values[param] = f"{symbol.module}:{symbol.name}"
                continue
            problems.add(
                where,
                f"{item.label}: {param} {dotted_name!r} is not a function of this app",
                hints.REFERENCE[what],
            )
        else:
            reference = type_reference(symbol, rest, arg.chain)
            refused = reference and refusal(
                names, module, arg.chain, symbol, json_types=item.cls is decl.Keyspace
            )
            if refused:
                problems.add(where, f"{item.label}: {param} {dotted_name!r} {refused[0]}", refused[1])
                continue
            if reference is not None:
                item.values[param] = reference
                continue
            problems.add(
                where,
                f"{item.label}: {param} {dotted_name!r} is not defined or imported here",
                hints.REFERENCE[what],
            )


def attach_keyspace(item: Declared, names: Names, problems: Problems) -> None:
    """Find the cache cluster that the keyspace ``item`` is declared on (``cluster.keyspace(...)``)."""
    symbol, rest = names.resolve_chain(item.source.module, item.raw.receiver or ())
    if isinstance(symbol, Declared) and symbol.cls is decl.CacheCluster and not rest:
        item.cluster = symbol
    elif not (isinstance(symbol, Unknown) and symbol.broken):
        receiver = ".".join(item.raw.receiver or ())
        problems.add(
            item.location(),
            f"keyspace() is called on {receiver!r}, which is not a CacheCluster",
            "declare keyspaces on a CacheCluster: cluster.keyspace('key/{id}', value=Type)",
        )


def validate(item: Declared, names: Names, problems: Problems) -> None:
    """Check the settings of ``item`` with its spec; on success, ``item.spec`` holds them.

    A declaration with a problem reported already (an argument missing, a reference unresolved, a
    referenced declaration invalid) is skipped; a subscription's topic must be validated before it.
    """
    values: dict[str, Any] = {}
    for param, arg in item.args.items():
        if param in item.cls.references:
            if param not in item.values:
                return  # already reported
            value = item.values[param]
            if value is None or (isinstance(value, Declared) and value.spec is None):
                return  # refers to something broken, which is reported where it is
            values[_SPEC_FIELD.get(param, param)] = value.name if isinstance(value, Declared) else value
        elif not arg.is_literal:
            noun = "a string literal" if param == "name" else "a literal"
            problems.add(
                item.location(param),
                f"{item.label}: {param} must be {noun}, not {arg.shape or 'a name'}",
                hints.LITERAL,
            )
            return
        else:
            values[param] = arg.literal
    if any(name not in item.args for name in parameters(item.raw.cls).required):
        return  # reported by bind_arguments
    try:
        item.spec = item.cls.spec_model(**values)
    except ValidationError as error:
        reverse = {v: k for k, v in _SPEC_FIELD.items()}
        for spec_field, message in spec_errors(error):
            param = reverse.get(spec_field, spec_field)
            where = item.location(param if param in item.args else None)
            prefix = f"{param}: " if param in item.args and param != "name" else ""
            problems.add(where, f"{item.label}: {prefix}{message}", hints.for_parameter(param, item))
        return
    if item.cls is decl.Topic and item.spec.ordering_attribute:
        _check_ordering(item, names, problems)


def _check_ordering(item: Declared, names: Names, problems: Problems) -> None:
    module, _, name = item.spec.message_type.partition(":")
    facts = names.facts.get(module)
    fields = facts.class_fields.get(name) if facts else None
    if fields is not None and item.spec.ordering_attribute not in fields:
        problems.add(
            item.location("ordering_attribute"),
            f"{item.label}: ordering_attribute {item.spec.ordering_attribute!r} is not a field of {name}",
            f"{name} has the fields: {', '.join(fields) or '(none)'}",
        )


def check_app(service: Declared, names: Names, root: Path, problems: Problems) -> None:
    """Check that a valid service's ``app`` names a top-level object of a module of the app."""
    if service.spec is None:
        return
    module, _, attribute = service.spec.app.partition(":")
    facts = names.facts.get(module)
    if facts is None:
        problems.add(
            service.location("app"),
            f"{service.label}: app module {module!r} is not a module of this app",
            f"give the module's import path from the app root ({root.name}/), like "
            f"'{service.source.module.split('.')[0]}.api:app'",
        )
    elif not facts.broken and attribute not in facts.definitions and attribute not in facts.imports:
        problems.add(
            service.location("app"),
            f"{service.label}: module {module!r} defines no {attribute!r} at top level",
            f"define the ASGI app in {names.sources[module].path}, e.g. {attribute} = FastAPI()",
        )


def check_unique(
    services: list[Declared], resources: list[Declared], keyspaces: list[Declared], problems: Problems
) -> None:
    """Report a second valid declaration of a name within its kind (a keyspace's pattern within its
    cluster), at the second one."""
    seen: dict[tuple[str, ...], Declared] = {}

    def once(key: tuple[str, ...], item: Declared, message: str, hint: str) -> None:
        first = seen.setdefault(key, item)
        if first is not item:
            problems.add(item.location(), f"{message}: first declared at {first.location()}", hint)

    for item in [*services, *resources]:
        once(
            (item.kind, item.name),
            item,
            f"duplicate {KINDS[item.kind].noun} name {item.name!r}",
            "names are unique per kind within an app: rename one of them",
        )
    for item in keyspaces:
        if item.spec is not None and item.cluster is not None:
            once(
                ("keyspace", item.cluster.name, item.name),
                item,
                f"duplicate keyspace {item.name!r} on cache cluster {item.cluster.name!r}",
                "give each keyspace of a cluster its own pattern",
            )
