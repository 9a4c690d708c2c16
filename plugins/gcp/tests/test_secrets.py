"""The secrets family against the FAKE Secret Manager (:mod:`skyrig_gcp.fake`: no emulator exists), read
back with google-cloud-secret-manager: a secret per declared secret, with automatic replication and the
ownership labels; ``skyrig secret set`` adds a version the data plane reads, and the value is nowhere in
state, plans or output; destroy keeps a secret unless ``--include-data``. The suite's services run on the
memory provider (their families are not this module's).
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from skyrig.plugins.registry import load_provider
from skyrig_conformance import Profile
from skyrig_conformance.deployment import MAIN, Deployment
from skyrig_gcp import api, names
from skyrig_gcp.conformance import PROJECT, settings
from skyrig_gcp.runtime import secrets as data_plane

OTHERS = {family: "memory" for family in ("compute", "sql", "pubsub", "cache", "cron")}
OURS = dataclasses.replace(
    load_provider("gcp").manifest,
    kinds=frozenset({"bucket", "secret"}),
    features=frozenset({"bucket.public", "bucket.versioning"}),
    together={},
    traits=frozenset(),
)
"""The manifest the suite's app is written for: only this module's families' kinds are declared."""


@pytest.fixture
def app(
    gcp_backends: Any, fake: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Deployment]:
    """The conformance suite's app on GCP for objects and secrets (secret api-key), written but not
    applied; destroyed with its data at the end."""
    endpoints, environ, _fake, _limits = gcp_backends
    for key, value in {**environ, "SKYRIG_RETRY_BASE_MS": "1"}.items():
        monkeypatch.setenv(key, value)
    profile = Profile(provider="gcp", settings=settings(endpoints), families=OTHERS)
    made = Deployment(tmp_path / "app", profile, OURS)
    data_plane.forget()
    yield made
    made.cli("destroy", "--env", MAIN, "--yes", "--include-data")


def manager(gcp_backends: Any) -> Any:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import secretmanager_v1

    return secretmanager_v1.SecretManagerServiceClient(
        credentials=AnonymousCredentials(),
        transport="rest",
        client_options={"api_endpoint": gcp_backends[0]["secretmanager"]},
    )


def secret_path(app: Deployment) -> str:
    return f"projects/{PROJECT}/secrets/{names.secret_name(app.app, MAIN, 'api-key')}"


def test_a_secret_is_made_with_automatic_replication_and_labels(app: Deployment, gcp_backends: Any) -> None:
    from google.cloud import secretmanager_v1

    app.apply()
    secret = manager(gcp_backends).get_secret(name=secret_path(app))
    assert secretmanager_v1.Replication.pb(secret.replication).HasField("automatic")
    assert dict(secret.labels) == names.labels(app.app, MAIN, "secrets.secret/api-key")
    versions = list(manager(gcp_backends).list_secret_versions(parent=secret_path(app)))
    assert versions == [], "skyrig makes the container, never a value"


def test_a_value_set_is_a_version_the_app_reads_and_is_in_no_state_or_plan(
    app: Deployment, gcp_backends: Any, tmp_path: Path
) -> None:
    canary = f"canary-{uuid.uuid4().hex}"
    refused = app.cli("secret", "set", "api-key", "--env", MAIN, stdin=canary + "\n")
    assert refused.code != 0 and "skyrig apply" in refused.text, "a secret not made yet: says to apply first"
    app.apply()
    provider = load_provider("gcp")
    assert provider.secret_is_set(app.context(MAIN), "api-key") is False
    app.ok("secret", "set", "api-key", "--env", MAIN, stdin=canary + "\n")
    assert provider.secret_is_set(app.context(MAIN), "api-key") is True
    latest = manager(gcp_backends).access_secret_version(name=f"{secret_path(app)}/versions/latest")
    assert latest.payload.data.decode() == canary
    assert app.bind("alpha").resources.api_key.value == canary, "the data plane reads versions/latest"
    app.unbind()
    plan = app.ok("plan", "--env", MAIN, "--json").out
    assert canary not in plan
    entry = json.loads((app.root / ".skyrig" / "runtime" / MAIN / "alpha.json").read_text())["resources"]
    assert "value" not in entry["secret/api-key"] and canary not in json.dumps(entry)
    for path in (app.root / ".skyrig").rglob("*"):
        if path.is_file():
            assert canary.encode() not in path.read_bytes(), f"the value is in {path}"
    assert not [text for text in app.outputs if canary in text]


def test_a_second_value_is_a_new_version_read_as_latest(app: Deployment, gcp_backends: Any) -> None:
    app.apply()
    app.ok("secret", "set", "api-key", "--env", MAIN, stdin="first\n")
    app.ok("secret", "set", "api-key", "--env", MAIN, stdin="second\n")
    versions = list(manager(gcp_backends).list_secret_versions(parent=secret_path(app)))
    assert len(versions) == 2
    entry = {"secret": names.secret_name(app.app, MAIN, "api-key"), "project": PROJECT, "emulator": "fake"}
    entry["endpoint"] = gcp_backends[0]["secretmanager"]
    assert data_plane.read(entry, entry["secret"]) == "second"


def test_destroy_keeps_a_secret_unless_include_data(app: Deployment, gcp_backends: Any) -> None:
    from google.api_core.exceptions import NotFound

    app.apply()
    app.ok("secret", "set", "api-key", "--env", MAIN, stdin="kept\n")
    app.ok("destroy", "--env", MAIN, "--yes")
    value = manager(gcp_backends).access_secret_version(name=f"{secret_path(app)}/versions/latest")
    assert value.payload.data == b"kept", "a secret holds a credential: kept, with its value"
    app.apply()
    api.CALLS.clear()
    assert "nothing to do" in app.apply().text
    assert api.mutating_calls(api.CALLS) == {}
    assert api.CALLS[("secretmanager", "list_secrets")] == 1, "a refresh lists the secrets once"
    app.ok("destroy", "--env", MAIN, "--yes", "--include-data")
    with pytest.raises(NotFound):
        manager(gcp_backends).get_secret(name=secret_path(app))


def test_a_refused_value_is_not_in_the_error(app: Deployment, fake: Any) -> None:
    canary = f"canary-{uuid.uuid4().hex}"
    app.apply()
    fake.inject_error("secretmanager", "secrets.addVersion", 403)
    refused = app.cli("secret", "set", "api-key", "--env", MAIN, stdin=canary + "\n")
    assert refused.code != 0 and "permission denied" in refused.text
    assert canary not in refused.text, "the value is in the error"
    assert not [text for text in app.outputs if canary in text]
