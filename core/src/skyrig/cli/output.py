"""Console output: rich for people, plain JSON for machines."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from skyrig.engine.plan import Plan


def console() -> Console:
    """The console for normal output (stdout); colour only on a terminal, wide lines when piped."""
    from rich.console import Console

    return Console(highlight=False, width=None if sys.stdout.isatty() else 200)


def print_json(data: Any) -> None:
    """Write ``data`` as indented JSON, or ``data`` itself when it is already JSON text."""
    text = data if isinstance(data, str) else json.dumps(data, indent=2, sort_keys=False)
    sys.stdout.write(text + "\n")


def annotations_by_node(plan: Plan) -> dict[str | None, list[dict[str, Any]]]:
    """The plan's annotations (``skyrig_annotate_plan``) by node id; the whole plan's under ``None``.
    An annotation of a node the plan does not have is the whole plan's."""
    nodes = {change.id for change in plan.changes}
    found: dict[str | None, list[dict[str, Any]]] = {}
    for note in plan.annotations:
        node = note.get("node")
        found.setdefault(node if node in nodes else None, []).append(note)
    return found
