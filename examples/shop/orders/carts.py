from pydantic import BaseModel

from skyrig import CacheCluster


class Cart(BaseModel):
    items: dict[str, int] = {}


carts = CacheCluster("carts", eviction_policy="allkeys-lru")
cart_items = carts.keyspace("cart/{customer_id}", value=Cart, default_expiry="24h")
