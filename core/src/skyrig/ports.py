"""Free loopback ports, for servers skyrig starts (services, emulators, test servers)."""

from __future__ import annotations

import random
import socket
from pathlib import Path


def port_free(port: int) -> bool:
    """Whether nothing listens on loopback ``port`` now (it can be bound)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A loopback port nothing listens on now (see :func:`free_ports`)."""
    return free_ports(1)


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive loopback ports nothing listens on now (``skyrig run`` gives
    services consecutive ports). Taken below the range the system hands out for ``bind(0)``, so that no
    other process's ephemeral port takes one of them before they are used."""
    low = _ephemeral_low()
    chooser = random.Random()
    for _ in range(200):
        base = chooser.randrange(10_000, low - count)
        if all(port_free(port) for port in range(base, base + count)):
            return base
    raise OSError(f"no {count} consecutive free ports below {low}")


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768
