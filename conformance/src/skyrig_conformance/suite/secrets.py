"""Secrets: a value set out of band is read by the app, and appears in no state, plan, log, runtime
config or output."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import pytest

from skyrig_conformance import requirements as needs
from skyrig_conformance.deployment import MAIN
from skyrig_conformance.plugin import Suite


def skyrig_artefacts(root: Path) -> list[Path]:
    """What skyrig itself writes for an app: state, runtime configs, caches, wired configs. A provider's
    own backend files (a simulated cloud's, say) are not skyrig's and may hold values."""
    folder = root / ".skyrig"
    found = [p for p in folder.glob("state.db*") if p.is_file()]
    for area in ("runtime", "cache", "conformance", "run"):
        found += [p for p in (folder / area).rglob("*") if p.is_file()]
    return found


class TestSecrets(Suite):
    """Secret values as the app and as everything else sees them."""

    @needs.kinds("secret")
    def test_a_value_set_out_of_band_is_read_by_the_app_and_leaks_nowhere(self, deployment, tmp_path):
        canary = f"canary-{uuid.uuid4().hex}"
        records: list[str] = []
        handler = logging.Handler(logging.DEBUG)
        handler.emit = lambda record: records.append(handler.format(record))  # type: ignore[method-assign]
        logging.getLogger().addHandler(handler)
        previous = logging.getLogger().level
        logging.getLogger().setLevel(logging.DEBUG)
        try:
            unset = deployment.bind("alpha")
            with pytest.raises(LookupError, match="skyrig secret set"):
                unset.resources.api_key.value  # noqa: B018
            deployment.unbind()
            deployment.ok("secret", "set", "api-key", "--env", MAIN, stdin=canary + "\n")
            plan_file = tmp_path / "saved.plan"
            for args in (
                ("plan", "--env", MAIN, "--json", "--out", str(plan_file)),
                ("apply", "--env", MAIN, "--yes"),
                ("status", "--env", MAIN, "--json"),
                ("status", "--env", MAIN),
                ("drift", "--env", MAIN),
                ("graph", "--env", MAIN, "--format", "json"),
                ("config", "--json"),
            ):
                deployment.ok(*args)
            app = deployment.bind("alpha")
            assert app.resources.api_key.value == canary, "the app reads the value that was set"
        finally:
            logging.getLogger().removeHandler(handler)
            logging.getLogger().setLevel(previous)
            deployment.unbind()
        leaks = [
            f"output of a command: …{text[max(0, text.find(canary) - 60) :][:120]}…"
            for text in deployment.outputs
            if canary in text
        ]
        leaks += [f"a log record: {text[:200]}" for text in records if canary in text]
        for path in [*skyrig_artefacts(deployment.root), plan_file]:
            if canary.encode() in path.read_bytes():
                leaks.append(f"the file {path.relative_to(deployment.root.parent)}")
        assert not leaks, "the secret's value leaked into:\n" + "\n".join(leaks)

    @needs.kinds("secret")
    def test_the_runtime_config_holds_a_reference_not_a_value(self, deployment):
        config = deployment.bind("alpha").config
        deployment.unbind()
        entry = config["resources"]["secret/api-key"]
        assert "value" not in entry, f"a runtime config entry may not carry a secret's value: {entry}"
        assert entry["provider"] == deployment.profile.provider, (
            "the entry names another provider's data plane"
        )
