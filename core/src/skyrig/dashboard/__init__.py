"""The development dashboard ``skyrig run`` serves: the Application Model, the infrastructure graph as a
picture, each environment's status, recent pub/sub messages, cron jobs (with "Run now") and the secrets
still to set, for one app folder and one environment.

It is a plain ASGI app (see :mod:`skyrig.dashboard.app`); :func:`create_app` makes one.
"""

from __future__ import annotations

from skyrig.dashboard.app import create_app

__all__ = ["create_app"]
