"""Google API calls of the GCP provider on an example app, each against its minimum, against the emulators
and the FAKE.

On a copy of the app with an ``[env.gcpN]`` environment (type ``development``, provider ``gcp``, the
settings of the provider's conformance profile) on the backends ``skyrig_gcp.conformance.backends()``
starts (the FAKE of the APIs without an emulator, fake-gcs-server for Cloud Storage and, where the Google
Cloud SDK is installed, the Pub/Sub emulator), this benchmark:

1. counts the Google API calls, all of them and the mutating ones (every method that is not a ``get``,
   ``list``, ``getIamPolicy``, ``testIamPermissions``, ``access``...: ``insert``, ``create``, ``patch``,
   ``setIamPolicy``, ``delete``...), of a first ``skyrig apply``, a no-change ``apply`` and a refresh
   (``skyrig plan``), each against the minimum needed:

   - first apply: one create call per node, and one lookup call per node type (the engine looks up, by
     its identity, every node state does not record before creating it, one ``find_many`` per node type);
     the polls of long-running operations are counted apart (their number is the backend's delay over
     the provider's ``wait_delay``, not the provider's choice);
   - no-change apply: no mutating call; the refresh's reads, and one list of the Cloud Run services to see
     whether their runtime config changed (:meth:`Floors.runtime_reads`);
   - refresh: the reads of :data:`REFRESH_FLOOR` (one list call per node type, as issue 14 asks, plus the
     per-resource reads where Google's list leaves something out).

   Calls are attributed to the node type, the contract method (``create``, ``read_many``, ``find_many``...)
   and the node that made them;
2. times each step (``--parallelism 10``, the default) and the first apply with ``--parallelism 1``: the
   FAKE finishes a long-running operation after ``lro_delay`` (0.1 s), so the wall times are the
   backends' delays, not Google's minutes.

The CLI runs in this process (``skyrig.cli.main``), so :data:`skyrig_gcp.api.CALLS` counts its calls. The
benchmark replaces that counter with one that also records who made each call (found by walking the stack
to the outermost node-type method), without editing the provider; and it checks its count of the calls to
the FAKE's APIs against the FAKE's own log (``FakeGcp.calls``, which classes each call mutating or not by
its HTTP method and verb).

    .venv/bin/python benchmarks/gcp_api_calls.py [--runs 3] [--detail] [--app DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from skyrig.cli import main as skyrig_main
from skyrig_gcp import api
from skyrig_gcp.conformance import backends
from skyrig_gcp.conformance import settings as profile_settings
from skyrig_gcp.nodes import GcpNodeType

OUTSIDE = "(no node type)"
PROVIDER = "(provider hook)"
DONE = re.compile(r"done: (\d+) change\(s\) in ([\d.]+) s(?:, (\d+) retried call\(s\))?")

LIBRARY = "(client library)"
WAITS = re.compile(r"[oO]perations\.get$")
"""The polls of a long-running operation (Cloud SQL's, Compute's ``globalOperations.get``, ...)."""

LIBRARY_APIS = ("run", "redis", "artifactregistry", "cloudscheduler", "secretmanager")
"""The FAKE's APIs the provider reaches through a dedicated client library, whose operation objects poll
(``operations.get``) on their own, past the provider's count: the benchmark takes those from the FAKE's
log."""

REFRESH_FLOOR: dict[str, tuple[int, int, str]] = {
    "gcp.network.project": (2, 0, "projects.search; serviceusage services.list (its enabled APIs)"),
    "gcp.network.vpc": (1, 0, "compute networks.get (one, of a known name)"),
    "gcp.network.subnet": (1, 0, "compute subnetworks.get (one, of a known name)"),
    "gcp.network.private_range": (1, 0, "compute globalAddresses.get (one, of a known name)"),
    "gcp.network.private_access": (1, 0, "servicenetworking connections.list"),
    "gcp.iam.account": (1, 0, "serviceAccounts.list"),
    "gcp.iam.role": (1, 0, "roles.get (one, of a known name)"),
    "gcp.iam.binding": (0, 0, "getIamPolicy per resource holding bindings (no list of policies)"),
    "gcp.sql.instance": (1, 0, "sql instances.list"),
    "gcp.sql.database": (1, 0, "sql databases.list (of the one instance)"),
    "gcp.pubsub.topic": (1, 0, "list_topics"),
    "gcp.pubsub.dead_letter": (2, 0, "list_topics; list_subscriptions (the letters' keeper)"),
    "gcp.pubsub.subscription": (1, 0, "list_subscriptions"),
    "gcp.cache.instance": (1, 0, "redis list_instances"),
    "gcp.objects.bucket": (1, 1, "buckets.list; getIamPolicy per bucket (public or not)"),
    "gcp.objects.cdn": (1, 0, "compute backendBuckets.list"),
    "gcp.secrets.secret": (1, 0, "list_secrets"),
    "gcp.compute.repository": (1, 0, "get_repository (one, of a known name)"),
    "gcp.compute.service": (1, 0, "run list_services"),
    "gcp.compute.migration": (1, 0, "run.jobs list_jobs"),
    "gcp.cron.signing_key": (1, 1, "get_secret; list_secret_versions (whether it has a value)"),
    "gcp.cron.trigger": (1, 0, "run.jobs list_jobs"),
    "gcp.cron.job": (1, 0, "cloudscheduler list_jobs"),
}
"""Node type -> (reads per type, reads per node, which calls): the fewest reads that refresh its nodes.
One list call per type (issue 14), or the get of the one resource of a known name; two where a node type
holds two kinds of resource (a project and its enabled APIs; a dead-letter topic and the subscription
that keeps its letters); one more per node where Google's list leaves something out (a bucket's IAM
policy, whether a secret has a version). IAM bindings: one ``getIamPolicy`` per resource that holds
some (:func:`binding_resources`). An unknown type counts one list call."""

EMULATED = ("pubsub.topic", "pubsub.subscription", "storage")
"""The APIs of bindings recorded as asked under the profile (``emulator = "fake"``): the emulators have
no IAM, so those bindings make no call here (against Google, one ``getIamPolicy`` per resource)."""

Key = tuple[str, str, str, str]
"""(node type, node-type method, API, API method)."""


# -- counting -------------------------------------------------------------------------------------------


class Recorder(Counter[tuple[str, str]]):
    """``skyrig_gcp.api.CALLS`` in this process: counts as it does, and also records each call by
    :data:`Key` and by node id (``_count`` does ``CALLS[api, method] += 1``: one ``__setitem__`` a call)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[Key] = Counter()
        self.by_node: Counter[str] = Counter()
        self.lock = threading.Lock()

    def __setitem__(self, key: tuple[str, str], value: int) -> None:
        added = value - self.get(key, 0)
        super().__setitem__(key, value)
        if added > 0:
            node_type, method, node = _caller()
            with self.lock:
                self.calls[node_type, method, key[0], key[1]] += added
                if node:
                    self.by_node[node] += added

    def reset(self) -> None:
        """Forget what was counted."""
        with self.lock:
            self.clear()
            self.calls.clear()
            self.by_node.clear()


