"""The OpenAPI schema generates without warnings and validates."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_it_generates_a_valid_schema_without_warnings() -> None:
    out = io.StringIO()
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--format", "openapi-json", stdout=out
    )
    assert '"/api/v1/metrics/rollup/"' in out.getvalue()
