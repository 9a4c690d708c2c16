from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from .storage import receipts

app = FastAPI(title="notifications")


@app.get("/receipts/{customer_id}/{order_id}")
def receipt(customer_id: str, order_id: int) -> RedirectResponse:
    return RedirectResponse(receipts.signed_url(f"{customer_id}/{order_id}.txt", expires_in="10m"))
