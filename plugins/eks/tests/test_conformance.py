from skyrig_conformance.suite import *  # noqa: F403
