from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.conf import settings
from django.utils import translation

pytest_plugins = [
    "tests.cast",
    "tests.services",
    "tests.partners.registration_market",
    "tests.partners.webhook_receiver",
]


@pytest.fixture(autouse=True)
def _default_language() -> Iterator[None]:
    """Each test starts in the default language: a request in Chinese leaves its language
    active in the thread (LocaleMiddleware activates it and nothing resets it afterwards)."""
    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture(autouse=True)
def _migration_rows(request: pytest.FixtureRequest) -> None:
    """The rows migrations create (the open pipeline's steps, the programme's default tiers):
    a transactional test's flush empties every table, so a later test would find none. Put
    back before each database test."""
    names = request.fixturenames  # every fixture the test uses, directly or not
    marker = request.node.get_closest_marker("django_db")
    transactional = bool(
        {"transactional_db", "live_server"} & set(names)
        or (marker is not None and marker.kwargs.get("transaction"))
    )
    if marker is None and not transactional and "db" not in names:
        return
    request.getfixturevalue("transactional_db" if transactional else "db")
    migration_rows_restore()


def migration_rows_restore() -> None:
    """Put back the rows migrations create (see `_migration_rows`), where they are missing."""
    import importlib

    from django.apps import apps

    from partners.programme_services import programme_tiers_ensure

    migration = importlib.import_module("channels.migrations.0004_opportunities")
    migration.create_sub_stages(apps, None)
    programme_tiers_ensure()
