"""The cloud node types' base: a resource whose provider id is its name is found by reading it by name."""

from __future__ import annotations

from typing import Any

from skyrig.provider import CloudClient, Context, NamedNodeType, Node, NotFound, Observed


class _Buckets(NamedNodeType):
    """Buckets by name: one listing answers a read of many, as a cloud's list call does."""

    type = "test.bucket"

    def __init__(self, existing: set[str]) -> None:
        self.existing = existing
        self.reads: list[list[str]] = []

    def _read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        self.reads.append([provider_id])
        if provider_id not in self.existing:
            raise NotFound(provider_id)
        return self.observed(node, provider_id, {"name": provider_id})

    def _read_many(self, context: Context, nodes: list[tuple[Node, str]]) -> dict[str, Observed | None]:
        self.reads.append([pid for _, pid in nodes])
        return {
            n.id: self.observed(n, pid, {"name": pid}) if pid in self.existing else None for n, pid in nodes
        }


def _context() -> Context:
    environment: Any = None  # a node type of a name reads neither the environment nor the settings
    return Context("app", environment, None, CloudClient())


def _node(name: str) -> Node:
    return Node(f"objects.bucket/{name}", "test.bucket", "test", {"name": name})


def test_a_named_resource_is_found_by_its_name_and_remembered() -> None:
    buckets, context = _Buckets({"app-dev-files"}), _context()
    found = buckets.find(context, _node("app-dev-files"))
    assert found is not None and found.provider_id == "app-dev-files"
    assert context.client.known == {"objects.bucket/app-dev-files": "app-dev-files"}
    assert buckets.find(context, _node("app-dev-gone")) is None


def test_named_resources_are_found_in_one_read_of_many() -> None:
    buckets, context = _Buckets({"app-dev-files"}), _context()
    found = buckets.find_many(context, [_node("app-dev-files"), _node("app-dev-new")])
    assert buckets.reads == [["app-dev-files", "app-dev-new"]]
    assert found["objects.bucket/app-dev-files"] is not None
    assert found["objects.bucket/app-dev-new"] is None
    assert context.client.known == {"objects.bucket/app-dev-files": "app-dev-files"}
