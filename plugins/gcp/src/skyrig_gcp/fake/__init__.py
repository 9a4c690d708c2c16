"""A FAKE of the Google Cloud APIs that have no emulator, for skyrig-gcp's tests and conformance profile.

This is not Google: it is a strict stand-in, driven by the discovery documents google-api-python-client
ships, for Cloud SQL Admin v1, Cloud Run v2, Secret Manager v1, Memorystore for Redis v1, Compute Engine v1
(networks and load balancing), IAM v1 (service accounts), Resource Manager v3, Service Networking v1, Cloud
Scheduler v1, Artifact Registry v1, Service Usage v1 and Kubernetes Engine v1 (GKE's control plane: clusters,
node pools; no Kubernetes behind them). Requests are routed and validated as Google's front
end would (unknown paths 404; unknown, ill-typed or missing query parameters and body fields 400, in
Google's error envelope); resources behave as each API documents (ids, states, long-running operations that
finish after a delay, IAM etags, each API's own rules). The provider's runtime never imports it.

Start it, point the real client libraries at it, read what they did::

    from skyrig_gcp.fake import FakeGcp

    with FakeGcp(projects=("demo-project",)) as fake:
        client = SecretManagerServiceClient(
            credentials=AnonymousCredentials(), transport="rest",
            client_options={"api_endpoint": fake.endpoint("secretmanager")},
        )
        sqladmin = build("sqladmin", "v1", credentials=AnonymousCredentials(), static_discovery=True,
                         client_options={"api_endpoint": fake.discovery_endpoint("sqladmin")})
        ...
        fake.calls.count("secretmanager", "secrets.create")
        fake.inject_error("redis", "instances.get", 503)
        fake.update_resource(
            "sqladmin", "projects/demo-project/instances/db", {"settings": {"tier": "db-custom-2-7680"}}
        )
"""

from __future__ import annotations

from skyrig_gcp.fake.core import Call, CallLog, FakeGcp
from skyrig_gcp.fake.errors import ApiError

__all__ = ["ApiError", "Call", "CallLog", "FakeGcp"]
