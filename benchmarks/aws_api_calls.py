"""AWS API calls of the AWS provider on an example app, each against its minimum, and what parallelism buys.

On a copy of the app with an ``[env.aws]`` environment (type ``development``, provider ``aws``, the
settings of the provider's conformance profile) on a moto server this benchmark starts on a free
127.0.0.1 port, with fake credentials in the environment:

1. counts the AWS API calls, all of them and the mutating ones (every operation that is not a
   ``Describe``/``List``/``Get``/``Head``...: ``Create``, ``Put``, ``Modify``, ``Tag``, ``Attach``,
   ``Authorize``, ``Register``, ``Run``, ``Associate``...), of a first ``skyrig apply``, a no-change
   ``apply`` and a refresh (``skyrig plan``), each against the minimum needed:

   - first apply: each node's create as AWS's API is shaped (:data:`CREATE_FLOOR`: a role and its inline
     policy, a route table with its route and associations, a service's parameter, task definition,
     target group, rule and ECS service...; a status read of what takes minutes), one lookup call per
     node type (the engine looks up, by its identity, every node state does not record before creating
     it, one ``find_many`` per node type: a first apply cannot tell itself from one after state was
     lost), and :data:`FIRST_APPLY_ONCE`; printed with the ratio measured / minimum;
   - no-change apply: no mutating call; the refresh's reads, and one read per ten services to see whether
     their runtime config changed (:meth:`AwsFloors.runtime_reads`);
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

import contextlib
import math
import os
import statistics
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from api_calls import (
    AGAIN,
    FIRST,
    REFRESH,
    Floors,
    FloorTable,
    Key,
    Provider,
    Step,
    app_copy,
    apply,
    arguments,
    by_type_table,
    calls_table,
    console,
    counts,
    graph,
    measure_steps,
    print_detail,
    run,
    spread,
    varying,
)
from rich.table import Table

from skyrig_aws import api
from skyrig_aws.conformance import CREDENTIALS, moto_server
from skyrig_aws.conformance import settings as moto_settings
from skyrig_aws.nodes import AwsNodeType

ENVIRONMENT = "aws"
AWS = Provider("aws", AwsNodeType)

REFRESH_FLOOR: FloorTable = {
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


CREATE_FLOOR: dict[str, tuple[int, int, str]] = {
    "aws.network.vpc": (2, 0, "CreateVpc; ModifyVpcAttribute(EnableDnsHostnames): one attribute a call"),
    "aws.network.internet_gateway": (2, 0, "CreateInternetGateway; AttachInternetGateway"),
    "aws.network.subnet": (1, 0, "CreateSubnet; + ModifySubnetAttribute(MapPublicIpOnLaunch) if public"),
    "aws.network.nat_gateway": (
        2,
        2,
        "AllocateAddress; CreateNatGateway | DescribeAddresses (an address an "
        "interrupted create left); DescribeNatGateways until available",
    ),
    "aws.network.route_table": (2, 0, "CreateRouteTable; CreateRoute; AssociateRouteTable per subnet"),
    "aws.network.security_group": (2, 0, "CreateSecurityGroup; AuthorizeSecurityGroupIngress"),
    "aws.iam.role": (2, 0, "CreateRole; PutRolePolicy (an inline policy is a call of its own)"),
    "aws.sql.subnet_group": (1, 0, "CreateDBSubnetGroup"),
    "aws.sql.instance": (1, 1, "CreateDBInstance | DescribeDBInstances until available (endpoint, secret)"),
    "aws.sql.database": (
        3,
        0,
        "RegisterTaskDefinition; RunTask; TagResource(skyrig:migrated), which says its migrations ran",
    ),
    "aws.pubsub.topic": (1, 0, "CreateTopic"),
    "aws.pubsub.dead_letter": (1, 0, "CreateQueue"),
    "aws.pubsub.subscription": (2, 0, "CreateQueue; Subscribe"),
    "aws.cache.subnet_group": (1, 0, "CreateCacheSubnetGroup"),
    "aws.cache.cluster": (
        4,
        1,
        "CreateSecret (password); CreateUser x2; CreateReplicationGroup (AWS adds "
        "CreateUserGroup, CreateCacheParameterGroup, ModifyCacheParameterGroup, which "
        "moto lacks) | DescribeReplicationGroups until available",
    ),
    "aws.objects.bucket": (
        4,
        0,
        "CreateBucket; PutBucketTagging, -Encryption, PutPublicAccessBlock; + "
        "PutBucketVersioning if versioned, PutBucketPolicy if public",
    ),
    "aws.objects.cdn": (1, 1, "CreateDistributionWithTags | GetDistribution until deployed"),
    "aws.secrets.secret": (1, 0, "CreateSecret"),
    "aws.compute.cluster": (1, 0, "CreateCluster"),
    "aws.compute.repository": (1, 0, "CreateRepository"),
    "aws.compute.load_balancer": (2, 0, "CreateLoadBalancer; CreateListener"),
    "aws.compute.service": (
        5,
        0,
        "PutParameter (its runtime config); RegisterTaskDefinition; "
        "CreateTargetGroup; CreateRule; CreateService",
    ),
    "aws.cron.signing_key": (1, 0, "CreateSecret"),
    "aws.cron.schedule_group": (1, 0, "CreateScheduleGroup"),
    "aws.cron.schedule": (1, 0, "CreateSchedule"),
}
"""Node type -> (mutating calls per node, reads per node, which calls): the fewest calls that create one
node, as AWS's API is shaped (several calls where a resource's parts are set apart, status waits where a
resource takes minutes: one read each at the least). :func:`create_extra` adds what depends on a node's
properties. An unknown type counts one mutating call per node."""

LOOKUPS_SHARED = (
    ("aws.pubsub.dead_letter", "aws.pubsub.subscription"),
    ("aws.secrets.secret", "aws.cron.signing_key"),
)
"""Node types whose lookups are one listing (the environment's queues; its secrets, by name prefix)."""

FIRST_APPLY_ONCE = (
    0,
    2,
    "sts.GetCallerIdentity (the account id, for the ARNs the first nodes name); "
    "ssm.GetParameters after the apply (did a runtime config change?)",
)
"""(mutating, reads, which calls) a first apply makes once, whatever its nodes."""


def create_extra(node: dict[str, Any]) -> int:
    """The mutating calls a node's create needs beyond :data:`CREATE_FLOOR`'s, by its properties."""
    properties = node.get("properties", {})
    if node["type"] == "aws.network.subnet":
        return 1 if properties.get("public") else 0
    if node["type"] == "aws.network.route_table":
        return len(properties.get("subnets", []))
    if node["type"] == "aws.objects.bucket":
        return int(bool(properties.get("versioned"))) + int(not properties.get("public_access_blocked", True))
    return 0


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
        node_type, method, node = AWS.caller()
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


# -- moto -----------------------------------------------------------------------------------------------


def reset_moto(endpoint: str) -> None:
    """Wipe everything moto's server holds."""
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=30).read()


