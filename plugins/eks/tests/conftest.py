"""The EKS provider's tests: the conformance suite's profile (moto's server and the FAKE Kubernetes API
server, neither of them AWS or Kubernetes), and both for test_eks.py."""

from __future__ import annotations

from skyrig_conformance import provider_profile

skyrig_profile = provider_profile("eks")
