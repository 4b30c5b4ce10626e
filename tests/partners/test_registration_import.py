"""registrations.csv in the market import: all or nothing, `file:line: column: problem`, and
the one-approval-per-account rule checked before anything is written."""

from __future__ import annotations

import csv
import re
import shutil
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from crm.models import Account
from partners.market_csv.files import REGISTRATIONS
from partners.market_import import MarketImportError, market_import
from partners.registration_models import DealRegistration

GOOD = Path(__file__).parent / "csv" / "good"

pytestmark = pytest.mark.django_db


@pytest.fixture
def market(tmp_path: Path) -> Path:
    directory = tmp_path / "market"
    shutil.copytree(GOOD, directory)
    return directory


def _rows(directory: Path) -> list[dict[str, str]]:
    with open(directory / "registrations.csv", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _write(directory: Path, rows: list[dict[str, str]]) -> None:
    with open(directory / "registrations.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=REGISTRATIONS.columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def _edit(directory: Path, which: str, **changes: str) -> None:
    rows = _rows(directory)
    for row in rows:
        if row["external_id"] == which:
            row.update(changes)
    _write(directory, rows)


def _problems(directory: Path) -> list[str]:
    err = StringIO()
    with pytest.raises(CommandError, match="nothing was imported"):
        call_command("import_csv", str(directory), stdout=StringIO(), stderr=err)
    return err.getvalue().splitlines()


def test_it_imports_registrations_with_their_history_and_conflicts(market: Path) -> None:
    out = StringIO()
    call_command("import_csv", str(market), stdout=out)
    assert "registrations.csv: 4 rows, created=4" in out.getvalue()
    approved = DealRegistration.objects.get(external_id="REG-0001")
    assert (approved.status, approved.account.external_id) == ("approved", "ACC-0001")
    assert str(approved.protected_from) == "2026-11-03"
    assert approved.name_key == "acme bank" and approved.domain == "acme-bank.example"
    assert approved.events.get().kind == "imported"
    pending = DealRegistration.objects.get(external_id="REG-0002")
    assert pending.conflict_codes == ["outside_agreement"] and pending.needs_review
    assert Account.objects.get(external_id="ACC-0002").name_key == "berlin clinic"


def test_importing_the_same_file_twice_changes_nothing(market: Path) -> None:
    call_command("import_csv", str(market), stdout=StringIO())
    out = StringIO()
    call_command("import_csv", str(market), stdout=out)
    assert "registrations.csv: 4 rows, created=0 updated=0" in out.getvalue()


def test_a_row_that_changes_updates_only_that_registration(market: Path) -> None:
    call_command("import_csv", str(market), stdout=StringIO())
    _edit(market, "REG-0001", status="expired", decision_reason="Ran out.")
    _edit(
        market,
        "REG-0002",
        status="approved",
        account="ACC-0001",
        decided_on="2026-12-02",
        protected_until="2027-03-01",
    )
    out = StringIO()
    call_command("import_csv", str(market), stdout=out)
    assert "registrations.csv: 4 rows, created=0 updated=2" in out.getvalue()
    assert DealRegistration.objects.get(external_id="REG-0002").status == "approved"
    assert DealRegistration.objects.get(external_id="REG-0001").status == "expired"


@pytest.mark.parametrize(
    ("external_id", "changes", "problem"),
    [
        ("REG-0002", {"partner": "P-NOBODY"}, "partner: unknown partner external id 'P-NOBODY'"),
        ("REG-0002", {"region": "MARS"}, "region: unknown region code 'MARS'"),
        ("REG-0002", {"amount": "12.345"}, "amount: not an amount"),
        ("REG-0002", {"amount": "-1"}, "amount: not an amount"),
        ("REG-0002", {"currency": "XYZ"}, "currency: not an ISO 4217 currency code"),
        ("REG-0002", {"status": "pending"}, "status: must be one of submitted"),
        ("REG-0002", {"website": "not a site"}, "website: not a web address"),
        ("REG-0002", {"submitted_on": "2026-02-30"}, "submitted_on: not a date"),
        ("REG-0002", {"company_name": ""}, "company_name: required"),
        ("REG-0001", {"account": ""}, "account: required when the status is approved"),
        ("REG-0001", {"decided_on": ""}, "decided_on: required when the status is approved"),
        ("REG-0001", {"protected_until": ""}, "protected_until: required when the status"),
        ("REG-0001", {"account": "ACC-NOPE"}, "account: unknown account external id 'ACC-NOPE'"),
        ("REG-0001", {"decided_on": "2026-10-01"}, "decided_on: 2026-10-01 is before submitted_on"),
        ("REG-0001", {"protected_until": "2026-11-01"}, "protected_until: 2026-11-01 is before"),
        ("REG-0004", {"closed_on": ""}, "closed_on: required when the status is won"),
        ("REG-0003", {"external_id": "REG-0001"}, "external_id: duplicate external id 'REG-0001'"),
        (
            "REG-0004",
            {"status": "approved", "account": "ACC-0001", "protected_until": "2026-01-01"},
            "status: account 'ACC-0001' would have two approved registrations",
        ),
    ],
)
def test_a_bad_row_is_reported_and_nothing_is_written(
    market: Path, external_id: str, changes: dict[str, str], problem: str
) -> None:
    _edit(market, external_id, **changes)
    problems = _problems(market)
    assert any(problem in line for line in problems), problems
    for line in problems:
        assert re.match(r"^[a-z]+\.csv:\d+: [a-z_]+: .+", line), line
    assert not DealRegistration.objects.exists() and not Account.objects.exists()


def test_a_stored_approval_counts_against_the_file(market: Path) -> None:
    call_command("import_csv", str(market), stdout=StringIO())
    rows = [row for row in _rows(market) if row["external_id"] == "REG-0002"]
    rows[0].update(
        external_id="REG-0009",
        status="approved",
        account="ACC-0001",
        decided_on="2026-12-02",
        protected_until="2027-03-01",
    )
    _write(market, rows)
    problems = _problems(market)
    assert problems == [
        "registrations.csv:2: status: account 'ACC-0001' already has approved registration "
        "REG-0001; expire or close it in the file first"
    ]
    assert not DealRegistration.objects.filter(external_id="REG-0009").exists()


HYPOTHESIS = settings(
    max_examples=15,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
cell = st.one_of(
    st.sampled_from(
        [
            "",
            "P-ALPHA",
            "DACH",
            "FIN",
            "smb",
            "approved",
            "won",
            "submitted",
            "ACC-0001",
            "EUR",
            "2026-01-01",
            "2026-02-30",
            "12.5",
            "-3",
            "x" * 300,
            "项目",
            ";",
        ]
    ),
    st.text(max_size=12),
)


@HYPOTHESIS
@given(rows=st.lists(st.lists(cell, min_size=23, max_size=23), min_size=1, max_size=4))
def test_arbitrary_registration_rows_import_all_or_nothing(
    tmp_path_factory: Any, rows: list[list[str]]
) -> None:
    directory: Path = tmp_path_factory.mktemp("market")
    for name in ("regions.csv", "verticals.csv", "accounts.csv", "partners.csv"):
        shutil.copy(GOOD / name, directory / name)
    with open(directory / "registrations.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(REGISTRATIONS.columns)
        writer.writerows(rows)
    before = DealRegistration.objects.count()
    try:
        market_import(paths=[directory])
    except MarketImportError as error:
        for problem in error.problems:
            assert re.match(r"^[a-z]+\.csv:\d+: [a-z_]+: .+", problem), problem
        assert DealRegistration.objects.count() == before
    else:
        assert DealRegistration.objects.count() >= 1
