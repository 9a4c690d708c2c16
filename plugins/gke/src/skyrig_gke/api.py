"""Talking to GKE: the Kubernetes Engine API (google-cloud-container, over REST), IAM and Compute Engine
(google-api-python-client, from the discovery documents it ships), the GCP provider's migration jobs
(google-cloud-run), and each cluster's Kubernetes API
(:class:`skyrig_kubernetes.cluster.Cluster`) with the endpoint and CA GKE gives and a Google access token.

Errors become :class:`~skyrig.provider.NotFound`, :class:`Conflict`, :class:`~skyrig.provider.ThrottledError`,
:class:`~skyrig.provider.TransientError` or :class:`~skyrig.provider.ProviderError`, naming the call.
"""

from __future__ import annotations

import base64
import os
import threading
from typing import TYPE_CHECKING, Any

# Imported with the node types, in one thread: Google's libraries imported for the first time by several
# of the engine's threads at once can find each other half-initialised.
import google.auth.transport.requests
from google.cloud import container_v1, run_v2
from googleapiclient import discovery

from skyrig.provider import (
    CloudClient,
    NotFound,
    ProviderError,
    ThrottledError,
    TransientError,
    UserError,
    wait_for,
)
from skyrig_gke import names
from skyrig_gke.settings import TOKEN_VARIABLE

if TYPE_CHECKING:
    from skyrig.provider import Context, Environment
    from skyrig_gke.settings import GkeSettings
    from skyrig_kubernetes.cluster import Cluster

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
_HINT = "give the credentials skyrig runs with the roles listed in docs/providers/gke.md"


class Conflict(ProviderError):
    """The resource exists already (409), or an etag is stale."""


def translate(error: Exception, where: str) -> Exception:
    """``error`` from a Google client library as one of skyrig's provider errors, naming ``where``."""
    from google.api_core import exceptions as core
    from googleapiclient.errors import HttpError

    if isinstance(error, HttpError):
        status, message = int(error.resp.status), str(error.reason or error)
    elif isinstance(error, core.GoogleAPICallError):
        status, message = int(error.code or 500), str(error.message or error)
    elif isinstance(error, core.RetryError | ConnectionError | TimeoutError | OSError):
        return TransientError(f"GCP {where}: cannot reach the endpoint: {error}")
    else:
        from google.auth.exceptions import DefaultCredentialsError, RefreshError

        if isinstance(error, DefaultCredentialsError | RefreshError):
            return ProviderError(f"GCP {where}: no usable Google credentials ({error}); {_HINT}")
        return error
    text = f"GCP {where}: {message}"
    if status == 404:
        return NotFound(text)
    if status == 409:
        return Conflict(text)
    if status == 429:
        return ThrottledError(text)
    if status >= 500:
        return TransientError(text)
    if status in (401, 403):
        return ProviderError(f"{text}; {_HINT}")
    return ProviderError(text)


