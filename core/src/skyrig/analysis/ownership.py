"""Ownership: which service owns each module of the app, and so each resource declared in it.

A package declares at most one ``Service``; the service owns every module of its package and of its
subpackages, except those of a subpackage that declares a service of its own. A resource belongs to the
service that owns the module declaring it, and its handler or endpoint must belong to the same service.
"""

from __future__ import annotations

from skyrig import declarations as decl
from skyrig.analysis.declared import Declared
from skyrig.analysis.diagnostics import Problems
from skyrig.kinds import KINDS


class Ownership:
    """The services of the app, by the package they own."""

    def __init__(self, declared: list[Declared], problems: Problems) -> None:
        self.packages: dict[str, Declared] = {}
        """Package (``""`` for the app root) -> the service it declares."""
        self._owners: dict[str, str | None] = {}
        for item in declared:
            if item.cls is not decl.Service:
                continue
            source = item.source
            package = source.module if source.is_package else source.module.rpartition(".")[0]
            first = self.packages.get(package)
            if first is not None:
                problems.add(
                    item.location(),
                    f"package {package or '(app root)'!r} declares a second service",
                    f"a package owns one service; the first is declared at {first.location()}. "
                    "Move this one into a package of its own",
                )
                continue
            self.packages[package] = item

    def owner(self, module: str) -> str | None:
        """The service that owns ``module``: the one declared in its closest enclosing package."""
        if module not in self._owners:
            candidate = module
            while True:
                service = self.packages.get(candidate)
                if service is not None:
                    self._owners[module] = service.spec.name if service.spec else None
                    break
                if not candidate:
                    self._owners[module] = None
                    break
                candidate = candidate.rpartition(".")[0]
        return self._owners[module]

    def own(self, item: Declared, problems: Problems) -> None:
        """Give the valid resource ``item`` its owner (``item.service``); the functions it names (a
        handler, an endpoint) must be that service's."""
        item.service = self.owner(item.source.module)
        if item.service is None:
            problems.add(
                item.location(),
                f"{item.label} is declared outside any service",
                "declare resources inside a service's package (beside its Service(...) declaration), or "
                "declare a Service in this package",
            )
            return
        for param, what in item.cls.references.items():
            value = item.values.get(param)
            if what == "function" and isinstance(value, str):
                module = value.partition(":")[0]
                where = self.owner(module)
                if where != item.service:
                    problems.add(
                        item.location(param),
                        f"{item.label}: {param} {value!r} belongs to "
                        f"{f'service {where!r}' if where else 'no service'}, not to {item.service!r}",
                        f"the {param} runs in the service that declares the {KINDS[item.kind].noun}: "
                        f"define it in service {item.service!r}",
                    )
