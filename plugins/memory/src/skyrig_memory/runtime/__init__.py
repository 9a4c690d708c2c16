"""The memory provider's data plane: what the runtime SDK calls in a running service.

Each kind's client reads and writes the simulated cloud's SQLite file (``entry["cloud"]``), so that
what one process publishes or uploads another one sees. SQL is the exception: the memory cloud runs
no PostgreSQL, so its client is the shared PostgreSQL client (:mod:`skyrig_memory.runtime.sql`). The
provider names each kind's client in ``MemoryProvider.data_planes``.
"""
