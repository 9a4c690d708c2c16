"""The shared conformance suite, unmodified, with hosted as the provider of SQL, caches, buckets and
secrets against a host started on loopback (compute, cron and pubsub on memory until the host runs
them)."""

from skyrig_conformance.suite import *  # noqa: F403
