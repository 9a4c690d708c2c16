"""How the pieces of a running ``skyrig run`` find each other.

``skyrig run`` writes a run file (``.skyrig/run/ENV.json``, readable only by the user) saying where each
service and the dashboard listen, and a token made for this run. Each service host answers control
requests that carry that token (:mod:`skyrig.runtime.control`): ``skyrig cron run`` and the dashboard
use them.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from skyrig.runtime.control import HEADER, PREFIX


@dataclass
class RunFile:
    """What a running ``skyrig run`` says about itself."""

    pid: int
    environment: str
    services: dict[str, str]
    """Service name -> its base URL."""
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    dashboard: str | None = None
    """The dashboard's URL, when it is served."""
    cron: bool = False
    """Whether cron jobs run on their schedule (``skyrig run --cron``)."""


def run_file_path(root: Path, environment: str) -> Path:
    return root / ".skyrig" / "run" / f"{environment.replace(':', '-')}.json"


def write_run_file(root: Path, state: RunFile) -> Path:
    path = run_file_path(root, state.environment)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(asdict(state), indent=2, sort_keys=True))
    partial.chmod(0o600)
    partial.replace(path)
    return path


def read_run_file(root: Path, environment: str) -> RunFile | None:
    """The run file of ``environment``, if a ``skyrig run`` that is still alive wrote it."""
    path = run_file_path(root, environment)
    try:
        state = RunFile(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    try:
        os.kill(state.pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return state


def remove_run_file(root: Path, environment: str) -> None:
    run_file_path(root, environment).unlink(missing_ok=True)


def trigger_cron(state: RunFile, service: str, job: str, timeout: float = 600) -> dict[str, Any]:
    """Run cron job ``job`` of ``service`` now, in the running service; its outcome
    (``{"job", "ok", "seconds", "error"}``)."""
    import urllib.error
    import urllib.request

    url = f"{state.services[service]}{PREFIX}cron/{job}"
    request = urllib.request.Request(url, method="POST", data=b"", headers={HEADER: state.token})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        try:
            return json.loads(error.read())
        except ValueError:
            return {"job": job, "ok": False, "error": f"HTTP {error.code} from service {service!r}"}
    except OSError as error:
        return {"job": job, "ok": False, "error": f"service {service!r} did not answer at {url}: {error}"}
