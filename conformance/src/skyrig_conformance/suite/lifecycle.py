"""Lifecycle, from terraform-plugin-testing's invariants: apply converges, the next plan is empty, what was
created reads back as asked, changes are applied in place or replace with a reason, destroy leaves nothing
in the backend, and two environments of one app never collide."""

from __future__ import annotations

from typing import Any

from skyrig_conformance import requirements as needs
from skyrig_conformance.app import ENVIRONMENTS, edit
from skyrig_conformance.deployment import MAIN, Deployment
from skyrig_conformance.plugin import Suite

OTHER = ENVIRONMENTS[1]


def _orphans(deployment: Deployment, environment: str = MAIN) -> tuple[list[Any], list[Any]]:
    """What the backend holds that state does not record, and what it holds twice, as
    ``(node type, provider id)``."""
    recorded = {(r.type, r.provider_id) for r in deployment.recorded(environment).values()}
    held = deployment.inventory(environment)
    orphans = [item for item in held if item not in recorded]
    twice = sorted({item for item in held if held.count(item) > 1})
    return orphans, twice


class TestLifecycle(Suite):
    """Plan, apply, read back, change, destroy."""

    @needs.area("lifecycle")
    def test_apply_converges_and_the_next_plan_is_empty_with_and_without_refresh(self, deployment):
        for refresh in (True, False):
            plan = deployment.plan(refresh=refresh)
            assert deployment.changes(plan) == [], (
                f"the plan right after apply ({'with' if refresh else 'without'} refresh) is not empty: "
                f"{deployment.changes(plan)}"
            )
        again = deployment.apply()
        assert "nothing to do" in again.text, f"a second apply found something to do:\n{again.text}"

    @needs.area("lifecycle")
    def test_what_was_created_reads_back_as_asked(self, deployment):
        problems = []
        with deployment.session() as session:
            context = session.context(deployment.profile.provider)
            provider = deployment.profile.provider
            records = {k: r for k, r in session.store.nodes(MAIN).items() if r.provider == provider}
            assert records, "apply recorded no node of the provider under test"
            for node_id, record in sorted(records.items()):
                node = record.node()
                observed = session.types[record.type].read(context, node, record.provider_id)
                if observed is None:
                    problems.append(f"{node_id}: the backend has no {record.provider_id!r}")
                    continue
                ignored = deployment.profile.ignore.get(record.type, frozenset())
                for key, wanted in record.desired.items():
                    if key in ignored or key not in observed.properties:
                        continue
                    if observed.properties[key] != wanted:
                        problems.append(
                            f"{node_id}: {key} asked {wanted!r}, read back {observed.properties[key]!r}"
                        )
        assert not problems, "read back differs from what was asked:\n" + "\n".join(problems)

    @needs.area("lifecycle")
    def test_a_change_in_code_is_applied_in_place_or_replaces_with_a_reason(self, fresh):
        fresh.apply()
        edits = _edit(fresh)
        if not edits:
            return
        changes = fresh.changes(fresh.plan())
        assert changes, f"these changes in code changed nothing in the plan: {edits}"
        for change in changes:
            assert change["action"] in ("update", "replace", "create"), change
            if change["action"] == "update":
                assert change["fields"] or change["drift"], f"{change['node']}: an update that names no field"
            if change["action"] == "replace":
                assert change["reasons"], f"{change['node']}: a replacement must say why"
        fresh.apply()
        assert fresh.changes(fresh.plan()) == [], "the plan after applying the change is not empty"

    @needs.area("lifecycle")
    def test_destroy_leaves_nothing_in_the_backend(self, fresh):
        fresh.apply()
        orphans, twice = _orphans(fresh)
        assert not orphans and not twice, f"orphans {orphans}, held twice {twice}"
        fresh.destroy()
        assert fresh.inventory() == [], "destroy --include-data left this in the backend"
        assert fresh.recorded() == {}, "destroy left nodes in state"

    @needs.area("lifecycle")
    def test_two_environments_of_one_app_never_collide(self, fresh):
        fresh.apply(MAIN)
        before = fresh.inventory(MAIN)
        fresh.apply(OTHER)
        assert fresh.inventory(MAIN) == before, "applying another environment changed this one's resources"
        assert fresh.inventory(OTHER), "the second environment holds nothing in the backend"
        fresh.destroy(OTHER)
        assert fresh.inventory(OTHER) == []
        assert fresh.inventory(MAIN) == before, "destroying one environment touched the other's resources"
        with fresh.session(MAIN) as session:
            context = session.context(fresh.profile.provider)
            for record in fresh.recorded(MAIN).values():
                node = record.node()
                found = session.types[record.type].read(context, node, record.provider_id)
                assert found is not None, f"{record.id} of {MAIN} went with the other environment"
        assert fresh.changes(fresh.plan(MAIN)) == [], "the other environment's destroy left work to do here"

    @needs.area("lifecycle")
    def test_naming_is_stable_per_environment(self, fresh):
        first = fresh.ok("graph", "--env", MAIN, "--format", "json").out
        assert fresh.ok("graph", "--env", MAIN, "--format", "json").out == first, (
            "expansion is not deterministic"
        )
        needs.limited(fresh.profile, "lifecycle.recreate_after_destroy")
        fresh.apply()
        before = {k: r.provider_id for k, r in fresh.recorded().items()}
        fresh.destroy()
        fresh.apply()
        after = {k: r.provider_id for k, r in fresh.recorded().items()}
        assert before.keys() == after.keys()
        named = {k for k in before if before[k] == after[k]}
        renamed = {k: (before[k], after[k]) for k in before if k not in named}
        # ids a backend assigns (a row id, a generated suffix) may change; names skyrig gives must not.
        # A row id may equal a number among the settings (a version "18"): a name is never all digits.
        with fresh.session() as session:
            desired = {k: r.desired for k, r in session.store.nodes(MAIN).items()}
        for node, (old, new) in renamed.items():
            if old.isdigit():
                continue
            assert old not in _values(desired[node]), f"{node}: its name {old!r} became {new!r}"


def _values(data: Any) -> set[str]:
    """Every string value in ``data`` (nested dicts and lists too)."""
    if isinstance(data, dict):
        return set().union(*(_values(value) for value in data.values())) if data else set()
    if isinstance(data, (list, tuple)):
        return set().union(*(_values(value) for value in data)) if data else set()
    return {data} if isinstance(data, str) else set()


def _edit(deployment: Deployment) -> list[str]:
    """Make the changes a developer makes to the declarations of the kinds the provider claims; say
    which."""
    c = deployment.capabilities
    edits = []
    if c.pubsub:
        edits.append(('ack_deadline="30s", max_concurrency=10', 'ack_deadline="45s", max_concurrency=20'))
        if c.dead_letter:
            edits.append(
                ('"doomed", handler=handle, max_retries=2', '"doomed", handler=handle, max_retries=3')
            )
    if c.cache and c.eviction:
        edits.append(('eviction_policy="volatile-lru"', 'eviction_policy="volatile-ttl"'))
    if c.bucket and c.versioning:
        edits.append(('Bucket("files")', 'Bucket("files", versioned=True)'))
    if c.cron:
        edits.append(('every="1h"', 'every="2h"'))
    for old, new in edits:
        edit(deployment.root, old, new)
    made = [f"{old} -> {new}" for old, new in edits]
    if c.sql:
        migration = deployment.root / "alpha" / "migrations" / "0003_memo.up.sql"
        migration.write_text("ALTER TABLE entries ADD COLUMN memo text;\n")
        made.append("a new migration 0003_memo")
    return made
