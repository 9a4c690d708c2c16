"""Uses: which service uses which resource, for which operations, and where in its code.

Every reference to a declaration in a module that a service owns is a use by that service: the attribute
read from it names the operation (``orders.publish`` -> ``publish``, from the declaration's
``operations``). Where the parser cannot see the operation (the declaration passed to a helper, returned
or stored; an attribute that is no operation; a module of declarations passed around whole), the
reference is a use of every operation of the kind, and the use says where (``operations_not_visible``):
the service gets what it may need at run time, and least privilege stays exact where code is visible.
A subscription uses its topic. A cache cluster is private to its service.
"""

from __future__ import annotations

from skyrig import declarations as decl
from skyrig.analysis.declared import Declared
from skyrig.analysis.diagnostics import Problems, Where
from skyrig.analysis.extract import KEYSPACE, Ref
from skyrig.analysis.names import Module, Names
from skyrig.analysis.ownership import Ownership
from skyrig.model import Use, trusted


class _Found:
    """Uses as found: (service, kind, resource) -> operations and places."""

    def __init__(self) -> None:
        self.uses: dict[tuple[str, str, str], tuple[set[str], list[Where], list[Where]]] = {}

    def add(
        self,
        service: str,
        target: Declared,
        operations: set[str] | frozenset[str],
        where: Where,
        *,
        visible: bool = True,
    ) -> None:
        """Note a use; ``visible=False``: the parser cannot see which operations (every one is granted)."""
        entry = self.uses.setdefault((service, target.kind, target.name), (set(), [], []))
        entry[0].update(operations)
        entry[1].append(where)
        if not visible:
            entry[2].append(where)

    def records(self) -> list[Use]:
        return [
            trusted(
                Use,
                service=s,
                kind=k,
                resource=r,
                operations=sorted(ops),
                locations=[str(place) for place in sorted(set(places))],
                operations_not_visible=[str(place) for place in sorted(set(unseen))],
            )
            for (s, k, r), (ops, places, unseen) in sorted(self.uses.items())
        ]


def find_uses(resources: list[Declared], names: Names, ownership: Ownership, problems: Problems) -> list[Use]:
    """The uses of the valid, owned ``resources`` by the app's services, in order."""
    found = _Found()
    in_module: dict[str, list[Declared]] = {}
    for module, facts in names.facts.items():
        service = ownership.owner(module)
        if service is None:
            continue
        path = names.sources[module].path
        for ref in facts.refs:
            symbol, rest = names.resolve_chain(module, ref.chain)
            if isinstance(symbol, Declared) and symbol.spec is not None:
                _use(service, symbol, rest, Where(path, ref.line, ref.column), ref, found, problems)
            elif isinstance(symbol, Module) and not rest:  # a module passed around whole
                if symbol.name not in in_module:
                    in_module[symbol.name] = _declared_in(names, symbol.name)
                for target in in_module[symbol.name]:
                    where = Where(path, ref.line, ref.column)
                    _use(service, target, (), where, ref, found, problems, whole_module=True)
    for item in resources:
        if item.cls is decl.Subscription and item.service and isinstance(item.values.get("topic"), Declared):
            found.add(item.service, item.values["topic"], {"subscribe"}, item.location())
    return found.records()


def _declared_in(names: Names, module: str) -> list[Declared]:
    """The declarations a module holds or imports at top level: what code given the module may use."""
    facts = names.facts.get(module)
    if facts is None:
        return []
    found: dict[int, Declared] = {}
    for name in sorted({*facts.definitions, *facts.imports}):
        symbol = names.resolve(module, name)
        if isinstance(symbol, Declared) and symbol.spec is not None:
            found.setdefault(id(symbol), symbol)
    return list(found.values())


def _use(
    service: str,
    target: Declared,
    rest: tuple[str, ...],
    where: Where,
    ref: Ref,
    found: _Found,
    problems: Problems,
    *,
    whole_module: bool = False,
) -> None:
    cls = target.cls
    if rest and rest[0] in cls.metadata:
        return
    if cls is decl.CacheCluster and rest and rest[0] == KEYSPACE and ref.called and len(rest) == 1:
        problems.add(
            where,
            f"keyspace of cache cluster {target.name!r} declared outside module top level",
            "declare keyspaces at module top level: sessions = cluster.keyspace(...)",
        )
        return
    operation = cls.operations.get(rest[0]) if rest else None
    operations = {operation} if operation else cls.all_operations()
    if not operations:
        return  # a kind that code does not use (a service, a subscription, a cron job)
    resource = target.cluster if cls is decl.Keyspace else target
    if resource is None or resource.spec is None:
        return
    if resource.cls is decl.CacheCluster and resource.service and resource.service != service:
        if whole_module:  # its module was passed around: nothing says this service uses the cache
            return
        problems.add(
            where,
            f"service {service!r} uses cache cluster {resource.name!r} of service {resource.service!r}",
            f"a cache is private to its service: call an API of {resource.service!r}, or declare a "
            f"CacheCluster in {service!r}",
        )
        return
    found.add(service, resource, operations, where, visible=operation is not None)