def _caller() -> tuple[str, str, str]:
    """Who makes the call being made: the node type, its contract method (``create``, ``read_many``...) and
    the node (when the method has one), from the outermost frame whose ``self`` is a GCP node type; else
    the outermost function of the provider's package (a provider hook such as ``deliver_runtime``)."""
    frame = sys._getframe(2)
    found = (OUTSIDE, "", "")
    hook = ""
    while frame is not None:
        local = frame.f_locals
        owner = local.get("self")
        if isinstance(owner, GcpNodeType):
            node = getattr(local.get("node"), "id", "")
            found = (owner.type, frame.f_code.co_name, node if isinstance(node, str) else "")
        elif str(frame.f_globals.get("__name__", "")).startswith("skyrig_gcp"):
            hook = frame.f_code.co_name
        frame = frame.f_back
    return found if found[0] != OUTSIDE or not hook else (PROVIDER, hook, "")


def install() -> Recorder:
    """Put a :class:`Recorder` in the place of ``skyrig_gcp.api.CALLS`` (``_count`` looks the name up on
    every call; the provider's source is untouched)."""
    recorder = Recorder()
    api.CALLS = recorder
    return recorder


def is_wait(method: str) -> bool:
    """Whether an API method is a poll of a long-running operation."""
    return bool(WAITS.search(method))


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
def app_copy(source: Path, environment: str, endpoints: dict[str, str]) -> Iterator[Path]:
    """A fresh copy of the app (no state) with ``[env.ENVIRONMENT]`` on the backends at ``endpoints``. Each
    run takes an environment of its own: fake-gcs-server and the Pub/Sub emulator are not wiped between
    runs (the FAKE is), and a resource left there would be adopted, not created."""
    with tempfile.TemporaryDirectory(prefix="skyrig-gcp-bench-") as folder:
        app = Path(folder) / source.name
        shutil.copytree(source, app, ignore=shutil.ignore_patterns(".skyrig", "__pycache__"))
        settings = "\n".join(f"{k} = {toml_value(v)}" for k, v in profile_settings(endpoints).items())
        with (app / "skyrig.toml").open("a") as toml:
            toml.write(
                f'\n[env.{environment}]\ntype = "development"\nprovider = "gcp"\n\n'
                f"[env.{environment}.gcp]\n{settings}\n"
            )
        yield app


