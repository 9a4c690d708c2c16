"""The runtime side: what a running service reads to reach its resources.

Apply writes one runtime config per service (``.skyrig/runtime/ENV/SERVICE.json``, and in state); the
process that runs the service gets it through ``SKYRIG_RUNTIME_CONFIG``, as a path or as inline JSON.
Declarations bind to it lazily, by name, through the data plane of the provider that provisioned each
resource (the runtime SDK). The app's code that the model names by reference (a subscription's
handler, a message type, a cron job's endpoint, a service's app) is imported with :func:`load_reference`,
by the service host and by ``skyrig test`` alike.
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from typing import Any

VARIABLE = "SKYRIG_RUNTIME_CONFIG"


class RuntimeConfigError(RuntimeError):
    """The runtime config is missing or unreadable: the service cannot reach its resources."""


def load_runtime_config(value: str | None = None) -> dict[str, Any]:
    """The runtime config in ``value`` (else ``SKYRIG_RUNTIME_CONFIG``): inline JSON or a file's path."""
    raw = value if value is not None else os.environ.get(VARIABLE)
    if not raw:
        raise RuntimeConfigError(
            f"{VARIABLE} is not set: run the service with skyrig, or set it to the runtime config that "
            "skyrig apply wrote (.skyrig/runtime/ENV/SERVICE.json)"
        )
    try:
        text = raw if raw.lstrip().startswith("{") else Path(raw).read_text(encoding="utf-8")
        config = json.loads(text)
    except OSError as error:
        raise RuntimeConfigError(f"{VARIABLE}: cannot read {raw}: {error.strerror}") from None
    except json.JSONDecodeError as error:
        raise RuntimeConfigError(f"{VARIABLE}: not valid JSON ({error})") from None
    missing = [key for key in ("app", "environment", "service", "resources") if key not in config]
    if missing:
        raise RuntimeConfigError(f"{VARIABLE}: not a skyrig runtime config (missing {', '.join(missing)})")
    return config


def load_reference(reference: str) -> Any:
    """The object that ``"package.module:name"`` (or ``"package.module:Class.attribute"``) names, imported
    now: how the model refers to the app's code."""
    module, _, qualname = reference.partition(":")
    found: Any = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part)
    return found
