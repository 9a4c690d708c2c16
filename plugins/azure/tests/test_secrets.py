"""The secrets family against the FAKE Azure Resource Manager and its FAKE Key Vault data plane
(:mod:`skyrig_azure.fake`: not Azure, neither has an emulator), read back with Microsoft's own clients
(azure-mgmt-keyvault, azure-keyvault-secrets): the environment's vault with RBAC authorization, soft delete
and (in production) purge protection; no secret made until ``skyrig secret set`` writes a version, which
the runtime client reads; the value nowhere in state, plans, runtime configs, output or logs (a canary);
destroy keeps the vault unless ``--include-data``. The suite's services run on the memory provider (their
families are not this module's).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest

from skyrig.plugins.registry import load_provider
from skyrig_azure import AzureProvider, api, names
from skyrig_azure.conformance import SUBSCRIPTION, settings
from skyrig_azure.runtime import secrets as data_plane
from skyrig_conformance import Profile
from skyrig_conformance.deployment import MAIN, Deployment

OTHERS = {family: "memory" for family in ("compute", "sql", "pubsub", "cache", "cron")}
OURS = dataclasses.replace(
    load_provider("azure").manifest,
    kinds=frozenset({"secret"}),
    features=frozenset(),
    together={},
    traits=frozenset(),
)
"""The manifest the suite's app is written for: only this module's family's kind is declared."""
MODULES = ("skyrig_azure.network", "skyrig_azure.objects", "skyrig_azure.secrets")
SCOPES = ["https://management.azure.com/.default"]
DELETED = "Microsoft.KeyVault/locations/deletedVaults"


@pytest.fixture
def app(suite_app: Any) -> Deployment:
    """The conformance suite's app on Azure for secrets (secret api-key), written but not applied; destroyed with its data at the end."""
    return suite_app(OURS, MODULES, OTHERS)


def vault_name(app: Deployment) -> str:
    return names.key_vault_name(SUBSCRIPTION, app.app, MAIN)


def vaults(app: Deployment) -> Any:
    from azure.mgmt.keyvault import KeyVaultManagementClient

    from skyrig_azure.credentials import EmulatorCredential

    arm = app.profile.settings["endpoints"]["arm"]
    client = KeyVaultManagementClient(
        EmulatorCredential(), SUBSCRIPTION, base_url=arm, credential_scopes=SCOPES
    )
    return client.vaults


def secrets_client(app: Deployment) -> Any:
    """azure-keyvault-secrets' client of the environment's vault, as someone with the portal would."""
    from azure.keyvault.secrets import SecretClient

    from skyrig_azure.credentials import EmulatorCredential

    vault = vaults(app).get(names.resource_group_name(app.app, MAIN), vault_name(app))
    return SecretClient(vault.properties.vault_uri, EmulatorCredential(), verify_challenge_resource=False)


def test_the_vault_authorizes_by_role_keeps_deleted_secrets_and_holds_no_value_skyrig_made(
    app: Deployment, fake: Any
) -> None:
    app.apply()
    vault = vaults(app).get(names.resource_group_name(app.app, MAIN), vault_name(app)).as_dict()
    p = vault["properties"]
    assert p["enableRbacAuthorization"] is True, "access policies: every reader of the vault reads it all"
    assert p["enableSoftDelete"] is True and p["softDeleteRetentionInDays"] == 90
    assert not p.get("enablePurgeProtection"), "purge protection in development: its name is kept 90 days"
    assert p["sku"] == {"family": "A", "name": "standard"}
    assert vault["tags"] == names.tags(app.app, MAIN, names.KEY_VAULT_ID)
    assert list(secrets_client(app).list_properties_of_secrets()) == [], "skyrig made a value"
    entry = app.bind("alpha").config["resources"]["secret/api-key"]
    app.unbind()
    assert entry["reference"] == names.key_vault_reference(p["vaultUri"], "api-key")
    assert entry["vault_uri"] == p["vaultUri"] and "value" not in entry


