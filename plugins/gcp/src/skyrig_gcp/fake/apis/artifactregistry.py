"""Artifact Registry v1, FAKE (:mod:`skyrig_gcp.fake`): repositories (long-running create and delete).

A repository id is ``[a-z]([a-z0-9-]*[a-z0-9])?`` (at most 63); its ``format`` must be given; it answers
``registryUri`` (``LOCATION-docker.pkg.dev/PROJECT/REPO`` for Docker). Patches take an ``updateMask``; the
format and mode do not change.
"""

from __future__ import annotations

from typing import Any

from skyrig_gcp.fake.apis.base import ApiHandler, Kind, Request
from skyrig_gcp.fake.errors import ApiError, already_exists, invalid, not_found

_HOSTS = {
    "DOCKER": "docker.pkg.dev",
    "MAVEN": "maven.pkg.dev",
    "NPM": "npm.pkg.dev",
    "PYTHON": "python.pkg.dev",
    "APT": "apt.pkg.dev",
    "YUM": "yum.pkg.dev",
    "GO": "go.pkg.dev",
    "KFP": "kfp.pkg.dev",
    "GENERIC": "pkg.dev",
}


class ArtifactRegistry(ApiHandler):
    """Artifact Registry: repositories and their IAM policies."""

    api = "artifactregistry"
    version = "v1"
    proto_package = "google.devtools.artifactregistry.v1"
    operation_metadata = "type.googleapis.com/google.devtools.artifactregistry.v1.OperationMetadata"
    kinds = {
        "repositories": Kind(
            "repositories",
            "Repository",
            id_param="repositoryId",
            id_pattern=r"[a-z]([a-z0-9-]{0,61}[a-z0-9])?",
            id_message=(
                "Invalid repository id '{id}': lowercase letters, digits and hyphens, at most 63, starting "
                "with a letter and ending with a letter or digit."
            ),
        )
    }

    def metadata(self, verb: str, kind: Kind | None, target: str) -> dict[str, Any] | None:
        return {"@type": self.operation_metadata}

    def missing(self, key: str, kind: Kind | None = None) -> ApiError:
        return not_found(f"Requested entity was not found: {key}.")

    def exists(self, key: str, kind: Kind) -> ApiError:
        return already_exists(f"the repository already exists: {key}")

    def validate(
        self, req: Request, kind: Kind, key: str, resource: dict[str, Any], old: dict[str, Any] | None
    ) -> None:
        if resource.get("format", "FORMAT_UNSPECIFIED") == "FORMAT_UNSPECIFIED":
            raise invalid("The repository format must be specified.", "repository.format")
        if old is not None:
            for name in ("format", "mode"):
                if old.get(name) != resource.get(name):
                    raise invalid(f"Field '{name}' cannot be changed.", f"repository.{name}")

    def prepare(self, req: Request | None, kind: Kind, key: str, resource: dict[str, Any]) -> None:
        super().prepare(req, kind, key, resource)
        project, location, name = key.split("/")[1], key.split("/")[3], key.rsplit("/", 1)[-1]
        resource.setdefault("mode", "STANDARD_REPOSITORY")
        resource["sizeBytes"] = "0"
        resource["satisfiesPzs"] = False
        host = _HOSTS.get(resource.get("format", ""), "pkg.dev")
        resource["registryUri"] = f"{location}-{host}/{project}/{name}"
