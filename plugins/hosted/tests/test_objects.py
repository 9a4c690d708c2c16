"""Buckets on a real host: public objects served on the host's one port (``/objects/BUCKET/KEY``) only for
buckets declared public, never a private one, another environment's, a listing or a write; presigned
URLs answered on that port; versions and delete markers kept across a ``kill -9`` of the host, and gone
with their bucket."""

from __future__ import annotations

import os
import signal
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

pytest.importorskip("skyrig_hosted.host.servers", reason="the host's servers are not installed")

from skyrig_hosted import runtime
from skyrig_hosted.objects import objects_url
from skyrig_hosted.runtime.objects import BucketClient
from skyrig_hosted.settings import TOKEN_VARIABLE


class Env:
    """An app's environment on a host, through the host's API with the admin token."""

    def __init__(self, url: str, token: str, app: str, env: str) -> None:
        self.url, self.token, self.app, self.env = url, token, app, env
        self.api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60)
        self.api.post("/apps", json={"name": app})  # 201, or 409 when it exists
        assert self.api.put(f"/apps/{app}/envs/{env}", json={"type": "preview"}).status_code in (200, 201)

    def bucket(self, name: str, *, public: bool = False, versioned: bool = False) -> BucketClient:
        """The bucket, made or updated on the host, as its data plane (the runtime SDK's) reaches it."""
        answer = self.api.put(
            f"/apps/{self.app}/envs/{self.env}/resources/bucket/{name}",
            json={"properties": {"public": public, "versioned": versioned}},
        )
        assert answer.status_code in (200, 201), answer.text
        outputs = answer.json()["resource"]["outputs"]
        base = objects_url(self.url)
        entry = {
            **outputs,
            "api": self.url,
            "password": outputs["credentials"],
            "objects_url": base,
            "public_url": f"{base}/{outputs['bucket']}" if public else None,
        }
        return BucketClient(entry)

    def delete(self) -> None:
        assert self.api.delete(f"/apps/{self.app}/envs/{self.env}").status_code == 204


@pytest.fixture
def token(host: Any) -> Iterator[str]:
    """The data plane reads its buckets' credentials with this process's token (the admin's here)."""
    before = os.environ.get(TOKEN_VARIABLE)
    os.environ[TOKEN_VARIABLE] = host.admin_token
    runtime.forget()
    yield host.admin_token
    runtime.forget()
    if before is None:
        os.environ.pop(TOKEN_VARIABLE, None)
    else:
        os.environ[TOKEN_VARIABLE] = before


def _name() -> str:
    return f"o{uuid.uuid4().hex[:8]}"


def test_only_a_public_buckets_objects_are_served_without_credentials(host: Any, token: str) -> None:
    env = Env(host.url, token, _name(), "pr-1")
    assets = env.bucket("assets", public=True)
    files = env.bucket("files")
    assets.upload("logo dir/a+b.svg", b"<svg/>")
    files.upload("secret.txt", b"not for you")
    anyone = httpx.Client(timeout=30)  # no token, no signature
    url = assets.public_url("logo dir/a+b.svg")
    assert url.startswith(objects_url(host.url) + "/"), "served on the host's one port"
    answer = anyone.get(url)
    assert (answer.status_code, answer.content) == (200, b"<svg/>")
    assert answer.headers["content-length"] == "6"
    head = anyone.head(url)
    assert (head.status_code, head.headers["content-length"]) == (200, "6")
    part = anyone.get(url, headers={"Range": "bytes=1-3"})
    assert (part.status_code, part.content) == (206, b"svg")
    assert anyone.get(url, headers={"If-None-Match": answer.headers["etag"]}).status_code == 304
    # a private bucket: not served, not even said to exist differently from a missing object
    with pytest.raises(PermissionError):
        files.public_url("secret.txt")
    private = f"{objects_url(host.url)}/{files.bucket}/secret.txt"
    assert anyone.get(private).status_code == 404
    assert b"not for you" not in anyone.get(private).content
    assert anyone.head(private).status_code == 404
    # never a listing, never a write
    for path in (f"{assets.bucket}/", f"{assets.bucket}", f"{assets.bucket}?list-type=2"):
        assert anyone.get(f"{objects_url(host.url)}/{path}").status_code == 404
    assert anyone.put(url, content=b"defaced").status_code in (404, 405)
    assert anyone.delete(url).status_code in (404, 405)
    assert assets.download("logo dir/a+b.svg") == b"<svg/>"
    assert anyone.get(assets.public_url("never-there")).status_code == 404
    # made private again: no longer served
    env.bucket("assets", public=False)
    assert anyone.get(url).status_code == 404
    env.delete()


