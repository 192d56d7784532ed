"""How a service process tunes the garbage collector before it serves."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from service_runtime.serve import tune_gc
from service_runtime.settings import ServiceSettings


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_tuning_raises_the_young_generation_threshold_and_freezes_what_start_up_built(restored_gc: None) -> None:
    frozen_before = gc.get_freeze_count()
    built_at_start = [[] for _ in range(1000)]  # lists are tracked by the collector
    tune_gc(20_000)
    assert gc.get_threshold()[0] == 20_000
    assert gc.get_freeze_count() >= frozen_before + len(built_at_start)


def test_the_threshold_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GC_GEN0_THRESHOLD", "5000")
    assert ServiceSettings().gc_gen0_threshold == 5000
    monkeypatch.setenv("GC_GEN0_THRESHOLD", "10")
    with pytest.raises(ValueError, match="gc_gen0_threshold"):
        ServiceSettings()
