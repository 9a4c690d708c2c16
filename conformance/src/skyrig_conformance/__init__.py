"""skyrig-conformance: the one test suite every skyrig provider passes, unmodified.

A provider's tests folder holds a ``conftest.py`` that names its profile and a ``test_conformance.py``
that imports the suite::

    # tests/conftest.py
    from skyrig_conformance import provider_profile

    skyrig_profile = provider_profile("aws")

    # tests/test_conformance.py
    from skyrig_conformance.suite import *  # noqa: F403

The provider's capability manifest drives it: claimed kinds and features are tested, unclaimed ones are
skipped with the reason shown and checked to be refused. See ``docs/writing-a-provider.md``.
"""

from skyrig_conformance.profile import Profile, StandIn, provider_profile

__all__ = ["Profile", "StandIn", "provider_profile"]
