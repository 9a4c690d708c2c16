"""What is particular to the S3 store: its URL, its errors, what an apply costs in writes, snapshots, and a
log damaged by hand. (What every store must do is the store suite's: test_store_suite.py.)"""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter

import boto3
import pytest

from skyrig.state import NodeRecord, StateUnusable, open_store
from skyrig_state_s3.store import S3Store

from .conftest import BUCKET


def _record(node_id: str, size: int = 1) -> NodeRecord:
    return NodeRecord(
        node_id, "memory.sql.cluster", "memory", node_id, {"size": size}, {"size": size}, {"port": 1}
    )


@pytest.fixture
def prefix() -> str:
    return uuid.uuid4().hex


@pytest.fixture
def store(moto_server, tmp_path, prefix):
    opened = open_store(f"s3://{BUCKET}/{prefix}", tmp_path)
    yield opened
    opened.close()


def _objects(prefix: str, folder: str, env: str = "dev") -> dict[str, int]:
    """Key -> size of every object under ``PREFIX/ENV/FOLDER/``."""
    s3 = boto3.client("s3")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"{prefix}/{env}/{folder}/")
    return {item["Key"]: item["Size"] for page in pages for item in page.get("Contents", [])}


def _calls(store: S3Store) -> Counter[str]:
    """S3 operations the store calls from now on, counted."""
    counted: Counter[str] = Counter()
    store._s3.meta.events.register("before-call.s3", lambda model, **_: counted.update([model.name]))
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
            S3Store("s3://AKIAEXAMPLE:hunter2@state/shop", tmp_path)
        assert "hunter2" not in refused.value.message + (refused.value.hint or "")
        assert "AWS_ENDPOINT_URL_S3" in (refused.value.hint or "")

    def test_the_prefix_is_the_apps_name_when_the_url_has_none(self, moto_server, tmp_path, monkeypatch):
        monkeypatch.delenv("SKYRIG_APP", raising=False)
        (tmp_path / "skyrig.toml").write_text('app = "shop"\n')
        assert S3Store(f"s3://{BUCKET}", tmp_path).prefix == "shop"
        assert S3Store(f"s3://{BUCKET}/team/shop/", tmp_path).prefix == "team/shop"
        monkeypatch.setenv("SKYRIG_APP", "links")
        assert S3Store(f"s3://{BUCKET}/", tmp_path).prefix == "links"

    def test_a_bad_bucket_name_is_refused(self, tmp_path):
        with pytest.raises(StateUnusable, match="'Bad_Bucket' is not a bucket name"):
            S3Store("s3://Bad_Bucket/shop", tmp_path)

    def test_a_missing_bucket_is_named(self, moto_server, tmp_path):
        with pytest.raises(StateUnusable, match="the bucket 'no-such-bucket' does not exist") as missing:
            S3Store("s3://no-such-bucket/shop", tmp_path)
        assert "skyrig never creates it" in (missing.value.hint or "")

    def test_no_credentials_points_at_the_aws_chain(self, moto_server, tmp_path, monkeypatch):
        for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
            monkeypatch.delenv(variable, raising=False)
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
        monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
        monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        with pytest.raises(StateUnusable, match="no AWS credentials found") as missing:
            S3Store(f"s3://{BUCKET}/shop", tmp_path)
        assert "skyrig.toml holds none" in (missing.value.hint or "")

    def test_the_plugin_is_found_by_its_scheme(self, moto_server, tmp_path):
        opened = open_store(f"s3://{BUCKET}/shop", tmp_path)
        assert isinstance(opened, S3Store) and "s3://" in repr(opened)


