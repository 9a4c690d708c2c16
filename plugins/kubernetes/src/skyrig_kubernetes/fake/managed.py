"""``metadata.managedFields``: who owns which field, for the FAKE Kubernetes API server
(:mod:`skyrig_kubernetes.fake`).

The rules are structured-merge-diff's, as the API server applies them:

- an Update (create, replace, patch) gives its manager the fields it changed and takes them from every
  other manager, never conflicting; fields it removed leave every manager;
- an Apply owns exactly the fields of its configuration: a field another manager owns with a different
  value is a conflict (409, one cause per field) unless forced, which takes the field from that manager;
  the same value is shared ownership; a field the applier owned before and now omits is removed from the
  object, unless another manager still owns it (or something beneath it).

Entries are one per (manager, operation, apiVersion, subresource); an entry left without fields is dropped.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from skyrig_kubernetes.fake import errors, fields
from skyrig_kubernetes.fake.fields import Path
from skyrig_kubernetes.fake.merge import apply_merge
from skyrig_kubernetes.fake.schema import Schema


@dataclass
class Entry:
    """One ``managedFields`` entry."""

    manager: str
    operation: str
    api_version: str
    time: str
    paths: set[Path] = field(default_factory=set)
    subresource: str = ""

    def same_owner(self, manager: str, operation: str, subresource: str) -> bool:
        """Whether this entry is the one of ``manager``'s ``operation`` on ``subresource``."""
        return (self.manager, self.operation, self.subresource) == (manager, operation, subresource)

    def as_dict(self) -> dict[str, Any]:
        """The entry as the server serialises it."""
        out: dict[str, Any] = {
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": fields.encode(self.paths),
        }
        if self.subresource:
            out["subresource"] = self.subresource
        return out


def read(obj: dict[str, Any]) -> list[Entry]:
    """The entries stored on ``obj``."""
    entries = []
    for raw in (obj.get("metadata") or {}).get("managedFields") or []:
        entries.append(
            Entry(
                manager=raw.get("manager", ""),
                operation=raw.get("operation", "Update"),
                api_version=raw.get("apiVersion", ""),
                time=raw.get("time", ""),
                paths=fields.decode(raw.get("fieldsV1") or {}),
                subresource=raw.get("subresource", ""),
            )
        )
    return entries


def write(obj: dict[str, Any], entries: list[Entry]) -> None:
    """Stores ``entries`` on ``obj`` (none: no ``managedFields``)."""
    metadata = obj.setdefault("metadata", {})
    kept = [entry.as_dict() for entry in entries if entry.paths]
    if kept:
        metadata["managedFields"] = kept
    else:
        metadata.pop("managedFields", None)


def _entry(
    entries: list[Entry], manager: str, operation: str, api_version: str, now: str, subresource: str
) -> Entry:
    for entry in entries:
        if entry.same_owner(manager, operation, subresource):
            entry.api_version = api_version
            return entry
    entry = Entry(manager, operation, api_version, now, subresource=subresource)
    entries.append(entry)
    return entry


def _tracked(
    schema: Schema, root: dict[str, Any], obj: dict[str, Any], subresource: str, status_subresource: bool
) -> dict[Path, Any]:
    walked = fields.walk(schema, root, fields.trackable(obj, status=True))
    if subresource == "status":
        return {path: value for path, value in walked.items() if path[0] == ("f", "status")}
    if status_subresource:
        return {path: value for path, value in walked.items() if path[0] != ("f", "status")}
    return walked


def record_update(
    schema: Schema,
    root: dict[str, Any],
    before: dict[str, Any] | None,
    after: dict[str, Any],
    *,
    manager: str,
    api_version: str,
    now: str,
    subresource: str = "",
    status_subresource: bool = False,
) -> None:
    """Sets ``after``'s managedFields for an Update by ``manager`` that turned ``before`` into ``after``."""
    entries = read(before) if before else []
    old = _tracked(schema, root, before or {}, subresource, status_subresource)
    new = _tracked(schema, root, after, subresource, status_subresource)
    modified = fields.changed(old, new)
    removed = set(old) - set(new)
    for entry in entries:
        entry.paths -= removed | modified
    if modified:
        mine = _entry(entries, manager, "Update", api_version, now, subresource)
        mine.paths |= modified
        mine.time = now
    _prune(schema, root, after, entries)
    write(after, [entry for entry in entries if entry.paths])


