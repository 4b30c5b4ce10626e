"""The cache: Redis, and this process's memory while Redis does not answer.

Everything kept in the cache can be computed again or counted afresh: dashboard figures
(cached under a version that each metrics run changes), partner list counts, the API's
throttle counters. So a stopped Redis must cost speed, never an error page: each call that
fails falls back to a local-memory cache, and for RETRY_SECONDS after a failure Redis is not
even tried, so requests do not each wait on a dead server. The throttles then count per
process, which keeps them bounded while Redis is down.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

RETRY_SECONDS = 5.0

# Per Redis location and shared by the threads of a process (Django gives each thread its own
# cache object).
_down_until: dict[str, float] = {}
_state_lock = threading.Lock()


class ResilientRedisCache(RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._location = server if isinstance(server, str) else ",".join(server)
        self._fallback = LocMemCache(
            f"redis-fallback:{self._location}",
            {"TIMEOUT": params.get("TIMEOUT", 300), "OPTIONS": {"MAX_ENTRIES": 10_000}},
        )

    def _either(self, name: str, *args: Any, **kwargs: Any) -> Any:
        fallback: Callable[..., Any] = getattr(self._fallback, name)
        if time.monotonic() < _down_until.get(self._location, 0.0):
            return fallback(*args, **kwargs)
        try:
            result = getattr(super(), name)(*args, **kwargs)
        except RedisError as error:
            with _state_lock:
                was_up = _down_until.get(self._location, 0.0) == 0.0
                _down_until[self._location] = time.monotonic() + RETRY_SECONDS
            if was_up:
                logger.warning("cache: Redis unavailable (%s); using local memory", error)
            return fallback(*args, **kwargs)
        if _down_until.get(self._location, 0.0):
            with _state_lock:
                _down_until[self._location] = 0.0
            # What was kept meanwhile may be older than what Redis holds: start afresh.
            self._fallback.clear()
            logger.warning("cache: Redis answers again")
        return result

    def add(self, *args: Any, **kwargs: Any) -> Any:
        return self._either("add", *args, **kwargs)

    def get(self, *args: Any, **kwargs: Any) -> Any:
        return self._either("get", *args, **kwargs)

    def set(self, *args: Any, **kwargs: Any) -> Any:
        return self._either("set", *args, **kwargs)

    def touch(self, *args: Any, **kwargs: Any) -> Any:
        return self._either("touch", *args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        return self._either("delete", *args, **kwargs)

    def get_many(self, *args: Any, **kwargs: Any) -> Any:
        return self._either("get_many", *args, **kwargs)

    def has_key(self, *args: Any, **kwargs: Any) -> Any:
        return self._either("has_key", *args, **kwargs)

    def incr(self, *args: Any, **kwargs: Any) -> Any:
        return self._either("incr", *args, **kwargs)

    def set_many(self, *args: Any, **kwargs: Any) -> Any:
        return self._either("set_many", *args, **kwargs)

    def delete_many(self, *args: Any, **kwargs: Any) -> Any:
        return self._either("delete_many", *args, **kwargs)

    def clear(self) -> Any:
        return self._either("clear")
