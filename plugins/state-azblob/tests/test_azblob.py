"""What is particular to the Azure Blob Storage store: its URL, its credentials (a connection string, an
account key, Entra ID tokens) and errors, the blob lease that mirrors the log's lease, and a log damaged by
hand; and what the Azure provider relies on in Azurite: bearer tokens and user delegation SAS. (What every
store must do is the store suite's: test_store_suite.py.)"""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError
from azure.storage.blob import (
    BlobLeaseClient,
    BlobSasPermissions,
    BlobServiceClient,
    ContainerClient,
    generate_blob_sas,
)

from skyrig.state import Locked, NodeRecord, StateUnusable, open_store
from skyrig_state_azblob import store as azblob_store
from skyrig_state_azblob.store import AzureBlobStore
from skyrig_state_azblob.testing import FakeCredential, fake_token

from .conftest import CONTAINER


def _record(node_id: str) -> NodeRecord:
    return NodeRecord(node_id, "memory.sql.cluster", "memory", node_id, {"size": 1}, {"size": 1}, {"port": 1})


@pytest.fixture
def prefix() -> str:
    return uuid.uuid4().hex


@pytest.fixture
def container(azurite_http):
    client = ContainerClient.from_connection_string(azurite_http.connection_string, CONTAINER)
    yield client
    client.close()


@pytest.fixture
def url(azurite_http, prefix) -> str:
    return f"azblob://{azurite_http.account}/{CONTAINER}/{prefix}"


@pytest.fixture
def store(url, tmp_path):
    opened = open_store(url, tmp_path)
    yield opened
    opened.close()


def _lease_state(container, name: str) -> tuple[str, dict[str, str]]:
    properties = container.get_blob_client(name).get_blob_properties()
    return properties.lease.state, dict(properties.metadata)


class TestURL:
    def test_credentials_in_the_url_are_refused_and_never_shown(self, tmp_path):
        with pytest.raises(StateUnusable, match="no credentials") as refused:
            AzureBlobStore("azblob://someone:hunter2@account/state/shop", tmp_path)
        assert "hunter2" not in refused.value.message + (refused.value.hint or "")
        assert "AZURE_STORAGE_CONNECTION_STRING" in (refused.value.hint or "")

    def test_the_url_says_account_container_and_prefix(self, tmp_path, monkeypatch):
        monkeypatch.delenv("SKYRIG_APP", raising=False)
        (tmp_path / "skyrig.toml").write_text('app = "shop"\n')
        assert azblob_store.parse("azblob://acct/state/team/shop/", tmp_path) == (
            "acct",
            "state",
            "team/shop",
        )
        assert azblob_store.parse("azblob://acct/state", tmp_path) == ("acct", "state", "shop")
        monkeypatch.setenv("SKYRIG_APP", "links")
        assert azblob_store.parse("azblob://acct/state/", tmp_path) == ("acct", "state", "links")

    def test_no_prefix_and_no_app_name_is_refused(self, tmp_path, monkeypatch):
        monkeypatch.delenv("SKYRIG_APP", raising=False)
        with pytest.raises(StateUnusable, match="has no prefix") as refused:
            azblob_store.parse("azblob://acct/state", tmp_path)
        assert "azblob://ACCOUNT/CONTAINER/PREFIX" in (refused.value.hint or "")

    @pytest.mark.parametrize("account", ["Bad", "ab", "a" * 25, "my-account"])
    def test_a_bad_account_name_is_refused(self, tmp_path, account):
        with pytest.raises(StateUnusable, match=r"is not a bucket name \(a storage account"):
            azblob_store.parse(f"azblob://{account}/state/shop", tmp_path)

    @pytest.mark.parametrize("name", ["St", "ab", "-state", "state-", "sta--te", "a" * 64, "st_ate"])
    def test_a_bad_container_name_is_refused(self, tmp_path, name):
        with pytest.raises(StateUnusable, match="is not a container name"):
            azblob_store.parse(f"azblob://acct/{name}/shop", tmp_path)

    def test_a_url_without_a_container_is_refused(self, tmp_path):
        with pytest.raises(StateUnusable, match="names no container"):
            azblob_store.parse("azblob://acct", tmp_path)

    def test_a_missing_container_is_named(self, azurite_http, tmp_path):
        with pytest.raises(StateUnusable, match="the container 'no-such-container' does not exist") as gone:
            AzureBlobStore(f"azblob://{azurite_http.account}/no-such-container/shop", tmp_path)
        assert "skyrig never creates it" in (gone.value.hint or "")

    def test_the_plugin_is_found_by_its_scheme(self, url, tmp_path):
        [entry] = [e for e in importlib.metadata.entry_points(group="skyrig.state") if e.name == "azblob"]
        assert entry.value == "skyrig_state_azblob:open_azblob"
        opened = open_store(url, tmp_path)
        assert isinstance(opened, AzureBlobStore) and "azblob://" in repr(opened)
        opened.close()


