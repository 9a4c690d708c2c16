from links.store import Visit, visited

from skyrig import CronJob, SQLDatabase, Subscription

db = SQLDatabase("stats", migrations="./migrations")


def count_visit(visit: Visit) -> None:
    """Count one visit (a sync handler: skyrig runs it in a thread)."""
    with db.connect() as conn:
        conn.execute(
            "INSERT INTO visits (code, count) VALUES (%s, 1) "
            "ON CONFLICT (code) DO UPDATE SET count = visits.count + 1",
            (visit.code,),
        )


Subscription(visited, "count-visit", handler=count_visit, max_retries=3, min_backoff="1s", max_backoff="30s")


async def roll_up() -> None:
    """Record the totals so far (an async endpoint)."""
    async with await db.connect_async() as conn:
        await conn.execute("INSERT INTO rollups (links, visits) SELECT count(*), sum(count) FROM visits")


CronJob("roll-up", title="Roll up visit totals", every="5m", endpoint=roll_up)
