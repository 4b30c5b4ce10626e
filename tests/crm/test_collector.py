"""The collector settles a web process's long-lived objects (crm/collector.py)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest
from django.test import Client
from django.urls import reverse

from crm import collector


class Node:
    """A container the collector tracks, able to hold a cycle."""

    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture(autouse=True)
def _unfrozen(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(collector, "_settled", 0)
    monkeypatch.setattr(collector, "_slow_full_collection", False)
    callbacks = list(gc.callbacks)
    yield
    gc.callbacks[:] = callbacks
    gc.unfreeze()


def test_it_moves_the_survivors_out_of_the_collectors_walk() -> None:
    kept = [Node() for _ in range(5_000)]
    collector.settle_long_lived()
    assert gc.get_freeze_count() >= len(kept)
    assert len(gc.get_objects()) < len(kept)


def test_it_collects_the_garbage_before_it_freezes() -> None:
    first, second = Node(), Node()
    first.other, second.other = second, first  # a cycle only the collector can free
    watched = weakref.ref(first)
    del first, second
    collector.settle_long_lived()
    assert watched() is None


@pytest.mark.django_db
def test_it_settles_after_the_first_request_then_only_after_a_slow_full_collection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = Client()
    client.get(reverse("login"))
    assert collector._settled == 1
    assert gc.get_freeze_count() > 0
    gc.unfreeze()
    monkeypatch.setattr(collector, "SLOW_FULL_COLLECTION", 3600.0)  # none is slow
    gc.collect()
    client.get(reverse("login"))
    assert collector._settled == 1
    assert gc.get_freeze_count() == 0

    monkeypatch.setattr(collector, "SLOW_FULL_COLLECTION", -1.0)  # every one is slow
    gc.collect()
    client.get(reverse("login"))
    assert collector._settled == 2
    assert gc.get_freeze_count() > 0


@pytest.mark.django_db
def test_it_settles_at_most_settles_times(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(collector, "SLOW_FULL_COLLECTION", -1.0)
    monkeypatch.setattr(collector, "SETTLES", 2)
    client = Client()
    for _ in range(2):
        client.get(reverse("login"))
        gc.collect()
    gc.unfreeze()
    client.get(reverse("login"))
    assert collector._settled == 2
    assert gc.get_freeze_count() == 0
