"""Robustness: a crash at the worst moment, then a re-apply, leaves no duplicate and no orphan."""

from __future__ import annotations

from skyrig_conformance import requirements as needs
from skyrig_conformance.deployment import MAIN
from skyrig_conformance.plugin import Suite
from skyrig_conformance.suite.lifecycle import _orphans

CRASH_EXIT = 137


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
