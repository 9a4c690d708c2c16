"""The capability matrix: for each provider, each row (area, family, optional feature) and how the suite
found it: passed, failed, not claimed (and refused, when the suite checked that), or not shown by the
backend (a limit the profile declared, with its reason)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from skyrig_conformance.requirements import CLAIMED, LIMIT, NOT_CLAIMED, ROWS

PASSED = "passed"
FAILED = "failed"
REFUSED = "not claimed, refused"
ABSENT = "not claimed"
LIMITED = "not shown by the backend"
SYMBOLS = {PASSED: "✓", FAILED: "✗", REFUSED: "·", ABSENT: "·", LIMITED: "?"}


@dataclass
class Row:
    """The outcomes of one provider's tests of one row."""

    passed: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    not_claimed: list[str] = field(default_factory=list)
    limits: list[str] = field(default_factory=list)

    def status(self) -> str:
        if self.failed:
            return FAILED
        if self.passed:
            return PASSED
        if self.refused:
            return REFUSED
        if self.limits:
            return LIMITED
        return ABSENT


class Results:
    """Test reports, gathered by provider and row."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Row]] = {}

    def add(self, report: Any, provider: str, row: str, check: str) -> None:
        """Take one phase's report of a suite test."""
        entry = self.rows.setdefault(provider, {}).setdefault(row, Row())
        name = report.nodeid.rpartition("::")[2]
        if report.failed:
            entry.failed.append(name)
        elif report.skipped:
            reason = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
            reason = reason.removeprefix("Skipped: ")
            if reason.startswith(LIMIT):
                entry.limits.append(f"{name}: {reason.removeprefix(LIMIT + ': ')}")
            elif reason.startswith(NOT_CLAIMED):
                entry.not_claimed.append(name)
            elif not reason.startswith(CLAIMED):
                entry.limits.append(f"{name}: {reason}")
        elif report.when == "call":
            (entry.refused if check == "refusal" else entry.passed).append(name)

    def providers(self) -> list[str]:
        return sorted(self.rows)

    def matrix(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Provider -> row -> ``{"status", "passed", "failed", "limits"}``, rows in :data:`ROWS` order."""
        table: dict[str, dict[str, dict[str, Any]]] = {}
        for provider, rows in sorted(self.rows.items()):
            table[provider] = {}
            for name in sorted(rows, key=lambda row: ROWS.index(row) if row in ROWS else len(ROWS)):
                row = rows[name]
                table[provider][name] = {
                    "status": row.status(),
                    "passed": len(row.passed) + len(row.refused),
                    "failed": sorted(set(row.failed)),
                    "limits": sorted(set(row.limits)),
                }
        return table


def render_json(table: dict[str, Any]) -> str:
    return json.dumps(table, indent=2, ensure_ascii=False) + "\n"


def _rows(table: dict[str, Any]) -> list[str]:
    present = {row for rows in table.values() for row in rows}
    return [row for row in ROWS if row in present] + sorted(present - set(ROWS))


def _cell(entry: dict[str, Any] | None) -> str:
    if entry is None:
        return ""
    status = entry["status"]
    text = f"{SYMBOLS[status]} {status}"
    if status == PASSED and entry["limits"]:
        text += f" ({len(entry['limits'])} not shown)"
    return text


def render_markdown(table: dict[str, Any]) -> str:
    """The matrix as a Markdown table (providers as columns), then what each failure and limit was."""
    providers = list(table)
    lines = [
        "| capability | " + " | ".join(f"`{p}`" for p in providers) + " |",
        "| --- |" + " --- |" * len(providers),
    ]
    for row in _rows(table):
        cells = [_cell(table[p].get(row)) for p in providers]
        lines.append(f"| `{row}` | " + " | ".join(cells) + " |")
    notes = [
        f"- `{provider}`, `{row}`: {kind} {item}"
        for provider in providers
        for row, entry in table[provider].items()
        for kind, items in (("failed:", entry["failed"]), ("not shown:", entry["limits"]))
        for item in items
    ]
    return "\n".join(lines + (["", *notes] if notes else [])) + "\n"


def render_text(table: dict[str, Any]) -> str:
    """The matrix for a terminal."""
    providers = list(table)
    width = max(len(row) for row in _rows(table)) + 2
    columns = [max(len(p), 28) for p in providers]
    lines = ["".ljust(width) + "".join(p.ljust(c + 2) for p, c in zip(providers, columns, strict=True))]
    for row in _rows(table):
        cells = [_cell(table[p].get(row)).ljust(c + 2) for p, c in zip(providers, columns, strict=True)]
        lines.append(row.ljust(width) + "".join(cells))
    for provider in providers:
        for row, entry in table[provider].items():
            lines += [f"{provider} {row}: failed {name}" for name in entry["failed"]]
            lines += [f"{provider} {row}: not shown, {note}" for note in entry["limits"]]
    return "\n".join(lines)
