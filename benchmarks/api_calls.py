"""What ``aws_api_calls.py``, ``gcp_api_calls.py`` and ``azure_api_calls.py`` share: counting a provider's
API calls per step of an example app (a first ``skyrig apply``, a no-change ``apply``, a refresh) against
their minimum.

Each provider's script keeps what is its own (how it starts its backends, how it counts its calls, its
minimum per node type, the columns only it has); this module holds the rest: who made a call (the stack
walked to the outermost node-type method), running the CLI in this process on a fresh copy of the app,
the steps and their calls, the floors' bookkeeping and the rich tables. Not a benchmark of its own.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from rich.console import Console
from rich.table import Table

from skyrig.cli import main as skyrig_main

OUTSIDE = "(no node type)"
PROVIDER = "(provider hook)"
DONE = re.compile(r"done: (\d+) change\(s\) in ([\d.]+) s(?:, (\d+) retried call\(s\))?")

FIRST, AGAIN, REFRESH = "first apply", "no-change apply", "refresh (plan)"
"""The steps every run measures, in order, on one copy of the app."""
SERIAL = "first apply, --parallelism 1"
"""The step :func:`measure_runs` adds, on a copy of its own: a first apply, one node at a time."""

Key = tuple[str, str, str, str]
"""(node type, node-type method, API or service, API method or operation)."""

FloorTable = dict[str, tuple[int, int, str]]
"""Node type -> (reads per type, reads per node, which calls): the fewest reads that refresh its nodes."""


@dataclass(frozen=True)
class Provider:
    """What tells one provider's calls apart: its name (``aws``), its node types' base class, how its
    tables name an API method (``operation``, joined to its service by ``.``)."""

    name: str
    node_type: type
    operation: str = "operation"
    joiner: str = "."

    def short(self, node_type: str) -> str:
        """A node type without the provider's prefix."""
        return node_type.removeprefix(f"{self.name}.")

    def call(self, service: str, operation: str) -> str:
        """An API method as the tables name it (``sqs.CreateQueue``, ``run list_services``)."""
        return f"{service}{self.joiner}{operation}"

    def caller(self) -> tuple[str, str, str]:
        """Who makes the call being made (call this from the hook that sees it): the node type, its
        contract method (``create``, ``read_many``...) and the node (when the method has one), from the
        outermost frame whose ``self`` is one of the provider's node types; else the outermost function of
        the provider's package (a provider hook such as ``deliver_runtime``)."""
        frame = sys._getframe(2)
        found = (OUTSIDE, "", "")
        hook = ""
        package = f"skyrig_{self.name}"
        while frame is not None:
            local = frame.f_locals
            owner = local.get("self")
            if isinstance(owner, self.node_type):
                node = getattr(local.get("node"), "id", "")
                found = (owner.type, frame.f_code.co_name, node if isinstance(node, str) else "")
            elif str(frame.f_globals.get("__name__", "")).startswith(package):
                hook = frame.f_code.co_name
            frame = frame.f_back
        return found if found[0] != OUTSIDE or not hook else (PROVIDER, hook, "")


# -- running skyrig -------------------------------------------------------------------------------------


def skyrig(*args: str) -> str:
    """Run ``skyrig ARGS`` in this process; its output (stdout and stderr). Stops the benchmark with that
    output when the command fails."""
    output = io.StringIO()
    code: int | str | None = 0
    with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
        try:
            skyrig_main(list(args))
        except SystemExit as exit_:
            code = exit_.code
    if code not in (0, None):
        raise SystemExit(f"skyrig {' '.join(args)} failed (exit {code}):\n{output.getvalue()}")
    return output.getvalue()