def graph(app: Path, environment: str) -> list[dict[str, Any]]:
    """The nodes of the environment's graph (no cloud call; this also fills the app's model cache)."""
    return json.loads(skyrig("graph", "--env", environment, "--format", "json", "-C", str(app)))["nodes"]


# -- measuring ------------------------------------------------------------------------------------------


@dataclass
class Step:
    """One command: its calls (by :data:`Key`), calls per node, the FAKE's log of its calls
    (``(api, method) -> (calls, mutating)``), wall time and the calls the engine retried."""

    calls: Counter[Key]
    by_node: Counter[str]
    fake: Counter[tuple[str, str, bool]]
    seconds: float
    retries: int
    changes: int

    @property
    def total(self) -> int:
        """Every API call of the command."""
        return sum(self.calls.values())

    @property
    def mutating(self) -> int:
        """The API calls of the command that change something."""
        return sum(n for (_, _, _, method), n in self.calls.items() if api.is_mutating(method))

    @property
    def waits(self) -> int:
        """The polls of long-running operations."""
        return sum(n for (_, _, _, method), n in self.calls.items() if is_wait(method))

    def of(self, apis: set[str]) -> tuple[int, int]:
        """(calls, mutating calls) of this command to ``apis`` (the FAKE's names), as counted here."""
        found = [(n, api.is_mutating(m)) for (_, _, a, m), n in self.calls.items() if fake_api(a) in apis]
        return sum(n for n, _ in found), sum(n for n, mutating in found if mutating)

    @property
    def uncounted(self) -> int:
        """The client libraries' own polls, which ``skyrig_gcp.api.CALLS`` does not see."""
        return sum(n for (t, _, _, _), n in self.calls.items() if t == LIBRARY)

    def fake_counts(self) -> tuple[int, int]:
        """(calls, mutating calls) the FAKE logged."""
        return sum(self.fake.values()), sum(n for (_, _, mutating), n in self.fake.items() if mutating)


def measure(recorder: Recorder, fake: Any, command: Callable[[], str]) -> Step:
    """Run ``command`` with the counters (the provider's and the FAKE's) cleared."""
    recorder.reset()
    fake.calls.clear()
    started = time.perf_counter()
    output = command()
    seconds = time.perf_counter() - started
    done = DONE.search(output)
    calls = Counter(recorder.calls)
    for call in fake.calls:
        if call.api in LIBRARY_APIS and is_wait(call.method or ""):
            calls[LIBRARY, "operation.done", call.api, call.method or ""] += 1
    return Step(
        calls,
        Counter(recorder.by_node),
        Counter((c.api, c.method or c.path, c.mutating) for c in fake.calls),
        seconds,
        int(done.group(3) or 0) if done else 0,
        int(done.group(1)) if done else 0,
    )


def fake_api(name: str) -> str:
    """The FAKE's name of an API as the provider counts it (``run.services`` -> ``run``, ``sql`` ->
    ``sqladmin``)."""
    from skyrig_gcp.fake.core import ALIASES

    short_name = name.partition(".")[0]
    return ALIASES.get(short_name, short_name)


def binding_resources(nodes: list[dict[str, Any]]) -> int:
    """The resources holding IAM bindings that are read here (not recorded only): one policy read each."""
    return len(
        {
            (node["properties"]["api"], node["properties"]["resource"])
            for node in nodes
            if node["type"] == "gcp.iam.binding" and node["properties"]["api"] not in EMULATED
        }
    )


