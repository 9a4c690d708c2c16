"""The store suite's tests across processes: processes racing for the lease, and writers killed at any
instant (:mod:`skyrig.state.suite.child` is the other process)."""

from __future__ import annotations

import dataclasses
import queue
import subprocess
import sys
import threading
import time

import pytest

from skyrig.state import LeaseLost, Locked
from skyrig.state.suite.base import ENV, StoreFactory, StoreTests, record
from skyrig.state.suite.child import WHOLE, counter_record, node_record, whole_record


def _spawn(factory: StoreFactory, role: str, env: str, *args: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "skyrig.state.suite.child", role, factory.url, str(factory.root), env]
        + [str(a) for a in args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


class _Lines:
    """A child's stdout, line by line, read in a thread so that waiting for a line has a timeout."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.endswith("\n"):  # a line cut short by a kill was not said
                self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def next(self, timeout: float = 30) -> str:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no line from the child within {timeout} s; {self.stderr()}") from None
        if line is None:
            raise AssertionError(f"the child ended early; {self.stderr()}")
        self.seen.append(line)
        return line

    def rest(self) -> list[str]:
        """Every line the child said until it ended (after a kill)."""
        self._reader.join(timeout=30)
        while (line := self.lines.get(timeout=30)) is not None:
            self.seen.append(line)
        return self.seen

    def stderr(self) -> str:
        if self.process.poll() is None:
            return "it is still running"
        assert self.process.stderr is not None
        return f"exit {self.process.returncode}, stderr:\n{self.process.stderr.read()}"


def _killed(process: subprocess.Popen[str]) -> None:
    process.kill()  # kill -9: no cleanup, no release, no flush
    process.wait(timeout=30)


class TestLeaseAcrossProcesses(StoreTests):
    def test_of_processes_taking_the_lease_at_once_exactly_one_wins(self, store_factory, tmp_path):
        go = tmp_path / "go"
        children = [_spawn(store_factory, "race", ENV, go) for _ in range(4)]
        try:
            outputs = [_Lines(child) for child in children]
            assert [output.next() for output in outputs] == ["ready"] * 4
            go.touch()
            answers = sorted(output.next() for output in outputs)
        finally:
            for child in children:
                _killed(child)
        assert answers[:3] == ["locked"] * 3 and answers[3].startswith("won "), answers

    def test_processes_contending_for_the_lease_never_write_at_once(self, store_factory, open_handle):
        rounds, processes = 5, 3
        children = [_spawn(store_factory, "count", ENV, rounds) for _ in range(processes)]
        try:
            fences = []
            for child in children:
                output = _Lines(child)
                fences += [int(output.next().split()[1]) for _ in range(rounds)]
                assert child.wait(timeout=60) == 0, output.stderr()
        finally:
            for child in children:
                _killed(child)
        assert len(set(fences)) == rounds * processes, f"two holders got the same fence: {sorted(fences)}"
        counter = open_handle().nodes(ENV)["counter"]
        assert counter.desired == {"count": rounds * processes}, "an increment was lost: two held the lease"
        assert counter == dataclasses.replace(
            counter_record(rounds * processes), updated_at=counter.updated_at
        )

    def test_the_lease_of_a_killed_process_expires_by_itself(self, store_factory, open_handle):
        child = _spawn(store_factory, "hold", ENV, store_factory.ttl * 2)
        try:
            dead = int(_Lines(child).next().split()[1])
        finally:
            _killed(child)
        store = open_handle()
        with pytest.raises(Locked, match=f"pid {child.pid}"):
            store.acquire(ENV, "next", ttl=30)
        time.sleep(store_factory.ttl * 2 + 0.1)
        assert store.acquire(ENV, "next", ttl=30) > dead, "nobody has to unlock after a crash"
        with pytest.raises(LeaseLost):
            store.record(ENV, dead, record())


class TestCrashRecovery(StoreTests):
    SIZE = 64 * 1024
    """Bytes of the payload of the node rewritten again and again: a write long enough to be killed in."""

    def test_a_writer_killed_at_any_moment_leaves_whole_records_and_loses_nothing_it_wrote(
        self, store_factory, open_handle
    ):
        for attempt, lines_before_kill in enumerate((1, 5, 10, 24, 41)):
            env = f"crash-{attempt}"
            child = _spawn(store_factory, "write", env, self.SIZE)
            try:
                output = _Lines(child)
                for _ in range(lines_before_kill):
                    output.next()
            finally:
                _killed(child)  # meanwhile the child kept writing: the kill lands anywhere
            said = output.rest()
            store = open_handle()
            nodes, intents = store.nodes(env), store.intents(env)
            where = f"killed after {said[-1]!r}"
            for line in said:
                step, number = line.split()[0], int(line.split()[1])
                if step == "I":
                    assert f"node-{number}" in nodes or f"node-{number}" in intents, f"intent lost, {where}"
                if step == "R":
                    assert f"node-{number}" in nodes, f"node-{number} lost, {where}"
            for node_id, found in nodes.items():
                version = found.desired.get("version") if node_id == WHOLE else int(node_id.split("-")[1])
                assert isinstance(version, int), f"{node_id} is torn, {where}: {found}"
                expected = whole_record(version, self.SIZE) if node_id == WHOLE else node_record(version)
                assert dataclasses.replace(found, updated_at=0.0) == expected, f"{node_id} is torn, {where}"
            rewritten = [int(line.split()[1]) for line in said if line.startswith("W ")]
            if rewritten:
                assert nodes[WHOLE].desired["version"] >= rewritten[-1], f"a rewrite was lost, {where}"
            assert not set(intents) & set(nodes), f"recorded, yet their intents remain, {where}"

    def test_an_intent_outlives_a_crash_right_after_it(self, store_factory, open_handle):
        child = _spawn(store_factory, "die-after-intent", ENV, "queue.orders")
        output = _Lines(child)
        assert output.next() == "intent"
        assert child.wait(timeout=30) == 137
        store = open_handle()
        assert store.intents(ENV) == {"queue.orders": "create"} and store.nodes(ENV) == {}
