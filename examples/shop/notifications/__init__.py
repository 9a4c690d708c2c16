"""The notifications service: receipts and digests."""

from skyrig import Service

service = Service("notifications", app="notifications.api:app")
