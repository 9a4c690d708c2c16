"""Secrets: values in a file only the user can read, outside the app's folder and outside skyrig's state.

The file is ``$XDG_CONFIG_HOME/skyrig/secrets/APP-ENV.json`` (``~/.config/...`` by default), mode 0600 in a
0700 folder. A secret's node is its slot: the app's runtime config gets a reference to it, never the value.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from skyrig.provider import Context, Node, NodeType, Observed, Scope


def secrets_file(app: str, environment: str) -> Path:
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "skyrig" / "secrets" / f"{app}-{environment.replace(':', '-')}.json"


def read_values(path: Path) -> dict[str, str]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}


def write_value(path: Path, name: str, value: str) -> None:
    """Store one value; the file is replaced atomically and never readable by anyone else."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.parent.chmod(0o700)
    values = read_values(path) | {name: value}
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".secrets.")  # created 0600
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        json.dump(values, stream, indent=2, sort_keys=True)
    Path(temporary).replace(path)


class SecretType(NodeType):
    """A secret's slot. Nothing is provisioned: the value is set with ``skyrig secret set``."""

    type = "local.secrets.secret"

    def read(self, context: Context, node: Node, provider_id: str) -> Observed | None:
        return Observed(provider_id, {"name": provider_id}, {"reference": f"local://secrets/{provider_id}"})

    def find(self, context: Context, node: Node) -> Observed | None:
        # a slot is its name: it exists as soon as the app declares it (state lost, or never recorded)
        return self.read(context, node, node.properties["name"])

    def create(self, context: Context, node: Node) -> Observed:
        return self.read(context, node, node.properties["name"])  # type: ignore[return-value]

    def update(self, context: Context, node: Node, provider_id: str, changes: Any) -> Observed:
        return self.read(context, node, provider_id)  # type: ignore[return-value]

    def delete(self, context: Context, node: Node, provider_id: str) -> None:
        """The value stays in the user's file: destroying an environment does not lose a credential."""

    def runtime_entry(self, node: Node, observed: Observed) -> dict[str, Any] | None:
        return {"type": self.type, "reference": observed.outputs["reference"]}


SECRET = SecretType()


TYPES = (SECRET,)


def expand(scope: Scope) -> list[Node]:
    return [
        scope.node(f"secrets.secret/{r.name}", SECRET.type, {"name": r.name}, resource=r)
        for r in scope.of_kind("secret")
    ]


class SecretClient:
    """Reads values from the user's secrets file, each time (a value set meanwhile is seen)."""

    def __init__(self, entry: dict[str, Any], config: dict[str, Any]) -> None:
        self.path = secrets_file(config["app"], config["environment"])
        self.environment = config["environment"]

    def value(self, name: str) -> str:
        found = read_values(self.path).get(name)
        if found is None:
            raise LookupError(
                f"secret {name!r} has no value in environment {self.environment!r}: "
                f"set it with skyrig secret set {name} --env {self.environment}"
            )
        return found
