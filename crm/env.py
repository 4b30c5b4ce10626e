"""Strict readers for settings taken from the environment.

Every reader names the variable in its error, so a malformed value stops start-up
with a message an operator can act on instead of a silent fallback.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(
    name: str, default: str | None = None, *, environ: Mapping[str, str] = os.environ
) -> str:
    value = environ.get(name)
    if value is None:
        if default is None:
            raise ImproperlyConfigured(f"{name} must be set")
        return default
    return value


def env_bool(name: str, default: bool, *, environ: Mapping[str, str] = os.environ) -> bool:
    raw = environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}")


def env_int(name: str, default: int, *, environ: Mapping[str, str] = os.environ) -> int:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}") from None


def env_list(
    name: str, default: list[str], *, environ: Mapping[str, str] = os.environ
) -> list[str]:
    raw = environ.get(name)
    if raw is None:
        return default
    items = [item.strip() for item in raw.split(",")]
    if any(item == "" for item in items):
        raise ImproperlyConfigured(
            f"{name} must be a comma-separated list with no empty items, not {raw!r}"
        )
    return items


def env_database(
    name: str, default: str, *, environ: Mapping[str, str] = os.environ
) -> dj_database_url.DBConfig:
    raw = environ.get(name) or default
    try:
        config = dj_database_url.parse(raw, conn_max_age=600, conn_health_checks=True)
    except Exception as error:  # dj-database-url raises several types for a bad URL
        raise ImproperlyConfigured(f"{name} is not a valid database URL: {error}") from None
    engine = config.get("ENGINE", "")
    if engine not in {"django.db.backends.postgresql", "django.db.backends.sqlite3"}:
        raise ImproperlyConfigured(f"{name} must be a postgres:// or sqlite:// URL, not {raw!r}")
    if engine.endswith("sqlite3"):
        # SQLite keeps no server connection worth reusing across requests.
        config["CONN_MAX_AGE"] = 0
        config["CONN_HEALTH_CHECKS"] = False
        if not config.get("NAME"):
            raise ImproperlyConfigured(f"{name} names no SQLite file: {raw!r}")
    return config


def env_redis_url(name: str, *, environ: Mapping[str, str] = os.environ) -> str | None:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return None
    if not raw.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured(f"{name} must be a redis:// URL, not {raw!r}")
    return raw


def env_time_zone(name: str, default: str, *, environ: Mapping[str, str] = os.environ) -> str:
    raw = environ.get(name) or default
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise ImproperlyConfigured(f"{name} is not a known time zone: {raw!r}") from None
    return raw
