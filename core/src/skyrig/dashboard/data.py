"""What the dashboard shows, gathered from skyrig's own parts: one function per section of the page.

Each function is synchronous (the app runs it in a worker thread), reads the app afresh on every call so
that the page follows edits to the code and to ``skyrig.toml``, and returns plain JSON values. Errors are
raised as they come: the app turns them into an error shown in that section only.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from skyrig.errors import UserError

if TYPE_CHECKING:
    from skyrig.engine.session import Session
    from skyrig.model import AppModel

CRON_TIMEOUT = 300.0
"""Seconds "Run now" waits for a cron job's endpoint to finish."""

# Fields every resource has, shown in their own columns rather than among its settings.
_COMMON = {"kind", "name", "service", "location"}


@contextmanager
def open_session(root: Path, environment: str) -> Iterator[Session]:
    """Environment ``environment`` of the app at ``root``, as the CLI opens it; its state store is
    closed again afterwards."""
    from skyrig.config import load_config
    from skyrig.engine.session import Session

    session = Session(load_config(root), environment)
    try:
        yield session
    finally:
        session.store.close()


def _model(root: Path) -> AppModel:
    from skyrig.analysis import build_model
    from skyrig.cli.app import app_name

    return build_model(root, app_name(root))


def _iso(timestamp: float | None) -> str | None:
    return datetime.fromtimestamp(timestamp, UTC).isoformat() if timestamp else None


def _line(location: str) -> str:
    """``path:line`` of a ``path:line:column`` location."""
    return location.rsplit(":", 1)[0]


def settings_of(resource: Any) -> dict[str, Any]:
    """A resource's own settings, as JSON values, without the fields every resource has."""
    data = resource.model_dump(mode="json", exclude=_COMMON)
    if "migration_files" in data:
        data["migration_files"] = [migration["file"] for migration in data["migration_files"]]
    if "keyspaces" in data:
        data["keyspaces"] = [
            {k: v for k, v in keyspace.items() if k != "location" and v is not None}
            for keyspace in data["keyspaces"]
        ]
    return {key: value for key, value in data.items() if value is not None}


def model_section(root: Path) -> dict[str, Any]:
    """The Application Model: services, resources with their settings, and who uses what."""
    model = _model(root)
    owners = {(r.kind, r.name): r.service for r in model.resources}
    return {
        "app": model.app,
        "services": [
            {
                "name": s.name,
                "app": s.app,
                "package": s.package,
                "location": s.location,
                "declared_at": _line(s.location),
            }
            for s in model.services
        ],
        "resources": [
            {
                "kind": r.kind,
                "name": r.name,
                "service": r.service,
                "location": r.location,
                "declared_at": _line(r.location),
                "settings": settings_of(r),
            }
            for r in model.resources
        ],
        "uses": [
            {
                "service": u.service,
                "kind": u.kind,
                "resource": u.resource,
                "owner": owners.get((u.kind, u.resource)),
                "operations": list(u.operations),
            }
            for u in model.uses
        ],
    }


def graph_section(root: Path, environment: str) -> dict[str, Any]:
    """The infrastructure graph of ``environment``: its nodes, and the picture of them as SVG."""
    from skyrig.dashboard.svg import render_svg

    with open_session(root, environment) as session:
        graph = session.graph
        types = {node_id: node.type for node_id, node in graph.nodes.items()}
        return {
            "environment": environment,
            "nodes": graph.to_dict()["nodes"],
            "svg": render_svg(graph.order, types, graph.dependencies),
        }


def status_section(root: Path, current: str) -> dict[str, Any]:
    """Every environment of ``skyrig.toml``: its providers and what state says was provisioned."""
    from skyrig.config import load_config
    from skyrig.run.runfile import read_run_file
    from skyrig.state import StateStore, open_store

    config = load_config(root)
    stores: dict[str, StateStore] = {}  # one per state URL (an environment may have a store of its own)
    try:
        environments = []
        for name, environment in sorted(config.environments.items()):
            if environment.state not in stores:
                stores[environment.state] = open_store(environment.state, root)
            store = stores[environment.state]
            declared = config.project.env[name]
            records = store.nodes(name)
            applied = store.applied_at(name)
            environments.append(
                {
                    "name": name,
                    "type": environment.type,
                    "provider": declared.provider,
                    "overrides": {
                        family: provider
                        for family, provider in sorted(environment.providers.items())
                        if provider != declared.provider
                    },
                    "current": name == current,
                    "applied": applied is not None or bool(records),
                    "last_applied": _iso(applied),
                    "nodes": len(records),
                    "serial": store.serial(name),
                    "drift": {
                        r.id: list(r.drift) for r in sorted(records.values(), key=lambda r: r.id) if r.drift
                    },
                    "pending": sorted(store.intents(name)),
                    "running": read_run_file(root, name) is not None,
                }
            )
    finally:
        for store in stores.values():
            store.close()
    return {"app": config.app, "current": current, "environments": environments}


