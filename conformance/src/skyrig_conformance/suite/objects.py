"""Buckets through the runtime SDK: put, get, list, delete, signed URLs over HTTP; versions and public
URLs when claimed; a service reaches only what it uses."""

from __future__ import annotations

import urllib.error
import urllib.request
import uuid

import pytest

from skyrig import Bucket
from skyrig_conformance import requirements as needs
from skyrig_conformance.plugin import Suite


def _fetch(url: str, method: str = "GET", data: bytes | None = None) -> tuple[int, bytes]:
    headers = {}
    if data is not None:
        headers = {"content-type": "application/octet-stream", **Bucket.UPLOAD_HEADERS}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


class TestObjects(Suite):
    """Buckets as the app sees them."""

    @pytest.fixture
    def app(self, deployment):
        yield deployment.bind("alpha")
        deployment.unbind()

    @needs.kinds("bucket")
    def test_put_get_list_delete(self, app):
        files = app.resources.files
        prefix = f"t-{uuid.uuid4().hex[:8]}/"
        files.upload(prefix + "a.txt", b"alpha")
        files.upload(prefix + "b/c.bin", bytes(range(256)))
        assert files.download(prefix + "a.txt") == b"alpha"
        assert files.download(prefix + "b/c.bin") == bytes(range(256))
        assert files.list(prefix) == [prefix + "a.txt", prefix + "b/c.bin"]
        files.upload(prefix + "a.txt", b"again")
        assert files.download(prefix + "a.txt") == b"again", "an upload replaces the object"
        files.remove(prefix + "a.txt")
        files.remove(prefix + "never-there")
        assert files.list(prefix) == [prefix + "b/c.bin"]
        with pytest.raises(KeyError):
            files.download(prefix + "a.txt")

    @needs.kinds("bucket")
    def test_a_signed_url_grants_what_it_says_over_http(self, deployment, app):
        files = app.resources.files
        key = f"signed-{uuid.uuid4().hex[:8]}.txt"
        files.upload(key, b"for your eyes")
        status, body = _fetch(files.signed_url(key, "5m"))
        assert (status, body) == (200, b"for your eyes"), "a signed GET URL serves the object"
        upload = files.signed_url(f"up-{key}", "5m", "PUT")
        status, _ = _fetch(upload, "PUT", b"put through a URL")
        assert status in (200, 201, 204), status
        assert files.download(f"up-{key}") == b"put through a URL"
        with pytest.raises(PermissionError):
            files.public_url(key)
        needs.limited(deployment.profile, "objects.signed_url_tampering")
        url = files.signed_url(key, "5m")
        tampered = url[:-1] + ("0" if url[-1] != "0" else "1")
        assert _fetch(tampered)[0] in (400, 401, 403), "a tampered signed URL was honoured"

    @needs.feature("bucket.versioning")
    def test_a_versioned_bucket_keeps_earlier_versions(self, deployment, app):
        history = app.resources.history
        key = f"doc-{uuid.uuid4().hex[:8]}"
        history.upload(key, b"v1")
        history.upload(key, b"v2")
        assert history.download(key) == b"v2"
        needs.limited(deployment.profile, "objects.versions")
        assert history.versions(key) == [b"v1"]
        history.remove(key)
        assert history.versions(key) == [b"v1", b"v2"], "remove keeps the last bytes as a version"
        with pytest.raises(KeyError):
            history.download(key)

    @needs.feature("bucket.public")
    def test_a_public_bucket_serves_anyone_with_the_url(self, deployment, app):
        assets = app.resources.assets
        key = f"logo-{uuid.uuid4().hex[:8]}.svg"
        assets.upload(key, b"<svg/>")
        url = assets.public_url(key)
        needs.limited(deployment.profile, "objects.public_url_fetch")
        assert _fetch(url) == (200, b"<svg/>"), f"{url} does not serve the object"

    @needs.kinds("bucket")
    def test_a_service_reaches_only_what_it_uses(self, deployment, app):
        from skyrig.runtime.binding import BindingError

        key = f"shared-{uuid.uuid4().hex[:8]}"
        app.resources.files.upload(key, b"shared")
        beta = deployment.bind("beta")
        assert beta.beta.fetch(key) == b"shared", "beta downloads from alpha's bucket, as it declares"
        with pytest.raises(BindingError):
            beta.beta.files.upload(key, b"beta never declared an upload")
