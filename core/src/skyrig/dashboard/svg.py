"""The infrastructure graph as a picture: inline SVG, drawn on the server (the page loads no scripts).

Nodes are laid out left to right in layers by dependency depth (a node sits one column right of its
deepest dependency), ordered within each column by where their dependencies sit, so that edges mostly
run straight. Edges go from a dependency to what depends on it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

ID_FONT = 12
TYPE_FONT = 10
# Monospace text is measured, not guessed at: about 0.6 em per character.
ID_CHAR = ID_FONT * 0.6
TYPE_CHAR = TYPE_FONT * 0.6
PAD_X = 10
BOX_HEIGHT = 38
ROW_GAP = 14
COLUMN_GAP = 56
MARGIN = 16

FAMILY_COLOURS = {
    "network": ("#eef0f3", "#8a94a6"),
    "sql": ("#e6f0fb", "#3b78c2"),
    "pubsub": ("#fdf0e2", "#d0822a"),
    "cache": ("#fbe9e9", "#c24a4a"),
    "objects": ("#e8f5ea", "#3f9a54"),
    "secrets": ("#f1eafa", "#8052b8"),
    "iam": ("#f6efe6", "#9a7148"),
    "compute": ("#e5f5f4", "#2a8f88"),
    "cron": ("#fbf6de", "#b39214"),
}
DEFAULT_COLOURS = ("#f3f3f3", "#777777")


@dataclass(frozen=True)
class Box:
    """Where one node is drawn."""

    x: float
    y: float
    width: float


def family(node_type: str, node_id: str) -> str:
    """The resource family a node belongs to (``memory.sql.database`` -> ``sql``), for its colour."""
    parts = node_type.split(".")
    if len(parts) > 1:
        return parts[1]
    return node_id.split("/")[0].split(".")[0]


def layers(order: Sequence[str], dependencies: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Node ids in columns by dependency depth, each column ordered to keep edges short.

    ``order`` must be topological (every node after its dependencies), as :class:`Graph.order` is. The
    columns are swept left to right (by where each node's dependencies sit), right to left (by where its
    dependents sit) and left to right again: the usual barycentre heuristic, deterministic.
    """
    depth: dict[str, int] = {}
    dependents: dict[str, list[str]] = {node: [] for node in order}
    for node in order:
        depth[node] = 1 + max((depth[d] for d in dependencies[node]), default=-1)
        for dependency in dependencies[node]:
            dependents[dependency].append(node)
    columns: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for node in order:
        columns[depth[node]].append(node)
    row: dict[str, float] = {}  # a node's place relative to the middle row, as columns are drawn centred

    def place(column: list[str]) -> None:
        for index, node in enumerate(column):
            row[node] = index - (len(column) - 1) / 2

    def sweep(sequence: Sequence[list[str]], neighbours: Mapping[str, Sequence[str]]) -> None:
        for column in sequence:
            # nodes without neighbours that way keep their place; ties keep the order (sort is stable)
            column.sort(
                key=lambda n: (
                    sum(row[m] for m in neighbours[n]) / len(neighbours[n]) if neighbours[n] else row[n]
                )
            )
            place(column)

    for column in columns:
        place(column)
    sweep(columns[1:], dependencies)
    sweep(columns[-2::-1], dependents)
    sweep(columns[1:], dependencies)
    return columns


def render_svg(
    order: Sequence[str], types: Mapping[str, str], dependencies: Mapping[str, Sequence[str]]
) -> str:
    """The graph as an ``<svg>`` element: ``order`` topological node ids, ``types`` their node types."""
    if not order:
        return (
            '<svg xmlns="http://www.w3.org/2000/svg" class="graph" width="240" height="40" role="img" '
            'aria-label="an empty graph"><text x="8" y="24" font-family="sans-serif" font-size="13">'
            "no nodes: the app declares nothing to provision</text></svg>"
        )
    columns = layers(order, dependencies)
    boxes: dict[str, Box] = {}
    tallest = max(len(column) for column in columns)
    height = 2 * MARGIN + tallest * BOX_HEIGHT + (tallest - 1) * ROW_GAP
    x = float(MARGIN)
    for column in columns:
        width = max(max(len(n) * ID_CHAR, len(types[n]) * TYPE_CHAR) for n in column) + 2 * PAD_X
        used = len(column) * BOX_HEIGHT + (len(column) - 1) * ROW_GAP
        top = (height - used) / 2  # each column centred against the tallest
        for index, node in enumerate(column):
            boxes[node] = Box(x, top + index * (BOX_HEIGHT + ROW_GAP), width)
        x += width + COLUMN_GAP
    width = x - COLUMN_GAP + MARGIN
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="graph" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="infrastructure graph, '
        f'{len(order)} nodes">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#9aa3b2"/></marker></defs>',
        '<g class="edges" fill="none" stroke="#9aa3b2" stroke-width="1.2">',
    ]
    for node in order:
        end = boxes[node]
        for dependency in dependencies[node]:
            start = boxes[dependency]
            x1, y1 = start.x + start.width, start.y + BOX_HEIGHT / 2
            x2, y2 = end.x - 2, end.y + BOX_HEIGHT / 2
            bend = max((x2 - x1) / 2, 20)
            parts.append(
                f'<path data-from="{escape(dependency)}" data-to="{escape(node)}" marker-end="url(#arrow)" '
                f'd="M {x1:.1f} {y1:.1f} C {x1 + bend:.1f} {y1:.1f}, {x2 - bend:.1f} {y2:.1f}, '
                f'{x2:.1f} {y2:.1f}"/>'
            )
    parts.append("</g>")
    parts.append('<g class="nodes" font-family="ui-monospace, Menlo, Consolas, monospace">')
    for node in order:
        box = boxes[node]
        fill, stroke = FAMILY_COLOURS.get(family(types[node], node), DEFAULT_COLOURS)
        after = ", ".join(dependencies[node]) or "nothing"
        parts.append(
            f'<g class="node" data-node="{escape(node)}">'
            f"<title>{escape(node)} ({escape(types[node])}), after {escape(after)}</title>"
            f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.width:.1f}" height="{BOX_HEIGHT}" rx="5" '
            f'fill="{fill}" stroke="{stroke}"/>'
            f'<text x="{box.x + PAD_X:.1f}" y="{box.y + 16:.1f}" font-size="{ID_FONT}" fill="#1d2430">'
            f"{escape(node)}</text>"
            f'<text x="{box.x + PAD_X:.1f}" y="{box.y + 30:.1f}" font-size="{TYPE_FONT}" fill="#5b6472">'
            f"{escape(types[node])}</text></g>"
        )
    parts.append("</g></svg>")
    return "".join(parts)