@dataclass
class Floors:
    """The graph's node types and what the floors need of it."""

    types: Counter[str]
    bindings: int

    def type_floor(self, name: str) -> int:
        """The fewest reads that refresh the nodes of type ``name``."""
        count = self.types[name]
        if name == "gcp.iam.binding":
            return self.bindings
        per_type, per_node, _ = REFRESH_FLOOR.get(name, (1, 0, ""))
        return per_type + per_node * count if count else 0

    def refresh(self) -> int:
        """The fewest reads that refresh every node (:data:`REFRESH_FLOOR`)."""
        return sum(self.type_floor(name) for name in self.types)

    def runtime_reads(self) -> int:
        """The fewest reads that tell whether the services' runtime config changed (a no-change apply
        checks it after the refresh): one list of the Cloud Run services (their variables)."""
        return 1 if self.types["gcp.compute.service"] else 0

    def first_apply(self) -> tuple[int, int]:
        """(calls, mutating calls) of a first apply, polls apart: a create per node, a lookup per type."""
        nodes = sum(self.types.values())
        return nodes + len(self.types), nodes


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


def short(node_type: str) -> str:
    """A node type without the provider's prefix."""
    return node_type.removeprefix("gcp.")


def calls_table(steps: dict[str, list[Step]], floors: Floors, fake_apis: set[str]) -> Table:
    """The calls of each step against its minimum."""
    nodes = sum(floors.types.values())
    table = Table(title=f"Google API calls: {nodes} nodes of {len(floors.types)} node types")
    columns = (
        "step",
        "calls",
        "polls",
        "calls but polls",
        "minimum",
        "mutating",
        "minimum mutating",
        "FAKE's log: calls / mutating",
        "not in api.CALLS",
        "retried",
        "wall time",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "step" else "right")
    minimum = {
        "first apply": floors.first_apply(),
        "no-change apply": (floors.refresh() + floors.runtime_reads(), 0),
        "refresh (plan)": (floors.refresh(), 0),
        "first apply, --parallelism 1": floors.first_apply(),
    }
    for name, runs in steps.items():
        floor, floor_mutating = minimum[name]
        logged = [s.fake_counts() for s in runs]
        counted = [s.of(fake_apis) for s in runs]
        agree = "" if logged == counted else " [red](counted otherwise here)[/]"
        table.add_row(
            name,
            counts([s.total for s in runs]),
            counts([s.waits for s in runs]),
            counts([s.total - s.waits for s in runs]),
            str(floor),
            counts([s.mutating for s in runs]),
            str(floor_mutating),
            f"{counts([c for c, _ in logged])} / {counts([m for _, m in logged])}{agree}",
            counts([s.uncounted for s in runs]),
            counts([s.retries for s in runs]),
            spread([s.seconds for s in runs], " s"),
        )
    return table


def by_type_table(steps: dict[str, list[Step]], floors: Floors) -> Table:
    """Per node type: nodes, first-apply calls (all, mutating, polls), refresh reads against their floor."""
    table = Table(title="per node type (first run)")
    columns = (
        "node type",
        "nodes",
        "first apply",
        "mutating",
        "polls",
        "no-change apply",
        "refresh",
        "floor",
        "the floor's reads",
    )
    for column in columns:
        table.add_column(column, justify="left" if column in ("node type", "the floor's reads") else "right")
    first, again, refresh = (steps[name][0] for name in ("first apply", "no-change apply", "refresh (plan)"))
    seen = {t for step in (first, again, refresh) for (t, _, _, _) in step.calls}
    types = floors.types
    for name in sorted(set(types) | seen):
        applied = sum(n for (t, _, _, _), n in first.calls.items() if t == name)
        changed = sum(n for (t, _, _, m), n in first.calls.items() if t == name and api.is_mutating(m))
        polls = sum(n for (t, _, _, m), n in first.calls.items() if t == name and is_wait(m))
        unchanged = sum(n for (t, _, _, _), n in again.calls.items() if t == name)
        read = sum(n for (t, _, _, _), n in refresh.calls.items() if t == name)
        floor = floors.type_floor(name)
        mark = "" if read <= floor else f" (+{read - floor})"
        table.add_row(
            short(name),
            str(types[name]),
            str(applied),
            str(changed),
            str(polls),
            str(unchanged),
            f"{read}{mark}",
            str(floor),
            REFRESH_FLOOR.get(name, (0, 0, "one list call" if types[name] else ""))[2],
        )
    return table


def operations_table(title: str, step: Step) -> Table:
    """Every (node type, method, API method) of one step, with its count; mutating ones starred."""
    table = Table(title=title)
    for column in ("node type", "method", "API method", "calls"):
        table.add_column(column, justify="right" if column == "calls" else "left")
    for (node_type, method, service, operation), n in sorted(step.calls.items()):
        mark = " *" if api.is_mutating(operation) else ""
        table.add_row(short(node_type), method, f"{service} {operation}{mark}", str(n))
    return table


