import orders.events

from skyrig import Subscription

from .storage import email_assets, receipts


async def send_receipt(event: orders.events.OrderCreated) -> None:
    """Write the receipt of a new order to the receipts bucket."""
    logo = email_assets.public_url("logo.png")
    body = f"Order {event.order_id}: {event.total_cents / 100:.2f}\n<img src='{logo}'>\n"
    receipts.upload(f"{event.customer_id}/{event.order_id}.txt", body.encode())


Subscription(orders.events.order_created, "send-receipt", handler=send_receipt, max_concurrency=20)