class TestCredentials:
    def test_a_connection_string_for_another_account_is_refused(self, azurite_http, tmp_path):
        with pytest.raises(StateUnusable, match="is for account 'devstoreaccount1', not 'other'"):
            AzureBlobStore(f"azblob://other/{CONTAINER}/shop", tmp_path)

    def test_an_account_key_and_an_endpoint_are_taken(self, azurite_http, url, tmp_path, monkeypatch):
        monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING")
        monkeypatch.setenv("AZURE_STORAGE_KEY", azurite_http.key)
        monkeypatch.setenv(
            "SKYRIG_AZBLOB_ENDPOINT", azurite_http.endpoint.replace("devstoreaccount1", "{account}")
        )
        opened = AzureBlobStore(url, tmp_path)
        fence = opened.acquire("dev", "apply", ttl=30)
        opened.record("dev", fence, _record("network"))
        assert list(opened.nodes("dev")) == ["network"]
        opened.close()

    def test_a_wrong_key_is_access_denied(self, azurite_http, url, tmp_path, monkeypatch):
        wrong = azurite_http.connection_string.replace(azurite_http.key, "d3Jvbmc=" * 11)
        monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", wrong)
        with pytest.raises(StateUnusable, match="access denied") as denied:
            AzureBlobStore(url, tmp_path)
        assert "Storage Blob Data Contributor" in (denied.value.hint or "")
        assert "d3Jvbmc=" not in denied.value.message + (denied.value.hint or "")

    def test_entra_id_tokens_work_over_https(self, azurite_https, tmp_path, monkeypatch):
        """The default path: DefaultAzureCredential's bearer tokens (a fake credential here, which Azurite's
        basic OAuth takes) over HTTPS, at the endpoint SKYRIG_AZBLOB_ENDPOINT names."""
        with BlobServiceClient.from_connection_string(
            azurite_https.connection_string, connection_verify=azurite_https.ca_bundle
        ) as client:
            client.create_container("entra")
        for name in ("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_KEY"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("SKYRIG_AZBLOB_ENDPOINT", azurite_https.endpoint)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", azurite_https.ca_bundle)
        monkeypatch.setattr("azure.identity.DefaultAzureCredential", lambda **_: FakeCredential())
        opened = AzureBlobStore(f"azblob://{azurite_https.account}/entra/shop", tmp_path)
        fence = opened.acquire("dev", "apply", ttl=30)
        opened.record("dev", fence, _record("network"))
        opened.release("dev", fence)
        assert list(opened.nodes("dev")) == ["network"]
        opened.close()

    def test_no_credentials_says_how_to_log_in(self, azurite_https, tmp_path):
        """No connection string, no key, nothing DefaultAzureCredential finds: a message, no traceback (in
        a process of its own, so that nothing of the tests' environment helps)."""
        environ = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("AZURE_", "SKYRIG_AZBLOB", "IDENTITY_", "MSI_"))
        }
        environ.update(
            SKYRIG_AZBLOB_ENDPOINT=azurite_https.endpoint,
            REQUESTS_CA_BUNDLE=azurite_https.ca_bundle,
            AZURE_CONFIG_DIR=str(tmp_path / "az"),
            PATH="/usr/bin:/bin",
        )
        script = (
            "import sys\nfrom skyrig.state import StateUnusable\nfrom skyrig_state_azblob.store import "
            "AzureBlobStore\ntry:\n    AzureBlobStore(sys.argv[1], sys.argv[2])\nexcept StateUnusable as e:\n"
            "    print(e.message); print(e.hint)\n"
        )
        url = f"azblob://{azurite_https.account}/{CONTAINER}/shop"
        done = subprocess.run(
            [sys.executable, "-c", script, url, str(tmp_path)],
            env=environ,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert "no Azure credentials found" in done.stdout, done.stdout + done.stderr
        assert "az login" in done.stdout
        assert "Traceback" not in done.stderr
        assert "Attempted credentials" not in done.stderr, "azure-identity's list of every credential tried"

    def test_without_an_azblob_url_azure_storage_is_never_imported(self, tmp_path):
        script = (
            "import sys\nfrom skyrig.state import open_store\nopen_store('sqlite:///s.db', sys.argv[1]).close()\n"
            "import skyrig_state_azblob\n"
            "print(any(m.startswith('azure') for m in sys.modules))\n"
        )
        done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True)
        assert done.stdout.strip() == "False", done.stderr


