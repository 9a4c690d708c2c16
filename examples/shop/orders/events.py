from pydantic import BaseModel

from skyrig import Topic


class OrderCreated(BaseModel):
    order_id: int
    customer_id: str
    total_cents: int


# Orders of one customer are delivered in the order they were placed.
order_created = Topic("order-created", OrderCreated, ordering_attribute="customer_id")
