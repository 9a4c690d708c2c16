"""What the store relies on, checked on the server the other tests use (Azurite, see
:mod:`skyrig_state_azblob.testing`): a create with ``If-None-Match: *`` fails when the blob exists, even
when writers race for it (exactly one wins), and a blob lease is held by one holder at a time, with writes
to the leased blob refused without its lease id. Azurite serves every request on one Node.js event loop,
so unlike moto's S3 (see skyrig-state-s3's ``testing``) it needs no proxy that takes its writes one at a
time; these tests would say so before the store suite does if a version of it checked a condition apart
from the write."""

from __future__ import annotations

import threading
import uuid

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError
from azure.storage.blob import ContainerClient

from .conftest import CONTAINER

ROUNDS, WRITERS = 60, 8


def _clients(azurite_http) -> list[ContainerClient]:
    """A client (and so a connection) each, with no retries: a refusal is seen as it is."""
    return [
        ContainerClient.from_connection_string(azurite_http.connection_string, CONTAINER, retry_total=0)
        for _ in range(WRITERS)
    ]


def _race(target, clients: list[ContainerClient], name: str) -> tuple[list[int], list[str]]:
    start = threading.Barrier(len(clients))
    won: list[int] = []
    refused: list[str] = []

    def run(writer: int) -> None:
        start.wait()
        try:
            target(clients[writer], name, writer)
            won.append(writer)
        except HttpResponseError as error:
            refused.append(f"{error.status_code} {error.error_code}")

    threads = [threading.Thread(target=run, args=(writer,)) for writer in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return won, refused


def test_of_writers_creating_one_name_at_once_exactly_one_wins(azurite_http):
    clients = _clients(azurite_http)
    prefix = uuid.uuid4().hex

    def create(client: ContainerClient, name: str, writer: int) -> None:
        client.upload_blob(name, b"%d" % writer, overwrite=False)

    for round_ in range(ROUNDS):
        name = f"{prefix}/log/{round_:016d}.json"
        won, refused = _race(create, clients, name)
        assert len(won) == 1, f"round {round_}: {len(won)} writers created {name}: If-None-Match ignored"
        assert set(refused) <= {"409 BlobAlreadyExists", "412 ConditionNotMet"}, refused
        assert clients[0].download_blob(name).readall() == b"%d" % won[0], "the blob is the winner's"
    for client in clients:
        client.close()


def test_of_holders_taking_one_blob_lease_at_once_exactly_one_wins(azurite_http):
    clients = _clients(azurite_http)
    prefix = uuid.uuid4().hex

    def take(client: ContainerClient, name: str, writer: int) -> None:
        client.get_blob_client(name).acquire_lease(lease_duration=15)

    for round_ in range(ROUNDS // 4):
        name = f"{prefix}/{round_}/lock"
        clients[0].upload_blob(name, b"")
        won, refused = _race(take, clients, name)
        assert len(won) == 1, f"round {round_}: {len(won)} holders took the lease of {name}"
        assert set(refused) == {"409 LeaseAlreadyPresent"}, refused
    for client in clients:
        client.close()


def test_a_write_to_a_leased_blob_needs_its_lease_id(azurite_http):
    [client] = _clients(azurite_http)[:1]
    name = f"{uuid.uuid4().hex}/lock"
    client.upload_blob(name, b"")
    blob = client.get_blob_client(name)
    lease = blob.acquire_lease(lease_duration=15)
    with pytest.raises(HttpResponseError) as missing:
        blob.set_blob_metadata({"holder": "other"})
    assert (missing.value.status_code, missing.value.error_code) == (412, "LeaseIdMissing")
    with pytest.raises(HttpResponseError) as wrong:
        blob.set_blob_metadata({"holder": "other"}, lease=str(uuid.uuid4()))
    assert wrong.value.status_code == 412
    blob.set_blob_metadata({"holder": "holder"}, lease=lease)
    with pytest.raises(ResourceExistsError):
        client.upload_blob(name, b"replaced", overwrite=False)
    assert blob.get_blob_properties().metadata == {"holder": "holder"}
    client.close()
