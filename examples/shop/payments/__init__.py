"""The payments service: charges orders."""

from skyrig import Service

service = Service("payments", app="payments.api:app")