def test_production_turns_purge_protection_on(azure_app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(AzureProvider, "modules", MODULES)
    azure_app.write(
        {
            "web/__init__.py": 'from skyrig import Secret, Service\n\nservice = Service("web", app="web.app:app")\n'
            'key = Secret("api-key")\n',
            "web/app.py": "async def app(scope, receive, send):\n    pass\n",
        }
    )
    toml = azure_app.root / "skyrig.toml"
    others = "".join(f'{family} = "memory"\n' for family in OTHERS)
    text = toml.read_text().replace('provider = "azure"\n', f'provider = "azure"\n{others}')
    toml.write_text(text.replace('type = "development"', 'type = "production"'))
    vault = azure_app.graph()[names.KEY_VAULT_ID]["properties"]
    assert (vault["purge_protection"], vault["rbac"], vault["soft_delete"]) == (True, True, True)


def test_a_value_set_is_a_version_the_app_reads_and_is_in_no_state_plan_output_or_log(
    app: Deployment, fake: Any
) -> None:
    canary = f"canary-{uuid.uuid4().hex}"
    refused = app.cli("secret", "set", "api-key", "--env", MAIN, stdin=canary + "\n")
    assert refused.code != 0 and "skyrig apply" in refused.text, "no vault yet: says to apply first"
    records: list[str] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = lambda record: records.append(handler.format(record))  # type: ignore[method-assign]
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        app.apply()
        provider = load_provider("azure")
        assert provider.secret_is_set(app.context(MAIN), "api-key") is False
        app.ok("secret", "set", "api-key", "--env", MAIN, stdin=canary + "\n")
        assert provider.secret_is_set(app.context(MAIN), "api-key") is True
        assert fake.vault(vault_name(app)).value("api-key") == canary
        assert app.bind("alpha").resources.api_key.value == canary, "the runtime reads the latest version"
        app.unbind()
        plan = app.ok("plan", "--env", MAIN, "--json").out
        app.ok("status", "--env", MAIN, "--json")
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
    assert canary not in plan
    entry = json.loads((app.root / ".skyrig" / "runtime" / MAIN / "alpha.json").read_text())["resources"]
    assert "value" not in entry["secret/api-key"] and canary not in json.dumps(entry)
    for path in (app.root / ".skyrig").rglob("*"):
        if path.is_file():
            assert canary.encode() not in path.read_bytes(), f"the value is in {path}"
    assert not [text for text in app.outputs if canary in text], "the value is in a command's output"
    assert not [text for text in records if canary in text], "the value is in a log record"


def test_a_second_value_is_read_as_latest_and_disabled_versions_are_no_value(app: Deployment) -> None:
    app.apply()
    app.ok("secret", "set", "api-key", "--env", MAIN, stdin="first\n")
    app.ok("secret", "set", "api-key", "--env", MAIN, stdin="second\n")
    client = secrets_client(app)
    versions = list(client.list_properties_of_secret_versions("api-key"))
    assert len(versions) == 2 and all(v.content_type == "text/plain" for v in versions)
    entry = app.bind("alpha").config["resources"]["secret/api-key"]
    app.unbind()
    assert data_plane.read(entry, "api-key") == "second"
    assert data_plane.read(entry, entry["reference"]) == "second", "a Key Vault reference resolves too"
    for version in versions:
        client.update_secret_properties("api-key", version.version, enabled=False)
    data_plane.forget()
    assert load_provider("azure").secret_is_set(app.context(MAIN), "api-key") is False
    assert data_plane.read(entry, "api-key") is None
    with pytest.raises(LookupError, match="skyrig secret set api-key"):
        data_plane.SecretClient(entry, {"environment": MAIN}).value("api-key")


def test_a_refused_value_is_not_in_the_error(app: Deployment) -> None:
    canary = f"canary-{uuid.uuid4().hex}"
    app.apply()
    app.ok("secret", "set", "api-key", "--env", MAIN, stdin="old\n")
    secrets_client(app).begin_delete_secret("api-key").wait()  # deleted in the portal, kept 90 days
    refused = app.cli("secret", "set", "api-key", "--env", MAIN, stdin=canary + "\n")
    assert refused.code != 0 and "was not stored" in refused.text
    assert canary not in refused.text, "the value is in the error"
    assert not [text for text in app.outputs if canary in text]


def test_destroy_keeps_the_vault_unless_include_data(app: Deployment, fake: Any) -> None:
    app.apply()
    app.ok("secret", "set", "api-key", "--env", MAIN, stdin="kept\n")
    app.ok("destroy", "--env", MAIN, "--yes")
    assert fake.vault(vault_name(app)).value("api-key") == "kept", "a vault holds credentials: kept"
    app.apply()
    fake.calls.clear()
    api.CALLS.clear()
    assert "nothing to do" in app.apply().text
    assert fake.calls.mutating() == []
    assert api.CALLS[("Microsoft.KeyVault/vaults", "GET")] <= 2, "a refresh reads the vault once per type"
    app.ok("destroy", "--env", MAIN, "--yes", "--include-data")
    assert fake.resources("Microsoft.KeyVault/vaults") == []
    assert fake.resources(DELETED) == [], "a development vault is purged: its name is free again at once"
    app.apply()
    assert len(fake.resources("Microsoft.KeyVault/vaults")) == 1


def test_a_production_vault_deleted_is_kept_by_azure_and_recovered_by_the_next_apply(
    azure_backends: Any, fake: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoints, environ, _fake, _limits, bundle = azure_backends
    for key, value in {**environ, "SKYRIG_RETRY_BASE_MS": "1"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(AzureProvider, "modules", MODULES)
    profile = Profile(
        provider="azure",
        environment_type="production",
        settings=settings(endpoints, bundle),
        families=OTHERS,
    )
    app = Deployment(tmp_path / "app", profile, OURS)
    app.apply()
    group = names.resource_group_name(app.app, MAIN)
    assert vaults(app).get(group, vault_name(app)).properties.enable_purge_protection is True
    app.ok("destroy", "--env", MAIN, "--yes", "--include-data")
    assert fake.resources("Microsoft.KeyVault/vaults") == []
    assert len(fake.resources(DELETED)) == 1, "purge protection: Azure keeps the deleted vault"
    app.apply()
    assert vaults(app).get(group, vault_name(app)).properties.enable_purge_protection is True
    assert fake.resources(DELETED) == [], "the deleted vault was not recovered"
    assert app.changes(app.plan()) == []


def test_an_interrupted_create_converges(app: Deployment, fake: Any) -> None:
    from skyrig.cli.testing import invoke

    fake.inject(400, type="Microsoft.KeyVault/vaults", method="PUT", code="Interrupted")
    result = invoke(["apply", "--env", MAIN, "--yes", "-C", str(app.root)])
    assert result.code != 0 and "Interrupted" in result.text
    assert fake.resources("Microsoft.KeyVault/vaults") == []
    app.apply()
    shutil.rmtree(app.root / ".skyrig")
    fake.calls.clear()
    app.apply()
    assert fake.calls.count("Microsoft.KeyVault/vaults", "PUT") == 0, "the vault was made again"
    assert app.changes(app.plan()) == []
