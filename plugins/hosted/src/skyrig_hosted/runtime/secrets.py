"""The data plane of a secret on the host: its value from the host's secrets endpoint, cached
(:class:`skyrig.provider.CachedSecrets`: a value set meanwhile is seen soon after, without a call per
use)."""

from __future__ import annotations

from skyrig.provider import CachedSecrets, SecretClientBase
from skyrig_hosted.runtime import host

VALUES = CachedSecrets()


class SecretClient(SecretClientBase):
    """A declared secret's value, from the host."""

    def stored(self, name: str) -> str | None:
        """The value of the entry's secret, or None."""
        api, app, env, secret = (self.entry[key] for key in ("api", "app", "env", "secret"))
        return VALUES.read((api, app, env, secret), lambda: host(api).secret(app, env, secret))
