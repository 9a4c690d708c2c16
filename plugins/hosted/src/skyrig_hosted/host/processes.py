"""What the host's watchdogs share: each is a ``python -c`` script that waits until the host's process
ends, signals what the host started, and runs :data:`WAIT_THEN_KILL` to SIGKILL what is still there."""

from __future__ import annotations

WAIT_THEN_KILL = """
import os, signal, time
def alive(pid):
    try:  # a zombie (no reaper of orphans in a container, say) is gone
        return open(f"/proc/{pid}/stat", "rb").read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False
def wait_then_kill(pids, seconds, kill):
    deadline = time.monotonic() + seconds
    while pids and time.monotonic() < deadline:
        pids = [pid for pid in pids if alive(pid)]
        time.sleep(0.1)
    for pid in pids:
        try:
            kill(pid, signal.SIGKILL)
        except OSError:
            pass
"""
"""Python that defines ``wait_then_kill(pids, seconds, kill)``: waits up to ``seconds`` for ``pids`` to
be gone, then sends SIGKILL with ``kill`` (``os.kill``, or ``os.killpg`` for process groups) to each that
is still there; a watchdog script starts with it."""
