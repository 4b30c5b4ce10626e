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
def _pipeline_steps(request: pytest.FixtureRequest) -> None:
    """The open pipeline's steps a migration creates: a transactional test's flush empties
    every table, so a later test would find none. Put back before each database test."""
    if request.node.get_closest_marker("django_db") is None:
        return
    import importlib

    from django.apps import apps

    request.getfixturevalue("db") if "transactional_db" not in request.fixturenames else None
    migration = importlib.import_module("channels.migrations.0004_opportunities")
    migration.create_sub_stages(apps, None)