def fresh_app(source: Path, endpoint: str) -> contextlib.AbstractContextManager[Path]:
    """A fresh copy of the app (no state) with ``[env.aws]`` on moto's server at ``endpoint``, wiped."""
    reset_moto(endpoint)
    return app_copy(source, ENVIRONMENT, "aws", moto_settings(endpoint))


# -- measuring ------------------------------------------------------------------------------------------


@dataclass
class AwsStep(Step):
    """One command (:class:`api_calls.Step`), and what ``skyrig_aws.api.CALLS`` counted, the HTTP requests
    sent and the boto3 clients made (how many, seconds spent making them)."""

    counted: int
    requests: int
    clients: int
    client_seconds: float

    is_mutating = staticmethod(api.is_mutating)


def measure(recorder: Recorder, command: Callable[[], str], latency: float = 0.0) -> AwsStep:
    """Run ``command`` with the counters cleared and ``latency`` added to each request."""
    recorder.reset(latency)
    outcome = run(command)
    recorder.latency = 0.0
    return AwsStep(
        calls=Counter(recorder.calls),
        by_node=Counter(recorder.by_node),
        seconds=outcome.seconds,
        retries=outcome.retries,
        counted=sum(api.CALLS.values()),
        requests=recorder.requests,
        clients=recorder.clients,
        client_seconds=recorder.client_seconds,
    )


class AwsFloors(Floors):
    """The floors of :data:`REFRESH_FLOOR` (an unknown type, one read per node), and of a first apply by
    :data:`CREATE_FLOOR`, given the graph's ``nodes``."""

    table = REFRESH_FLOOR
    nodes: ClassVar[list[dict[str, Any]]] = []

    def first_apply(self) -> tuple[int, int]:
        """(calls, mutating calls) of a first apply at the least: each node's create as AWS's API shapes it
        (:data:`CREATE_FLOOR`, :func:`create_extra`), one lookup per node type (fewer where types share
        a listing: :data:`LOOKUPS_SHARED`) and :data:`FIRST_APPLY_ONCE`."""
        mutating, reads = FIRST_APPLY_ONCE[0], FIRST_APPLY_ONCE[1]
        for node in self.nodes:
            per_node, node_reads, _ = CREATE_FLOOR.get(node["type"], (1, 0, ""))
            mutating += per_node + create_extra(node)
            reads += node_reads
        lookups = len(self.types) - sum(
            len([t for t in group if t in self.types]) - 1
            for group in LOOKUPS_SHARED
            if group[0] in self.types
        )
        return mutating + reads + lookups, mutating

    def runtime_reads(self) -> int:
        """The fewest reads that tell whether each service's runtime config changed (a no-change apply
        checks it after the refresh): its SSM parameters, ten names a ``GetParameters`` call."""
        return math.ceil(self.types["aws.compute.service"] / 10)


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