def toml_value(value: Any) -> str:
    """A value as TOML: a scalar (a JSON string is a valid TOML basic string), or a table of strings
    inline."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{key} = {json.dumps(str(v))}" for key, v in value.items()) + " }"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))


@contextlib.contextmanager
def app_copy(source: Path, environment: str, provider: str, settings: Mapping[str, Any]) -> Iterator[Path]:
    """A fresh copy of the app (no state) with ``[env.ENVIRONMENT]`` (type ``development``) of
    ``provider`` with ``settings``."""
    with tempfile.TemporaryDirectory(prefix=f"skyrig-{provider}-bench-") as folder:
        app = Path(folder) / source.name
        shutil.copytree(source, app, ignore=shutil.ignore_patterns(".skyrig", "__pycache__"))
        lines = "\n".join(f"{key} = {toml_value(value)}" for key, value in settings.items())
        with (app / "skyrig.toml").open("a") as toml:
            toml.write(
                f'\n[env.{environment}]\ntype = "development"\nprovider = "{provider}"\n\n'
                f"[env.{environment}.{provider}]\n{lines}\n"
            )
        yield app


def graph(app: Path, environment: str) -> list[dict[str, Any]]:
    """The nodes of the environment's graph (no cloud call; this also fills the app's model cache)."""
    return json.loads(skyrig("graph", "--env", environment, "--format", "json", "-C", str(app)))["nodes"]


def apply(app: Path, environment: str, *options: str) -> Callable[[], str]:
    """``skyrig apply --yes`` of the environment, to run."""
    return lambda: skyrig("apply", "--env", environment, "--yes", *options, "-C", str(app))


def plan(app: Path, environment: str) -> Callable[[], str]:
    """``skyrig plan`` of the environment (a refresh), to run."""
    return lambda: skyrig("plan", "--env", environment, "-C", str(app))


@dataclass
class Outcome:
    """What running one command gave: its wall time, changes and the calls the engine retried."""

    seconds: float
    changes: int
    retries: int


def run(command: Callable[[], str]) -> Outcome:
    """Run ``command`` and time it; the changes and retries its ``done:`` line reports."""
    started = time.perf_counter()
    output = command()
    seconds = time.perf_counter() - started
    done = DONE.search(output)
    return Outcome(
        seconds,
        int(done.group(1)) if done else 0,
        int(done.group(3) or 0) if done else 0,
    )


def measure_steps(
    steps: dict[str, list[Step]],
    app: Path,
    environment: str,
    measure: Callable[[Callable[[], str]], Step],
) -> list[dict[str, Any]]:
    """On a fresh copy of the app, a first apply, a no-change apply and a refresh, each measured and added
    to ``steps``; the nodes of the graph."""
    nodes = graph(app, environment)
    steps[FIRST].append(measure(apply(app, environment)))
    steps[AGAIN].append(measure(apply(app, environment)))
    steps[REFRESH].append(measure(plan(app, environment)))
    return nodes


def measure_runs(
    out: Console,
    runs: int,
    steps: dict[str, list[Step]],
    name: str,
    fresh: Callable[[str], contextlib.AbstractContextManager[Path]],
    measure: Callable[[Callable[[], str]], Step],
) -> list[dict[str, Any]]:
    """``runs`` times, :func:`measure_steps` on a fresh copy of the app (``fresh(environment)``), then a
    first apply with ``--parallelism 1`` (:data:`SERIAL`) on another; each copy has an environment of its
    own (``NAME1``, ``NAME1p``, ...), since backends that are not wiped between runs would keep what an
    earlier one made. The nodes of the graph."""
    nodes: list[dict[str, Any]] = []
    for index in range(runs):
        out.print(f"run {index + 1} of {runs}: first apply, no-change apply, plan", style="dim")
        environment = f"{name}{index + 1}"
        with fresh(environment) as app:
            nodes = measure_steps(steps, app, environment, measure)
        out.print(f"run {index + 1} of {runs}: first apply, --parallelism 1", style="dim")
        environment = f"{name}{index + 1}p"
        with fresh(environment) as app:
            graph(app, environment)
            steps[SERIAL].append(measure(apply(app, environment, "--parallelism", "1")))
    return nodes


def arguments(doc: str | None, operations: str) -> argparse.ArgumentParser:
    """The options both benchmarks take (``--app``, ``--runs``, ``--detail``)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--app", default="examples/shop", help="the example app (copied, never changed)")
    parser.add_argument("--runs", type=int, default=3, help="repetitions of every measurement")
    parser.add_argument("--detail", action="store_true", help=f"list every {operations} of each step")
    return parser


def console() -> Console:
    """A console as wide as the terminal (150 columns when there is none)."""
    return Console(width=shutil.get_terminal_size((150, 40)).columns)


# -- measuring ------------------------------------------------------------------------------------------