def apply(
    schema: Schema,
    root: dict[str, Any],
    live: dict[str, Any],
    config: dict[str, Any],
    *,
    manager: str,
    api_version: str,
    now: str,
    force: bool,
    subresource: str = "",
    status_subresource: bool = False,
) -> dict[str, Any]:
    """The object after ``manager`` applies ``config`` to ``live``, its managedFields set; raises 409
    Conflict for fields other managers own with other values, unless ``force``."""
    entries = read(live)
    repeated = fields.duplicates(schema, root, fields.trackable(config, status=True))
    if repeated:
        raise errors.ApiError(
            422,
            "Invalid",
            "failed to create typed patch object: "
            + ", ".join(f"{fields.describe(path)}: duplicate entries for key" for path in repeated),
        )
    applied = set(_tracked(schema, root, config, subresource, status_subresource))
    tracked_config = fields.trackable(config, status=subresource == "status" or not status_subresource)
    if subresource == "status":
        tracked_config = {"status": tracked_config.get("status", {})}
    merged = apply_merge(schema, root, copy.deepcopy(live), tracked_config)
    before = _tracked(schema, root, live, subresource, status_subresource)
    after = _tracked(schema, root, merged, subresource, status_subresource)
    modified = fields.changed(before, after) & applied
    conflicts: dict[Path, list[Entry]] = {}
    for entry in entries:
        if entry.same_owner(manager, "Apply", subresource):
            continue
        for path in entry.paths & modified:
            conflicts.setdefault(path, []).append(entry)
    if conflicts and not force:
        raise _conflict(conflicts)
    for owners in conflicts.values():
        for entry in owners:
            entry.paths -= set(conflicts)
    mine = _entry(entries, manager, "Apply", api_version, now, subresource)
    others: set[Path] = set()
    for entry in entries:
        if entry is not mine:
            others |= entry.paths
    removed: list[Path] = []
    for path in sorted(mine.paths - applied, key=len):
        if any(path[: len(done)] == done for done in removed):
            continue
        if path in others or any(other[: len(path)] == path for other in others):
            continue
        fields.remove(schema, root, merged, path)
        removed.append(path)
    if mine.paths != applied or modified:
        mine.time = now
    mine.paths = applied
    _prune(schema, root, merged, entries)
    write(merged, [entry for entry in entries if entry.paths])
    return merged


def _prune(schema: Schema, root: dict[str, Any], obj: dict[str, Any], entries: list[Entry]) -> None:
    present = set(fields.walk(schema, root, fields.trackable(obj, status=True)))
    for entry in entries:
        entry.paths &= present


def _conflict(conflicts: dict[Path, list[Entry]]) -> errors.ApiError:
    causes = []
    by_owner: dict[str, list[str]] = {}
    for path in sorted(conflicts):
        for entry in conflicts[path]:
            owner = f'"{entry.manager}" using {entry.api_version}'
            causes.append(
                errors.cause(fields.describe(path), f"conflict with {owner}", "FieldManagerConflict")
            )
            by_owner.setdefault(owner, []).append(fields.describe(path))
    count = len(causes)
    parts = []
    for owner, paths in by_owner.items():
        if len(paths) == 1:
            parts.append(f"conflict with {owner}: {paths[0]}")
        else:
            parts.append(f"conflicts with {owner}:\n" + "\n".join(f"- {path}" for path in paths))
    message = f"Apply failed with {count} conflict{'s' if count > 1 else ''}: " + "\n".join(parts)
    return errors.ApiError(409, "Conflict", message, causes=causes)
