"""The app the suite provisions: every kind and feature the provider claims, and nothing it does not.

Two services. ``alpha`` owns everything and uses every operation on it; ``beta`` subscribes to alpha's
topic and only downloads from alpha's bucket, so that least privilege has something to show. Settings are
short (ack deadlines, backoffs) so that retries and dead letters happen within seconds.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from skyrig.provider import Manifest
from skyrig_conformance.profile import Profile

APP = "conformance"
"""The prefix of the suite's app names. Each deployment's app is named anew (``conformance-1a2b3c``), so
that deployments sharing one backend (an emulator for a whole run, a real cloud account) never collide."""
ENVIRONMENTS = ("conformance", "conformance-b")
"""The suite's environments: the second proves two environments of one app never collide."""

MESSAGES = """
import datetime

from pydantic import BaseModel


class Event(BaseModel):
    id: int
    key: str = "k"
    note: str = ""
    at: datetime.datetime | None = None
    tags: list[str] = []


class Session(BaseModel):
    user: str
    visits: int = 0
"""

HANDLERS = '''
import os
from pathlib import Path


def handle(event) -> None:
    """Subscriptions are driven by the suite's own handlers; this one is what the model records."""


def tick() -> None:
    """The cron job's endpoint: leaves a mark where the suite looks."""
    with Path(os.environ["SKYRIG_CONFORMANCE_TICKS"]).open("a") as marks:
        marks.write("tick\\n")
'''

WEB = '''
async def app(scope, receive, send):
    """A minimal ASGI app: every path answers with the service's name."""
    if scope["type"] != "http":
        return
    headers = [(b"content-type", b"text/plain")]
    await send({{"type": "http.response.start", "status": 200, "headers": headers}})
    await send({{"type": "http.response.body", "body": b"{service}"}})
'''


SERVICE = 'from skyrig import Service\n\nservice = Service("{service}", app="{service}.web:app")\n'


class Capabilities:
    """What the app declares, from what the provider claims (and the environment type)."""

    def __init__(
        self, manifest: Manifest, environment_type: str, unavailable: frozenset[str] = frozenset()
    ) -> None:
        from skyrig.provider import KIND_FAMILIES

        # the kinds of a family whose backend could not start here are not declared (their tests skip)
        self.kinds = frozenset(k for k in manifest.kinds if KIND_FAMILIES[k] not in unavailable)
        self.features = manifest.features
        self.sql = "sql_database" in self.kinds
        self.pubsub = {"topic", "subscription"} <= self.kinds
        self.cache = "cache_cluster" in self.kinds
        self.bucket = "bucket" in self.kinds
        self.secret = "secret" in self.kinds
        # outside local environments a cron job runs on schedule, which needs cron.managed
        self.cron = "cron_job" in self.kinds and (
            environment_type == "local" or "cron.managed" in self.features
        )
        self.dead_letter = "pubsub.dead_letter" in self.features
        self.ordering = self.pubsub and "pubsub.ordering" in self.features
        self.exactly_once = self.pubsub and "pubsub.exactly_once" in self.features
        self.eviction = self.cache and "cache.eviction_policy" in self.features
        self.versioning = self.bucket and "bucket.versioning" in self.features
        self.public = self.bucket and "bucket.public" in self.features

    def retries(self, count: int) -> int:
        """``max_retries`` for a subscription: ``count`` where dead letters are claimed, else never-ending
        (a provider without dead letters refuses any other value rather than drop messages)."""
        return count if self.dead_letter else -1


def resources(capabilities: Capabilities) -> str:
    """``alpha/resources.py``: the declarations."""
    c = capabilities
    lines = [
        "from skyrig import Bucket, CacheCluster, CronJob, Secret, SQLDatabase, Subscription, Topic",
        "",
        "from .handlers import handle, tick",
        "from .messages import Event, Session",
        "",
    ]
    if c.sql:
        lines.append('ledger = SQLDatabase("ledger", migrations="./migrations")')
    if c.pubsub:
        fast = 'min_backoff="1s", max_backoff="2s"'
        lines += [
            'events = Topic("events", Event)',
            f'Subscription(events, "record", handler=handle, ack_deadline="30s", max_concurrency=10, '
            f"max_retries={c.retries(5)}, {fast})",
            f'Subscription(events, "audit", handler=handle, max_retries={c.retries(5)}, {fast})',
            'doomed = Topic("doomed", Event)',
            f'Subscription(doomed, "doomed", handler=handle, max_retries={c.retries(2)}, {fast})',
            'slow = Topic("slow", Event)',
            f'Subscription(slow, "slow", handler=handle, ack_deadline="2s", '
            f"max_retries={c.retries(10)}, {fast})",
            'busy = Topic("busy", Event)',
            f'Subscription(busy, "limited", handler=handle, max_concurrency=3, '
            f"max_retries={c.retries(5)}, {fast})",
        ]
        if c.dead_letter:
            lines += [
                'fatal = Topic("fatal", Event)',
                f'Subscription(fatal, "fatal", handler=handle, ack_deadline="2s", max_retries=0, {fast})',
            ]
        if c.ordering:
            lines += [
                'sequence = Topic("sequence", Event, ordering_attribute="key")',
                f'Subscription(sequence, "in-order", handler=handle, max_concurrency=10, '
                f"max_retries={c.retries(5)}, {fast})",
            ]
        if c.exactly_once:
            lines += [
                'once = Topic("once", Event, delivery="exactly-once")',
                f'Subscription(once, "once", handler=handle, ack_deadline="2s", max_concurrency=10, '
                f"max_retries={c.retries(5)}, {fast})",
            ]
    if c.cache:
        lines += [
            'sessions = CacheCluster("sessions")',
            'session = sessions.keyspace("session/{id}", value=Session, default_expiry="1h")',
        ]
        if c.eviction:
            lines.append('volatile = CacheCluster("volatile", eviction_policy="volatile-lru")')
    if c.bucket:
        lines.append('files = Bucket("files")')
        if c.versioning:
            lines.append('history = Bucket("history", versioned=True)')
        if c.public:
            lines.append('assets = Bucket("assets", public=True)')
    if c.secret:
        lines.append('api_key = Secret("api-key")')
    if c.cron:
        lines.append('ticker = CronJob("tick", title="Tick", every="1h", endpoint=tick)')
    return "\n".join(lines) + "\n"