# -- reporting ------------------------------------------------------------------------------------------


def timing_table(timings: dict[tuple[float, int], list[AwsStep]], path: int, runs: int) -> Table:
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


# -- the benchmark --------------------------------------------------------------------------------------


def main() -> None:
    """Measure, then print the tables."""
    parser = arguments(__doc__, "API operation")
    parser.add_argument(
        "--latency-ms", default="20,100", help="latencies to add to each request, comma-separated (ms)"
    )
    args = parser.parse_args()
    source = Path(args.app).resolve()
    os.environ.update(CREDENTIALS)
    recorder = Recorder()
    install(recorder)
    out = console()
    steps: dict[str, list[AwsStep]] = {name: [] for name in (FIRST, AGAIN, REFRESH)}
    timings: dict[tuple[float, int], list[AwsStep]] = {}
    nodes: list[dict[str, Any]] = []
    with moto_server() as endpoint:
        for index in range(args.runs):
            out.print(f"run {index + 1} of {args.runs}: first apply, no-change apply, plan", style="dim")
            with fresh_app(source, endpoint) as app:
                nodes = measure_steps(steps, app, ENVIRONMENT, lambda c: measure(recorder, c))
            for latency in (0.0, *(float(ms) / 1000 for ms in args.latency_ms.split(",") if ms)):
                for parallelism in (1, 10):
                    out.print(
                        f"run {index + 1} of {args.runs}: first apply, --parallelism {parallelism}, "
                        f"{latency * 1000:.0f} ms added per request",
                        style="dim",
                    )
                    with fresh_app(source, endpoint) as app:
                        graph(app, ENVIRONMENT)
                        command = apply(app, ENVIRONMENT, "--parallelism", str(parallelism))
                        timings.setdefault((latency, parallelism), []).append(
                            measure(recorder, command, latency)
                        )
    AwsFloors.nodes = nodes
    floors = AwsFloors(Counter(node["type"] for node in nodes))
    path, chain = critical_path(nodes, timings[0.0, 1][0].by_node)
    out.print(f"\n{source.name} on moto's server, environment type development, {args.runs} run(s)")
    title = f"AWS API calls: {len(nodes)} nodes of {len(floors.types)} node types"
    clients = ("making boto3 clients", made_clients)
    out.print(calls_table(title, steps, floors, middle=[("HTTP requests", requests)], after=[clients]))
    disagree = [s for runs in steps.values() for s in runs if s.counted != s.total]
    if disagree:
        out.print(f"[red]skyrig_aws.api.CALLS disagrees with the hooks in {len(disagree)} step(s)[/]")
    out.print(ratio_table(steps, floors))
    out.print(by_type_table(AWS, steps, floors))
    out.print(timing_table(timings, path, args.runs))
    out.print(f"critical path: {path} calls ({' -> '.join(chain)})")
    applies = steps[FIRST] + [s for runs in timings.values() for s in runs]
    for name, found in varying(AWS, applies).items():
        out.print(f"varies between first applies: {name} {min(found)}-{max(found)} calls")
    made = timings[0.0, 1]
    out.print(
        f"boto3 clients made by a first apply: {counts([s.clients for s in made])}, "
        f"{spread([s.client_seconds for s in made], ' s')} making them (--parallelism 1, no latency)"
    )
    if args.detail:
        print_detail(out, AWS, steps)


def ratio_table(steps: dict[str, list[AwsStep]], floors: AwsFloors) -> Table:
    """Each step's calls against its minimum: measured (median, range), minimum, ratio; and the most
    list/describe calls of one operation in a refresh (the issue's target: one per type and region)."""
    table = Table(title="measured against the minimum (calls, all runs)")
    for column in ("step", "calls", "minimum", "ratio", "mutating", "minimum mutating", "ratio mutating"):
        table.add_column(column, justify="left" if column == "step" else "right")
    for name, runs in steps.items():
        floor, floor_mutating = floors.minimum(name)
        total = statistics.median(s.total for s in runs)
        mutating = statistics.median(s.mutating for s in runs)
        table.add_row(
            name,
            counts([s.total for s in runs]),
            str(floor),
            f"{total / floor:.2f}x" if floor else "",
            counts([s.mutating for s in runs]),
            str(floor_mutating),
            f"{mutating / floor_mutating:.2f}x" if floor_mutating else ("0 = 0" if not mutating else ""),
        )
    return table


def requests(runs: list[AwsStep]) -> str:
    """The HTTP requests of a step's runs."""
    return counts([s.requests for s in runs])


def made_clients(runs: list[AwsStep]) -> str:
    """The seconds a step's runs spent making boto3 clients (how many)."""
    return f"{spread([s.client_seconds for s in runs], ' s')} ({counts([s.clients for s in runs])})"


if __name__ == "__main__":
    main()
