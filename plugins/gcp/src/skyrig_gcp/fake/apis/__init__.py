"""The FAKE Google APIs' semantics, one module per API (:mod:`skyrig_gcp.fake`); generic CRUD in ``base``."""

from __future__ import annotations

from skyrig_gcp.fake.apis.artifactregistry import ArtifactRegistry
from skyrig_gcp.fake.apis.base import ApiHandler
from skyrig_gcp.fake.apis.cloudresourcemanager import CloudResourceManager
from skyrig_gcp.fake.apis.cloudscheduler import CloudScheduler
from skyrig_gcp.fake.apis.compute import Compute
from skyrig_gcp.fake.apis.container import Container
from skyrig_gcp.fake.apis.iam import Iam
from skyrig_gcp.fake.apis.redis import Redis
from skyrig_gcp.fake.apis.run import Run
from skyrig_gcp.fake.apis.secretmanager import SecretManager
from skyrig_gcp.fake.apis.servicenetworking import ServiceNetworking
from skyrig_gcp.fake.apis.serviceusage import ServiceUsage
from skyrig_gcp.fake.apis.sqladmin import SqlAdmin

#: Every API the fake answers, by the name its discovery document has.
HANDLERS: dict[str, type[ApiHandler]] = {
    handler.api: handler
    for handler in (
        SqlAdmin,
        Run,
        SecretManager,
        Redis,
        Compute,
        Iam,
        CloudResourceManager,
        ServiceNetworking,
        CloudScheduler,
        ArtifactRegistry,
        ServiceUsage,
        Container,
    )
}

__all__ = ["HANDLERS", "ApiHandler"]
