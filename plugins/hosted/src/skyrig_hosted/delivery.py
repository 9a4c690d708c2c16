"""Delivering the services to the host after each successful apply (:class:`skyrig.provider.RuntimeDelivery`):
the app's source archive, uploaded once (only when the host does not have it), then each service's
deployment: that archive and the service's runtime config. What the host runs already (the same archive
and config) is left alone: an apply whose code and configuration did not change makes no call but one
list. The configs hold references, never secret values.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from skyrig.provider import Context, ProviderError, UserError
from skyrig_hosted.nodes import client, where
from skyrig_hosted.source import IGNORE_FILE, MAX_SIZE, pack

STARTING_WAIT = 900.0
"""How long a deployment still "starting" (its app's requirements.txt being installed, say) is waited for."""
POLL = 1.0


def config_sha256(config: dict[str, Any]) -> str:
    """The digest of a runtime config as the host computes it (canonical JSON: sorted keys, no spaces)."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _tail(lines: list[str], most: int = 40) -> list[str]:
    """The end of a service's output worth showing: from its last traceback's start when that is among the
    last ``most`` lines, else its last 20 lines."""
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceback")]
    if starts and len(lines) - starts[-1] <= most:
        return lines[starts[-1] :]
    return lines[-20:]


def _say(text: str) -> None:
    print(f"  hosted: {text}", file=sys.stderr, flush=True)


def deliver(context: Context, configs: dict[str, dict[str, Any]]) -> None:
    """Deploy each service whose source or config differs from what the host runs; a service that fails
    to start fails the apply with the end of its output, and so does a host that cannot deploy (a
    :class:`UserError` either way: the resources are provisioned, the next apply deploys again)."""
    if not configs or not context.settings.deploy:
        return
    env = context.environment.name
    try:
        _deliver(context, configs)
    except ProviderError as error:
        raise UserError(
            f"the environment is provisioned but its services were not deployed on the host: {error}",
            f"run skyrig apply --env {env} again once the host answers",
        ) from None


def _deliver(context: Context, configs: dict[str, dict[str, Any]]) -> None:
    host = client(context)
    app, env = where(context)
    source = pack(host.root)
    if source.size > MAX_SIZE:
        raise UserError(
            f"the app's folder {host.root} packs to {source.size // (1024 * 1024)} MiB, over the host's "
            f"{MAX_SIZE // (1024 * 1024)} MiB",
            f"list what the services do not need (data, builds) in {host.root / IGNORE_FILE}, one pattern a "
            "line",
        )
    running = {d.get("service"): d for d in host.deployments(app, env)}
    wanted = {service: config_sha256(config) for service, config in configs.items()}
    changed = [  # a failed one is deployed again (its requirements, say, may install now)
        service
        for service in sorted(configs)
        if (running.get(service) or {}).get("source") != source.sha256
        or (running.get(service) or {}).get("config_sha256") != wanted[service]
        or (running.get(service) or {}).get("state") == "failed"
    ]
    if not changed:
        return
    in_use = any(d.get("source") == source.sha256 for d in running.values())  # so the host has it
    if not in_use and not host.has_source(app, source.sha256):
        started = time.monotonic()
        host.upload_source(app, source.sha256, source.data)
        seconds = time.monotonic() - started
        _say(f"uploaded the app's source {source.sha256[:12]} ({source.size} bytes, {seconds:.2f} s)")

    def deploy(service: str) -> tuple[dict[str, Any], float]:
        started = time.monotonic()
        deployed = host.deploy(app, env, service, source.sha256, configs[service])
        if deployed.get("state") == "starting":  # installing its requirements: waited for
            _say(f"{service}: the host is installing the app's requirements.txt")
        while deployed.get("state") == "starting" and time.monotonic() - started < STARTING_WAIT:
            time.sleep(POLL)
            deployed = {**host.deployment(app, env, service), "changed": deployed.get("changed", True)}
        return deployed, time.monotonic() - started

    # the services start at once on the host (each answers when its process accepts connections)
    with ThreadPoolExecutor(max_workers=min(len(changed), 8)) as pool:
        results = list(pool.map(deploy, changed))
    failed = []
    for service, (deployed, seconds) in zip(changed, results, strict=True):
        state = deployed.get("state")
        if state == "failed":
            log = deployed.get("log") or []
            lines = log.splitlines() if isinstance(log, str) else [str(line) for line in log]
            tail = "\n".join(_tail(lines))
            failed.append(f"service {service} did not start on the host:\n{tail}" if tail else service)
            continue
        if deployed.get("changed", True):
            _say(f"deployed {service} ({state}, {seconds:.2f} s): {deployed.get('url', '')}")
    if failed:
        raise UserError(
            "; ".join(failed),
            f"fix the service (its output above says why) and run skyrig apply --env {env} again",
        )
