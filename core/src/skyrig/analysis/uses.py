"""Uses: which service uses which resource, for which operations, and where in its code.

Every reference to a declaration in a module that a service owns is a use by that service: the attribute
read from it names the operation (``orders.publish`` -> ``publish``, from the declaration's
``operations``); a declaration passed around whole may do all it can. A subscription uses its topic.
A cache cluster is private to its service.
"""

from __future__ import annotations

from skyrig import declarations as decl
from skyrig.analysis.declared import Declared
from skyrig.analysis.diagnostics import Problems, Where
from skyrig.analysis.extract import KEYSPACE, Ref
from skyrig.analysis.names import Names
from skyrig.analysis.ownership import Ownership
from skyrig.model import Use, trusted


class _Found:
    """Uses as found: (service, kind, resource) -> operations and places."""

    def __init__(self) -> None:
        self.uses: dict[tuple[str, str, str], tuple[set[str], list[Where]]] = {}

    def add(
        self, service: str, target: Declared, operations: set[str] | frozenset[str], where: Where
    ) -> None:
        entry = self.uses.setdefault((service, target.kind, target.name), (set(), []))
        entry[0].update(operations)
        entry[1].append(where)

    def records(self) -> list[Use]:
        return [
            trusted(
                Use,
                service=s,
                kind=k,
                resource=r,
                operations=sorted(ops),
                locations=[str(place) for place in sorted(set(places))],
            )
            for (s, k, r), (ops, places) in sorted(self.uses.items())
        ]


def find_uses(resources: list[Declared], names: Names, ownership: Ownership, problems: Problems) -> list[Use]:
    """The uses of the valid, owned ``resources`` by the app's services, in order."""
    found = _Found()
    for module, facts in names.facts.items():
        service = ownership.owner(module)
        if service is None:
            continue
        path = names.sources[module].path
        for ref in facts.refs:
            symbol, rest = names.resolve_chain(module, ref.chain)
            if isinstance(symbol, Declared) and symbol.spec is not None:
                _use(service, symbol, rest, Where(path, ref.line, ref.column), ref, found, problems)
    for item in resources:
        if item.cls is decl.Subscription and item.service and isinstance(item.values.get("topic"), Declared):
            found.add(item.service, item.values["topic"], {"subscribe"}, item.location())
    return found.records()


def _use(
    service: str,
    target: Declared,
    rest: tuple[str, ...],
    where: Where,
    ref: Ref,
    found: _Found,
    problems: Problems,
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
        problems.add(
            where,
            f"service {service!r} uses cache cluster {resource.name!r} of service {resource.service!r}",
            f"a cache is private to its service: call an API of {resource.service!r}, or declare a "
            f"CacheCluster in {service!r}",
        )
        return
    found.add(service, resource, operations, where)
