"""Dependency order, once for the whole engine: graphs are ordered, plans delete in reverse, applies run
each node when what it waits for has finished."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping


class CycleError(ValueError):
    """The dependencies go round in a circle."""

    def __init__(self, stuck: list[str]) -> None:
        super().__init__(f"the graph has a dependency cycle through {', '.join(stuck[:5])}")
        self.stuck = stuck


def order(dependencies: Mapping[str, Iterable[str]]) -> list[str]:
    """Every node after the nodes it depends on, ties broken by id, so the order is the same every time.

    Dependencies on nodes that are not keys of ``dependencies`` are ignored. Raises :class:`CycleError`.
    """
    countdown = Countdown(dependencies)
    ready = countdown.ready()
    heapq.heapify(ready)
    found = []
    while ready:
        node = heapq.heappop(ready)
        found.append(node)
        for freed in countdown.done(node):
            heapq.heappush(ready, freed)
    if len(found) != len(countdown.waiting):
        raise CycleError(sorted(node for node, count in countdown.waiting.items() if count))
    return found


class Countdown:
    """Which nodes may start: each waits for its dependencies, counted down as they finish, so that
    scheduling stays linear in the number of nodes and edges."""

    def __init__(self, dependencies: Mapping[str, Iterable[str]]) -> None:
        self.waits: dict[str, frozenset[str]] = {
            node: frozenset(d for d in deps if d in dependencies) for node, deps in dependencies.items()
        }
        self.waiting = {node: len(deps) for node, deps in self.waits.items()}
        self.dependents: dict[str, list[str]] = {node: [] for node in self.waits}
        for node, deps in self.waits.items():
            for dependency in deps:
                self.dependents[dependency].append(node)

    def ready(self) -> list[str]:
        """The nodes that wait for nothing, in the order given."""
        return [node for node, count in self.waiting.items() if not count]

    def done(self, node: str) -> list[str]:
        """Mark ``node`` finished; the nodes that this makes ready."""
        freed = []
        for dependent in self.dependents[node]:
            self.waiting[dependent] -= 1
            if not self.waiting[dependent]:
                freed.append(dependent)
        return freed
