from fastapi import FastAPI
from pydantic import BaseModel

from .carts import Cart, cart_items
from .db import db
from .events import OrderCreated, order_created

app = FastAPI(title="orders")


class NewOrder(BaseModel):
    customer_id: str
    total_cents: int


@app.post("/orders")
def place_order(order: NewOrder) -> OrderCreated:
    with db.connect() as conn:
        row = conn.execute(
            "INSERT INTO orders (customer_id, total_cents) VALUES (%s, %s) RETURNING id",
            (order.customer_id, order.total_cents),
        ).fetchone()
    event = OrderCreated(order_id=row[0], customer_id=order.customer_id, total_cents=order.total_cents)
    order_created.publish(event)
    cart_items.delete(order.customer_id)
    return event


@app.put("/carts/{customer_id}")
def save_cart(customer_id: str, cart: Cart) -> Cart:
    cart_items.set(customer_id, cart)
    return cart


@app.get("/carts/{customer_id}")
def get_cart(customer_id: str) -> Cart:
    return cart_items.get(customer_id) or Cart()
