"""The Azure provider's tests: the conformance suite's profile (Azurite and the FAKES of Azure Resource
Manager, Key Vault and Service Bus), and the same backends for the provider's own tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from skyrig_azure.conformance import backends
from skyrig_conformance import provider_profile

skyrig_profile = provider_profile("azure")


Backends = tuple[dict[str, str], dict[str, str], Any, dict[str, str], str]


@pytest.fixture(scope="session")
def azure_backends() -> Iterator[Backends]:
    """The FAKE ARM, the FAKE Service Bus broker and Azurite for this test process (each xdist worker
    starts its own): (endpoints, environment, the fake ARM, limits, CA bundle)."""
    with backends() as found:
        yield found


@pytest.fixture
def fake(azure_backends: Backends) -> Any:
    """The FAKE Azure Resource Manager, wiped before the test (the conformance subscription still known)."""
    fake = azure_backends[2]
    fake.reset()
    return fake


class AzureApp:
    """An app in a folder of its own, deployed with the skyrig command (in this process) to environment
    ``dev`` on Azurite and the FAKES."""

    def __init__(self, root: Any, endpoints: dict[str, str], ca_bundle: str) -> None:
        self.root = root
        self.endpoints = endpoints
        self.ca_bundle = ca_bundle
        self.name = f"t{root.name[-8:].lower().replace('_', '')}"

    def write(self, files: dict[str, str], **settings: Any) -> None:
        """Write the app's files and its ``skyrig.toml`` (the profile's settings, with ``settings`` over
        them; ``image=None`` leaves the image unset)."""
        import json
        import textwrap

        from skyrig_azure.conformance import settings as profile_settings

        for name, text in files.items():
            path = self.root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text).lstrip())
        values = {**profile_settings(self.endpoints, self.ca_bundle), **settings}
        lines = [
            f'app = "{self.name}"',
            "[env.dev]",
            'type = "development"',
            'provider = "azure"',
            "[env.dev.azure]",
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
def azure_app(
    azure_backends: Backends, fake: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> AzureApp:
    """An :class:`AzureApp` in ``tmp_path`` on Azurite and the (wiped) FAKES."""
    for key, value in azure_backends[1].items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("SKYRIG_RETRY_BASE_MS", "1")
    return AzureApp(tmp_path, azure_backends[0], azure_backends[4])
