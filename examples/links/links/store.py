import dataclasses

from skyrig import CacheCluster, SQLDatabase, Topic

db = SQLDatabase("links", migrations="./migrations")

hot = CacheCluster("hot-links", eviction_policy="allkeys-lfu")
targets = hot.keyspace("link/{code}", value=str, default_expiry="10m")


@dataclasses.dataclass
class Visit:
    code: str
    referrer: str | None = None


# Each visit is counted once, even if the broker delivers it again.
visited = Topic("link-visited", Visit, delivery="exactly-once")
