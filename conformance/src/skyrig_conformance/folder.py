"""An app in a folder of its own, for a provider's own tests beside the suite: written, then deployed with
the skyrig command (in the test's process) to environment ``dev`` with the provider's test settings."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any


class AppFolder:
    """An app in ``root``, deployed to environment ``dev`` of ``provider`` with ``settings`` (the
    provider's test profile's, typically: endpoints of its emulators and fakes)."""

    def __init__(self, root: Path, provider: str, settings: dict[str, Any], **extra: Any) -> None:
        self.root = root
        self.provider = provider
        self.settings = settings
        self.name = f"t{root.name[-8:].lower().replace('_', '')}"
        """The app's name, unique per test (a test's folder)."""
        for key, value in extra.items():  # what the provider's tests reach through the app (endpoints)
            setattr(self, key, value)

    def write(self, files: dict[str, str], **settings: Any) -> None:
        """Write the app's files and its ``skyrig.toml`` (the provider's settings, with ``settings`` over
        them; a setting ``None`` is left unset)."""
        for name, text in files.items():
            path = self.root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text).lstrip())
        values = {**self.settings, **settings}
        lines = [
            f'app = "{self.name}"',
            "[env.dev]",
            'type = "development"',
            f'provider = "{self.provider}"',
            f"[env.dev.{self.provider}]",
        ]
        for key, value in values.items():
            if value is None:
                continue
            if isinstance(value, dict):
                value = "{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in value.items()) + " }"
            else:
                value = json.dumps(value)
            lines.append(f"{key} = {value}")
        (self.root / "skyrig.toml").write_text("\n".join(lines) + "\n")

    def cli(self, *args: str) -> Any:
        """``skyrig ARGS -C root``, which must succeed."""
        from skyrig.cli.testing import invoke

        result = invoke([*args, "-C", str(self.root)])
        assert result.code == 0, f"skyrig {' '.join(args)} exited {result.code}:\n{result.text}"
        return result

    def apply(self, *args: str) -> Any:
        """``skyrig apply --env dev --yes ARGS``."""
        return self.cli("apply", "--env", "dev", "--yes", *args)

    def plan(self, *args: str) -> list[dict[str, Any]]:
        """The changes of a plan that do something."""
        plan = json.loads(self.cli("plan", "--env", "dev", "--json", *args).out)
        return [c for c in plan["changes"] if c["action"] not in ("noop", "retain")]

    def graph(self) -> dict[str, dict[str, Any]]:
        """Node id -> node, as ``skyrig graph --format json`` expands them."""
        found = json.loads(self.cli("graph", "--env", "dev", "--format", "json").out)
        return {node["id"]: node for node in found["nodes"]}
