"""``skyrig init``: a new app with ``skyrig.toml`` and a first service."""

from __future__ import annotations

from pathlib import Path

import click

from skyrig.cli.output import console
from skyrig.config import CONFIG_FILE
from skyrig.errors import UserError

_SERVICE = '''"""The {name} service."""

from skyrig import Service

service = Service("{name}", app="{package}.api:app")
'''

_API = '''async def app(scope, receive, send):
    """A minimal ASGI app; replace it with FastAPI, Starlette or any ASGI framework."""
    if scope["type"] != "http":
        return
    headers = [(b"content-type", b"text/plain")]
    await send({{"type": "http.response.start", "status": 200, "headers": headers}})
    await send({{"type": "http.response.body", "body": b"hello from {name}\\n"}})
'''

_CONFIG = """# skyrig configuration. Every field is in docs/configuration.md, which ships with skyrig's
# source; `skyrig config` shows the values in force, `skyrig providers` each provider's settings.
app = "{app}"

[env.local]
type = "local"
provider = "{provider}"
"""


@click.command()
@click.argument("directory", default=".")
@click.option("--name", help="The app's name (default: the folder's name).")
@click.option("--service", "service_name", default="api", show_default=True, help="The first service's name.")
def init(directory: str, name: str | None, service_name: str) -> None:
    """Create a new app in DIRECTORY: skyrig.toml and a first service. Nothing is overwritten."""
    from skyrig.values import check_name, suggest_name

    root = Path(directory).resolve()
    app = name or suggest_name(root.name)
    for label, value in (("--name", app), ("--service", service_name)):
        try:
            check_name(value)
        except ValueError as error:
            raise UserError(f"{label}: {error}") from None
    package = service_name.replace("-", "_")
    provider = _local_provider()
    files = {
        CONFIG_FILE: _CONFIG.format(app=app, provider=provider),
        f"{package}/__init__.py": _SERVICE.format(name=service_name, package=package),
        f"{package}/api.py": _API.format(name=service_name),
        ".gitignore": ".skyrig/\n__pycache__/\n",
    }
    existing = [path for path in files if (root / path).exists()]
    if existing:
        raise UserError(
            f"{root} already has {', '.join(existing)}; nothing was written",
            "run skyrig init in an empty folder, or pass another folder",
        )
    for path, text in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    console().print(f"[green]created[/] app {app!r} in {root} with service {service_name!r}")
    console().print(f"next: skyrig model {directory}")


def _local_provider() -> str:
    """The provider for a new app's local environment: ``local`` once it provisions every kind, else the
    reference provider ``memory``."""
    from skyrig.kinds import KINDS
    from skyrig.plugins.registry import providers_where

    complete = providers_where(lambda m: "local" in m.environment_types and set(KINDS) <= m.kinds)
    return "local" if "local" in complete else "memory"
