"""bench_api runs every endpoint it times on a small market and ends with its summary line."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from tests.api.conftest import Market
from tests.cast import Cast

pytestmark = pytest.mark.django_db


def test_it_prints_p50_and_p95_for_each_endpoint(cast: Cast, market: Market) -> None:
    call_command("compute_metrics", "--week", "2026-W46", stdout=io.StringIO())
    out = io.StringIO()
    call_command("bench_api", "--repeat", "2", stdout=out)
    lines = out.getvalue().strip().splitlines()
    assert any(line.startswith("metrics rollup by region") for line in lines)
    assert any(line.startswith("partner user: accounts") for line in lines)
    assert any(line.startswith("(first request after a run)") for line in lines)
    assert lines[-1].startswith("bench_api: ")
    assert "worst p95" in lines[-1]
