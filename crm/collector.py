"""The cyclic garbage collector in a process that answers requests.

A web process's first request imports the rest of the code and fills its caches (compiled
templates, URL patterns, translation catalogues): about 175,000 objects that live as long as the
process. Python's collector walks every object it tracks in each full collection, which comes
every few dozen requests, so each of those requests paid 150–200 ms of CPU walking objects that
can never be garbage: the single slow request of each list in `bench_lists` (a p95 of 170–230 ms
against a p50 of 15–56 ms).

Once a request is over and the process tracks more than `SETTLE_ABOVE` objects outside the
permanent generation, they are collected once and the survivors moved there (`gc.freeze()`),
where the collector no longer walks them; a later full collection walks only what the requests
since have left, about a millisecond. Objects that become garbage later are still freed by their
reference counts; only a cycle among them would never be, so the objects in use at that moment
(the request being finished, and on a threaded server the others in flight) are what a settle
can keep for good. Hence it runs only when the tracked objects have grown past `SETTLE_ABOVE`
(the first request, the first visits of a few other pages), and at most `SETTLES` times in a
process's life, so that what it keeps stays bounded whatever the traffic.
"""

from __future__ import annotations

import gc
from typing import Any

# Objects the collector tracks outside the permanent generation, past which a finished request
# settles them. Between two requests a warm process tracks 2,000–4,000 (the caches its pages
# added); a full collection of this many costs a few milliseconds.
SETTLE_ABOVE = 10_000
SETTLES = 8

_settled = 0


def settle_long_lived(*, above: int) -> bool:
    """When the collector tracks more than `above` objects outside the permanent generation,
    collect the garbage among them and move the survivors there. Returns whether it did."""
    if len(gc.get_objects()) <= above:
        return False
    gc.collect()
    gc.freeze()
    return True


def settle_after_request(sender: Any, **kwargs: Any) -> None:
    """`request_finished` receiver: runs once the response has been sent (or, under the test
    client, handed back), never inside a request's own time. At most `SETTLES` times a
    process (two threads finishing at once may make it one more)."""
    global _settled
    if _settled < SETTLES and settle_long_lived(above=SETTLE_ABOVE):
        _settled += 1
