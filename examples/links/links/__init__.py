"""The links service: short codes that redirect, cached, each visit announced."""

from skyrig import Service

service = Service("links", app="links.api:app")
