"""The shared conformance suite, unmodified, against the template provider."""

from skyrig_conformance.suite import *  # noqa: F403
