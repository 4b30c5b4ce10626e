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
