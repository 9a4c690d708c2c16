import logging

from orders.events import OrderCreated, order_created

from skyrig import Subscription

from .secrets import stripe_api_key

log = logging.getLogger(__name__)


def charge(event: OrderCreated) -> None:
    """Charge the customer for a new order (a real app would call the payment provider here)."""
    key = stripe_api_key.value
    log.info("charging order %s (%s cents) with key ending %s", event.order_id, event.total_cents, key[-4:])


Subscription(order_created, "charge-order", handler=charge, max_retries=5, ack_deadline="1m")
