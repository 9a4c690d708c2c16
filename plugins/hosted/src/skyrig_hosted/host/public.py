"""Objects on the host's one port: ``/objects/BUCKET/KEY`` (``BUCKET`` the objects server's name of a bucket,
``e-<id>-<name>``), beside the API's ``/v1``; the objects server itself listens on loopback only.

- **Public buckets.** ``GET`` and ``HEAD`` of an object of a bucket its environment declared public (the
  property ``public`` of the bucket resource, in the host's store) are answered to anyone, without
  credentials: the host reads the object with its own key and streams it. Anything else is 404: a private
  bucket's object, another environment's, a bucket that does not exist, an empty key (never a listing).
  No write is ever made this way.
- **Presigned URLs.** A request whose query carries an ``X-Amz-Signature`` (a presigned URL the data plane
  signed for this path, :mod:`skyrig_hosted.runtime.objects`) is forwarded unchanged, ``Host`` header
  included, to the objects server, which checks the signature, its expiry and the key's policy
  (:mod:`skyrig_hosted.host.objectstore`) before serving it: this port adds no permission of its own.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

log = logging.getLogger("skyrig_hosted.host.public")

PATH = "/objects"
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
     "transfer-encoding", "upgrade"}
)  # fmt: skip
SHOWN = (
    "content-type",
    "content-length",
    "content-range",
    "etag",
    "last-modified",
    "cache-control",
    "content-encoding",
)
"""The object's headers a public read answers with."""
CONDITIONS = (("range", "Range"), ("if-none-match", "IfNoneMatch"), ("if-modified-since", "IfModifiedSince"))
"""The request's headers passed on to the read: a part of the object, or 304 when the client has it."""
CHUNK = 64 * 1024


class Objects:
    """The handler of ``/objects/...``: the host's store (which buckets are public) and its objects
    server (read with the host's own key; presigned requests forwarded)."""

    def __init__(self, store: Any, server: Any) -> None:
        self.store = store
        self.server = server
        self._s3: Any = None
        self._http: Any = None

    def s3(self) -> Any:
        """The host's client of the objects server (made once; boto3's clients are thread-safe)."""
        if self._s3 is None:
            self._s3 = self.server.admin_client("s3")
        return self._s3

    def http(self) -> Any:
        """The client that forwards presigned requests to the objects server."""
        if self._http is None:
            import httpx

            self._http = httpx.AsyncClient(timeout=httpx.Timeout(300.0, connect=10.0), follow_redirects=False)
        return self._http

    async def handle(self, request: Request) -> Response:
        """Answers one request of ``/objects/...``."""
        raw_path = request.scope["raw_path"].decode("latin-1").split("?", 1)[0]
        if any(part in (".", "..") for part in raw_path.split("/")):
            return _not_found()  # never resolved to another path
        if "X-Amz-Signature=" in request.url.query:
            return await self._forward(request)
        bucket, key = request.path_params["bucket"], request.path_params["key"]
        if request.method not in ("GET", "HEAD") or not key:
            return _not_found()
        if not await anyio.to_thread.run_sync(self.store.public_bucket, bucket):
            return _not_found()
        conditions = {
            name: request.headers[header] for header, name in CONDITIONS if header in request.headers
        }
        return await anyio.to_thread.run_sync(self._read, bucket, key, request.method == "HEAD", conditions)

    def _read(self, bucket: str, key: str, head: bool, conditions: dict[str, str]) -> Response:
        from botocore.exceptions import ClientError

        try:
            if head:
                found = self.s3().head_object(Bucket=bucket, Key=key, **conditions)
            else:
                found = self.s3().get_object(Bucket=bucket, Key=key, **conditions)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            if code in ("304", "NotModified") or status == 304:
                return Response(status_code=304)
            if code in ("InvalidRange", "416") or status == 416:
                return PlainTextResponse("the range is not satisfiable\n", status_code=416)
            if code in ("NoSuchKey", "NoSuchBucket", "404", "403", "AccessDenied", "InvalidArgument"):
                return _not_found()
            raise
        http = found["ResponseMetadata"].get("HTTPHeaders", {})
        status = int(found["ResponseMetadata"].get("HTTPStatusCode") or 200)
        headers = {name: http[name] for name in SHOWN if name in http}
        headers["accept-ranges"] = "bytes"
        headers["x-content-type-options"] = "nosniff"
        if head:
            return Response(status_code=status, headers=headers)
        body = found["Body"]

        def chunks() -> Iterator[bytes]:
            try:
                yield from body.iter_chunks(CHUNK)
            finally:
                body.close()

        return StreamingResponse(chunks(), status_code=status, headers=headers)

    async def _forward(self, request: Request) -> Response:
        import httpx

        scope = request.scope
        headers = [(k, v) for k, v in scope["headers"] if k.decode("latin-1").lower() not in HOP_BY_HOP]
        url = f"{self.server.endpoint}{scope['raw_path'].decode('latin-1')}?{request.url.query}"
        has_body = any(k in (b"content-length", b"transfer-encoding") for k, _ in scope["headers"])
        client = self.http()
        outgoing = client.build_request(
            request.method, url, headers=headers, content=_stream(request) if has_body else b""
        )
        try:
            answer = await client.send(outgoing, stream=True)
        except httpx.HTTPError as error:
            log.warning("the objects server did not answer a presigned request: %s", type(error).__name__)
            return PlainTextResponse("the objects server is not answering\n", status_code=502)
        out = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP}

        async def body() -> AsyncIterator[bytes]:
            try:
                async for chunk in answer.aiter_raw():
                    yield chunk
            finally:
                await answer.aclose()

        return StreamingResponse(body(), status_code=answer.status_code, headers=out)

    async def close(self) -> None:
        """The forwarding client's connections."""
        if self._http is not None:
            await self._http.aclose()


async def _stream(request: Request) -> AsyncIterator[bytes]:
    async for chunk in request.stream():
        if chunk:
            yield chunk


def _not_found() -> Response:
    return PlainTextResponse("no such object\n", status_code=404)


def routes(api: Any) -> list[Route]:
    """``/objects/{bucket}/{key}`` on ``api``'s store and objects server (none when the API runs without
    the host's servers)."""
    servers = getattr(api.tenancy, "servers", None)
    if servers is None:
        return []
    handler = Objects(api.store, servers.objects)
    methods = ["GET", "HEAD", "PUT", "DELETE"]
    return [
        Route(PATH + "/{bucket}/{key:path}", handler.handle, methods=methods),
        # anything else under /objects: 404 (a bucket's name alone too, never redirected to a listing)
        Route(PATH + "/{rest:path}", _nothing, methods=methods),
        Route(PATH, _nothing, methods=methods),
    ]


async def _nothing(request: Request) -> Response:
    return _not_found()
