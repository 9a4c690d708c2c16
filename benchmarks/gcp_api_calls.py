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
     whether their runtime config changed (:meth:`GcpFloors.runtime_reads`);
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

import contextlib
import os
import re
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from api_calls import (
    AGAIN,
    FIRST,
    OUTSIDE,
    PROVIDER,
    REFRESH,
    SERIAL,
    Column,
    Floors,
    FloorTable,
    Key,
    Provider,
    Step,
    app_copy,
    arguments,
    console,
    counts,
    measure_runs,
    print_polled,
    run,
)

from skyrig_gcp import api
from skyrig_gcp.conformance import backends
from skyrig_gcp.conformance import settings as profile_settings
from skyrig_gcp.nodes import GcpNodeType

GCP = Provider("gcp", GcpNodeType, operation="API method", joiner=" ")

LIBRARY = "(client library)"
WAITS = re.compile(r"[oO]perations\.get$")
"""The polls of a long-running operation (Cloud SQL's, Compute's ``globalOperations.get``, ...)."""

LIBRARY_APIS = ("run", "redis", "artifactregistry", "cloudscheduler", "secretmanager")
"""The FAKE's APIs the provider reaches through a dedicated client library, whose operation objects poll
(``operations.get``) on their own, past the provider's count: the benchmark takes those from the FAKE's
log."""

REFRESH_FLOOR: FloorTable = {
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
            node_type, method, node = GCP.caller()
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


def install() -> Recorder:
    """Put a :class:`Recorder` in the place of ``skyrig_gcp.api.CALLS`` (``_count`` looks the name up on
    every call; the provider's source is untouched)."""
    recorder = Recorder()
    api.CALLS = recorder
    return recorder


def is_wait(method: str) -> bool:
    """Whether an API method is a poll of a long-running operation."""
    return bool(WAITS.search(method))


def fresh_app(
    source: Path, environment: str, endpoints: dict[str, str], fake: Any
) -> contextlib.AbstractContextManager[Path]:
    """A fresh copy of the app (no state) with ``[env.ENVIRONMENT]`` on the backends at ``endpoints``, the
    FAKE wiped. Each run takes an environment of its own: fake-gcs-server and the Pub/Sub emulator are not
    wiped between runs, and a resource left there would be adopted, not created."""
    fake.reset()
    return app_copy(source, environment, "gcp", profile_settings(endpoints))


# -- measuring ------------------------------------------------------------------------------------------


@dataclass
class GcpStep(Step):
    """One command (:class:`api_calls.Step`), and the FAKE's log of its calls (``(api, method, mutating)
    -> calls``) and its changes."""

    fake: Counter[tuple[str, str, bool]]
    changes: int

    is_mutating = staticmethod(api.is_mutating)

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


def measure(recorder: Recorder, fake: Any, command: Callable[[], str]) -> GcpStep:
    """Run ``command`` with the counters (the provider's and the FAKE's) cleared."""
    recorder.reset()
    fake.calls.clear()
    outcome = run(command)
    calls = Counter(recorder.calls)
    for call in fake.calls:
        if call.api in LIBRARY_APIS and is_wait(call.method or ""):
            calls[LIBRARY, "operation.done", call.api, call.method or ""] += 1
    return GcpStep(
        calls=calls,
        by_node=Counter(recorder.by_node),
        seconds=outcome.seconds,
        retries=outcome.retries,
        fake=Counter((c.api, c.method or c.path, c.mutating) for c in fake.calls),
        changes=outcome.changes,
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
class GcpFloors(Floors):
    """The floors of :data:`REFRESH_FLOOR` (an unknown type, one list call), polls apart; IAM bindings,
    one policy read per resource holding some."""

    bindings: int = 0

    table = REFRESH_FLOOR
    unknown = (1, 0, "one list call")

    def type_floor(self, name: str) -> int:
        """The fewest reads that refresh the nodes of type ``name``."""
        return self.bindings if name == "gcp.iam.binding" else super().type_floor(name)

    def runtime_reads(self) -> int:
        """The fewest reads that tell whether the services' runtime config changed (a no-change apply
        checks it after the refresh): one list of the Cloud Run services (their variables)."""
        return 1 if self.types["gcp.compute.service"] else 0


# -- reporting ------------------------------------------------------------------------------------------


def repeated(step: GcpStep) -> dict[str, list[str]]:
    """The list calls that more than one node type makes in one step (the same request: a project's
    topics, a region's jobs): ``api method -> node types``."""
    makers: dict[str, set[str]] = {}
    for (node_type, _, service, method), _n in step.calls.items():
        verb = method.rpartition(".")[2].lower()
        if verb.startswith("list") and node_type not in (OUTSIDE, PROVIDER, LIBRARY):
            makers.setdefault(f"{fake_api(service)} {method}", set()).add(GCP.short(node_type))
    return {name: sorted(found) for name, found in sorted(makers.items()) if len(found) > 1}


def fake_log(fake_apis: set[str]) -> Callable[[list[GcpStep]], str]:
    """The column of what the FAKE logged (calls / mutating), marked where this count differs."""

    def cell(runs: list[GcpStep]) -> str:
        logged = [s.fake_counts() for s in runs]
        counted = [s.of(fake_apis) for s in runs]
        agree = "" if logged == counted else " [red](counted otherwise here)[/]"
        return f"{counts([c for c, _ in logged])} / {counts([m for _, m in logged])}{agree}"

    return cell


# -- the benchmark --------------------------------------------------------------------------------------


def main() -> None:
    """Measure, then print the tables."""
    args = arguments(__doc__, "API method").parse_args()
    source = Path(args.app).resolve()
    recorder = install()
    out = console()
    steps: dict[str, list[GcpStep]] = {name: [] for name in (FIRST, AGAIN, REFRESH, SERIAL)}
    os.environ["SKYRIG_RETRY_BASE_MS"] = "1"
    with backends() as (endpoints, environ, fake, limits):
        os.environ.update(environ)
        fake_apis = {name for name in endpoints if name not in ("storage", "pubsub")}
        nodes = measure_runs(
            out,
            args.runs,
            steps,
            "gcp",
            lambda environment: fresh_app(source, environment, endpoints, fake),
            lambda command: measure(recorder, fake, command),
        )
    floors = GcpFloors(Counter(node["type"] for node in nodes), binding_resources(nodes))
    pubsub = "the Pub/Sub emulator" if "pubsub" in endpoints else f"no Pub/Sub ({limits.get('pubsub')})"
    out.print(
        f"\n{source.name} on the FAKE, fake-gcs-server and {pubsub}, environment type development, "
        f"{args.runs} run(s)"
    )
    title = f"Google API calls: {len(nodes)} nodes of {len(floors.types)} node types"
    logs: list[Column] = [
        ("FAKE's log: calls / mutating", fake_log(fake_apis)),
        ("not in api.CALLS", lambda runs: counts([s.uncounted for s in runs])),
    ]
    print_polled(out, GCP, title, steps, floors, logs, is_wait, repeated(steps[REFRESH][0]), args.detail)


if __name__ == "__main__":
    main()
