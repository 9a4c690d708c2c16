"""The shared conformance suite, unmodified, against the local provider."""

from skyrig_conformance.suite import *  # noqa: F403