class GkeClient(CloudClient):
    """What the GKE node types use: the Kubernetes Engine API, IAM, Compute Engine, and the cluster."""

    cloud, provider = "GCP", "gke"

    def __init__(self, app: str, environment: Environment, settings: GkeSettings) -> None:
        super().__init__()
        self.app = app
        self.environment = environment.name
        self.settings = settings
        self.project = names.project(app, environment, settings)
        """The project the cluster is in: the gcp provider's."""
        self.region = names.region(environment, settings)
        """The region of the regional cluster: the gcp provider's."""
        self._lock = threading.Lock()
        self._local = threading.local()
        self._credentials: Any = None
        self._container: Any = None
        self._jobs: Any = None
        self._cluster: Cluster | None = None

    def location(self) -> str:
        """``projects/PROJECT/locations/REGION``: the parent of the regional cluster."""
        return f"projects/{self.project}/locations/{self.region}"

    def cluster_name(self) -> str:
        """The cluster the services run on: the configured one, else the one skyrig makes."""
        return self.settings.cluster or names.cluster(self.app, self.environment)

    def credentials(self) -> Any:
        """Application Default Credentials, or none at all against the fake."""
        with self._lock:
            if self._credentials is None:
                if self.settings.emulator == "fake":
                    from google.auth.credentials import AnonymousCredentials

                    self._credentials = AnonymousCredentials()
                else:
                    import google.auth

                    try:
                        self._credentials, _ = google.auth.default(scopes=[SCOPE])
                    except Exception as error:
                        raise translate(error, "auth default") from None
            return self._credentials

    # -- the Kubernetes Engine API -------------------------------------------------------------------

    def container(self, method: str, **request: Any) -> Any:
        """Call ``method`` of the Kubernetes Engine API's client (``get_cluster``, ...) with ``request``."""
        if self._container is None:
            credentials = self.credentials()
            endpoint = self.settings.endpoint("container")
            options = {"api_endpoint": endpoint} if endpoint else None
            self._container = container_v1.ClusterManagerClient(
                credentials=credentials, transport="rest", client_options=options
            )
        try:
            return getattr(self._container, method)(request=request)
        except Exception as error:
            translated = translate(error, f"container {method}")
            if translated is error:
                raise
            raise translated from None

    def migration_job(self, name: str) -> Any:
        """The GCP provider's Cloud Run job ``name`` of the environment's region (a database's migrations,
        whose command and environment a Kubernetes Job runs)."""
        if self._jobs is None:
            endpoint = self.settings.endpoint("run")
            self._jobs = run_v2.JobsClient(
                credentials=self.credentials(),
                transport="rest",
                client_options={"api_endpoint": endpoint} if endpoint else None,
            )
        try:
            return self._jobs.get_job(name=f"{self.location()}/jobs/{name}")
        except Exception as error:
            translated = translate(error, "run get_job")
            if translated is error:
                raise
            raise translated from None

    def wait(self, context: Context, what: str, operation: Any) -> None:
        """Wait for a GKE operation until it is DONE; raise its error."""
        state = {"operation": operation}
        done = container_v1.Operation.Status.DONE
        name = f"{self.location()}/operations/{operation.name}"

        def check() -> tuple[bool, str]:
            if state["operation"].status != done:
                state["operation"] = self.container("get_operation", name=name)
            current = state["operation"]
            return current.status == done, current.status.name.lower()

        wait_for(context, what, check)
        error = state["operation"].error
        if error and error.message:
            raise ProviderError(f"{what} failed: {error.message}")

    # -- the discovery-based APIs --------------------------------------------------------------------

    def api(self, name: str) -> Any:
        """This thread's google-api-python-client resource of ``iam`` or ``compute``."""
        built: dict[str, Any] = self._local.__dict__.setdefault("apis", {})
        if name not in built:
            endpoint = self.settings.endpoint(name)
            built[name] = discovery.build(
                name,
                "v1",
                credentials=self.credentials(),
                client_options={"api_endpoint": endpoint} if endpoint else None,
                static_discovery=True,
                cache_discovery=False,
            )
        return built[name]

    def execute(self, request: Any) -> Any:
        """Run a google-api-python-client ``request``, translated."""
        try:
            return request.execute(num_retries=self.settings.max_attempts - 1)
        except Exception as error:
            translated = translate(error, str(getattr(request, "methodId", "request")))
            if translated is error:
                raise
            raise translated from None

    # -- the cluster's Kubernetes API ----------------------------------------------------------------

    def kubernetes(self) -> Cluster:
        """The Kubernetes API of the services' cluster: ``kubernetes_endpoint`` with the token of
        ``GKE_KUBERNETES_TOKEN`` where set (the tests' fake), else the cluster's endpoint and CA as GKE
        gives them, called with a Google access token of skyrig's credentials."""
        with self._lock:
            if self._cluster is not None:
                return self._cluster
        from skyrig_kubernetes.cluster import Cluster

        if self.settings.kubernetes_endpoint:
            token = os.environ.get(TOKEN_VARIABLE)
            if not token:
                raise UserError(
                    f"kubernetes_endpoint is set but {TOKEN_VARIABLE} is not",
                    f"export {TOKEN_VARIABLE} with the API server's bearer token",
                )
            found = Cluster.from_token(self.settings.kubernetes_endpoint, token)
        else:
            cluster = self.container("get_cluster", name=f"{self.location()}/clusters/{self.cluster_name()}")
            if not cluster.endpoint:
                raise TransientError(f"GKE cluster {self.cluster_name()} has no endpoint yet")
            ca = base64.b64decode(cluster.master_auth.cluster_ca_certificate).decode()
            found = Cluster.from_token(f"https://{cluster.endpoint}", self._access_token(), ca)
        with self._lock:
            self._cluster = self._cluster or found
            return self._cluster

    def _access_token(self) -> str:
        credentials = self.credentials()
        try:
            credentials.refresh(google.auth.transport.requests.Request())
        except Exception as error:
            raise translate(error, "auth token") from None
        return str(credentials.token)

    def close(self) -> None:
        """Release the cluster's connections."""
        if self._cluster is not None:
            self._cluster.close()
