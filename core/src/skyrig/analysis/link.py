"""Joining per-file facts into the Application Model, pass by pass.

The passes, each in its own module: declarations found and their arguments bound, references resolved
across modules (:mod:`~skyrig.analysis.names`) and settings validated
(:mod:`~skyrig.analysis.validate`), resources given the service that owns them
(:mod:`~skyrig.analysis.ownership`), and code's uses of them given operations
(:mod:`~skyrig.analysis.uses`). Here: their order, and the model records they make.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from skyrig import declarations as decl
from skyrig.analysis.declared import Declared, declaration_class
from skyrig.analysis.diagnostics import AppCodeError, Problems, Where
from skyrig.analysis.extract import ModuleFacts
from skyrig.analysis.files import SourceFile
from skyrig.analysis.names import Names
from skyrig.analysis.ownership import Ownership
from skyrig.analysis.uses import find_uses
from skyrig.analysis.validate import (
    attach_keyspace,
    bind_arguments,
    check_app,
    check_unique,
    resolve_references,
    validate,
)
from skyrig.kinds import KINDS
from skyrig.model import AppModel, KeyspaceModel, Migration, ServiceModel, trusted
from skyrig.runtime.migration_files import read_migrations


def link(app: str, root: Path, files: list[SourceFile], facts: dict[str, ModuleFacts]) -> AppModel:
    """The Application Model of the app whose modules are ``files``; raises :class:`AppCodeError`."""
    names = Names({f.module: f for f in files}, {f.module: facts[f.path] for f in files})
    problems = Problems(d for f in files for d in facts[f.path].diagnostics)
    declared: list[Declared] = []
    for module, module_facts in names.facts.items():
        for raw in module_facts.declarations:
            item = Declared(raw, names.sources[module], declaration_class(raw.cls))
            declared.append(item)
            for target in raw.targets:
                names.declare(module, target, item)
    for item in declared:
        bind_arguments(item, problems)
    ownership = Ownership(declared, problems)
    keyspaces = [d for d in declared if d.cls is decl.Keyspace]
    resources = [d for d in declared if d.cls not in (decl.Service, decl.Keyspace)]
    for item in keyspaces:
        attach_keyspace(item, names, problems)
    for item in [*resources, *keyspaces]:
        resolve_references(item, names, problems)
    for item in sorted(declared, key=lambda d: d.cls is decl.Subscription):  # topics first
        validate(item, names, problems)
    for service in ownership.packages.values():
        check_app(service, names, root, problems)
    valid = [d for d in resources if d.spec is not None]
    for item in valid:
        ownership.own(item, problems)
    services = [s for s in ownership.packages.values() if s.spec]
    check_unique(services, valid, keyspaces, problems)
    by_cluster: dict[int, list[Declared]] = {}
    for keyspace in sorted((k for k in keyspaces if k.spec is not None), key=lambda k: k.name):
        by_cluster.setdefault(id(keyspace.cluster), []).append(keyspace)
    records = [_record(item, by_cluster.get(id(item), []), root, problems) for item in valid if item.service]
    uses = find_uses(valid, names, ownership, problems)
    if problems:
        raise AppCodeError(problems)
    return AppModel(
        app=app,
        services=sorted(
            (
                trusted(
                    ServiceModel, **vars(s.spec), package=package, location=str(s.location()), kind="service"
                )
                for package, s in ownership.packages.items()
                if s.spec is not None
            ),
            key=lambda s: s.name,
        ),
        resources=sorted(records, key=lambda r: (r.kind, r.name)),
        uses=uses,
    )


def _record(item: Declared, keyspaces: list[Declared], root: Path, problems: Problems) -> Any:
    """The model record of the valid, owned resource ``item`` (a cache cluster's with its keyspaces)."""
    extra: dict[str, Any] = {}
    if item.cls is decl.SQLDatabase:
        extra["migration_files"] = _migrations(item, root, problems)
    elif item.cls is decl.CacheCluster:
        extra["keyspaces"] = [
            trusted(KeyspaceModel, **vars(k.spec), location=str(k.location())) for k in keyspaces
        ]
    # The spec is validated already: construct the record without validating it again.
    return trusted(
        KINDS[item.kind].record,
        **vars(item.spec),
        kind=item.kind,
        service=item.service,
        location=str(item.location()),
        **extra,
    )


def _migrations(item: Declared, root: Path, problems: Problems) -> list[Migration]:
    if item.spec.migrations is None:
        return []
    migrations, found = read_migrations(root, item.source.path, item.spec.migrations)
    for problem in found:
        if problem.file is None:
            problems.add(item.location("migrations"), f"{item.label}: {problem.message}", problem.hint)
        else:
            problems.add(Where(problem.file, 1, 1), problem.message, problem.hint)
    return migrations
