"""The shared conformance suite, unmodified, with gke running the services and gcp every other family,
against the GCP provider's FAKE and the FAKE Kubernetes API server."""

from skyrig_conformance.suite import *  # noqa: F403
