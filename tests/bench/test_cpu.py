"""The bench's CPU accounting, against real processes."""

from __future__ import annotations

import asyncio
import sys

from bench.cpu import cpu_per_cancellation


async def test_a_busy_service_process_is_charged_its_cpu_per_cancellation_and_an_idle_one_next_to_nothing() -> None:
    busy = await asyncio.create_subprocess_exec(sys.executable, "-c", "while True: pass")
    idle = await asyncio.create_subprocess_exec(sys.executable, "-c", "import time; time.sleep(60)")
    try:
        # 10 cancellations/s over a 2 s step: the window is 1.2 s, 12 cancellations, and a busy loop burns up to
        # one core in it (~100 ms each; less on a crowded machine, yet far above the idle process).
        cpu = await cpu_per_cancellation(10, 2.0, {busy.pid: "busy", idle.pid: "idle"})
    finally:
        for process in (busy, idle):
            process.kill()
            await process.wait()

    assert cpu["busy"] > 30, cpu
    assert cpu.get("idle", 0.0) < 2, cpu
    assert cpu["total"] >= cpu["busy"]
