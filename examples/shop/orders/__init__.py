"""The orders service: takes orders, stores them and announces them."""

from skyrig import Service

service = Service("orders", app="orders.api:app")
