"""The cyclic garbage collector in a process that answers requests.

A web process's first request imports the rest of the code and fills its caches (compiled
templates, URL patterns, translation catalogues): about 175,000 objects that live as long as the
process. Python's collector walks every object it tracks in each full collection, which comes
every few dozen requests, so each of those requests paid 150–200 ms of CPU walking objects that
can never be garbage: the single slow request of each list in `bench_lists` (a p95 of 170–230 ms
against a p50 of 15–56 ms).

So once the process's first request is over, and again after a later full collection that took
more than `SLOW_FULL_COLLECTION` (the first visits of other pages add their own caches), the
objects are collected once and the survivors moved to the permanent generation (`gc.freeze()`),
where the collector no longer walks them; a full collection then walks only what the requests
since have left, a few thousand objects, about a millisecond. Objects that become garbage later
are still freed by their reference counts; only a cycle among them would never be, so the objects
in use at that moment (the request being finished, and on a threaded server the others in
flight) are what a settle can keep for good. Hence at most `SETTLES` times in a process's life,
so that what it keeps stays bounded whatever the traffic. A request pays nothing for any of it:
the settle runs after its response has been sent.
"""

from __future__ import annotations

import gc
import time
from typing import Any

# CPU seconds of a full collection past which the objects it walked are settled after the
# request: a full collection of the ~3,000 objects a settled process tracks takes about 1 ms.
SLOW_FULL_COLLECTION = 0.010
SETTLES = 8

_settled = 0
_full_collection_started = 0.0
_slow_full_collection = False


def settle_long_lived() -> None:
    """Collect the garbage among the objects the collector tracks, then move the survivors to
    the permanent generation, where no later collection walks them."""
    gc.collect()
    gc.freeze()


def _watch_full_collections(phase: str, info: dict[str, int]) -> None:
    global _full_collection_started, _slow_full_collection
    if info["generation"] != 2:
        return
    if phase == "start":
        _full_collection_started = time.thread_time()
    elif time.thread_time() - _full_collection_started > SLOW_FULL_COLLECTION:
        _slow_full_collection = True


def settle_after_request(sender: Any, **kwargs: Any) -> None:
    """`request_finished` receiver: runs once the response has been sent (or, under the test
    client, handed back), never inside a request's own time. Settles after the process's
    first request and after a slow full collection, at most `SETTLES` times a process (two
    threads finishing at once may make it one more)."""
    global _settled, _slow_full_collection
    if _settled == 0:
        gc.callbacks.append(_watch_full_collections)
    elif not _slow_full_collection or _settled >= SETTLES:
        return
    _settled += 1
    settle_long_lived()
    _slow_full_collection = False  # the settle's own full collection says nothing
