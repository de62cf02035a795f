"""A sync raises the cycle collector's thresholds while it runs and always puts the process's own back, also when
syncs overlap in threads or one fails."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from feedback_sources.sync import _SYNC_GC_THRESHOLDS, fewer_gc_passes, sync


@pytest.fixture(autouse=True)
def own_thresholds() -> Iterator[tuple[int, int, int]]:
    saved = gc.get_threshold()
    gc.set_threshold(321, 9, 8)
    yield (321, 9, 8)
    gc.set_threshold(*saved)


def test_raised_inside_and_restored_after_even_on_error(own_thresholds: tuple[int, int, int]) -> None:
    with pytest.raises(RuntimeError):
        with fewer_gc_passes():
            assert gc.get_threshold() == _SYNC_GC_THRESHOLDS
            raise RuntimeError("a failing sync")
    assert gc.get_threshold() == own_thresholds


def test_overlapping_syncs_in_threads_restore_once_the_last_one_ends(own_thresholds: tuple[int, int, int]) -> None:
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen: list[tuple[int, int, int]] = []

    def first() -> None:
        with fewer_gc_passes():
            first_in.set()
            second_in.wait(10)
        first_out.set()

    def second() -> None:
        first_in.wait(10)
        with fewer_gc_passes():
            second_in.set()
            first_out.wait(10)
            seen.append(gc.get_threshold())  # the first sync ended: still raised for this one

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert seen == [_SYNC_GC_THRESHOLDS]
    assert gc.get_threshold() == own_thresholds


def test_a_sync_restores_the_thresholds(fresh_store, own_thresholds: tuple[int, int, int]) -> None:
    assert sync(fresh_store, {}) == {}
    assert gc.get_threshold() == own_thresholds
