"""What is particular to the Cloud Storage store: its URL, its credentials and errors, what an apply costs in
writes, snapshots, and a log damaged by hand. (What every store must do is the store suite's:
test_store_suite.py.)"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import threading
import uuid
from collections import Counter

import pytest
from google.api_core.exceptions import Forbidden
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from skyrig.state import NodeRecord, StateUnusable, open_store
from skyrig_state_gcs import store as gcs_store
from skyrig_state_gcs.store import GCSStore

from .conftest import BUCKET


def _record(node_id: str, size: int = 1) -> NodeRecord:
    return NodeRecord(
        node_id, "memory.sql.cluster", "memory", node_id, {"size": size}, {"size": size}, {"port": 1}
    )


@pytest.fixture
def prefix() -> str:
    return uuid.uuid4().hex


@pytest.fixture
def bucket(gcs_server):
    client = storage.Client(project=None)
    yield client.bucket(BUCKET)
    client.close()


@pytest.fixture
def store(gcs_server, tmp_path, prefix):
    opened = open_store(f"gs://{BUCKET}/{prefix}", tmp_path)
    yield opened
    opened.close()


def _objects(bucket, prefix: str, folder: str, env: str = "dev") -> dict[str, int]:
    """Name -> size of every object under ``PREFIX/ENV/FOLDER/``."""
    return {blob.name: blob.size for blob in bucket.list_blobs(prefix=f"{prefix}/{env}/{folder}/")}


RETRIED = frozenset({408, 429, 500, 502, 503, 504})
"""Statuses the client retries: the request is made again (the emulator, loaded, answers some)."""


def _requests(store: GCSStore) -> Counter[str]:
    """Requests the store makes from now on, counted: ``create`` (an upload), ``read`` (an object's bytes),
    ``list``, ``other``."""
    counted: Counter[str] = Counter()

    def count(response, *args, **kwargs):
        request = response.request
        if response.status_code in RETRIED:
            counted["retried"] += 1
        if "/upload/" in request.url:
            counted["create"] += 1
        elif "alt=media" in request.url:
            counted["read"] += 1
        elif request.url.split("?")[0].endswith("/o"):
            counted["list"] += 1
        else:
            counted["other"] += 1
            counted[f"other: {request.method} {request.url.split('?')[0]} -> {response.status_code}"] += 1

    store._client._http.hooks["response"].append(count)
    return counted


def _apply(store, nodes: int, env: str = "dev", threads: int = 1) -> None:
    """What an apply of ``nodes`` creates writes: the lease, an intent and a record per node, the runtime
    configs, the release."""
    fence = store.acquire(env, "apply", ttl=60)

    def create(numbers: range) -> None:
        for number in numbers:
            store.add_intent(env, fence, f"node-{number}", "create", "token")
            store.record(env, fence, _record(f"node-{number}"))

    workers = [threading.Thread(target=create, args=(range(t, nodes, threads),)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    store.finish(env, fence, {"web": {"resources": {}}})
    store.release(env, fence)


class TestURL:
    def test_credentials_in_the_url_are_refused_and_never_shown(self, tmp_path):
        with pytest.raises(StateUnusable, match="no credentials") as refused:
            GCSStore("gs://someone:hunter2@state/shop", tmp_path)
        assert "hunter2" not in refused.value.message + (refused.value.hint or "")
        assert "STORAGE_EMULATOR_HOST" in (refused.value.hint or "")

    def test_the_prefix_is_the_apps_name_when_the_url_has_none(self, gcs_server, tmp_path, monkeypatch):
        monkeypatch.delenv("SKYRIG_APP", raising=False)
        (tmp_path / "skyrig.toml").write_text('app = "shop"\n')
        assert GCSStore(f"gs://{BUCKET}", tmp_path).prefix == "shop"
        assert GCSStore(f"gs://{BUCKET}/team/shop/", tmp_path).prefix == "team/shop"
        monkeypatch.setenv("SKYRIG_APP", "links")
        assert GCSStore(f"gs://{BUCKET}/", tmp_path).prefix == "links"

    @pytest.mark.parametrize("name", ["Bad_Bucket", "ab", "-state", "state..bucket", "a" * 64])
    def test_a_bad_bucket_name_is_refused(self, tmp_path, name):
        with pytest.raises(StateUnusable, match="is not a bucket name"):
            GCSStore(f"gs://{name}/shop", tmp_path)

    def test_bucket_names_cloud_storage_allows_are_taken(self):
        for name in ("team-state", "team_state", "state.example.com", "a" * 63, ".".join(["a" * 63] * 3)):
            assert gcs_store._bucket_name(name), name

    def test_a_missing_bucket_is_named(self, gcs_server, tmp_path):
        with pytest.raises(StateUnusable, match="the bucket 'no-such-bucket' does not exist") as missing:
            GCSStore("gs://no-such-bucket/shop", tmp_path)
        assert "skyrig never creates it" in (missing.value.hint or "")

    def test_the_plugin_is_found_by_its_scheme(self, gcs_server, tmp_path):
        [entry] = [e for e in importlib.metadata.entry_points(group="skyrig.state") if e.name == "gs"]
        assert entry.value == "skyrig_state_gcs:open_gcs"
        opened = open_store(f"gs://{BUCKET}/shop", tmp_path)
        assert isinstance(opened, GCSStore) and "gs://" in repr(opened)
        opened.close()


class TestCredentials:
    def test_with_the_emulator_the_client_is_anonymous(self, store):
        assert os.environ["STORAGE_EMULATOR_HOST"].startswith("http://127.0.0.1:")
        assert isinstance(store._client._credentials, AnonymousCredentials)

    @staticmethod
    def _opened_elsewhere(tmp_path, **environ: str) -> tuple[str, str]:
        """The message and hint of opening the store in a process of its own (google-auth reads its
        environment when imported) with no emulator, no gcloud login, no metadata server, and ``environ``."""
        environment = {
            key: value
            for key, value in os.environ.items()
            if key not in ("STORAGE_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS")
        }
        script = (
            "from pathlib import Path\n"
            "from skyrig.state import StateUnusable, open_store\n"
            "try:\n"
            f"    open_store('gs://{BUCKET}/shop', Path('.'))\n"
            "except StateUnusable as error:\n"
            "    print(error.message); print(error.hint)\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", script],
            env={
                **environment,
                "CLOUDSDK_CONFIG": str(tmp_path / "gcloud"),
                "NO_GCE_CHECK": "true",
                **environ,
            },
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.stdout.count("\n") == 2, result.stdout + result.stderr
        message, hint = result.stdout.splitlines()
        return message, hint

    def test_no_credentials_points_at_gcloud(self, tmp_path):
        message, hint = self._opened_elsewhere(tmp_path)
        assert "no Google credentials found" in message
        assert "gcloud auth application-default login" in hint and "skyrig.toml holds none" in hint

    def test_a_credentials_file_that_is_not_there_is_named(self, tmp_path):
        message, hint = self._opened_elsewhere(
            tmp_path, GOOGLE_APPLICATION_CREDENTIALS=str(tmp_path / "missing.json")
        )
        assert "the credentials file that GOOGLE_APPLICATION_CREDENTIALS names cannot be used" in message
        assert "missing.json" in message and "gcloud auth application-default login" in hint

    def test_without_a_gs_url_google_cloud_storage_is_never_imported(self, tmp_path):
        script = (
            "import sys\n"
            "from pathlib import Path\n"
            "from skyrig.plugins.registry import STORES, named\n"
            "from skyrig.state import open_store\n"
            "named(STORES, 'gs')\n"
            "open_store('sqlite:///state.db', Path('.')).close()\n"
            "print(sorted(m for m in sys.modules if m.startswith('google')))\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
        assert result.stdout.strip() == "[]", result.stdout + result.stderr


class TestErrors:
    def test_an_unreachable_emulator_is_named(self, gcs_server, tmp_path, monkeypatch):
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9")
        monkeypatch.setattr(gcs_store, "RETRY_FOR", 0.5)
        with pytest.raises(StateUnusable, match=r"in the emulator at http://127\.0\.0\.1:9") as failed:
            GCSStore(f"gs://{BUCKET}/shop", tmp_path)
        assert "STORAGE_EMULATOR_HOST" in (failed.value.hint or "")

    def test_a_create_refused_as_a_replace_is_a_position_taken(self, store, prefix, monkeypatch):
        """Without storage.objects.delete, Cloud Storage may answer 403, not 412, to a create of a name that
        exists: the store looks, and takes it as the position taken by another writer."""
        name = f"{prefix}/dev/log/{1:016d}.json"
        store._create(name, b"{}")

        def refused(self, *args, **kwargs):
            raise Forbidden("the caller does not have storage.objects.delete access")

        monkeypatch.setattr(storage.Blob, "upload_from_string", refused)
        with pytest.raises(gcs_store._Taken):
            store._create(name, b"{}")
        with pytest.raises(StateUnusable, match=r"access denied \(403\)") as denied:
            store._create(f"{prefix}/dev/log/{2:016d}.json", b"{}")
        assert "roles/storage.objectCreator" in (denied.value.hint or "")


class TestWrites:
    def test_an_apply_of_n_nodes_writes_2n_plus_3_small_entries(self, store, prefix, bucket):
        costs = {}
        for nodes, env in ((20, "dev"), (200, "big")):
            counted = _requests(store)
            _apply(store, nodes, env)
            entries = _objects(bucket, prefix, "log", env)
            assert len(entries) == 2 * nodes + 3, (
                "one entry per write: lease, intent and record, finish, release"
            )
            costs[nodes] = max(entries.values())
            if counted["retried"]:  # a request made again is a request more, of any kind
                continue
            assert counted["create"] <= 2 * nodes + 3 + 3, "and a snapshot of a few objects at release"
            assert counted["other"] == 0, counted
        assert costs[200] <= costs[20] + 16, f"an entry does not grow with the state: {costs}"

    def test_threads_writing_at_once_share_entries(self, store, prefix, bucket):
        _apply(store, 200, threads=8)
        assert len(store.nodes("dev")) == 200 and store.intents("dev") == {}
        entries = _objects(bucket, prefix, "log")
        assert len(entries) < 2 * 200 + 3, "group commit: fewer entries than writes"
        ops = max(len(json.loads(bucket.blob(name).download_as_bytes())["ops"]) for name in entries)
        assert 1 < ops <= 64


class TestSnapshots:
    def test_a_reader_starts_from_the_newest_snapshot(self, store, prefix, bucket, tmp_path):
        _apply(store, 300, threads=8)
        assert len(_objects(bucket, prefix, "snapshots")) >= 1, "written at release"
        reader = open_store(f"gs://{BUCKET}/{prefix}", tmp_path)
        counted = _requests(reader)
        assert len(reader.nodes("dev")) == 300
        chunks = len(_objects(bucket, prefix, "chunks"))
        assert counted["read"] <= 1 + chunks, f"the manifest and its chunks, no log entry: {counted}"
        reader.close()

    def test_a_snapshot_writes_only_the_chunks_that_changed(self, store, prefix, bucket):
        _apply(store, 600, threads=8)
        before, snapshots = (
            set(_objects(bucket, prefix, "chunks")),
            len(_objects(bucket, prefix, "snapshots")),
        )
        assert len(before) >= 4, "600 nodes in chunks of about 128"
        fence = store.acquire("dev", "apply", ttl=60)
        for _ in range(16):
            store.record("dev", fence, _record("node-7", size=2))
        store.release("dev", fence)
        assert len(_objects(bucket, prefix, "snapshots")) == snapshots + 1
        assert len(set(_objects(bucket, prefix, "chunks")) - before) == 1, (
            "one node changed: one chunk written"
        )

    def test_the_state_read_from_a_snapshot_is_the_state_read_from_the_log(
        self, store, prefix, bucket, tmp_path
    ):
        _apply(store, 40)
        fence = store.acquire("dev", "apply", ttl=60)
        store.forget("dev", fence, "node-3")
        store.add_intent("dev", fence, "node-99", "create", "token")
        store.release("dev", fence)
        from_snapshot = open_store(f"gs://{BUCKET}/{prefix}", tmp_path)
        for name in _objects(bucket, prefix, "snapshots"):
            bucket.blob(name).delete()
        from_log = open_store(f"gs://{BUCKET}/{prefix}", tmp_path)
        for read in ("nodes", "intents", "serial", "applied_at", "runtime_configs", "export"):
            assert getattr(from_snapshot, read)("dev") == getattr(from_log, read)("dev"), read
        from_snapshot.close()
        from_log.close()


class TestDamage:
    def test_a_missing_entry_is_named(self, store, prefix, bucket, tmp_path):
        _apply(store, 3)
        bucket.blob(f"{prefix}/dev/log/{2:016d}.json").delete()
        with pytest.raises(StateUnusable, match="the log of environment 'dev' has no entry 2") as gap:
            open_store(f"gs://{BUCKET}/{prefix}", tmp_path).nodes("dev")
        assert "never delete the log's objects" in (gap.value.hint or "")

    def test_a_damaged_entry_is_named(self, store, prefix, bucket, tmp_path):
        _apply(store, 3)
        name = f"{prefix}/dev/log/{4:016d}.json"
        bucket.blob(name).upload_from_string(b'{"v": 1, "ops": [')
        with pytest.raises(StateUnusable, match=f"{name} is damaged"):
            open_store(f"gs://{BUCKET}/{prefix}", tmp_path).nodes("dev")

    def test_an_entry_of_a_newer_format_is_refused(self, store, prefix, bucket):
        fence = store.acquire("dev", "apply", ttl=60)
        name = f"{prefix}/dev/log/{2:016d}.json"
        bucket.blob(name).upload_from_string(b'{"v": 2, "id": "x", "ops": []}')
        with pytest.raises(StateUnusable, match="format 2, newer than this skyrig's"):
            store.record("dev", fence, _record("network"))