def messages_section(root: Path, environment: str, limit: int = 50) -> dict[str, Any]:
    """The last ``limit`` pub/sub messages of ``environment`` and their deliveries, from its provider."""
    from skyrig.plugins.capabilities import MessageHistory, capability

    with open_session(root, environment) as session:
        provider = session.environment.provider_for("pubsub")
        history = capability(session.provider(provider), MessageHistory)
        messages = history.recent_messages(session.context(provider), limit) if history else []
    # whatever a provider put in a message, the page gets JSON
    return {"provider": provider, "messages": json.loads(json.dumps(list(messages), default=str))}


def cron_section(root: Path, environment: str) -> dict[str, Any]:
    """The app's cron jobs, and whether a ``skyrig run`` is serving ``environment`` to run them now."""
    from skyrig.run.runfile import read_run_file

    model = _model(root)
    run = read_run_file(root, environment)
    return {
        "environment": environment,
        "running": run is not None,
        "scheduled": bool(run and run.cron),
        "jobs": [
            {
                "name": r.name,
                "title": r.title,
                "schedule": r.schedule,
                "every": r.every,
                "service": r.service,
                "endpoint": r.endpoint,
                "declared_at": _line(r.location),
            }
            for r in model.of_kind("cron_job")
        ],
    }


def secrets_section(root: Path, environment: str) -> dict[str, Any]:
    """Each declared secret and whether the environment's secrets provider holds a value for it.

    Only :meth:`skyrig.provider.SecretStore.secret_is_set` is asked: values are never read.
    """
    from skyrig.plugins.capabilities import SecretStore, capability

    with open_session(root, environment) as session:
        provider_name = session.environment.provider_for("secrets")
        provider = capability(session.provider(provider_name), SecretStore)
        context = session.context(provider_name)
        secrets = []
        for resource in session.model.of_kind("secret"):
            if provider is None:
                raise UserError(
                    f"provider {provider_name!r} cannot tell whether a secret is set",
                    "check the secrets in the provider's own console",
                )
            is_set = provider.secret_is_set(context, resource.name)
            secrets.append(
                {
                    "name": resource.name,
                    "service": resource.service,
                    "set": bool(is_set),
                    "command": f"skyrig secret set {resource.name} --env {environment}",
                }
            )
    return {
        "environment": environment,
        "provider": provider_name,
        "secrets": secrets,
        "missing": [s["name"] for s in secrets if not s["set"]],
    }


def run_cron(
    root: Path, environment: str, job: str, timeout: float = CRON_TIMEOUT
) -> tuple[int, dict[str, Any]]:
    """Run cron job ``job`` now in the service that owns it, through the running ``skyrig run``.

    Answers an HTTP status and the outcome: 200 with ``{"job", "ok", "seconds", "error"}`` as the service
    reported it, whether the job succeeded or failed; 404 for a job the app does not declare; 409 when no
    ``skyrig run`` serves the job's service; 502/504 when the service refused or did not answer.
    """
    from skyrig.run.runfile import read_run_file
    from skyrig.runtime.control import HEADER, PREFIX

    resource = _model(root).resource("cron_job", job)
    if resource is None:
        return 404, {"job": job, "ok": False, "error": f"the app declares no cron job {job!r}"}
    run = read_run_file(root, environment)
    if run is None:
        return 409, {
            "job": job,
            "ok": False,
            "error": f"no skyrig run is serving environment {environment!r}, so there is nothing to run "
            f"the job in",
            "hint": f"start the app with: skyrig run --env {environment}",
        }
    url = run.services.get(resource.service)
    if url is None:
        return 409, {
            "job": job,
            "ok": False,
            "error": f"service {resource.service!r}, which owns the job, is not served by the running "
            "skyrig run",
            "hint": "restart skyrig run so that it serves every service",
        }
    request = urllib.request.Request(
        f"{url.rstrip('/')}{PREFIX}cron/{job}", data=b"", method="POST", headers={HEADER: run.token}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = _json(response.read())
    except urllib.error.HTTPError as error:
        detail = _json(error.read())
        if "ok" in detail:  # the job ran and failed (or the service has no such job): its outcome
            return 200, {**detail, "job": job, "ok": False, "service": resource.service}
        reason = detail.get("error") or detail.get("detail") or error.reason
        return 502, {
            "job": job,
            "ok": False,
            "service": resource.service,
            "error": f"service {resource.service!r} refused to run the job (HTTP {error.code}): {reason}",
        }
    except TimeoutError:
        return 504, {
            "job": job,
            "ok": False,
            "service": resource.service,
            "error": f"service {resource.service!r} did not finish the job within {timeout:.0f} s",
        }
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        return 502, {
            "job": job,
            "ok": False,
            "service": resource.service,
            "error": f"service {resource.service!r} at {url} did not answer: {reason}",
        }
    return 200, {**answer, "job": job, "ok": answer.get("ok") is True, "service": resource.service}


def _json(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body or b"{}")
    except ValueError:
        return {"error": body.decode(errors="replace")[:500]}
    return value if isinstance(value, dict) else {"answer": value}