class TestErrors:
    def test_an_unreachable_account_is_named(self, url, tmp_path, monkeypatch):
        monkeypatch.setattr(azblob_store, "RETRIES", 0)
        monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING")
        monkeypatch.setenv("AZURE_STORAGE_KEY", "a2V5")
        monkeypatch.setenv("SKYRIG_AZBLOB_ENDPOINT", "http://127.0.0.1:9/{account}")
        with pytest.raises(StateUnusable, match="the account 'devstoreaccount1' cannot be reached") as lost:
            AzureBlobStore(url, tmp_path)
        assert "SKYRIG_AZBLOB_ENDPOINT" in (lost.value.hint or "")

    def test_a_sas_never_shows_in_an_error(self, url, tmp_path, monkeypatch):
        monkeypatch.setattr(azblob_store, "RETRIES", 0)
        monkeypatch.setenv(
            "AZURE_STORAGE_CONNECTION_STRING",
            "BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;SharedAccessSignature=sv=2026-10-06&ss=b&srt=sco"
            "&sp=rwl&se=2099-01-01T00:00:00Z&sig=c2VjcmV0LXNpZ25hdHVyZQ%3D%3D",
        )
        with pytest.raises(StateUnusable, match="cannot be reached") as lost:
            AzureBlobStore(url, tmp_path)
        assert "c2VjcmV0" not in lost.value.message + (lost.value.hint or "")

    def test_a_bad_connection_string_is_named_and_not_shown(self, url, tmp_path, monkeypatch):
        monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", "AccountKey=hunter2")
        with pytest.raises(StateUnusable) as bad:
            AzureBlobStore(url, tmp_path)
        assert "hunter2" not in bad.value.message + (bad.value.hint or "")


