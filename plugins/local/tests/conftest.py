"""The local provider's tests: the conformance suite runs against its profile."""

from skyrig_conformance import provider_profile

skyrig_profile = provider_profile("local")
