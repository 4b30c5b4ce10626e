from __future__ import annotations

pytest_plugins = [
    "tests.cast",
    "tests.services",
    "tests.partners.registration_market",
    "tests.partners.webhook_receiver",
]
