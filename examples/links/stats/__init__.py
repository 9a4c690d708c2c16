"""The stats service: counts visits, rolls them up, exports them for the admin."""

from skyrig import Service

service = Service("stats", app="stats.web:app")
