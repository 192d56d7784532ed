"""Unique ids per test, so that tests share databases without wiping them."""

from __future__ import annotations

import uuid


def unique(prefix: str) -> str:
    """`prefix-1a2b3c4d5e`: unique enough for one run, readable in a failure."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
