"""Where a cancellation's cost goes: the CPU time each part of the stack spends while a step's load runs."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psutil

# Server processes of the local stack, by process name (PostgreSQL names its backends "postgres: ...").
SERVERS = {"ferretdb": "ferretdb", "beam.smp": "rabbitmq", "mailpit": "mailpit"}

Snapshot = dict[tuple[int, float], tuple[str, float]]


def part_of(process: psutil.Process, services: dict[int, str]) -> str | None:
    """The part a process belongs to, or None when it is none of the stack's."""
    if process.pid in services:
        return services[process.pid]
    if process.pid == os.getpid():
        return "load generator"
    name = process.info["name"] or ""
    if name in SERVERS:
        return SERVERS[name]
    if name.startswith("postgres"):
        return "postgresql"
    if "bench.slow_smtp" in " ".join(process.info["cmdline"] or []):
        return "slow smtp relay"
    return None


def snapshot(services: dict[int, str]) -> Snapshot:
    """User + system CPU seconds so far of every process of the stack, keyed by (pid, start time)."""
    out: Snapshot = {}
    for process in psutil.process_iter(["name", "cmdline", "cpu_times", "create_time"]):
        part = part_of(process, services)
        times = process.info["cpu_times"]
        if part is not None and times is not None:
            out[(process.pid, process.info["create_time"])] = (part, times.user + times.system)
    return out


def spent_between(before: Snapshot, after: Snapshot) -> dict[str, float]:
    """CPU seconds per part from one snapshot to a later one (a process that started between counts from zero)."""
    spent: dict[str, float] = {}
    for key, (part, total) in after.items():
        spent[part] = spent.get(part, 0.0) + total - before.get(key, (part, 0.0))[1]
    return spent


async def cpu_per_cancellation(rate: float, seconds: float, services: dict[int, str]) -> dict[str, float]:
    """Milliseconds of CPU per offered cancellation, per part and in total, over the middle of a step.

    Measured from a quarter into the step to 85 % of it (past the start-up of each step's burst, before its
    drain), while the offered rate is steady: what the load costs each process, whichever process does it.
    A process that starts in the window (a PostgreSQL backend) counts from zero.
    """
    await asyncio.sleep(0.25 * seconds)
    before, start = await asyncio.to_thread(snapshot, services), time.monotonic()
    await asyncio.sleep(0.6 * seconds)
    after, end = await asyncio.to_thread(snapshot, services), time.monotonic()
    spent = spent_between(before, after)
    cancellations = rate * (end - start)
    per = {part: round(s * 1000 / cancellations, 2) for part, s in sorted(spent.items(), key=lambda kv: -kv[1])}
    return {"total": round(sum(per.values()), 2), **per}


class Spent:
    """CPU seconds each part spent inside a `cpu_spent()` block (filled in when the block ends)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def ms_per(self, operations: int, *, parts: tuple[str, ...]) -> dict[str, float]:
        """Milliseconds of CPU per operation of the measured `parts` (server processes) and of this process (the
        client), each and in total. What other processes of the stack did meanwhile (a database's background
        work, an idle broker's ticks) is not the operation's: not counted."""
        measured = {"client" if part == "load generator" else part: s for part, s in self.seconds.items()}
        per = {
            part: round(measured.get(part, 0.0) * 1000 / operations, 3)
            for part in sorted((*parts, "client"), key=lambda part: -measured.get(part, 0.0))
        }
        return {"total": round(sum(per.values()), 3), **per}


@asynccontextmanager
async def cpu_spent(services: dict[int, str] | None = None) -> AsyncIterator[Spent]:
    """The CPU time of every process of the stack (servers, `services` by pid, this process) while the block runs."""
    spent = Spent()
    before = await asyncio.to_thread(snapshot, services or {})
    yield spent
    after = await asyncio.to_thread(snapshot, services or {})
    spent.seconds = spent_between(before, after)