def uses(capabilities: Capabilities) -> str:
    """``alpha/use.py``: every operation on every resource, so the model grants alpha all of them."""
    c = capabilities
    body = []
    if c.sql:
        body += ["ledger.connect()", "ledger.connect_async()", "ledger.pool()", "ledger.url"]
    if c.pubsub:
        topics = ["events", "doomed", "slow", "busy"] + ["fatal"] * c.dead_letter
        topics += ["sequence"] * c.ordering + ["once"] * c.exactly_once
        body += [f"{topic}.publish(None)" for topic in topics]
    if c.cache:
        body += ['session.get(id="x")', 'session.set("x", None)', 'session.delete(id="x")']
    if c.bucket:
        buckets = ["files"] + ["history"] * c.versioning + ["assets"] * c.public
        for bucket in buckets:
            body += [
                f'{bucket}.upload("k", b"")',
                f'{bucket}.download("k")',
                f"{bucket}.list()",
                f'{bucket}.remove("k")',
                f'{bucket}.public_url("k")',
                f'{bucket}.signed_url("k")',
            ]
    if c.secret:
        body.append("api_key.value")
    names = sorted({line.split(".")[0] for line in body})
    head = f"from .resources import {', '.join(names)}\n\n\n" if names else ""
    return head + "def use() -> None:\n" + textwrap.indent("\n".join(body or ["pass"]), "    ") + "\n"


def beta(capabilities: Capabilities) -> dict[str, str]:
    """The files of service ``beta``: a subscriber to alpha's topic that only downloads alpha's files."""
    c = capabilities
    lines = ["from skyrig import Subscription", ""]
    if c.pubsub:
        lines += [
            "from alpha.resources import events",
            "",
            "",
            "def handle(event) -> None:",
            '    """What the model records; the suite drives the subscription with its own handler."""',
            "",
            "",
            f'Subscription(events, "inbox", handler=handle, max_retries={c.retries(5)})',
        ]
    if c.bucket:
        lines += ["from alpha.resources import files", "", "", "def fetch(key: str) -> bytes:"]
        lines.append("    return files.download(key)")
    return {
        "beta/__init__.py": SERVICE.format(service="beta"),
        "beta/web.py": WEB.format(service="beta").lstrip(),
        "beta/uses.py": "\n".join(lines) + "\n",
    }


def app_name() -> str:
    """A new app name for a deployment of the suite's app."""
    import uuid

    return f"{APP}-{uuid.uuid4().hex[:6]}"


def config(profile: Profile, app: str, environments: tuple[str, ...] = ENVIRONMENTS) -> str:
    """``skyrig.toml``: the suite's environments on the provider under test."""
    lines = [f'app = "{app}"', ""]
    for name in environments:
        lines += [f"[env.{name}]", f'type = "{profile.environment_type}"', f'provider = "{profile.provider}"']
        lines += [f'{family} = "{provider}"' for family, provider in sorted(profile.families.items())]
        lines.append("")
        if profile.settings:
            lines += [f"[env.{name}.{profile.provider}]", *_toml(profile.settings), ""]
        for other, values in sorted(profile.beside.items()):
            lines += [f"[env.{name}.{other}]", *_toml(values), ""]
    return "\n".join(lines)


def _toml(values: Mapping[str, Any]) -> list[str]:
    """``key = value`` lines for scalar and list settings (nested tables become inline tables)."""
    return [f"{key} = {_value(value)}" for key, value in values.items()]


def _value(value: Any) -> str:
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{key} = {_value(item)}" for key, item in value.items()) + "}"
    raise TypeError(f"a profile setting cannot be {type(value).__name__}: {value!r}")


def write_app(root: Path, app: str, profile: Profile, manifest: Manifest) -> Capabilities:
    """Write the suite's app named ``app`` into ``root`` (a new folder) for ``profile``'s provider."""
    from skyrig_conformance.requirements import unavailable

    capabilities = Capabilities(manifest, profile.environment_type, unavailable(profile.limits))
    files = {
        "skyrig.toml": config(profile, app),
        "alpha/__init__.py": SERVICE.format(service="alpha"),
        "alpha/web.py": WEB.format(service="alpha").lstrip(),
        "alpha/messages.py": MESSAGES.lstrip(),
        "alpha/handlers.py": HANDLERS.lstrip(),
        "alpha/resources.py": resources(capabilities),
        "alpha/use.py": uses(capabilities),
        **beta(capabilities),
    }
    if capabilities.sql:
        files["alpha/migrations/0001_entries.up.sql"] = (
            "CREATE TABLE entries (id serial PRIMARY KEY, note text NOT NULL);\n"
        )
        files["alpha/migrations/0002_amount.up.sql"] = (
            "ALTER TABLE entries ADD COLUMN amount integer NOT NULL DEFAULT 0;\n"
        )
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return capabilities


def edit(root: Path, old: str, new: str) -> None:
    """Replace ``old`` with ``new`` in ``alpha/resources.py`` (a change a developer makes)."""
    path = root / "alpha" / "resources.py"
    text = path.read_text()
    if old not in text:
        raise AssertionError(f"the suite's app has no {old!r} to change")
    path.write_text(text.replace(old, new, 1))
