"""Delivering each service's runtime config to its web app: an app setting.

A service's web app has the app setting ``SKYRIG_RUNTIME_CONFIG`` (its container's environment variable)
set to its config as inline JSON (a placeholder until the first apply ends). After each apply, the config
skyrig computed is written where it differs from the one the web app has, which restarts the app with it.
The configs hold endpoints and references, never secret values (a secret reaches the container only
through its Key Vault reference, resolved by App Service), so a plain app setting is right (as GCP's
environment variable and AWS's plain ``String`` parameter).
"""

from __future__ import annotations

import json
from typing import Any

from skyrig.provider import Context, NotFound
from skyrig_azure.names import site_name

SETTING = "SKYRIG_RUNTIME_CONFIG"
PLACEHOLDER = "{}"
"""A new web app's config until the apply that made it ends."""


def app_settings(context: Context, site: str) -> dict[str, str]:
    """The app settings of web app ``site`` (one ``POST .../config/appsettings/list``)."""
    listed = context.client.mgmt("web").web_apps.list_application_settings(
        context.client.resource_group, site
    )
    return dict(getattr(listed, "properties", None) or {})


def deliver(context: Context, configs: dict[str, dict[str, Any]]) -> None:
    """Write each service's config where it changed (one read of each web app's app settings, and one
    write where the config differs). Services without a web app here are left alone."""
    client = context.client
    web = client.mgmt("web")
    for service in sorted(configs):
        name = site_name(client.subscription, context.app, context.environment.name, service)
        try:
            settings = app_settings(context, name)
        except NotFound:
            continue  # not a service this environment runs here
        text = json.dumps(configs[service], sort_keys=True, separators=(",", ":"))
        if settings.get(SETTING) == text:
            continue
        settings[SETTING] = text
        web.web_apps.update_application_settings(client.resource_group, name, {"properties": settings})
