from skyrig import CronJob

from .db import db


def expire_carts() -> None:
    """Mark orders that were never paid as expired."""
    with db.connect() as conn:
        conn.execute(
            "UPDATE orders SET status = 'expired' "
            "WHERE status = 'placed' AND created_at < now() - interval '1 day'"
        )


CronJob("expire-carts", title="Expire unpaid orders", every="1h", endpoint=expire_carts)
