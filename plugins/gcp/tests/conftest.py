"""The GCP provider's tests: the conformance suite's profile (emulators and the FAKE), and the same
backends for the provider's own tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from skyrig_conformance import provider_profile
from skyrig_gcp.conformance import backends

skyrig_profile = provider_profile("gcp")


@pytest.fixture(scope="session")
def gcp_backends() -> Iterator[tuple[dict[str, str], dict[str, str], Any, dict[str, str]]]:
    """The FAKE, fake-gcs-server and the Pub/Sub emulator for this test process (each xdist worker starts
    its own): (endpoints, environment, the fake, limits)."""
    with backends() as found:
        yield found


@pytest.fixture
def fake(gcp_backends: tuple[dict[str, str], dict[str, str], Any, dict[str, str]]) -> Any:
    """The FAKE Google APIs, wiped before the test (the conformance project still known)."""
    fake = gcp_backends[2]
    fake.reset()
    return fake


class GcpApp:
    """An app in a folder of its own, deployed with the skyrig command (in this process) to environment
    ``dev`` on the emulators and the FAKE."""

    def __init__(self, root: Any, endpoints: dict[str, str]) -> None:
        self.root = root
        self.endpoints = endpoints
        self.name = f"t{root.name[-8:].lower().replace('_', '')}"

    def write(self, files: dict[str, str], **settings: Any) -> None:
        """Write the app's files and its ``skyrig.toml`` (the profile's settings, with ``settings`` over
        them; ``image=None`` leaves the image unset)."""
        import json
        import textwrap

        from skyrig_gcp.conformance import settings as profile_settings

        for name, text in files.items():
            path = self.root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text).lstrip())
        values = {**profile_settings(self.endpoints), **settings}
        lines = [
            f'app = "{self.name}"',
            "[env.dev]",
            'type = "development"',
            'provider = "gcp"',
            "[env.dev.gcp]",
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
        return self.cli("apply", "--env", "dev", "--yes", *args)

    def plan(self, *args: str) -> list[dict[str, Any]]:
        """The changes of a plan that do something."""
        import json

        plan = json.loads(self.cli("plan", "--env", "dev", "--json", *args).out)
        return [c for c in plan["changes"] if c["action"] not in ("noop", "retain")]

    def graph(self) -> dict[str, dict[str, Any]]:
        """Node id -> node, as ``skyrig graph --format json`` expands them."""
        import json

        found = json.loads(self.cli("graph", "--env", "dev", "--format", "json").out)
        return {node["id"]: node for node in found["nodes"]}


@pytest.fixture
def gcp_app(
    gcp_backends: tuple[dict[str, str], dict[str, str], Any, dict[str, str]],
    fake: Any,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> GcpApp:
    """A :class:`GcpApp` in ``tmp_path`` on the emulators and the (wiped) FAKE."""
    for key, value in gcp_backends[1].items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("SKYRIG_RETRY_BASE_MS", "1")
    return GcpApp(tmp_path, gcp_backends[0])
