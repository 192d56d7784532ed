"""Unique ids per test, so that tests share databases without wiping them."""

from __future__ import annotations

import uuid

ISSUED: set[str] = set()
"""The random part of every id this test session made (its databases carry one in their names)."""


def unique(prefix: str) -> str:
    """`prefix-1a2b3c4d5e`: unique enough for one run, readable in a failure."""
    token = uuid.uuid4().hex[:10]
    ISSUED.add(token)
    return f"{prefix}-{token}"
