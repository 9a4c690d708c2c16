"""What a user writes: the typed declarations of an app's infrastructure.

Each resource kind is described in :mod:`skyrig.kinds`, which names the class that declares it here.
"""

from skyrig.declarations._base import Declaration, DeclarationError, Spec
from skyrig.declarations.cache import CacheCluster, Keyspace
from skyrig.declarations.cron import CronJob
from skyrig.declarations.objects import Bucket
from skyrig.declarations.pubsub import Subscription, Topic
from skyrig.declarations.secrets import Secret
from skyrig.declarations.service import Service
from skyrig.declarations.sql import SQLDatabase

__all__ = [
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
