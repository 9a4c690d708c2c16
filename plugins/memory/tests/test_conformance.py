"""The shared conformance suite, unmodified, against the memory provider."""

from skyrig_conformance.suite import *  # noqa: F403
