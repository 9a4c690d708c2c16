"""Faults, many and at once: kills at every step boundary and at random instants, lost state, corrupt
state. After each, the environment converges: the next apply succeeds, the plan afterwards is empty, and
the backend holds every node once, nothing state does not record.

Reproducible: the random instants come from ``SKYRIG_FAULT_SEED`` (printed in every failure);
``SKYRIG_FAULT_KILLS`` sets how many random kills (4 by default). ``SKYRIG_FAULT_REPORT=FILE`` writes the
tally (trials, converged, duplicates, orphans) as JSON, for ``docs/engine.md``.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pytest

from skyrig_conformance import requirements as needs
from skyrig_conformance.deployment import MAIN, Deployment
from skyrig_conformance.plugin import Suite
from skyrig_conformance.suite.lifecycle import _orphans
from skyrig_conformance.suite.robustness import CRASH_EXIT, _lose_state

SEED = "SKYRIG_FAULT_SEED"
KILLS = "SKYRIG_FAULT_KILLS"
REPORT = "SKYRIG_FAULT_REPORT"
SHORT_LEASE = {"SKYRIG_LOCK_TTL": "1"}
"""A killed apply's lease outlives it by this much; the next apply waits for it (``--wait``)."""
MOST_BOUNDARIES = 200
"""A bound on the step-boundary chain: an apply that never finishes is a failure, not a hang."""


@dataclass
class Tally:
    """What the faults did, and what the checks after each found."""

    provider: str
    seed: int
    trials: dict[str, int] = field(default_factory=dict)
    converged: int = 0
    duplicates: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def check(self, deployment: Deployment, fault: str, environment: str = MAIN, trials: int = 1) -> None:
        """Count ``trials`` of ``fault``; then apply ``environment`` (waiting out a killed holder's
        lease) and check that it converged."""
        self.trials[fault] = self.trials.get(fault, 0) + trials
        applied = deployment.process("apply", "--env", environment, "--yes", "--wait", environ=SHORT_LEASE)
        if applied.returncode != 0:
            self.failures.append(f"{fault}: the next apply failed:\n{applied.stderr[-2000:]}")
            return
        orphans, twice = _orphans(deployment, environment)
        self.orphans += [f"{fault}: {item}" for item in orphans]
        self.duplicates += [f"{fault}: {item}" for item in twice]
        left = deployment.changes(deployment.plan(environment))
        if left:
            self.failures.append(f"{fault}: the plan afterwards is not empty: {left}")
        if not (orphans or twice or left):
            self.converged += trials

    def check_destroyed(self, deployment: Deployment, fault: str, environment: str) -> None:
        """Count one ``fault`` of a destroy; then destroy ``environment`` again and check that nothing of
        it is left, in the backend or in state."""
        self.trials[fault] = self.trials.get(fault, 0) + 1
        destroyed = deployment.process(
            "destroy", "--env", environment, "--yes", "--include-data", "--wait", environ=SHORT_LEASE
        )
        if destroyed.returncode != 0:
            self.failures.append(f"{fault}: the next destroy failed:\n{destroyed.stderr[-2000:]}")
            return
        left = deployment.inventory(environment)
        self.orphans += [f"{fault}: {item}" for item in left]
        recorded = sorted(deployment.recorded(environment))
        if recorded:
            self.failures.append(f"{fault}: state still records {recorded}")
        if not (left or recorded):
            self.converged += 1

    def verdict(self) -> str:
        problems = [
            *self.failures,
            *(f"twice: {d}" for d in self.duplicates),
            *(f"orphan: {o}" for o in self.orphans),
        ]
        return "; ".join(problems)


def _kill_at_random(
    deployment: Deployment, rng: random.Random, within: float, environment: str, *args: str
) -> None:
    """Start ``skyrig ARGS --env ENVIRONMENT`` and SIGKILL it at a random instant within ``within``
    seconds."""
    running = deployment.start(*args, "--env", environment, "--yes", "--wait", environ=SHORT_LEASE)
    time.sleep(rng.uniform(0.0, within))
    running.send_signal(signal.SIGKILL)
    deployment.finished(running, timeout=60)


class TestFaults(Suite):
    """Kills at every step and at random, lost state, corrupt state: always converging."""

    @pytest.mark.slow
    @needs.area("robustness")
    def test_kills_lost_state_and_corrupt_state_all_converge(self, fresh):
        seed = int(os.environ.get(SEED, "1206"))
        rng = random.Random(seed)
        tally = Tally(fresh.profile.provider, seed)

        # Every step boundary of a first apply: each apply exits hard right after one create call and
        # before recording it, so the next adopts that one, creates the next, and so on to the end.
        boundaries = 0
        while boundaries < MOST_BOUNDARIES:
            crash = {**SHORT_LEASE, "SKYRIG_CRASH_AFTER_CREATE": "1"}
            step = fresh.process("apply", "--env", MAIN, "--yes", "--wait", environ=crash)
            if step.returncode == 0:
                break
            assert step.returncode == CRASH_EXIT, (
                f"seed {seed}: the apply did not crash as asked:\n{step.stderr}"
            )
            boundaries += 1
        tally.check(fresh, "killed after each create, before its record", trials=boundaries)

        # Random instants: of a whole apply from nothing, each in an environment of its own (a backend
        # may not give a name back at once after a destroy), and of a destroy.
        kills = int(os.environ.get(KILLS, "4"))
        timed, *killed = (f"fault-{index}" for index in range(kills + 1))
        fresh.add_environments(timed, *killed)
        started = time.monotonic()
        fresh.apply(timed)
        whole = time.monotonic() - started
        for environment in killed:
            _kill_at_random(fresh, rng, whole, environment, "apply")
            tally.check(fresh, "apply killed at a random instant", environment)
        _kill_at_random(fresh, rng, whole, timed, "destroy", "--include-data")
        tally.check_destroyed(fresh, "destroy killed at a random instant", timed)

        # State lost: the next apply adopts what the backend holds.
        _lose_state(fresh)
        tally.check(fresh, "state deleted")

        # State corrupt: refused with a clear error; moved aside as the error says, then recovered.
        with fresh.session() as session:
            path = Path(session.store.path)
        path.write_bytes(b"not a database " * 64)
        refused = fresh.process("apply", "--env", MAIN, "--yes")
        assert refused.returncode == 1 and "Traceback" not in refused.stderr, (
            f"seed {seed}: a corrupt state file is not refused cleanly:\n{refused.stderr}"
        )
        assert "state recover" in refused.stderr, (
            f"the refusal does not say how to recover:\n{refused.stderr}"
        )
        path.rename(path.with_name(path.name + ".corrupt"))
        recovered = fresh.process("state", "recover", "--env", MAIN)
        assert recovered.returncode == 0, f"seed {seed}: state recover failed:\n{recovered.stderr}"
        tally.check(fresh, "state corrupt, moved aside and recovered")

        if report := os.environ.get(REPORT):
            with Path(report).open("a") as out:
                out.write(json.dumps(asdict(tally) | {"total": sum(tally.trials.values())}) + "\n")
        assert not tally.verdict(), f"seed {seed} ({SEED}={seed} reproduces it): {tally.verdict()}"
        fresh.destroy()
        assert fresh.inventory() == [], "destroy after the faults left resources behind"