def repeated(step: Step) -> dict[str, list[str]]:
    """The list calls that more than one node type makes in one step (the same request: a project's
    topics, a region's jobs): ``api method -> node types``."""
    makers: dict[str, set[str]] = {}
    for (node_type, _, service, method), _n in step.calls.items():
        verb = method.rpartition(".")[2].lower()
        if verb.startswith("list") and node_type not in (OUTSIDE, PROVIDER, LIBRARY):
            makers.setdefault(f"{fake_api(service)} {method}", set()).add(short(node_type))
    return {name: sorted(found) for name, found in sorted(makers.items()) if len(found) > 1}


def varying(runs: list[Step]) -> dict[str, list[int]]:
    """The API methods whose count differs between runs of a step: ``api method -> counts``."""
    per_run: list[Counter[str]] = []
    for step in runs:
        counter: Counter[str] = Counter()
        for (_, _, service, operation), n in step.calls.items():
            counter[f"{service} {operation}"] += n
        per_run.append(counter)
    names = sorted({name for counter in per_run for name in counter})
    values = {name: [counter[name] for counter in per_run] for name in names}
    return {name: found for name, found in values.items() if min(found) != max(found)}


# -- the benchmark --------------------------------------------------------------------------------------


def main() -> None:
    """Measure, then print the tables."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--app", default="examples/shop", help="the example app (copied, never changed)")
    parser.add_argument("--runs", type=int, default=3, help="repetitions of every measurement")
    parser.add_argument("--detail", action="store_true", help="list every API method of each step")
    args = parser.parse_args()
    source = Path(args.app).resolve()
    recorder = install()
    console = Console(width=shutil.get_terminal_size((150, 40)).columns)
    names = ("first apply", "no-change apply", "refresh (plan)", "first apply, --parallelism 1")
    steps: dict[str, list[Step]] = {name: [] for name in names}
    nodes: list[dict[str, Any]] = []
    os.environ["SKYRIG_RETRY_BASE_MS"] = "1"
    with backends() as (endpoints, environ, fake, limits):
        os.environ.update(environ)
        fake_apis = {name for name in endpoints if name not in ("storage", "pubsub")}
        for run in range(args.runs):
            console.print(f"run {run + 1} of {args.runs}: first apply, no-change apply, plan", style="dim")
            fake.reset()
            environment = f"gcp{run + 1}"
            with app_copy(source, environment, endpoints) as app:
                nodes = graph(app, environment)
                apply = ("apply", "--env", environment, "--yes", "-C", str(app))
                plan = ("plan", "--env", environment, "-C", str(app))
                steps["first apply"].append(measure(recorder, fake, lambda: skyrig(*apply)))  # noqa: B023
                steps["no-change apply"].append(measure(recorder, fake, lambda: skyrig(*apply)))  # noqa: B023
                steps["refresh (plan)"].append(measure(recorder, fake, lambda: skyrig(*plan)))  # noqa: B023
            console.print(f"run {run + 1} of {args.runs}: first apply, --parallelism 1", style="dim")
            fake.reset()
            environment = f"gcp{run + 1}p"
            with app_copy(source, environment, endpoints) as app:
                graph(app, environment)
                serial = ("apply", "--env", environment, "--yes", "--parallelism", "1", "-C", str(app))
                steps["first apply, --parallelism 1"].append(
                    measure(recorder, fake, lambda: skyrig(*serial))  # noqa: B023
                )
    floors = Floors(Counter(node["type"] for node in nodes), binding_resources(nodes))
    pubsub = "the Pub/Sub emulator" if "pubsub" in endpoints else f"no Pub/Sub ({limits.get('pubsub')})"
    console.print(
        f"\n{source.name} on the FAKE, fake-gcs-server and {pubsub}, environment type development, "
        f"{args.runs} run(s)"
    )
    console.print(calls_table(steps, floors, fake_apis))
    console.print(by_type_table(steps, floors))
    for name in ("refresh (plan)",):
        for method, makers in repeated(steps[name][0]).items():
            console.print(f"{name}: {method} made by {len(makers)} node types ({', '.join(makers)})")
    for name, runs in steps.items():
        for method, found in varying(runs).items():
            console.print(f"varies between runs of {name}: {method} {min(found)}-{max(found)} calls")
    if args.detail:
        for name, runs in steps.items():
            console.print(operations_table(f"{name} (first run): every API method, * mutating", runs[0]))


if __name__ == "__main__":
    main()