@dataclass
class Step:
    """One command: its calls (by :data:`Key`), calls per node, wall time and the calls the engine
    retried. A provider's step adds what it measures besides, and says which calls change something."""

    calls: Counter[Key]
    by_node: Counter[str]
    seconds: float
    retries: int

    is_mutating: ClassVar[Callable[[str], bool]]
    """Whether an API method changes something (the provider's ``api.is_mutating``)."""

    @property
    def total(self) -> int:
        """Every API call of the command."""
        return sum(self.calls.values())

    @property
    def mutating(self) -> int:
        """The API calls of the command that change something."""
        return sum(n for (_, _, _, method), n in self.calls.items() if type(self).is_mutating(method))

    def of_type(self, node_type: str, which: Callable[[str], bool] = lambda _: True) -> int:
        """The calls that nodes of ``node_type`` made, of the API methods ``which`` keeps."""
        return sum(n for (t, _, _, method), n in self.calls.items() if t == node_type and which(method))


@dataclass
class Floors:
    """The graph's node types and the fewest calls each step needs of them: a first apply, one create
    call per node and one lookup per node type (the engine looks up, by its identity, every node state
    does not record before creating it, one ``find_many`` per node type); a refresh, the reads of
    ``table`` (``unknown`` for a type it does not name); a no-change apply, the refresh's and
    :meth:`runtime_reads`."""

    types: Counter[str]
    table: ClassVar[FloorTable]
    unknown: ClassVar[tuple[int, int, str]] = (0, 1, "")

    def type_floor(self, name: str) -> int:
        """The fewest reads that refresh the nodes of type ``name``."""
        count = self.types[name]
        per_type, per_node, _ = self.table.get(name, self.unknown)
        return per_type + per_node * count if count else 0

    def reads(self, name: str) -> str:
        """Which calls make the floor of type ``name``."""
        return self.table.get(name, self.unknown if self.types[name] else (0, 0, ""))[2]

    def refresh(self) -> int:
        """The fewest reads that refresh every node."""
        return sum(self.type_floor(name) for name in self.types)

    def runtime_reads(self) -> int:
        """The fewest reads that tell whether the services' runtime config changed (none unless said)."""
        return 0

    def first_apply(self) -> tuple[int, int]:
        """(calls, mutating calls) of a first apply: a create per node, a lookup per type."""
        nodes = sum(self.types.values())
        return nodes + len(self.types), nodes

    def minimum(self, step: str) -> tuple[int, int]:
        """(calls, mutating calls) at the least of the step named ``step`` (a first apply, however run)."""
        if step == AGAIN:
            return self.refresh() + self.runtime_reads(), 0
        if step == REFRESH:
            return self.refresh(), 0
        return self.first_apply()


def spread(values: list[float], unit: str = "", digits: int = 2) -> str:
    """``median (min-max)`` of ``values``, or the value alone."""
    middle = f"{statistics.median(values):.{digits}f}{unit}"
    if len(values) == 1 or round(min(values), digits) == round(max(values), digits):
        return middle
    return f"{middle} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def counts(values: list[int]) -> str:
    """One count, or the range when the runs differ."""
    return str(values[0]) if min(values) == max(values) else f"{min(values)}-{max(values)}"


# -- reporting ------------------------------------------------------------------------------------------

Column = tuple[str, Callable[[list[Any]], str]]
"""A column of the calls table: its name, and its cell from the runs of one step."""

TypeColumn = tuple[str, Callable[[Any, str], str]]
"""A column of the per-type table: its name, and its cell from the first run's first apply and a type."""


def calls_table(
    title: str,
    steps: Mapping[str, list[Step]],
    floors: Floors,
    before: Iterable[Column] = (),
    middle: Iterable[Column] = (),
    after: Iterable[Column] = (),
) -> Table:
    """The calls of each step against its minimum: step, calls, ``before``, minimum, mutating, minimum
    mutating, ``middle``, retried, wall time, ``after``."""
    before, middle, after = list(before), list(middle), list(after)
    names = ["step", "calls", *(c for c, _ in before), "minimum", "mutating", "minimum mutating"]
    names += [*(c for c, _ in middle), "retried", "wall time", *(c for c, _ in after)]
    table = Table(title=title)
    for column in names:
        table.add_column(column, justify="left" if column == "step" else "right")
    for name, runs in steps.items():
        floor, floor_mutating = floors.minimum(name)
        table.add_row(
            name,
            counts([s.total for s in runs]),
            *(cell(runs) for _, cell in before),
            str(floor),
            counts([s.mutating for s in runs]),
            str(floor_mutating),
            *(cell(runs) for _, cell in middle),
            counts([s.retries for s in runs]),
            spread([s.seconds for s in runs], " s"),
            *(cell(runs) for _, cell in after),
        )
    return table


