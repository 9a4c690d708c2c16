"""Robustness: a crash at the worst moment, then a re-apply, leaves no duplicate and no orphan; nor does
an apply that finds intents for nodes it has no record of (with or without what they were creating), nor
an apply, or ``skyrig state recover``, after state was lost."""

from __future__ import annotations

from typing import Any

from skyrig_conformance import requirements as needs
from skyrig_conformance.deployment import MAIN, Deployment
from skyrig_conformance.plugin import Suite
from skyrig_conformance.suite.lifecycle import _orphans

CRASH_EXIT = 137


def _intents(deployment: Deployment, *, forget: bool) -> list[str]:
    """Leave an intent for every node of the provider under test, as an apply killed right after writing
    them would; with ``forget``, drop their records first: created, and never recorded. Written under
    the environment's lease, as the engine writes them. Returns the node types they cover."""
    provider = deployment.profile.provider
    with deployment.session() as session:
        graph = session.graph
        nodes = [graph.nodes[node_id] for node_id in graph.order if graph.nodes[node_id].provider == provider]
        context = session.context(provider)
        with session.locked() as fence:
            for node in nodes:
                if forget:
                    session.store.forget(MAIN, fence, node.id)
                session.store.add_intent(MAIN, fence, node.id, "create", context.token(node))
    assert nodes, f"the graph has no node of provider {provider!r}"
    return sorted({node.type for node in nodes})


def _lose_state(deployment: Deployment) -> None:
    """Delete the state database, as a person who removed ``.skyrig/state.db`` did."""
    with deployment.session() as session:
        path = getattr(session.store, "path", None)
    assert path is not None and path.exists(), "the suite's app keeps its state in a SQLite file"
    for suffix in ("", "-wal", "-shm", "-journal"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    assert not deployment.has_state(MAIN)


def _ids(deployment: Deployment) -> dict[str, str]:
    return {node: record.provider_id for node, record in deployment.recorded().items()}


def _converged(deployment: Deployment, what: str, before: dict[str, Any] | None = None) -> None:
    """No duplicate and no orphan in the backend, nothing pending, the re-plan empty; with ``before``, the
    provider's nodes are recorded as the very resources they were."""
    orphans, twice = _orphans(deployment)
    assert not orphans, f"{what}: the backend holds resources state does not record (duplicates): {orphans}"
    assert not twice, f"{what}: the backend holds these twice: {twice}"
    with deployment.session() as session:
        pending = session.store.intents(MAIN)
    assert pending == {}, f"{what}: intents left behind: {pending}"
    assert deployment.changes(deployment.plan()) == [], f"{what}: the plan afterwards is not empty"
    if before is not None:
        after = _ids(deployment)
        moved = {node: (before.get(node), pid) for node, pid in after.items() if before.get(node) != pid}
        assert not moved, f"{what}: nodes now recorded as other resources than before (made again): {moved}"


class TestRobustness(Suite):
    """Crash, re-apply, converge."""

    @needs.area("robustness")
    def test_a_crash_between_a_create_and_its_record_then_a_reapply_makes_no_duplicate(self, fresh):
        # SKYRIG_CRASH_AFTER_CREATE=N: the engine exits hard right after the Nth create call returned and
        # before it recorded the node: the resource exists in the backend, state does not know it.
        # A crashed apply's lock lives on until its lease expires: short leases, and wait for them.
        for crash_after in (1, 3):
            crash = {"SKYRIG_CRASH_AFTER_CREATE": str(crash_after), "SKYRIG_LOCK_TTL": "1"}
            crashed = fresh.process("apply", "--env", MAIN, "--yes", "--wait", environ=crash)
            if crashed.returncode == 0:
                break  # fewer creates than that: nothing left to crash on
            assert crashed.returncode == CRASH_EXIT, f"the apply did not crash as asked:\n{crashed.stderr}"
        fresh.ok("apply", "--env", MAIN, "--yes", "--wait")
        orphans, twice = _orphans(fresh)
        assert not orphans, f"the re-apply left resources state does not record (duplicates): {orphans}"
        assert not twice, f"the backend holds these twice: {twice}"
        assert fresh.changes(fresh.plan()) == [], "the plan after the re-apply is not empty"
        fresh.destroy()
        assert fresh.inventory() == [], "destroy after a crash left resources behind"

    @needs.area("robustness")
    def test_a_reapply_changes_nothing(self, fresh):
        fresh.apply()
        recorded = {k: (r.provider_id, r.observed) for k, r in fresh.recorded().items()}
        again = fresh.apply()
        assert "nothing to do" in again.text, again.text
        assert {k: (r.provider_id, r.observed) for k, r in fresh.recorded().items()} == recorded

    @needs.area("robustness")
    def test_an_intent_with_nothing_created_then_an_apply_converges(self, fresh):
        # a kill right after the engine wrote the intents and before any cloud call: every node type's
        # lookup must answer "not found" (never an error) with nothing there, its dependencies included
        types = _intents(fresh, forget=False)
        result = fresh.cli("apply", "--env", MAIN, "--yes")
        assert result.code == 0, f"an apply after intents with nothing made failed ({types}):\n{result.text}"
        _converged(fresh, "intents with nothing made")
        fresh.destroy()
        assert fresh.inventory() == [], "destroy left resources behind"

    @needs.area("robustness")
    def test_an_intent_whose_resource_was_made_and_not_recorded_is_adopted(self, fresh):
        # a kill right after each create returned and before its record: found by its identity, adopted
        fresh.apply()
        before = _ids(fresh)
        types = _intents(fresh, forget=True)
        result = fresh.cli("apply", "--env", MAIN, "--yes")
        assert result.code == 0, f"an apply after unrecorded creates failed ({types}):\n{result.text}"
        assert "adopted" in result.text, result.text
        _converged(fresh, "created, not recorded", before)

    @needs.area("robustness")
    def test_an_apply_after_state_was_lost_makes_no_duplicate(self, fresh):
        fresh.apply()
        before = _ids(fresh)
        _lose_state(fresh)
        result = fresh.cli("apply", "--env", MAIN, "--yes")
        assert result.code == 0, f"an apply after state was lost failed:\n{result.text}"
        _converged(fresh, "state lost, then an apply", before)

    @needs.area("robustness")
    def test_state_recover_rebuilds_lost_state_from_the_backend(self, fresh):
        fresh.apply()
        before = _ids(fresh)
        _lose_state(fresh)
        recovered = fresh.ok("state", "recover", "--env", MAIN)
        assert "adopted" in recovered.out, recovered.text
        assert _ids(fresh) == before, "recover did not record each node as the resource it was"
        _converged(fresh, "state lost, then recovered", before)
        again = fresh.cli("state", "recover", "--env", MAIN)
        assert again.code != 0 and "not empty" in again.text, "recover must refuse state that is there"
        forced = fresh.ok("state", "recover", "--env", MAIN, "--force")
        assert "kept" in forced.out, forced.text
        assert _ids(fresh) == before
