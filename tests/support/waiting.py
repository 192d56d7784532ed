"""Awaiting effects with a bound, never a bare sleep."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def eventually(
    probe: Callable[[], Any | Awaitable[Any]], *, timeout: float = 10.0, interval: float = 0.05
) -> Any:
    """Call `probe` (sync or async) until it gives a truthy value (returned) or `timeout` passes (AssertionError)."""
    deadline = time.monotonic() + timeout
    while True:
        last = probe()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout}s; last value: {last!r}")
        await asyncio.sleep(interval)