def by_type_table(
    provider: Provider, steps: Mapping[str, list[Step]], floors: Floors, extra: Iterable[TypeColumn] = ()
) -> Table:
    """Per node type (first run): nodes, first-apply calls (all, mutating, ``extra``), no-change apply
    calls, refresh reads against their floor."""
    extra = list(extra)
    table = Table(title="per node type (first run)")
    columns = ("node type", "nodes", "first apply", "mutating", *(c for c, _ in extra))
    columns += ("no-change apply", "refresh", "floor", "the floor's reads")
    for column in columns:
        table.add_column(column, justify="left" if column in ("node type", "the floor's reads") else "right")
    first, again, refresh = (steps[name][0] for name in (FIRST, AGAIN, REFRESH))
    seen = {t for step in (first, again, refresh) for (t, _, _, _) in step.calls}
    for name in sorted(set(floors.types) | seen):
        read = refresh.of_type(name)
        floor = floors.type_floor(name)
        mark = "" if read <= floor else f" (+{read - floor})"
        table.add_row(
            provider.short(name),
            str(floors.types[name]),
            str(first.of_type(name)),
            str(first.of_type(name, type(first).is_mutating)),
            *(cell(first, name) for _, cell in extra),
            str(again.of_type(name)),
            f"{read}{mark}",
            str(floor),
            floors.reads(name),
        )
    return table


def operations_table(provider: Provider, title: str, step: Step) -> Table:
    """Every (node type, method, API method) of one step, with its count; mutating ones starred."""
    table = Table(title=title)
    for column in ("node type", "method", provider.operation, "calls"):
        table.add_column(column, justify="right" if column == "calls" else "left")
    for (node_type, method, service, operation), n in sorted(step.calls.items()):
        mark = " *" if type(step).is_mutating(operation) else ""
        table.add_row(provider.short(node_type), method, f"{provider.call(service, operation)}{mark}", str(n))
    return table


def print_detail(console: Console, provider: Provider, steps: Mapping[str, list[Step]]) -> None:
    """``--detail``: every API method of each step's first run."""
    for name, runs in steps.items():
        title = f"{name} (first run): every {provider.operation}, * mutating"
        console.print(operations_table(provider, title, runs[0]))


def varying(provider: Provider, runs: list[Step]) -> dict[str, list[int]]:
    """The API methods whose count differs between ``runs``: ``API method -> counts``."""
    per_run: list[Counter[str]] = []
    for step in runs:
        counter: Counter[str] = Counter()
        for (_, _, service, operation), n in step.calls.items():
            counter[provider.call(service, operation)] += n
        per_run.append(counter)
    names = sorted({name for counter in per_run for name in counter})
    values = {name: [counter[name] for counter in per_run] for name in names}
    return {name: found for name, found in values.items() if min(found) != max(found)}


def print_polled(
    out: Console,
    provider: Provider,
    title: str,
    steps: Mapping[str, list[Step]],
    floors: Floors,
    logs: Iterable[Column],
    is_wait: Callable[[str], bool],
    repeated: Mapping[str, list[str]],
    detail: bool,
) -> None:
    """The tables of a provider whose calls include the polls of long-running operations (``is_wait``
    tells them by their API method): the calls table (polls apart, then the ``logs`` columns), the
    per-type table, the list calls that several node types make in one refresh (``repeated``: API method
    -> node types), the counts that vary between runs and, with ``detail``, every call."""
    polls: list[Column] = [
        ("polls", lambda runs: counts([s.waits for s in runs])),
        ("calls but polls", lambda runs: counts([s.total - s.waits for s in runs])),
    ]
    out.print(calls_table(title, steps, floors, before=polls, middle=logs))
    waits: TypeColumn = ("polls", lambda first, name: str(first.of_type(name, is_wait)))
    out.print(by_type_table(provider, steps, floors, [waits]))
    for method, makers in repeated.items():
        out.print(f"{REFRESH}: {method} made by {len(makers)} node types ({', '.join(makers)})")
    for name, runs in steps.items():
        for method, found in varying(provider, runs).items():
            out.print(f"varies between runs of {name}: {method} {min(found)}-{max(found)} calls")
    if detail:
        print_detail(out, provider, steps)
