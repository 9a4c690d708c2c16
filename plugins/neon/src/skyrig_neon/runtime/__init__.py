"""The Neon provider's data plane: what a running service uses (:mod:`skyrig_neon.runtime.sql`)."""