class TestBlobLease:
    def test_the_holder_has_the_blob_lease_and_its_metadata(self, store, prefix, container):
        fence = store.acquire("dev", "apply by ada", ttl=30)
        state, metadata = _lease_state(container, f"{prefix}/dev/lock")
        assert state == "leased"
        assert metadata == {"holder": "apply by ada", "fence": str(fence)}
        blob = container.get_blob_client(f"{prefix}/dev/lock")
        with pytest.raises(ResourceExistsError) as second:
            blob.acquire_lease(lease_duration=15)
        assert second.value.error_code == "LeaseAlreadyPresent"
        with pytest.raises(HttpResponseError) as without:
            blob.set_blob_metadata({"holder": "mallory"})
        assert without.value.status_code == 412, "a write to the lock blob must carry the lease id"
        store.release("dev", fence)
        assert _lease_state(container, f"{prefix}/dev/lock")[0] == "available"

    def test_a_holder_name_beyond_ascii_is_shown_as_ascii(self, store, container, prefix):
        fence = store.acquire("dev", "apply by Zoë\non ci", ttl=30)
        assert _lease_state(container, f"{prefix}/dev/lock")[1] == {
            "holder": "apply by Zo??on ci",
            "fence": str(fence),
        }
        with pytest.raises(Locked, match="Zoë"):
            store.acquire("dev", "second", ttl=30)

    def test_a_second_holder_is_locked_out(self, store, url, tmp_path, container, prefix):
        fence = store.acquire("dev", "first", ttl=30)
        other = open_store(url, tmp_path)
        with pytest.raises(Locked, match="first"):
            other.acquire("dev", "second", ttl=30)
        assert _lease_state(container, f"{prefix}/dev/lock")[1]["holder"] == "first"
        store.release("dev", fence)
        assert other.acquire("dev", "second", ttl=30) == fence + 1
        assert _lease_state(container, f"{prefix}/dev/lock")[1] == {
            "holder": "second",
            "fence": str(fence + 1),
        }
        other.close()

    def test_a_crashed_holders_lease_expires(self, url, tmp_path, container, prefix):
        """A holder that stops renewing (killed) loses the lease after its TTL, though Azure keeps its blob
        lease for at least 15 s: the next holder breaks that one and takes its own."""
        script = (
            "import os, sys\nfrom skyrig.state import open_store\n"
            "print(open_store(sys.argv[1], sys.argv[2]).acquire('dev', 'crashed', ttl=1.0), flush=True)\n"
            "os._exit(0)\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", script, url, str(tmp_path)], capture_output=True, text=True
        )
        fence = int(done.stdout)
        successor = open_store(url, tmp_path)
        with pytest.raises(Locked, match="crashed"):
            successor.acquire("dev", "successor", ttl=30)
        time.sleep(1.2)
        assert successor.acquire("dev", "successor", ttl=30) == fence + 1
        state, metadata = _lease_state(container, f"{prefix}/dev/lock")
        assert state == "leased" and metadata["holder"] == "successor"
        successor.close()

    def test_the_heartbeat_renews_the_blob_lease_and_takes_it_back_if_broken(self, store, container, prefix):
        fence = store.acquire("dev", "apply", ttl=30)
        BlobLeaseClient(container.get_blob_client(f"{prefix}/dev/lock")).break_lease(lease_break_period=0)
        assert _lease_state(container, f"{prefix}/dev/lock")[0] == "broken"
        assert store.renew("dev", fence, ttl=30)
        assert _lease_state(container, f"{prefix}/dev/lock")[0] == "leased"
        store.release("dev", fence)

    def test_unlock_force_breaks_the_blob_lease(self, store, container, prefix):
        store.acquire("dev", "stuck", ttl=30)
        store.break_lease("dev")
        assert _lease_state(container, f"{prefix}/dev/lock")[0] in ("broken", "available")


class TestDamage:
    def test_a_missing_entry_is_named(self, store, url, prefix, container, tmp_path):
        fence = store.acquire("dev", "apply", ttl=30)
        for node in ("a", "b", "c"):
            store.record("dev", fence, _record(node))
        store.release("dev", fence)
        container.delete_blob(f"{prefix}/dev/log/{2:016d}.json")
        with pytest.raises(StateUnusable, match="the log of environment 'dev' has no entry 2") as gap:
            open_store(url, tmp_path).nodes("dev")
        assert "never delete the log's objects" in (gap.value.hint or "")


