"""AWS API calls of the AWS provider on an example app, each against its minimum, and what parallelism buys.

On a copy of the app with an ``[env.aws]`` environment (type ``development``, provider ``aws``, the
settings of the provider's conformance profile) on a moto server this benchmark starts on a free
127.0.0.1 port, with fake credentials in the environment:

1. counts the AWS API calls, all of them and the mutating ones (every operation that is not a
   ``Describe``/``List``/``Get``/``Head``...: ``Create``, ``Put``, ``Modify``, ``Tag``, ``Attach``,
   ``Authorize``, ``Register``, ``Run``, ``Associate``...), of a first ``skyrig apply``, a no-change
   ``apply`` and a refresh (``skyrig plan``), each against the minimum needed:

   - first apply: one create call per node, and one lookup call per node type (the engine looks up, by
     its identity, every node state does not record before creating it, one ``find_many`` per node type:
     a first apply cannot tell itself from one after state was lost);
   - no-change apply: no mutating call; the refresh's reads, and one read per ten services to see whether
     their runtime config changed (:func:`runtime_reads`);
   - refresh: the reads of :data:`REFRESH_FLOOR` (one per node type where AWS reads in bulk, one per
     resource where it does not).

   Calls are attributed to the node type, the contract method (``create``, ``read_many``...) and the node
   that made them;
2. times the first apply with ``--parallelism 1`` against ``--parallelism 10`` (moto reset in between, a
   fresh copy of the app), as is and with a latency added to every HTTP request the provider sends (moto
   on loopback answers in milliseconds, AWS in tens of them), and gives the floor that latency sets: every
   call one after the other at ``--parallelism 1``; at 10, the longer of the graph's critical path (the
   calls of the nodes on its longest dependency chain) and a tenth of the calls.

The CLI runs in this process (``skyrig.cli.main``), so :data:`skyrig_aws.api.CALLS` counts its calls (the
benchmark checks that its own count agrees). Without editing the provider, the benchmark wraps
``skyrig_aws.api.make_client`` in its own process to register two botocore hooks on each client the
provider makes: ``before-call`` (who made the call, found by walking the stack to the outermost node-type
method) and ``before-send`` (HTTP requests, retries included; the added latency sleeps here). Moto's
waits end at once: wall times leave out the minutes AWS takes to make an RDS instance, an ElastiCache
group or a CloudFront distribution available.

    .venv/bin/python benchmarks/aws_api_calls.py [--runs 3] [--latency-ms 20,100] [--detail] [--app DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from skyrig.cli import main as skyrig_main
from skyrig_aws import api
from skyrig_aws.conformance import CREDENTIALS, moto_server
from skyrig_aws.conformance import settings as moto_settings
from skyrig_aws.nodes import AwsNodeType

ENVIRONMENT = "aws"
OUTSIDE = "(no node type)"
PROVIDER = "(provider hook)"
DONE = re.compile(r"done: (\d+) change\(s\) in ([\d.]+) s(?:, (\d+) retried call\(s\))?")

REFRESH_FLOOR: dict[str, tuple[int, int, str]] = {
    "aws.network.vpc": (1, 0, "DescribeVpcs"),
    "aws.network.internet_gateway": (1, 0, "DescribeInternetGateways"),
    "aws.network.subnet": (1, 0, "DescribeSubnets"),
    "aws.network.nat_gateway": (1, 0, "DescribeNatGateways"),
    "aws.network.route_table": (1, 0, "DescribeRouteTables"),
    "aws.network.security_group": (1, 0, "DescribeSecurityGroups (rules included)"),
    "aws.iam.role": (1, 0, "GetAccountAuthorizationDetails (roles with their inline policies)"),
    "aws.sql.subnet_group": (1, 0, "DescribeDBSubnetGroups"),
    "aws.sql.instance": (1, 0, "DescribeDBInstances"),
    "aws.sql.database": (0, 1, "DescribeTaskDefinition of its migration task"),
    "aws.pubsub.topic": (1, 0, "ListTopics (the name says FIFO)"),
    "aws.pubsub.dead_letter": (0, 1, "GetQueueAttributes"),
    "aws.pubsub.subscription": (1, 1, "GetQueueAttributes; ListSubscriptionsByTopic once (one topic)"),
    "aws.cache.subnet_group": (1, 0, "DescribeCacheSubnetGroups"),
    "aws.cache.cluster": (1, 0, "DescribeReplicationGroups"),
    "aws.objects.bucket": (0, 3, "GetBucketVersioning, -Encryption, GetPublicAccessBlock"),
    "aws.objects.cdn": (1, 0, "ListDistributions"),
    "aws.secrets.secret": (1, 0, "ListSecrets"),
    "aws.compute.cluster": (1, 0, "DescribeClusters"),
    "aws.compute.repository": (1, 0, "DescribeRepositories"),
    "aws.compute.load_balancer": (1, 1, "DescribeLoadBalancers; DescribeListeners"),
    "aws.compute.service": (1, 1, "DescribeServices (10 a call); DescribeTaskDefinition"),
    "aws.cron.signing_key": (1, 0, "DescribeSecret (or ListSecrets)"),
    "aws.cron.schedule_group": (1, 0, "GetScheduleGroup (or ListScheduleGroups)"),
    "aws.cron.schedule": (0, 1, "GetSchedule (ListSchedules has no expression)"),
}
"""Node type -> (reads per type, reads per node, which calls): the fewest reads that refresh its nodes. One
call per type where AWS reads in bulk; one per node where it does not (a queue's attributes, a schedule),
and one per node for what a bulk read leaves out (a service's task definition, a balancer's listeners);
S3 reads one setting of one bucket a call. An unknown type counts one read per node."""

Key = tuple[str, str, str, str]
"""(node type, node-type method, AWS service, API operation)."""


# -- counting -------------------------------------------------------------------------------------------


@dataclass
class Recorder:
    """What the botocore hooks saw: calls by :data:`Key` and by node id, HTTP requests sent, and the
    latency to add to each request."""

    latency: float = 0.0
    calls: Counter[Key] = field(default_factory=Counter)
    by_node: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    clients: int = 0
    client_seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self, latency: float = 0.0) -> None:
        """Forget what was counted (here and in ``skyrig_aws.api.CALLS``), and add ``latency`` seconds to
        every request from now on."""
        with self.lock:
            self.calls.clear()
            self.by_node.clear()
            self.requests = 0
            self.clients = 0
            self.client_seconds = 0.0
        self.latency = latency
        api.CALLS.clear()

    def before_call(self, model: Any, **_: Any) -> None:
        """botocore ``before-call``: one API call (botocore's retries of it are not calls again)."""
        node_type, method, node = _caller()
        with self.lock:
            self.calls[node_type, method, model.service_model.service_name, model.name] += 1
            if node:
                self.by_node[node] += 1

    def before_send(self, **_: Any) -> None:
        """botocore ``before-send``: one HTTP request (a retry is one more); sleeps the added latency.
        Returns ``None``, so the request is sent as usual."""
        with self.lock:
            self.requests += 1
        if self.latency:
            time.sleep(self.latency)


def _caller() -> tuple[str, str, str]:
    """Who makes the call being made: the node type, its contract method (``create``, ``read_many``...) and
    the node (when the method has one), from the outermost frame whose ``self`` is an AWS node type; else
    the outermost function of the provider's package (a provider hook such as ``deliver_runtime``)."""
    frame = sys._getframe(2)
    found = (OUTSIDE, "", "")
    hook = ""
    while frame is not None:
        local = frame.f_locals
        owner = local.get("self")
        if isinstance(owner, AwsNodeType):
            node = getattr(local.get("node"), "id", "")
            found = (owner.type, frame.f_code.co_name, node if isinstance(node, str) else "")
        elif str(frame.f_globals.get("__name__", "")).startswith("skyrig_aws"):
            hook = frame.f_code.co_name
        frame = frame.f_back
    return found if found[0] != OUTSIDE or not hook else (PROVIDER, hook, "")


def install(recorder: Recorder) -> None:
    """Register the recorder's hooks on every boto3 client the provider makes from now on (the provider's
    ``make_client`` wrapped in this process; its source is untouched)."""
    original = api.make_client

    def make_client(session: Any, service: str, settings: Any) -> Any:
        started = time.perf_counter()
        client = original(session, service, settings)
        with recorder.lock:
            recorder.clients += 1
            recorder.client_seconds += time.perf_counter() - started
        client.meta.events.register("before-call.*.*", recorder.before_call)
        client.meta.events.register("before-send.*.*", recorder.before_send)
        return client

    api.make_client = make_client


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
    """A scalar as TOML (a JSON string is a valid TOML basic string)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))


@contextlib.contextmanager
def app_copy(source: Path, endpoint: str) -> Iterator[Path]:
    """A fresh copy of the app (no state) with ``[env.aws]`` on moto's server at ``endpoint``."""
    with tempfile.TemporaryDirectory(prefix="skyrig-aws-bench-") as folder:
        app = Path(folder) / source.name
        shutil.copytree(source, app, ignore=shutil.ignore_patterns(".skyrig", "__pycache__"))
        settings = "\n".join(f"{key} = {toml_value(value)}" for key, value in moto_settings(endpoint).items())
        with (app / "skyrig.toml").open("a") as toml:
            toml.write(
                f'\n[env.{ENVIRONMENT}]\ntype = "development"\nprovider = "aws"\n\n'
                f"[env.{ENVIRONMENT}.aws]\n{settings}\n"
            )
        yield app


def graph(app: Path) -> list[dict[str, Any]]:
    """The nodes of the environment's graph (no cloud call; this also fills the app's model cache)."""
    return json.loads(skyrig("graph", "--env", ENVIRONMENT, "--format", "json", "-C", str(app)))["nodes"]


def reset_moto(endpoint: str) -> None:
    """Wipe everything moto's server holds."""
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=30).read()


# -- measuring ------------------------------------------------------------------------------------------


@dataclass
class Step:
    """One command: its calls, calls per node, what ``skyrig_aws.api.CALLS`` counted, HTTP requests, wall
    time, the calls the engine retried, and the boto3 clients made (how many, seconds spent making them)."""

    calls: Counter[Key]
    by_node: Counter[str]
    counted: int
    requests: int
    seconds: float
    retries: int
    clients: int
    client_seconds: float

    @property
    def total(self) -> int:
        """Every API call of the command."""
        return sum(self.calls.values())

    @property
    def mutating(self) -> int:
        """The API calls of the command that change something."""
        return sum(n for (_, _, _, operation), n in self.calls.items() if api.is_mutating(operation))


def measure(recorder: Recorder, command: Callable[[], str], latency: float = 0.0) -> Step:
    """Run ``command`` with the counters cleared and ``latency`` added to each request."""
    recorder.reset(latency)
    started = time.perf_counter()
    output = command()
    seconds = time.perf_counter() - started
    recorder.latency = 0.0
    done = DONE.search(output)
    return Step(
        Counter(recorder.calls),
        Counter(recorder.by_node),
        sum(api.CALLS.values()),
        recorder.requests,
        seconds,
        int(done.group(3) or 0) if done else 0,
        recorder.clients,
        recorder.client_seconds,
    )


def refresh_floor(types: Counter[str]) -> int:
    """The fewest reads that refresh every node (:data:`REFRESH_FLOOR`)."""
    return sum(type_floor(name, count) for name, count in types.items())


def runtime_reads(types: Counter[str]) -> int:
    """The fewest reads that tell whether each service's runtime config changed (a no-change apply checks
    it after the refresh): its SSM parameters, ten names a ``GetParameters`` call."""
    return math.ceil(types["aws.compute.service"] / 10)


def type_floor(name: str, count: int) -> int:
    """The fewest reads that refresh ``count`` nodes of type ``name``."""
    per_type, per_node, _ = REFRESH_FLOOR.get(name, (0, 1, ""))
    return per_type + per_node * count if count else 0


def critical_path(nodes: list[dict[str, Any]], weight: Counter[str]) -> tuple[int, list[str]]:
    """The heaviest dependency chain of the graph, each node weighing its calls: (calls, node ids)."""
    by_id = {node["id"]: node for node in nodes}
    best: dict[str, tuple[int, list[str]]] = {}

    def heaviest(node_id: str) -> tuple[int, list[str]]:
        if node_id not in best:
            before = [heaviest(d) for d in by_id[node_id]["depends_on"] if d in by_id]
            calls, chain = max(before, default=(0, []))
            best[node_id] = (calls + weight[node_id], [*chain, node_id])
        return best[node_id]

    return max((heaviest(node_id) for node_id in by_id), default=(0, []))


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
    return node_type.removeprefix("aws.")


def calls_table(steps: dict[str, list[Step]], nodes: int, types: Counter[str]) -> Table:
    """The calls of each step against its minimum."""
    table = Table(title=f"AWS API calls: {nodes} nodes of {len(types)} node types")
    columns = (
        "step",
        "calls",
        "minimum",
        "mutating",
        "minimum mutating",
        "HTTP requests",
        "retried",
        "wall time",
        "making boto3 clients",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "step" else "right")
    floors = {
        "first apply": (nodes + len(types), nodes),
        "no-change apply": (refresh_floor(types) + runtime_reads(types), 0),
        "refresh (plan)": (refresh_floor(types), 0),
    }
    for name, runs in steps.items():
        floor, floor_mutating = floors[name]
        table.add_row(
            name,
            counts([s.total for s in runs]),
            str(floor),
            counts([s.mutating for s in runs]),
            str(floor_mutating),
            counts([s.requests for s in runs]),
            counts([s.retries for s in runs]),
            spread([s.seconds for s in runs], " s"),
            f"{spread([s.client_seconds for s in runs], ' s')} ({counts([s.clients for s in runs])})",
        )
    return table


def by_type_table(steps: dict[str, list[Step]], types: Counter[str]) -> Table:
    """Per node type: nodes, first-apply calls (all, mutating), refresh reads against their floor."""
    table = Table(title="per node type (first run)")
    columns = (
        "node type",
        "nodes",
        "first apply",
        "mutating",
        "no-change apply",
        "refresh",
        "floor",
        "the floor's reads",
    )
    for column in columns:
        table.add_column(column, justify="left" if column in ("node type", "the floor's reads") else "right")
    first, again, refresh = (steps[name][0] for name in steps)
    seen = {t for step in (first, again, refresh) for (t, _, _, _) in step.calls}
    for name in sorted(set(types) | seen):
        applied = sum(n for (t, _, _, _), n in first.calls.items() if t == name)
        changed = sum(n for (t, _, _, o), n in first.calls.items() if t == name and api.is_mutating(o))
        unchanged = sum(n for (t, _, _, _), n in again.calls.items() if t == name)
        read = sum(n for (t, _, _, _), n in refresh.calls.items() if t == name)
        floor = type_floor(name, types[name])
        mark = "" if read <= floor else f" (+{read - floor})"
        table.add_row(
            short(name),
            str(types[name]),
            str(applied),
            str(changed),
            str(unchanged),
            f"{read}{mark}",
            str(floor),
            REFRESH_FLOOR.get(name, (0, 0, ""))[2],
        )
    return table


def operations_table(title: str, step: Step) -> Table:
    """Every (node type, method, API operation) of one step, with its count; mutating ones starred."""
    table = Table(title=title)
    for column in ("node type", "method", "operation", "calls"):
        table.add_column(column, justify="right" if column == "calls" else "left")
    for (node_type, method, service, operation), n in sorted(step.calls.items()):
        mark = " *" if api.is_mutating(operation) else ""
        table.add_row(short(node_type), method, f"{service}.{operation}{mark}", str(n))
    return table


def timing_table(timings: dict[tuple[float, int], list[Step]], path: int, runs: int) -> Table:
    """First-apply wall time by latency and parallelism, the ratio measured in each run, and the floor the
    added latency sets (every call in turn at 1; the critical path or a tenth of the calls at 10)."""
    table = Table(title=f"first apply, wall time: median (min-max) of {runs} run(s)")
    columns = (
        "latency",
        "--parallelism 1",
        "--parallelism 10",
        "1 / 10",
        "latency floor 1 / 10",
        "calls 1 / 10",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "latency" else "right")
    for latency in sorted({latency for latency, _ in timings}):
        one, ten = timings[latency, 1], timings[latency, 10]
        ratios = [a.seconds / b.seconds for a, b in zip(one, ten, strict=True)]
        calls = statistics.median(s.requests for s in one)
        floor = (
            f"{calls * latency:.2f} s / {max(path, math.ceil(calls / 10)) * latency:.2f} s" if latency else ""
        )
        table.add_row(
            f"{latency * 1000:.0f} ms" + (" added" if latency else " (moto as is)"),
            spread([s.seconds for s in one], " s"),
            spread([s.seconds for s in ten], " s"),
            spread(ratios, "x", 1),
            floor,
            f"{counts([s.total for s in one])} / {counts([s.total for s in ten])}",
        )
    return table


def varying(applies: list[Step]) -> dict[str, list[int]]:
    """The API operations whose count differs between first applies: ``service.Operation -> counts``."""
    per_apply: list[Counter[str]] = []
    for step in applies:
        counter: Counter[str] = Counter()
        for (_, _, service, operation), n in step.calls.items():
            counter[f"{service}.{operation}"] += n
        per_apply.append(counter)
    names = sorted({name for counter in per_apply for name in counter})
    values = {name: [counter[name] for counter in per_apply] for name in names}
    return {name: found for name, found in values.items() if min(found) != max(found)}


# -- the benchmark --------------------------------------------------------------------------------------


def main() -> None:
    """Measure, then print the tables."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--app", default="examples/shop", help="the example app (copied, never changed)")
    parser.add_argument("--runs", type=int, default=3, help="repetitions of every measurement")
    parser.add_argument(
        "--latency-ms", default="20,100", help="latencies to add to each request, comma-separated (ms)"
    )
    parser.add_argument("--detail", action="store_true", help="list every API operation of each step")
    args = parser.parse_args()
    source = Path(args.app).resolve()
    os.environ.update(CREDENTIALS)
    recorder = Recorder()
    install(recorder)
    console = Console(width=shutil.get_terminal_size((150, 40)).columns)
    steps: dict[str, list[Step]] = {"first apply": [], "no-change apply": [], "refresh (plan)": []}
    timings: dict[tuple[float, int], list[Step]] = {}
    nodes: list[dict[str, Any]] = []
    with moto_server() as endpoint:
        for run in range(args.runs):
            console.print(f"run {run + 1} of {args.runs}: first apply, no-change apply, plan", style="dim")
            reset_moto(endpoint)
            with app_copy(source, endpoint) as app:
                nodes = graph(app)
                apply = ("apply", "--env", ENVIRONMENT, "--yes", "-C", str(app))
                plan = ("plan", "--env", ENVIRONMENT, "-C", str(app))
                steps["first apply"].append(measure(recorder, lambda: skyrig(*apply)))  # noqa: B023
                steps["no-change apply"].append(measure(recorder, lambda: skyrig(*apply)))  # noqa: B023
                steps["refresh (plan)"].append(measure(recorder, lambda: skyrig(*plan)))  # noqa: B023
            for latency in (0.0, *(float(ms) / 1000 for ms in args.latency_ms.split(",") if ms)):
                for parallelism in (1, 10):
                    console.print(
                        f"run {run + 1} of {args.runs}: first apply, --parallelism {parallelism}, "
                        f"{latency * 1000:.0f} ms added per request",
                        style="dim",
                    )
                    reset_moto(endpoint)
                    with app_copy(source, endpoint) as app:
                        graph(app)
                        command = ("apply", "--env", ENVIRONMENT, "--yes", "-C", str(app))
                        command += ("--parallelism", str(parallelism))
                        timed = measure(recorder, lambda: skyrig(*command), latency)  # noqa: B023
                        timings.setdefault((latency, parallelism), []).append(timed)
    types = Counter(node["type"] for node in nodes)
    path, chain = critical_path(nodes, timings[0.0, 1][0].by_node)
    console.print(f"\n{source.name} on moto's server, environment type development, {args.runs} run(s)")
    console.print(calls_table(steps, len(nodes), types))
    disagree = [s for runs in steps.values() for s in runs if s.counted != s.total]
    if disagree:
        console.print(f"[red]skyrig_aws.api.CALLS disagrees with the hooks in {len(disagree)} step(s)[/]")
    console.print(by_type_table(steps, types))
    console.print(timing_table(timings, path, args.runs))
    console.print(f"critical path: {path} calls ({' -> '.join(chain)})")
    applies = steps["first apply"] + [s for runs in timings.values() for s in runs]
    for name, found in varying(applies).items():
        console.print(f"varies between first applies: {name} {min(found)}-{max(found)} calls")
    made = timings[0.0, 1]
    console.print(
        f"boto3 clients made by a first apply: {counts([s.clients for s in made])}, "
        f"{spread([s.client_seconds for s in made], ' s')} making them (--parallelism 1, no latency)"
    )
    if args.detail:
        for name, runs in steps.items():
            console.print(operations_table(f"{name} (first run): every operation, * mutating", runs[0]))


if __name__ == "__main__":
    main()
