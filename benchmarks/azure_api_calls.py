"""Azure API calls of the Azure provider on an example app, each against its minimum, against Azurite and the
FAKES.

On a copy of the app with an ``[env.azureN]`` environment (type ``development``, provider ``azure``, the
settings of the provider's conformance profile) on the backends ``skyrig_azure.conformance.backends()``
starts (the FAKE Azure Resource Manager with Key Vault's secrets, the FAKE Service Bus broker and Azurite;
Resource Manager has no emulator, so every management call goes to the FAKE), this benchmark:

1. counts the Azure calls, all of them and the mutating ones (PUT, PATCH, DELETE and the POST actions
   that are not a ``list...``/``check...``/``get...``: ``skyrig_azure.api.is_mutating``), of a first
   ``skyrig apply``, a no-change ``apply`` and a refresh (``skyrig plan``), each against the minimum
   needed:

   - first apply: one create call per node, and one lookup call per node type (the engine looks up, by
     its identity, every node state does not record before creating it, one ``find_many`` per node type);
     the polls of long-running operations are counted apart (their number is the FAKE's ``lro_delay``
     over the provider's ``wait_delay``, not the provider's choice);
   - no-change apply: no mutating call; the refresh's reads, and one read of each web app's app settings
     to see whether its runtime config changed (:meth:`AzureFloors.runtime_reads`: Azure has no bulk
     read of app settings);
   - refresh: the reads of :data:`REFRESH_FLOOR` (one list call per node type, or the get of the one
     resource of a known name, plus the per-resource reads where Azure's list leaves something out).

   Calls are attributed to the node type, the contract method (``create``, ``read_many``, ``find_many``...)
   and the node that made them; a call is named by its HTTP method, its resource type and the SDK method
   the provider called (``GET Web/sites web_apps.list_by_resource_group``);
2. times each step (``--parallelism 10``, the default) and the first apply with ``--parallelism 1``: the
   FAKE finishes a long-running operation after ``lro_delay`` (0.1 s), so the wall times are the
   backends' delays, not Azure's minutes (a PostgreSQL server or a Redis cache takes 5 to 20 of them).

The CLI runs in this process (``skyrig.cli.main``). Without editing the provider, the benchmark wraps
``AzureClient.client_options`` in its own process to add two pipeline policies to every Azure client the
provider makes: one per call (who made it, found by walking the stack to the outermost node-type method;
a long-running operation's polls run in the poller's own thread and are given to the call that started
the operation) and one per HTTP request (retries included). It checks its count against
:data:`skyrig_azure.api.CALLS` and against the FAKE's own log (``FakeAzure.calls``, which tells mutating
calls and polls apart by itself).

    .venv/bin/python benchmarks/azure_api_calls.py [--runs 3] [--detail] [--app DIR]
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
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

from skyrig_azure import api
from skyrig_azure.conformance import backends
from skyrig_azure.conformance import settings as profile_settings
from skyrig_azure.nodes import AzureNodeType

AZURE = Provider("azure", AzureNodeType, operation="call", joiner=" ")

POLL = "(poll)"
"""The SDK method of a long-running operation's status request (made by azure-core's poller)."""
RESULT = "(operation's result)"
"""The SDK method of the poller's last read: the resource, or the operation's result, once it is done."""
VAULT_CLIENT = "keyvault-secrets"
"""The client library of Key Vault's data plane (``azure-keyvault-secrets``), as :func:`sdk_method`
names it."""

REFRESH_FLOOR: FloorTable = {
    "azure.network.resource_group": (1, 0, "resource_groups.get (one, of a known name)"),
    "azure.network.vnet": (1, 0, "virtual_networks.get (one, of a known name)"),
    "azure.network.subnet": (1, 0, "subnets.list (of the one VNet)"),
    "azure.network.nsg": (1, 0, "network_security_groups.list"),
    "azure.network.dns_zone": (1, 1, "private_zones.list; virtual_network_links.get per zone"),
    "azure.iam.identity": (2, 0, "identities list; role_assignments list (roles given by hand)"),
    "azure.iam.role_assignment": (1, 0, "role_assignments.list_for_resource_group"),
    "azure.sql.server": (2, 0, "servers.list_by_resource_group; configurations.get (TLS required)"),
    "azure.sql.database": (1, 0, "databases.list_by_server (of the one server)"),
    "azure.pubsub.namespace": (1, 0, "namespaces.get (one, of a known name)"),
    "azure.pubsub.topic": (1, 0, "topics.list_by_namespace"),
    "azure.pubsub.subscription": (0, 1, "subscriptions.list_by_topic (per topic holding subscriptions)"),
    "azure.cache.redis": (1, 0, "redis.list_by_resource_group"),
    "azure.cache.access": (1, 0, "access_policy_assignment.list (of the one cache)"),
    "azure.cache.endpoint": (1, 1, "private_endpoints.list; private_dns_zone_groups.list per endpoint"),
    "azure.objects.account": (2, 0, "storage_accounts.get_properties; blob_services.get_service_properties"),
    "azure.objects.container": (1, 0, "blob_containers.list (of the one account)"),
    "azure.objects.lifecycle": (1, 0, "management_policies.get (the account's one policy)"),
    "azure.objects.cdn_profile": (1, 0, "profiles.get (one, of a known name)"),
    "azure.objects.cdn_endpoint": (1, 0, "afd_endpoints.get (one, of a known name)"),
    "azure.objects.cdn_origin_group": (1, 0, "afd_origin_groups.get (one, of a known name)"),
    "azure.objects.cdn_origin": (1, 0, "afd_origins.get (one, of a known name)"),
    "azure.objects.cdn_route": (1, 0, "routes.get (one, of a known name)"),
    "azure.secrets.vault": (1, 0, "vaults.get (one, of a known name)"),
    "azure.secrets.secret": (1, 0, "secrets.list (Key Vault's data plane: which have a value)"),
    "azure.compute.plan": (1, 0, "app_service_plans.get (one, of a known name)"),
    "azure.compute.site": (1, 2, "web_apps list; per web app its configuration, app settings"),
    "azure.compute.jobs": (1, 0, "managed_environments.get (one, of a known name)"),
    "azure.compute.migration": (1, 1, "jobs.list_by_resource_group; jobs_executions.list per migration"),
    "azure.cron.signing_key": (1, 0, "get_secret (Key Vault's data plane: one, of a known name)"),
    "azure.cron.job": (1, 0, "jobs.list_by_resource_group"),
}
"""Node type -> (reads per type, reads per node, which calls): the fewest reads that refresh its nodes.
One list call per type (issue 14), or the get of the one resource of a known name; two where a node type
holds two kinds of resource or Azure's read of the resource leaves a checked setting out (an identity and
the role assignments given to it by hand; a PostgreSQL server and its ``require_secure_transport``
parameter; a storage account and its blob service's versioning and soft delete); one per resource where
Azure reads a part only under its parent (a zone's VNet link, a private endpoint's DNS zone group, a
migration job's executions, a topic's subscriptions) or leaves it out of its list (a web app's
configuration and its app settings: the Key Vault references). An unknown type counts one list call."""


# -- counting -------------------------------------------------------------------------------------------


@dataclass
class Recorder:
    """What the pipeline policies saw: calls by :data:`Key` and by node id, HTTP requests sent."""

    calls: Counter[Key] = field(default_factory=Counter)
    by_node: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    local: threading.local = field(default_factory=threading.local)

    def reset(self) -> None:
        """Forget what was counted (here and in ``skyrig_azure.api.CALLS``)."""
        with self.lock:
            self.calls.clear()
            self.by_node.clear()
            self.requests = 0
        api.CALLS.clear()

    def call(self, method: str, url: str) -> None:
        """One call (the client's retries of it are not calls again): counted by who made it."""
        kind, _ = api.call_key(method, url)
        started_by = getattr(self.local, "operation", None)
        if started_by is not None:  # a poller's thread: the call that started the operation made it
            node_type, contract, node, service, _sdk = started_by
            sdk = POLL if kind == "operations" else RESULT
        else:
            node_type, contract, node = AZURE.caller()
            service, sdk = sdk_method()
        if service == VAULT_CLIENT:  # Key Vault's data plane: named as the FAKE names it
            kind = "KeyVault/secrets"
        with self.lock:
            self.calls[node_type, contract, service, operation(method, kind, sdk)] += 1
            if node:
                self.by_node[node] += 1

    def request(self) -> None:
        """One HTTP request (a retry is one more)."""
        with self.lock:
            self.requests += 1


def operation(method: str, kind: str, sdk: str) -> str:
    """A call as the tables name it: ``PUT Web/sites web_apps.begin_create_or_update``."""
    return f"{method} {kind.removeprefix('Microsoft.')} {sdk}".rstrip()


def sdk_method() -> tuple[str, str]:
    """(client, method) of the SDK call being made: what the provider called through its translated
    management client (``("web", "web_apps.get")``), or the outermost method of another Azure client
    library (Key Vault's ``SecretClient.get_secret``: ``("keyvault-secrets", "get_secret")``; a page of a
    listing, the provider's function that reads it)."""
    frame = sys._getframe(2)
    library, method, reader = "", "", ""
    while frame is not None:
        module = str(frame.f_globals.get("__name__", ""))
        if module == "skyrig_azure.api" and frame.f_code.co_name == "_call":
            service, _, name = str(frame.f_locals.get("where", "")).partition(".")
            return service, name
        if module.startswith("azure.") and not module.startswith("azure.core"):
            library = ".".join(module.split(".")[1:3]).replace(".", "-").replace("_", "")
            method = frame.f_code.co_name
        elif module.startswith("skyrig_azure.") and library and not reader:
            reader = f"{module.rpartition('.')[2]}.{frame.f_code.co_name}"
        frame = frame.f_back
    if method == "get_next" or (not method and library):
        method = f"(a page, read by {reader})"
    return library, method


def install(recorder: Recorder) -> None:
    """Add the recorder's policies to every Azure client the provider makes from now on
    (``AzureClient.client_options`` wrapped in this process), and give each long-running operation's
    poller thread the call that started it (azure-core's ``LROPoller`` wrapped likewise)."""
    from azure.core.pipeline.policies import SansIOHTTPPolicy
    from azure.core.polling import LROPoller

    class PerCall(SansIOHTTPPolicy):  # type: ignore[type-arg]
        def on_request(self, request: Any) -> None:
            recorder.call(request.http_request.method, request.http_request.url)

    class PerRequest(SansIOHTTPPolicy):  # type: ignore[type-arg]
        def on_request(self, request: Any) -> None:
            recorder.request()

    original = api.AzureClient.client_options

    def client_options(self: api.AzureClient) -> dict[str, Any]:
        options = original(self)
        options["per_call_policies"] = [*options.get("per_call_policies", []), PerCall()]
        options["per_retry_policies"] = [*options.get("per_retry_policies", []), PerRequest()]
        return options

    api.AzureClient.client_options = client_options  # type: ignore[method-assign]

    init, start = LROPoller.__init__, LROPoller._start

    def poller_init(self: Any, *args: Any, **kwargs: Any) -> None:
        self._skyrig_started_by = (*AZURE.caller(), *sdk_method())
        init(self, *args, **kwargs)

    def poller_start(self: Any) -> None:
        recorder.local.operation = getattr(self, "_skyrig_started_by", None)
        start(self)

    LROPoller.__init__ = poller_init  # type: ignore[method-assign]
    LROPoller._start = poller_start  # type: ignore[method-assign]


def is_wait(name: str) -> bool:
    """Whether a call is a poll of a long-running operation's status."""
    return name.endswith(POLL)


def fresh_app(
    source: Path, environment: str, endpoints: dict[str, str], bundle: str, fake: Any
) -> contextlib.AbstractContextManager[Path]:
    """A fresh copy of the app (no state) with ``[env.ENVIRONMENT]`` on the backends at ``endpoints``, the
    FAKE ARM wiped. Each run takes an environment of its own: Azurite and the FAKE broker are not wiped
    between runs."""
    fake.reset()
    return app_copy(source, environment, "azure", profile_settings(endpoints, bundle))


# -- measuring ------------------------------------------------------------------------------------------


@dataclass
class AzureStep(Step):
    """One command (:class:`api_calls.Step`), what ``skyrig_azure.api.CALLS`` counted, the HTTP requests
    sent, the FAKE's log of its calls (``(type, method, mutating, poll, challenge) -> calls``; a challenge:
    Key Vault's 401 to a request sent without a token) and the changes."""

    counted: int
    requests: int
    fake: Counter[tuple[str, str, bool, bool, bool]]
    changes: int

    @staticmethod
    def is_mutating(name: str) -> bool:
        """Whether a call (as :func:`operation` names it) changes something."""
        method, _, rest = name.partition(" ")
        return api.is_mutating((rest.partition(" ")[0], method))

    @property
    def waits(self) -> int:
        """The polls of long-running operations."""
        return sum(n for (_, _, _, name), n in self.calls.items() if is_wait(name))

    def fake_counts(self) -> tuple[int, int, int, int]:
        """(calls, mutating calls, polls, challenges) the FAKE logged (a poll there: a status or result
        request; the calls and mutating calls leave the challenges out)."""
        calls = [(key, n) for key, n in self.fake.items() if not key[4]]
        return (
            sum(n for _, n in calls),
            sum(n for (_, _, mutating, _, _), n in calls if mutating),
            sum(n for (_, _, _, poll, _), n in calls if poll),
            sum(self.fake.values()) - sum(n for _, n in calls),
        )


def measure(recorder: Recorder, fake: Any, command: Callable[[], str]) -> AzureStep:
    """Run ``command`` with the counters (the benchmark's, the provider's and the FAKE's) cleared."""
    recorder.reset()
    fake.calls.clear()
    outcome = run(command)
    return AzureStep(
        calls=Counter(recorder.calls),
        by_node=Counter(recorder.by_node),
        seconds=outcome.seconds,
        retries=outcome.retries,
        counted=sum(api.CALLS.values()),
        requests=recorder.requests,
        fake=Counter(
            (c.type, c.method, c.mutating, c.poll, c.type.startswith("KeyVault/") and c.status == 401)
            for c in fake.calls
        ),
        changes=outcome.changes,
    )


@dataclass
class AzureFloors(Floors):
    """The floors of :data:`REFRESH_FLOOR` (an unknown type, one list call), polls apart; a topic's
    subscriptions, one list per topic holding some."""

    topics_with_subscriptions: int = 0

    table = REFRESH_FLOOR
    unknown = (1, 0, "one list call")

    def type_floor(self, name: str) -> int:
        """The fewest reads that refresh the nodes of type ``name``."""
        if name == "azure.pubsub.subscription":
            return self.topics_with_subscriptions
        return super().type_floor(name)

    def runtime_reads(self) -> int:
        """The fewest reads that tell whether the services' runtime config changed (a no-change apply
        checks it after the refresh): each web app's app settings (``list_application_settings``; Azure
        reads them one app at a time)."""
        return self.types["azure.compute.site"]


def topics_with_subscriptions(nodes: list[dict[str, Any]]) -> int:
    """The topics that hold subscriptions (Service Bus lists subscriptions one topic at a time)."""
    return len(
        {
            dependency
            for node in nodes
            if node["type"] == "azure.pubsub.subscription"
            for dependency in node["depends_on"]
            if dependency.startswith("pubsub.topic/")
        }
    )


# -- reporting ------------------------------------------------------------------------------------------


def repeated(step: AzureStep) -> dict[str, list[str]]:
    """The list calls that more than one node type makes in one step (the same request: a resource
    group's jobs): ``call -> node types``."""
    makers: dict[str, set[str]] = {}
    for (node_type, _, _, name), _n in step.calls.items():
        sdk = name.rpartition(" ")[2]
        if ".list" in sdk and node_type not in (OUTSIDE, PROVIDER):
            makers.setdefault(name, set()).add(AZURE.short(node_type))
    return {name: sorted(found) for name, found in sorted(makers.items()) if len(found) > 1}


def fake_log(runs: list[AzureStep]) -> str:
    """The column of what the FAKE logged (calls / mutating / polls, and Key Vault's challenges apart),
    marked where it differs from this count."""
    logged = [s.fake_counts() for s in runs]
    counted = [(s.total, s.mutating, s.waits) for s in runs]
    agree = "" if [found[:3] for found in logged] == counted else " [red](counted otherwise here)[/]"
    cells = " / ".join(counts([found[i] for found in logged]) for i in range(3))
    challenges = counts([found[3] for found in logged])
    return f"{cells}{'' if challenges == '0' else f' + {challenges} challenge(s)'}{agree}"


# -- the benchmark --------------------------------------------------------------------------------------


def main() -> None:
    """Measure, then print the tables."""
    args = arguments(__doc__, "call").parse_args()
    source = Path(args.app).resolve()
    recorder = Recorder()
    install(recorder)
    out = console()
    steps: dict[str, list[AzureStep]] = {name: [] for name in (FIRST, AGAIN, REFRESH, SERIAL)}
    os.environ["SKYRIG_RETRY_BASE_MS"] = "1"
    with backends() as (endpoints, environ, fake, _limits, bundle):
        os.environ.update(environ)
        nodes = measure_runs(
            out,
            args.runs,
            steps,
            "azure",
            lambda environment: fresh_app(source, environment, endpoints, bundle, fake),
            lambda command: measure(recorder, fake, command),
        )
    floors = AzureFloors(Counter(node["type"] for node in nodes), topics_with_subscriptions(nodes))
    out.print(
        f"\n{source.name} on the FAKE ARM (with Key Vault), the FAKE Service Bus broker and Azurite, "
        f"environment type development, {args.runs} run(s)"
    )
    title = f"Azure calls: {len(nodes)} nodes of {len(floors.types)} node types"
    logs: list[Column] = [
        ("FAKE's log: calls / mutating / polls", fake_log),
        ("api.CALLS", lambda runs: counts([s.counted for s in runs])),
        ("HTTP requests", lambda runs: counts([s.requests for s in runs])),
    ]
    print_polled(out, AZURE, title, steps, floors, logs, is_wait, repeated(steps[REFRESH][0]), args.detail)


if __name__ == "__main__":
    main()
