"""The template provider's tests: the conformance suite, against the profile it registers."""

from skyrig_conformance import provider_profile

skyrig_profile = provider_profile("template")
