"""Joining per-file facts into the Application Model: names resolved across modules, declarations
validated through their specs, resources given owners, and uses given operations."""

from __future__ import annotations

import builtins
import difflib
import hashlib
import inspect
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import ValidationError

from skyrig import declarations as decl
from skyrig.analysis.diagnostics import AppCodeError, Diagnostic
from skyrig.analysis.extract import KEYSPACE, Arg, ModuleFacts, RawDeclaration, Ref
from skyrig.analysis.files import SourceFile
from skyrig.declarations._base import spec_errors
from skyrig.kinds import KINDS
from skyrig.model import AppModel, KeyspaceModel, Migration, ServiceModel, Use, trusted

_CLASSES: dict[str, type[decl.Declaration]] = {k.declaration.__name__: k.declaration for k in KINDS.values()}
_CLASSES[KEYSPACE] = decl.Keyspace
_SPEC_FIELD = {"value": "value_type"}  # parameter -> spec field, where they differ
_MIGRATION = re.compile(r"^(\d+)_(\w+)\.up\.sql$")
_LITERAL_HINT = "skyrig reads declarations without running your code: write the value itself"


class _Where(NamedTuple):
    """A place in a file, for diagnostics and (as ``file:line:column``) for the model."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


# -- what a name resolves to ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Module:
    name: str


@dataclass(frozen=True)
class _Definition:
    module: str
    name: str
    what: str  # function, class, variable


@dataclass(frozen=True)
class _External:
    target: str  # "module:name"


@dataclass(frozen=True)
class _Unknown:
    broken: bool = False  # resolved into a module that does not parse


@dataclass(eq=False)
class _Declared:
    raw: RawDeclaration
    source: SourceFile
    cls: type[decl.Declaration]
    values: dict[str, Any] = field(default_factory=dict)
    args: dict[str, Arg] = field(default_factory=dict)
    spec: Any = None
    service: str | None = None
    cluster: _Declared | None = None  # for a keyspace

    @property
    def kind(self) -> str:
        return self.cls.kind

    @property
    def name(self) -> str:
        return self.spec.name if self.cls is not decl.Keyspace else self.spec.pattern

    def location(self, param: str | None = None) -> _Where:
        arg = self.args.get(param) if param else None
        line, column = (arg.line, arg.column) if arg else (self.raw.line, self.raw.column)
        return _Where(self.source.path, line, column)


_Symbol = _Module | _Definition | _External | _Unknown | _Declared


class _Parameters(NamedTuple):
    names: frozenset[str]
    positional: tuple[str, ...]
    required: tuple[str, ...]
    order: tuple[str, ...]


@cache
def _parameters(cls_name: str) -> _Parameters:
    """The parameters of a declaration, read from the signature users call."""
    cls = _CLASSES[cls_name]
    function = decl.CacheCluster.keyspace if cls is decl.Keyspace else cls.__init__
    params = list(inspect.signature(function).parameters.values())[1:]
    return _Parameters(
        names=frozenset(p.name for p in params),
        positional=tuple(p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD),
        required=tuple(p.name for p in params if p.default is inspect.Parameter.empty),
        order=tuple(p.name for p in params),
    )


def _where(item: _Declared, arg: Arg) -> _Where:
    return _Where(item.source.path, arg.line, arg.column)


# -- the linker -----------------------------------------------------------------------------------


def link(app: str, root: Path, files: list[SourceFile], facts: dict[str, ModuleFacts]) -> AppModel:
    """The Application Model of the app whose modules are ``files``; raises :class:`AppCodeError`."""
    return _Linker(app, root, files, facts).run()


class _Linker:
    def __init__(self, app: str, root: Path, files: list[SourceFile], facts: dict[str, ModuleFacts]):
        self.app = app
        self.root = root
        self.sources = {f.module: f for f in files}
        self.facts = {f.module: facts[f.path] for f in files}
        self.diagnostics: list[Diagnostic] = [d for f in files for d in facts[f.path].diagnostics]
        self.declared: list[_Declared] = []
        self.by_target: dict[tuple[str, str], _Declared] = {}
        self.resolved: dict[tuple[str, str], _Symbol] = {}
        self.service_packages: dict[str, _Declared] = {}
        self.owners: dict[str, str | None] = {}

    def run(self) -> AppModel:
        for module, facts in self.facts.items():
            for raw in facts.declarations:
                item = _Declared(raw, self.sources[module], _CLASSES[raw.cls])
                self.declared.append(item)
                for target in raw.targets:
                    self.by_target[(module, target)] = item
        self._bind_arguments()
        self._services()
        keyspaces = [d for d in self.declared if d.cls is decl.Keyspace]
        resources = [d for d in self.declared if d.cls not in (decl.Service, decl.Keyspace)]
        for item in keyspaces:
            self._keyspace_cluster(item)
        for item in [*resources, *keyspaces]:
            self._resolve_references(item)
        for item in sorted(self.declared, key=lambda d: d.cls is decl.Subscription):  # topics first
            self._validate(item)
        for service in self.service_packages.values():
            self._check_app(service)
        valid = [d for d in resources if d.spec is not None]
        for item in valid:
            self._own(item)
        self._unique(valid, keyspaces)
        by_cluster: dict[int, list[_Declared]] = {}
        for keyspace in sorted((k for k in keyspaces if k.spec is not None), key=lambda k: k.name):
            by_cluster.setdefault(id(keyspace.cluster), []).append(keyspace)
        records = [self._record(item, by_cluster.get(id(item), [])) for item in valid if item.service]
        uses = self._uses(valid)
        if self.diagnostics:
            raise AppCodeError(self.diagnostics)
        services = [
            trusted(ServiceModel, **vars(s.spec), package=package, location=str(s.location()), kind="service")
            for package, s in self.service_packages.items()
            if s.spec is not None
        ]
        return AppModel(
            app=self.app,
            services=sorted(services, key=lambda s: s.name),
            resources=sorted(records, key=lambda r: (r.kind, r.name)),
            uses=uses,
        )

    def _error(self, where: _Where, message: str, hint: str | None = None) -> None:
        self.diagnostics.append(Diagnostic(where.file, where.line, where.column, message, hint))

    # -- names --------------------------------------------------------------------------------

    def resolve(self, module: str, name: str, depth: int = 0) -> _Symbol:
        key = (module, name)
        if key not in self.resolved:
            self.resolved[key] = self._resolve(module, name, depth)
        return self.resolved[key]

    def _resolve(self, module: str, name: str, depth: int) -> _Symbol:
        facts = self.facts.get(module)
        if facts is None or depth > 50:
            return _Unknown()
        declared = self.by_target.get((module, name))
        if declared is not None:
            return declared
        target = facts.imports.get(name)
        if target is not None:
            imported, attribute = target
            if attribute is None:
                return _Module(imported) if imported in self.sources else _External(imported)
            full = f"{imported}.{attribute}" if imported else attribute
            if full in self.sources:
                return _Module(full)
            if imported in self.sources:
                if self.facts[imported].broken:
                    return _Unknown(broken=True)
                return self.resolve(imported, attribute, depth + 1)
            return _External(f"{imported}:{attribute}")
        if name in facts.definitions:
            return _Definition(module, name, facts.definitions[name])
        return _Unknown(broken=facts.broken)

    def resolve_chain(self, module: str, chain: tuple[str, ...]) -> tuple[_Symbol, tuple[str, ...]]:
        """What the dotted name ``chain`` written in ``module`` refers to, and the attributes left over."""
        symbol = self.resolve(module, chain[0])
        rest = chain[1:]
        while rest and isinstance(symbol, _Module):
            submodule = f"{symbol.name}.{rest[0]}"
            symbol = _Module(submodule) if submodule in self.sources else self.resolve(symbol.name, rest[0])
            rest = rest[1:]
        if rest and isinstance(symbol, _External):
            symbol = _External(symbol.target + ("." if ":" in symbol.target else ":") + ".".join(rest))
            rest = ()
        return symbol, rest

    # -- declarations -------------------------------------------------------------------------

    def _bind_arguments(self) -> None:
        for item in self.declared:
            self._bind(item, _parameters(item.raw.cls))

    def _bind(self, item: _Declared, params: _Parameters) -> None:
        next_positional = 0
        for arg in item.raw.args:
            if arg.shape in ("*args", "**kwargs"):
                self._error(_where(item, arg), f"{_label(item)}: write each argument out", _LITERAL_HINT)
                continue
            if arg.param is None:
                if next_positional >= len(params.positional):
                    most = _count(len(params.positional), "positional argument")
                    self._error(
                        _where(item, arg),
                        f"{_label(item)} takes at most {most} ({', '.join(params.positional)})",
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
                self._error(
                    _where(item, arg),
                    f"{_label(item)}: unknown keyword {param!r}",
                    f"{guess}{item.cls.__name__} takes: {', '.join(sorted(params.names))}",
                )
                continue
            if param in item.args:
                self._error(_where(item, arg), f"{_label(item)}: argument {param!r} given twice")
                continue
            item.args[param] = arg
        for name in params.required:
            if name not in item.args:
                self._error(item.location(), f"{_label(item)}: missing argument {name!r}", _example(item))

    def _resolve_references(self, item: _Declared) -> None:
        module = item.source.module
        for param, what in item.cls.references.items():
            arg = item.args.get(param)
            if arg is None:
                continue
            where = item.location(param)
            if arg.chain is None:
                shape = arg.shape or f"the literal {arg.literal!r}"
                self._error(
                    where,
                    f"{_label(item)}: {param} must name a {_NOUN[what]}, not {shape}",
                    _REFERENCE_HINT[what],
                )
                continue
            symbol, rest = self.resolve_chain(module, arg.chain)
            dotted_name = ".".join(arg.chain)
            if isinstance(symbol, _Unknown) and symbol.broken:
                item.values[param] = None
                continue
            if what == "topic":
                if isinstance(symbol, _Declared) and symbol.cls is decl.Topic and not rest:
                    item.values[param] = symbol
                    continue
                self._error(
                    where, f"{_label(item)}: {dotted_name!r} is not a declared Topic", _REFERENCE_HINT[what]
                )
            elif what == "function":
                if isinstance(symbol, _Definition) and symbol.what == "function" and not rest:
                    item.values[param] = f"{symbol.module}:{symbol.name}"
                    continue
                self._error(
                    where,
                    f"{_label(item)}: {param} {dotted_name!r} is not a function of this app",
                    _REFERENCE_HINT[what],
                )
            else:
                reference = _type_reference(symbol, rest, arg.chain, module)
                if reference is not None:
                    item.values[param] = reference
                    continue
                self._error(
                    where,
                    f"{_label(item)}: {param} {dotted_name!r} is not defined or imported here",
                    _REFERENCE_HINT[what],
                )

    def _validate(self, item: _Declared) -> None:
        values: dict[str, Any] = {}
        for param, arg in item.args.items():
            if param in item.cls.references:
                if param not in item.values:
                    return  # already reported
                value = item.values[param]
                if value is None or (isinstance(value, _Declared) and value.spec is None):
                    return  # refers to something broken, which is reported where it is
                values[_SPEC_FIELD.get(param, param)] = value.name if isinstance(value, _Declared) else value
            elif not arg.is_literal:
                noun = "a string literal" if param == "name" else "a literal"
                self._error(
                    item.location(param),
                    f"{_label(item)}: {param} must be {noun}, not {arg.shape or 'a name'}",
                    _LITERAL_HINT,
                )
                return
            else:
                values[param] = arg.literal
        if any(name not in item.args for name in _parameters(item.raw.cls).required):
            return  # reported by _bind_arguments
        try:
            item.spec = item.cls.spec_model(**values)
        except ValidationError as error:
            reverse = {v: k for k, v in _SPEC_FIELD.items()}
            for spec_field, message in spec_errors(error):
                param = reverse.get(spec_field, spec_field)
                where = item.location(param if param in item.args else None)
                prefix = f"{param}: " if param in item.args and param != "name" else ""
                self._error(where, f"{_label(item)}: {prefix}{message}", _hint_for(param, item))
            return
        if item.cls is decl.Topic and item.spec.ordering_attribute:
            self._check_ordering(item)

    def _check_ordering(self, item: _Declared) -> None:
        module, _, name = item.spec.message_type.partition(":")
        facts = self.facts.get(module)
        fields = facts.class_fields.get(name) if facts else None
        if fields is not None and item.spec.ordering_attribute not in fields:
            self._error(
                item.location("ordering_attribute"),
                f"{_label(item)}: ordering_attribute {item.spec.ordering_attribute!r} is not a field of "
                f"{name}",
                f"{name} has the fields: {', '.join(fields) or '(none)'}",
            )

    # -- services and ownership ---------------------------------------------------------------

    def _services(self) -> None:
        for item in self.declared:
            if item.cls is not decl.Service:
                continue
            source = item.source
            package = source.module if source.is_package else source.module.rpartition(".")[0]
            first = self.service_packages.get(package)
            if first is not None:
                self._error(
                    item.location(),
                    f"package {package or '(app root)'!r} declares a second service",
                    f"a package owns one service; the first is declared at {first.location()}. "
                    "Move this one into a package of its own",
                )
                continue
            self.service_packages[package] = item

    def _check_app(self, service: _Declared) -> None:
        if service.spec is None:
            return
        module, _, attribute = service.spec.app.partition(":")
        facts = self.facts.get(module)
        if facts is None:
            self._error(
                service.location("app"),
                f"{_label(service)}: app module {module!r} is not a module of this app",
                f"give the module's import path from the app root ({self.root.name}/), like "
                f"'{service.source.module.split('.')[0]}.api:app'",
            )
        elif not facts.broken and attribute not in facts.definitions and attribute not in facts.imports:
            self._error(
                service.location("app"),
                f"{_label(service)}: module {module!r} defines no {attribute!r} at top level",
                f"define the ASGI app in {self.sources[module].path}, e.g. {attribute} = FastAPI()",
            )

    def owner(self, module: str) -> str | None:
        """The service that owns ``module``: the one declared in its closest enclosing package."""
        if module not in self.owners:
            candidate = module
            while True:
                service = self.service_packages.get(candidate)
                if service is not None:
                    self.owners[module] = service.spec.name if service.spec else None
                    break
                if not candidate:
                    self.owners[module] = None
                    break
                candidate = candidate.rpartition(".")[0]
        return self.owners[module]

    def _own(self, item: _Declared) -> None:
        item.service = self.owner(item.source.module)
        if item.service is None:
            self._error(
                item.location(),
                f"{_label(item)} is declared outside any service",
                "declare resources inside a service's package (beside its Service(...) declaration), or "
                "declare a Service in this package",
            )
            return
        for param in ("handler", "endpoint"):
            value = item.values.get(param)
            if isinstance(value, str):
                module = value.partition(":")[0]
                where = self.owner(module)
                if where != item.service:
                    self._error(
                        item.location(param),
                        f"{_label(item)}: {param} {value!r} belongs to "
                        f"{f'service {where!r}' if where else 'no service'}, not to {item.service!r}",
                        f"the {param} runs in the service that declares the {item.kind.replace('_', ' ')}: "
                        f"define it in service {item.service!r}",
                    )

    def _keyspace_cluster(self, item: _Declared) -> None:
        symbol, rest = self.resolve_chain(item.source.module, item.raw.receiver or ())
        if isinstance(symbol, _Declared) and symbol.cls is decl.CacheCluster and not rest:
            item.cluster = symbol
        elif not (isinstance(symbol, _Unknown) and symbol.broken):
            receiver = ".".join(item.raw.receiver or ())
            self._error(
                item.location(),
                f"keyspace() is called on {receiver!r}, which is not a CacheCluster",
                "declare keyspaces on a CacheCluster: cluster.keyspace('key/{id}', value=Type)",
            )

    def _unique(self, resources: list[_Declared], keyspaces: list[_Declared]) -> None:
        seen: dict[tuple[str, ...], _Declared] = {}
        services = [s for s in self.service_packages.values() if s.spec]
        for item in [*services, *resources]:
            key = (item.kind, item.name)
            self._once(
                seen,
                key,
                item,
                f"duplicate {_noun(item.kind)} name {item.name!r}",
                "names are unique per kind within an app: rename one of them",
            )
        for item in keyspaces:
            if item.spec is not None and item.cluster is not None:
                self._once(
                    seen,
                    ("keyspace", item.cluster.name, item.name),
                    item,
                    f"duplicate keyspace {item.name!r} on cache cluster {item.cluster.name!r}",
                    "give each keyspace of a cluster its own pattern",
                )

    def _once(self, seen: dict, key: tuple[str, ...], item: _Declared, message: str, hint: str) -> None:
        first = seen.setdefault(key, item)
        if first is not item:
            self._error(item.location(), f"{message}: first declared at {first.location()}", hint)

    # -- the model ----------------------------------------------------------------------------

    def _record(self, item: _Declared, keyspaces: list[_Declared]) -> Any:
        extra: dict[str, Any] = {}
        if item.cls is decl.SQLDatabase:
            extra["migration_files"] = self._migrations(item)
        elif item.cls is decl.CacheCluster:
            extra["keyspaces"] = [
                trusted(KeyspaceModel, **vars(k.spec), location=str(k.location())) for k in keyspaces
            ]
        record = KINDS[item.kind].record
        # The spec is validated already: construct the record without validating it again.
        return trusted(
            record,
            **vars(item.spec),
            kind=item.kind,
            service=item.service,
            location=str(item.location()),
            **extra,
        )

    def _migrations(self, item: _Declared) -> list[Migration]:
        if item.spec.migrations is None:
            return []
        where = item.location("migrations")
        folder = (self.root / item.source.path).parent / item.spec.migrations
        if not folder.is_dir():
            self._error(
                where,
                f"{_label(item)}: migrations folder {item.spec.migrations!r} does not exist",
                f"create {_relative(folder, self.root)}/ with files named like 0001_create_tables.up.sql, "
                "or leave migrations out",
            )
            return []
        found: dict[int, Migration] = {}
        for path in sorted(folder.iterdir()):
            if path.suffix != ".sql" or path.name.endswith(".down.sql"):
                continue
            match = _MIGRATION.match(path.name)
            file = _relative(path, self.root)
            if match is None:
                self._error(
                    _Where(file, 1, 1),
                    f"migration file {path.name!r} is not named NNNN_name.up.sql",
                    "rename it to a number, an underscore, a name and .up.sql, like 0002_add_index.up.sql",
                )
                continue
            number = int(match.group(1))
            if number in found:
                self._error(
                    _Where(file, 1, 1),
                    f"migration number {number} is used twice (also {found[number].file})",
                    "give every migration of a database its own number",
                )
                continue
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            found[number] = Migration(number=number, name=match.group(2), file=file, sha256=digest)
        return [found[n] for n in sorted(found)]

    def _uses(self, resources: list[_Declared]) -> list[Use]:
        found: dict[tuple[str, str, str], tuple[set[str], list[_Where]]] = {}

        def add(service: str, target: _Declared, operations: set[str] | frozenset[str], where: _Where):
            key = (service, target.kind, target.name)
            entry = found.get(key)
            if entry is None:
                entry = found[key] = (set(), [])
            entry[0].update(operations)
            entry[1].append(where)

        for module, facts in self.facts.items():
            service = self.owner(module)
            if service is None:
                continue
            path = self.sources[module].path
            for ref in facts.refs:
                symbol, rest = self.resolve_chain(module, ref.chain)
                if isinstance(symbol, _Declared) and symbol.spec is not None:
                    self._use(service, symbol, rest, ref, path, add)
        for item in resources:
            if (
                item.cls is decl.Subscription
                and item.service
                and isinstance(item.values.get("topic"), _Declared)
            ):
                add(item.service, item.values["topic"], {"subscribe"}, item.location())
        return [
            trusted(
                Use,
                service=s,
                kind=k,
                resource=r,
                operations=sorted(ops),
                locations=[str(place) for place in sorted(set(places))],
            )
            for (s, k, r), (ops, places) in sorted(found.items())
        ]

    def _use(self, service: str, target: _Declared, rest: tuple[str, ...], ref: Ref, path: str, add) -> None:
        where = _Where(path, ref.line, ref.column)
        cls = target.cls
        if cls in (decl.Service, decl.Subscription, decl.CronJob) or (rest and rest[0] in cls.metadata):
            return
        if cls is decl.CacheCluster and rest and rest[0] == KEYSPACE and ref.called and len(rest) == 1:
            self._error(
                where,
                f"keyspace of cache cluster {target.name!r} declared outside module top level",
                "declare keyspaces at module top level: sessions = cluster.keyspace(...)",
            )
            return
        operation = cls.operations.get(rest[0]) if rest else None
        operations = {operation} if operation else cls.all_operations()
        resource = target.cluster if cls is decl.Keyspace else target
        if resource is None or resource.spec is None:
            return
        if resource.cls is decl.CacheCluster and resource.service and resource.service != service:
            self._error(
                where,
                f"service {service!r} uses cache cluster {resource.name!r} of service {resource.service!r}",
                f"a cache is private to its service: call an API of {resource.service!r}, or declare a "
                f"CacheCluster in {service!r}",
            )
            return
        if operations:
            add(service, resource, operations, where)


# -- helpers --------------------------------------------------------------------------------------

_NOUN = {"topic": "Topic", "function": "function", "type": "type"}
_REFERENCE_HINT = {
    "topic": "pass the object returned by Topic(...), declared at module top level or imported from "
    "the module that declares it",
    "function": "pass a function defined with 'def' at module top level of the app (or imported from "
    "such a module), not a lambda or a call",
    "type": "pass a class (a pydantic model or a dataclass) defined in or imported into this module",
}


def _type_reference(
    symbol: _Symbol, rest: tuple[str, ...], chain: tuple[str, ...], module: str
) -> str | None:
    if rest:
        return None
    if isinstance(symbol, _Definition):
        return f"{symbol.module}:{symbol.name}"
    if isinstance(symbol, _External):
        return symbol.target if ":" in symbol.target else None
    if (
        isinstance(symbol, _Unknown)
        and len(chain) == 1
        and isinstance(getattr(builtins, chain[0], None), type)
    ):
        return f"builtins:{chain[0]}"
    return None


def _label(item: _Declared) -> str:
    """``Topic 'order-created'``: how messages name a declaration, from its name as written."""
    param = "pattern" if item.cls is decl.Keyspace else "name"
    arg = next((a for a in item.raw.args if a.param == param), None)
    if arg is None:
        index = _parameters(item.raw.cls).order.index(param)
        positional = [a for a in item.raw.args if a.param is None]
        arg = positional[index] if index < len(positional) else None
    if arg is not None and arg.is_literal and isinstance(arg.literal, str):
        return f"{item.raw.cls} {arg.literal!r}"
    return item.raw.cls


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _noun(kind: str) -> str:
    return kind.replace("_", " ")


_DURATION_HINT = 'durations are whole numbers with units d, h, m, s, like "30s", "10m", "1h30m" or "7d"'
_HINTS = {
    "name": "names are lowercase letters, digits and '-', starting with a letter, like 'order-created'",
    "schedule": 'five fields: minute hour day-of-month month day-of-week, like "0 3 * * *" (UTC)',
    **dict.fromkeys(
        ("ack_deadline", "message_retention", "min_backoff", "max_backoff", "default_expiry", "every"),
        _DURATION_HINT,
    ),
}


def _hint_for(param: str, item: _Declared) -> str | None:
    return _HINTS.get(param) if param in item.args else None


def _example(item: _Declared) -> str:
    examples = {
        "Service": 'Service("orders", app="orders.api:app")',
        "Subscription": 'Subscription(topic, "send-receipt", handler=send_receipt)',
        "CronJob": 'CronJob("nightly-report", schedule="0 3 * * *", endpoint=report)',
        "Topic": 'Topic("order-created", OrderCreated)',
        KEYSPACE: 'cluster.keyspace("session/{id}", value=Session)',
    }
    example = examples.get(item.raw.cls)
    return f"for example: {example}" if example else "see docs/declarations.md"


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()
