from fastapi import FastAPI
from orders.db import db as orders_db

app = FastAPI(title="payments")


@app.get("/revenue")
def revenue() -> dict[str, int]:
    """Total revenue so far, read straight from the orders database."""
    with orders_db.connect() as conn:
        (total,) = conn.execute("SELECT coalesce(sum(total_cents), 0) FROM orders").fetchone()
    return {"total_cents": total}
