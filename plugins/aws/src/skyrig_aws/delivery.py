"""Delivering each service's runtime config to its ECS tasks: an SSM parameter per service.

The task definition names the parameter as a container secret, so ECS sets ``SKYRIG_RUNTIME_CONFIG`` to
its value (inline JSON) when a task starts; the parameter is made with the service, holding the config
the engine computes from what the apply has made so far (:attr:`skyrig.provider.Context.runtime_config`:
every resource the service owns or uses is done by then, but its cron jobs, which come after it), and
deleted with it. After each apply, the config skyrig computed is written where it changed, and the
services whose config changed are redeployed to read it: a new service rolls out once, unless it has
cron jobs (their entries are known only once they exist). The configs hold endpoints
and references, never secret values, so a plain ``String`` parameter is right.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import Any

from skyrig.provider import Context, NotFound, ProviderError
from skyrig_aws.api import tag_list
from skyrig_aws.names import cluster_name, runtime_parameter_name

PLACEHOLDER = "{}"
"""A new service's parameter when no config is known yet (outside an apply)."""


def text(config: Mapping[str, Any]) -> str:
    """A runtime config as the parameter holds it (compact JSON, keys sorted: equal configs, equal text)."""
    return json.dumps(config, sort_keys=True, separators=(",", ":"))


def parameter_arn(context: Context, service: str) -> str:
    client = context.client
    name = runtime_parameter_name(context.app, context.environment.name, service)
    return f"arn:{client.partition()}:ssm:{client.settings.region}:{client.account()}:parameter{name}"


def make_parameter(context: Context, service: str, tags: dict[str, str]) -> None:
    """The service's parameter, with its runtime config as the apply knows it now, unless it exists
    already (an earlier run's: the delivery after the apply brings it up to date)."""
    name = runtime_parameter_name(context.app, context.environment.name, service)
    config = context.runtime_config(service)
    try:
        context.client.ssm.put_parameter(
            Name=name,
            Value=PLACEHOLDER if config is None else text(config),
            Type="String",
            Tier="Intelligent-Tiering",  # standard up to 4 KB, advanced above, as the config grows
            Description="skyrig runtime config of the service (endpoints and references, no secret values)",
            Tags=tag_list(tags),
        )
    except ProviderError as error:
        if "AlreadyExists" not in str(error):
            raise


def delete_parameter(context: Context, service: str) -> None:
    with contextlib.suppress(NotFound):
        context.client.ssm.delete_parameter(
            Name=runtime_parameter_name(context.app, context.environment.name, service)
        )


def deliver(context: Context, configs: dict[str, dict[str, Any]]) -> None:
    """Write each service's config where it changed, and redeploy those services."""
    ssm, ecs = context.client.ssm, context.client.ecs
    app, env = context.app, context.environment.name
    names = {service: runtime_parameter_name(app, env, service) for service in sorted(configs)}
    current: dict[str, str] = {}
    listed = list(names.values())
    for start in range(0, len(listed), 10):  # GetParameters takes ten names at a time
        found = ssm.get_parameters(Names=listed[start : start + 10])["Parameters"]
        current.update({parameter["Name"]: parameter["Value"] for parameter in found})
    for service, name in names.items():
        value = text(configs[service])
        if name not in current or current[name] == value:
            continue  # not a service this environment runs, or unchanged
        ssm.put_parameter(Name=name, Value=value, Type="String", Overwrite=True, Tier="Intelligent-Tiering")
        cluster = cluster_name(app, env)
        with contextlib.suppress(NotFound):  # tasks read the parameter when they start: restart them
            ecs.update_service(cluster=cluster, service=service, forceNewDeployment=True)