class TestWrites:
    def test_an_apply_of_n_nodes_writes_2n_plus_3_small_entries(self, store, prefix):
        costs = {}
        for nodes, env in ((20, "dev"), (200, "big")):
            calls = _calls(store)
            _apply(store, nodes, env)
            entries = _objects(prefix, "log", env)
            assert len(entries) == 2 * nodes + 3, (
                "one entry per write: lease, intent and record, finish, release"
            )
            costs[nodes] = max(entries.values())
            assert calls["PutObject"] <= 2 * nodes + 3 + 3, "and a snapshot of a few objects at release"
        assert costs[200] <= costs[20] + 16, f"an entry does not grow with the state: {costs}"

    def test_threads_writing_at_once_share_entries(self, store, prefix):
        _apply(store, 200, threads=8)
        assert len(store.nodes("dev")) == 200 and store.intents("dev") == {}
        entries = _objects(prefix, "log")
        assert len(entries) < 2 * 200 + 3, "group commit: fewer entries than writes"
        ops = max(
            len(json.loads(boto3.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read())["ops"])
            for key in entries
        )
        assert 1 < ops <= 64


class TestSnapshots:
    def test_a_reader_starts_from_the_newest_snapshot(self, store, prefix, tmp_path):
        _apply(store, 300, threads=8)
        assert len(_objects(prefix, "snapshots")) >= 1, "written at release"
        reader = open_store(f"s3://{BUCKET}/{prefix}", tmp_path)
        calls = _calls(reader)
        assert len(reader.nodes("dev")) == 300
        chunks = len(_objects(prefix, "chunks"))
        assert calls["GetObject"] <= 1 + chunks, f"the manifest and its chunks, no log entry: {calls}"
        reader.close()

    def test_a_snapshot_writes_only_the_chunks_that_changed(self, store, prefix):
        _apply(store, 600, threads=8)
        before, snapshots = set(_objects(prefix, "chunks")), len(_objects(prefix, "snapshots"))
        assert len(before) >= 4, "600 nodes in chunks of about 128"
        fence = store.acquire("dev", "apply", ttl=60)
        for _ in range(16):
            store.record("dev", fence, _record("node-7", size=2))
        store.release("dev", fence)
        assert len(_objects(prefix, "snapshots")) == snapshots + 1
        assert len(set(_objects(prefix, "chunks")) - before) == 1, "one node changed: one chunk written"

    def test_the_state_read_from_a_snapshot_is_the_state_read_from_the_log(self, store, prefix, tmp_path):
        _apply(store, 40)
        fence = store.acquire("dev", "apply", ttl=60)
        store.forget("dev", fence, "node-3")
        store.add_intent("dev", fence, "node-99", "create", "token")
        store.release("dev", fence)
        from_snapshot = open_store(f"s3://{BUCKET}/{prefix}", tmp_path)
        s3 = boto3.client("s3")
        for key in _objects(prefix, "snapshots"):
            s3.delete_object(Bucket=BUCKET, Key=key)
        from_log = open_store(f"s3://{BUCKET}/{prefix}", tmp_path)
        for read in ("nodes", "intents", "serial", "applied_at", "runtime_configs", "export"):
            assert getattr(from_snapshot, read)("dev") == getattr(from_log, read)("dev"), read
        from_snapshot.close()
        from_log.close()


class TestDamage:
    def test_a_missing_entry_is_named(self, store, prefix, tmp_path):
        _apply(store, 3)
        boto3.client("s3").delete_object(Bucket=BUCKET, Key=f"{prefix}/dev/log/{2:016d}.json")
        with pytest.raises(StateUnusable, match="the log of environment 'dev' has no entry 2") as gap:
            open_store(f"s3://{BUCKET}/{prefix}", tmp_path).nodes("dev")
        assert "never delete the log's objects" in (gap.value.hint or "")

    def test_a_damaged_entry_is_named(self, store, prefix, tmp_path):
        _apply(store, 3)
        key = f"{prefix}/dev/log/{4:016d}.json"
        boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=b'{"v": 1, "ops": [')
        with pytest.raises(StateUnusable, match=f"{key} is damaged"):
            open_store(f"s3://{BUCKET}/{prefix}", tmp_path).nodes("dev")

    def test_an_entry_of_a_newer_format_is_refused(self, store, prefix, tmp_path):
        fence = store.acquire("dev", "apply", ttl=60)
        key = f"{prefix}/dev/log/{2:016d}.json"
        boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=b'{"v": 2, "id": "x", "ops": []}')
        with pytest.raises(StateUnusable, match="format 2, newer than this skyrig's"):
            store.record("dev", fence, _record("network"))
