"""Delivering each service's runtime config to its Cloud Run service: an environment variable.

A service's container has ``SKYRIG_RUNTIME_CONFIG`` set to its config as inline JSON (a placeholder until
the first apply ends). After each apply, the config skyrig computed is written where it differs from the
one the service runs, which rolls out a new revision that reads it. The configs hold endpoints and
references, never secret values, so a plain variable is right (as AWS's plain ``String`` parameter).
"""

from __future__ import annotations

import json
from typing import Any

from skyrig.provider import Context, NotFound
from skyrig_gcp.api import wait_operation
from skyrig_gcp.names import run_service_name

VARIABLE = "SKYRIG_RUNTIME_CONFIG"
PLACEHOLDER = "{}"
"""A new service's config until the apply that made it ends (its revision is replaced then)."""


def deliver(context: Context, configs: dict[str, dict[str, Any]]) -> None:
    """Write each service's config where it changed (a new revision of that service). The services are
    read with one list call, not one get each."""
    client = context.client
    if not configs:
        return
    services = client.library("run.services")
    try:
        listed = {found.name: found for found in services.list_services(parent=client.location())}
    except NotFound:
        return
    for service in sorted(configs):
        name = (
            f"{client.location()}/services/{run_service_name(context.app, context.environment.name, service)}"
        )
        current = listed.get(name)
        if current is None:
            continue  # not a service this environment runs here
        text = json.dumps(configs[service], sort_keys=True, separators=(",", ":"))
        containers = current.template.containers
        if not containers:
            continue
        variables = containers[0].env
        held = [variable for variable in variables if variable.name == VARIABLE]
        if held and held[0].value == text:
            continue
        if held:
            held[0].value = text
        else:
            variables.append({"name": VARIABLE, "value": text})
        operation = services.update_service(service=current)
        wait_operation(context, f"the runtime config of Cloud Run service {service}", operation)
