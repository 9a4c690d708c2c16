"""What a user writes: the typed declarations of an app's infrastructure.

``KINDS`` maps each resource kind of the Application Model to the class that declares it; the static
parser, the model and the providers' manifests all speak in these kinds.
"""

from skyrig.declarations._base import Declaration, DeclarationError, Spec
from skyrig.declarations.cache import CacheCluster, Keyspace
from skyrig.declarations.cron import CronJob
from skyrig.declarations.objects import Bucket
from skyrig.declarations.pubsub import Subscription, Topic
from skyrig.declarations.secrets import Secret
from skyrig.declarations.service import Service
from skyrig.declarations.sql import SQLDatabase

KINDS: dict[str, type[Declaration]] = {
    cls.kind: cls
    for cls in (Service, SQLDatabase, Topic, Subscription, CacheCluster, CronJob, Bucket, Secret)
}
"""Every top-level declaration kind, by its name in the Application Model."""

RESOURCE_KINDS = tuple(kind for kind in KINDS if kind != "service")
"""The kinds that are resources owned by a service (every kind but ``service``)."""

__all__ = [
    "KINDS",
    "RESOURCE_KINDS",
    "Bucket",
    "CacheCluster",
    "CronJob",
    "Declaration",
    "DeclarationError",
    "Keyspace",
    "SQLDatabase",
    "Secret",
    "Service",
    "Spec",
    "Subscription",
    "Topic",
]
