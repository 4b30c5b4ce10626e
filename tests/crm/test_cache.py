"""The cache keeps answering while Redis does not."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from crm import cache as resilient
from crm.cache import ResilientRedisCache
from tests.services import free_port


@pytest.fixture(autouse=True)
def _fresh_state() -> Iterator[None]:
    resilient._down_until.clear()
    yield
    resilient._down_until.clear()


def _cache(location: str) -> ResilientRedisCache:
    return ResilientRedisCache(
        location, {"OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1}}
    )


def test_it_answers_from_local_memory_while_redis_is_down(caplog: pytest.LogCaptureFixture) -> None:
    cache = _cache(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    assert cache.get("missing") is None
    cache.set("figure", 42, 60)
    assert cache.get("figure") == 42
    assert cache.get_many(["figure", "other"]) == {"figure": 42}
    assert cache.add("counter", 1) and cache.incr("counter") == 2
    cache.delete("figure")
    assert cache.get("figure", "gone") == "gone"
    # One warning for the outage, not one per call.
    assert sum("Redis unavailable" in record.message for record in caplog.records) == 1


@pytest.mark.redis
def test_it_uses_redis_when_it_answers_and_forgets_the_outage_after(redis_url: str) -> None:
    cache = _cache(redis_url)
    cache.set("figure", "from redis", 60)
    resilient._down_until[redis_url] = float("inf")  # as if the last call had failed
    cache.set("figure", "kept during the outage", 60)
    assert cache.get("figure") == "kept during the outage"
    resilient._down_until[redis_url] = 1.0  # the retry window has passed
    assert cache.get("figure") == "from redis"
    resilient._down_until[redis_url] = float("inf")
    assert cache.get("figure") is None  # the local copy was dropped when Redis came back
