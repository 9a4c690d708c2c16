"""The shared conformance suite, unmodified, with hosted as the provider of SQL, caches, pub/sub, buckets
and secrets against a host started on loopback (compute and cron on memory until the host runs them)."""

from skyrig_conformance.suite import *  # noqa: F403