def test_another_environments_private_bucket_cannot_be_read_through_the_host(host: Any, token: str) -> None:
    app = _name()
    mine, theirs = Env(host.url, token, app, "pr-1"), Env(host.url, token, app, "pr-2")
    mine.bucket("assets", public=True).upload("x", b"mine")
    private = theirs.bucket("assets")  # the same name, private, in another environment
    private.upload("x", b"theirs")
    anyone = httpx.Client(timeout=30)
    assert anyone.get(f"{objects_url(host.url)}/{private.bucket}/x").status_code == 404
    # nor by a path that would resolve elsewhere: dot segments are refused as they come
    public_bucket = mine.bucket("assets", public=True).bucket
    sneaky = f"{objects_url(host.url)}/{public_bucket}/../{private.bucket}/x"
    assert httpx.get(httpx.URL(sneaky), timeout=30).status_code in (400, 404)
    with socket.create_connection((urlsplit(host.url).hostname, urlsplit(host.url).port)) as raw:
        raw.sendall(f"GET /objects/{public_bucket}/../{private.bucket}/x HTTP/1.0\r\n\r\n".encode())
        assert raw.recv(64).split(b" ")[1] == b"404"
    # a URL presigned with one environment's key for another's bucket: the objects server refuses it
    public = mine.bucket("assets", public=True)
    forged = BucketClient({**public.entry, "bucket": private.bucket})
    assert anyone.get(forged.signed_url("x", "5m")).status_code == 403
    # each environment's own presigned URLs work on the host's port, and a tampered one does not
    signed = private.signed_url("x", "5m")
    assert signed.startswith(f"{objects_url(host.url)}/{private.bucket}/x?")
    assert anyone.get(signed).content == b"theirs"
    tampered = signed.replace("/x?", "/y?")
    assert anyone.get(tampered).status_code == 403
    upload = private.signed_url("through the port", "5m", "PUT")
    assert anyone.put(upload, content=b"put").status_code == 200
    assert private.download("through the port") == b"put"
    assert anyone.delete(private.signed_url("through the port", "5m", "DELETE")).status_code == 204
    assert private.list() == ["x"]
    mine.delete()
    theirs.delete()


def test_versions_survive_a_killed_host_and_go_with_their_bucket(data: Path) -> None:
    from skyrig_hosted.conformance import Host

    with Host(data) as first:
        os.environ[TOKEN_VARIABLE] = first.admin_token
        runtime.forget()
        env = Env(first.url, first.admin_token, _name(), "pr-1")
        history = env.bucket("history", versioned=True)
        history.upload("doc", b"v1")
        history.upload("doc", b"v2")
        history.upload("gone", b"g1")
        history.remove("gone")  # a delete marker over g1
        plain = env.bucket("plain")
        plain.upload("doc", b"p1")
        plain.upload("doc", b"p2")  # no versioning: replaced
        assert first.process is not None
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(30)
    with Host(data) as second:
        os.environ[TOKEN_VARIABLE] = second.admin_token
        runtime.forget()
        env = Env(second.url, second.admin_token, env.app, "pr-1")
        history = env.bucket("history", versioned=True)
        assert history.download("doc") == b"v2"
        assert history.versions("doc") == [b"v1"]
        assert history.versions("gone") == [b"g1"]
        with pytest.raises(KeyError):
            history.download("gone")
        history.upload("doc", b"v3")  # versioning is still on
        assert history.versions("doc") == [b"v1", b"v2"]
        plain = env.bucket("plain")
        assert plain.download("doc") == b"p2"
        assert plain.versions("doc") == []
        buckets = data / "objects" / "buckets"
        assert (buckets / history.bucket).is_dir()
        env.delete()
        s3 = _admin_s3(data)
        for bucket in (history.bucket, plain.bucket):
            assert not (buckets / bucket).exists(), "a deleted bucket left files on disk"
            assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    os.environ.pop(TOKEN_VARIABLE, None)
    runtime.forget()


def _admin_s3(data: Path) -> Any:
    import json

    from skyrig_hosted.host.servers import ObjectServer

    port = json.loads((data / "servers.json").read_text())["objects"]
    return ObjectServer(data / "objects", port).admin_client("s3")
