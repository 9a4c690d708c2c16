"""The shared conformance suite, unmodified, with neon as the SQL provider (every other family on memory)
against the FAKE Neon API, whose branches are real PostgreSQL servers."""

from skyrig_conformance.suite import *  # noqa: F403