class TestAzuriteOAuth:
    """What the Azure provider's data plane relies on in Azurite over HTTPS with ``--oauth basic``: an
    unsigned JWT-shaped token is taken if its claims are right, a user delegation key signs SAS URLs that
    fetch the blob, and a tampered signature is refused."""

    @pytest.fixture
    def service(self, azurite_https):
        client = BlobServiceClient(
            azurite_https.endpoint, credential=FakeCredential(), connection_verify=azurite_https.ca_bundle
        )
        yield client
        client.close()

    @staticmethod
    def _get(url: str, ca_bundle: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(url, context=ssl.create_default_context(cafile=ca_bundle)) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def test_a_user_delegation_sas_fetches_the_blob_and_a_tampered_one_does_not(self, service, azurite_https):
        name = f"udk-{uuid.uuid4().hex[:8]}"
        service.create_container(name).upload_blob("receipt.txt", b"paid")
        now = datetime.datetime.now(datetime.UTC)
        key = service.get_user_delegation_key(
            now - datetime.timedelta(minutes=1), now + datetime.timedelta(hours=1)
        )
        sas = generate_blob_sas(
            azurite_https.account,
            name,
            "receipt.txt",
            user_delegation_key=key,
            permission=BlobSasPermissions(read=True),
            expiry=now + datetime.timedelta(minutes=30),
        )
        url = f"{azurite_https.endpoint}/{name}/receipt.txt?{sas}"
        assert self._get(url, azurite_https.ca_bundle) == (200, b"paid")
        tampered = url.replace("sig=", "sig=A")
        assert self._get(tampered, azurite_https.ca_bundle)[0] == 403
        other_blob = url.replace("/receipt.txt?", "/other.txt?")
        assert self._get(other_blob, azurite_https.ca_bundle)[0] == 403, (
            "the signature covers the blob's name"
        )

    @pytest.mark.parametrize(
        ("claims", "why"),
        [
            ({"aud": "https://management.azure.com/"}, "Invalid token audience"),
            ({"iss": "https://login.example.com/tenant/"}, "Invalid token issuer"),
            ({"exp": int(time.time()) - 10}, "expired"),
            ({"nbf": int(time.time()) + 3600}, "Lifetime validation failed"),
            ({"iat": None}, "Bearer is not supported"),
        ],
    )
    def test_a_token_with_a_wrong_claim_is_refused(self, azurite_https, claims, why):
        token, _ = fake_token(**claims)
        if claims.get("iat", 0) is None:
            token, _ = fake_token()
            header, payload, signature = token.split(".")
            import base64
            import json

            decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            del decoded["iat"]
            payload = base64.urlsafe_b64encode(json.dumps(decoded).encode()).rstrip(b"=").decode()
            token = ".".join([header, payload, signature])
        request = urllib.request.Request(
            f"{azurite_https.endpoint}?comp=list",
            headers={"Authorization": f"Bearer {token}", "x-ms-version": "2025-11-05"},
        )
        try:
            urllib.request.urlopen(
                request, context=ssl.create_default_context(cafile=azurite_https.ca_bundle)
            )
            raise AssertionError("Azurite took the token")
        except urllib.error.HTTPError as error:
            assert error.code in (401, 403)
            assert why in error.read().decode()


def test_the_fake_credential_gives_tokens_for_the_scope_asked() -> None:
    """Each Azure client asks for its own service's scope (Key Vault's, Service Bus's, Resource Manager's):
    the token's audience is that service, and its principal the credential's."""
    import base64
    import json

    credential = FakeCredential()
    token = credential.get_token("https://vault.azure.net/.default").token
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["aud"] == "https://vault.azure.net"
    assert claims["oid"] == claims["sub"] == credential.principal
    info = credential.get_token_info("https://management.azure.com/.default")
    assert info.expires_on > time.time()
    assert FakeCredential(oid="someone").principal == "someone"
