from skyrig import CronJob

from .storage import receipts


def send_digest() -> None:
    """Count yesterday's receipts (a real app would email a summary)."""
    print(f"{len(receipts.list())} receipts")


CronJob("nightly-digest", title="Nightly digest", schedule="0 3 * * *", endpoint=send_digest)
