"""The collector settles a web process's long-lived objects (crm/collector.py)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest
from django.test import Client

from crm import collector


class Node:
    """A container the collector tracks, able to hold a cycle."""

    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()


def test_it_moves_the_survivors_out_of_the_collectors_walk() -> None:
    kept = [Node() for _ in range(5_000)]
    assert collector.settle_long_lived(above=1_000)
    assert gc.get_freeze_count() >= len(kept)
    assert len(gc.get_objects()) < 1_000


def test_it_collects_the_garbage_before_it_freezes() -> None:
    first, second = Node(), Node()
    first.other, second.other = second, first  # a cycle only the collector can free
    watched = weakref.ref(first)
    del first, second
    assert collector.settle_long_lived(above=0)
    assert watched() is None


def test_it_leaves_a_small_young_population_alone() -> None:
    frozen = gc.get_freeze_count()
    assert not collector.settle_long_lived(above=10**9)
    assert gc.get_freeze_count() == frozen


@pytest.mark.django_db
def test_it_settles_after_a_finished_request_at_most_settles_times(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(collector, "SETTLE_ABOVE", 0)
    monkeypatch.setattr(collector, "SETTLES", 2)
    monkeypatch.setattr(collector, "_settled", 0)
    client = Client()
    client.get("/health/")
    assert collector._settled == 1
    assert gc.get_freeze_count() > 0
    client.get("/health/")
    gc.unfreeze()
    client.get("/health/")
    assert collector._settled == 2
    assert gc.get_freeze_count() == 0  # the third request found its quota used
