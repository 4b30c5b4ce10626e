"""Start-up reads its settings from the environment and refuses bad ones, naming the variable.

Each case starts a fresh interpreter with a controlled environment, because settings are read
once per process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]

PRODUCTION_ENV = {
    "SECRET_KEY": "a-long-production-secret-from-the-environment",
    "DEBUG": "false",
    "ALLOWED_HOSTS": "crm.example.com,crm-internal.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://crm.example.com",
    "DATABASE_URL": "postgres://crm:secret@db.example.com:5432/crm",
    "REDIS_URL": "redis://cache.example.com:6379/0",
    "TIME_ZONE": "Asia/Shanghai",
    "EMAIL_HOST": "smtp.example.com",
    "EMAIL_PORT": "465",
}

REPORT_SETTINGS = """
import json
import django
django.setup()
from django.conf import settings
from crm.celery import app
print(json.dumps({
    "debug": settings.DEBUG,
    "allowed_hosts": settings.ALLOWED_HOSTS,
    "database_engine": settings.DATABASES["default"]["ENGINE"],
    "time_zone": settings.TIME_ZONE,
    "email_port": settings.EMAIL_PORT,
    "cache_backend": settings.CACHES["default"]["BACKEND"],
    "cache_location": settings.CACHES["default"].get("LOCATION", ""),
    "broker_url": app.conf.broker_url,
    "result_backend": app.conf.result_backend,
    "always_eager": app.conf.task_always_eager,
    "trusted_proxies": settings.TRUSTED_PROXY_COUNT,
    "throttle_proxies": settings.REST_FRAMEWORK["NUM_PROXIES"],
    "lockout_address": settings.AXES_CLIENT_IP_CALLABLE,
    "request_max_bytes": settings.REQUEST_MAX_BYTES,
}))
"""


def start(
    env: dict[str, str], code: str = "import django; django.setup()"
) -> subprocess.CompletedProcess[str]:
    environ = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DJANGO_SETTINGS_MODULE": "crm.settings",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT_ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


def settings_for(env: dict[str, str]) -> dict[str, object]:
    result = start(env, REPORT_SETTINGS)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        pytest.param({"DEBUG": "false"}, "SECRET_KEY", id="no-secret-key-debug-off"),
        pytest.param({}, "SECRET_KEY", id="no-secret-key-debug-unset"),
        pytest.param({"DEBUG": "maybe"}, "DEBUG", id="debug-maybe"),
        pytest.param({"DEBUG": "true", "DATABASE_URL": "nonsense://x"}, "DATABASE_URL", id="db"),
        pytest.param(
            {"DEBUG": "true", "DATABASE_URL": "mysql://u:p@db/crm"}, "DATABASE_URL", id="mysql"
        ),
        pytest.param({"DEBUG": "true", "REDIS_URL": "http://x"}, "REDIS_URL", id="redis-url"),
        pytest.param({"DEBUG": "true", "TIME_ZONE": "Mars/Olympus"}, "TIME_ZONE", id="time-zone"),
        pytest.param({"DEBUG": "true", "EMAIL_PORT": "abc"}, "EMAIL_PORT", id="email-port"),
        pytest.param(
            {"DEBUG": "true", "ALLOWED_HOSTS": "crm.example.com,,localhost"},
            "ALLOWED_HOSTS",
            id="allowed-hosts-empty-item",
        ),
    ],
)
def test_it_refuses_to_start_with_a_bad_setting_and_names_it(
    env: dict[str, str], variable: str
) -> None:
    result = start(env)

    # The last line is the error itself; the traceback above it quotes settings.py, which
    # names every variable anyway.
    error = result.stderr.strip().splitlines()[-1]
    assert result.returncode != 0
    assert error.startswith("django.core.exceptions.ImproperlyConfigured: ")
    assert variable in error


def test_it_starts_with_a_good_production_environment() -> None:
    result = start(PRODUCTION_ENV)

    assert result.returncode == 0, result.stderr


def test_it_reads_the_production_environment() -> None:
    settings = settings_for(PRODUCTION_ENV)

    assert settings["debug"] is False
    assert settings["allowed_hosts"] == ["crm.example.com", "crm-internal.example.com"]
    assert settings["database_engine"] == "django.db.backends.postgresql"
    assert settings["time_zone"] == "Asia/Shanghai"
    assert settings["email_port"] == 465


def test_it_runs_tasks_eagerly_with_a_local_memory_cache_without_redis() -> None:
    settings = settings_for({"DEBUG": "true"})

    assert settings["always_eager"] is True
    assert settings["cache_backend"] == "django.core.cache.backends.locmem.LocMemCache"
    assert not str(settings["broker_url"]).startswith("redis://")


def test_it_uses_redis_as_broker_and_cache_when_redis_url_is_set() -> None:
    settings = settings_for({**PRODUCTION_ENV, "REDIS_URL": "redis://cache.example.com:6379/2"})

    assert settings["always_eager"] is False
    assert settings["broker_url"] == "redis://cache.example.com:6379/2"
    assert settings["result_backend"] == "redis://cache.example.com:6379/2"
    assert settings["cache_backend"] == "crm.cache.ResilientRedisCache"
    assert settings["cache_location"] == "redis://cache.example.com:6379/2"


def test_it_reads_the_client_address_behind_the_proxies_it_is_told_of() -> None:
    settings = settings_for({**PRODUCTION_ENV, "TRUSTED_PROXY_COUNT": "1", "REQUEST_MAX_MB": "20"})

    assert settings["trusted_proxies"] == settings["throttle_proxies"] == 1
    assert settings["lockout_address"] == "crm.observability.client_address"
    assert settings["request_max_bytes"] == 20 * 1024 * 1024
