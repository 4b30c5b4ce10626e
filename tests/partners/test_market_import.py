from __future__ import annotations

import shutil
from datetime import date
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from channels.models import CoverageAssignment, SalesRep
from crm.models import Account, ChannelKind, Region, Vertical
from partners.market_csv import store
from partners.models import Agreement, AgreementStatus, Partner
from partners.services import agreement_terminate
from partners.webhook_models import WebhookDelivery, WebhookEndpoint
from tests.factories import AccountFactory, RegionFactory, UserFactory, VerticalFactory

GOOD = Path(__file__).parent / "csv" / "good"
MODELS = (Region, Vertical, Account, SalesRep, Partner, Agreement, CoverageAssignment)

pytestmark = pytest.mark.django_db


@pytest.fixture
def market(tmp_path: Path) -> Path:
    """A copy of the good files that a test may edit."""
    directory = tmp_path / "market"
    shutil.copytree(GOOD, directory)
    return directory


def _run(*paths: Path | str, dry_run: bool = False) -> str:
    out = StringIO()
    args = [str(path) for path in paths] + (["--dry-run"] if dry_run else [])
    call_command("import_csv", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def _problems(*paths: Path | str) -> list[str]:
    err = StringIO()
    with pytest.raises(CommandError, match="nothing was imported"):
        call_command("import_csv", *[str(p) for p in paths], stdout=StringIO(), stderr=err)
    return err.getvalue().splitlines()


def _replace(directory: Path, name: str, old: str, new: str) -> None:
    path = directory / name
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _assert_nothing_written() -> None:
    assert {model.__name__: model.objects.count() for model in MODELS} == {
        model.__name__: 0 for model in MODELS
    }


def test_it_imports_good_files(market: Path) -> None:
    out = _run(market)

    assert "accounts.csv: 4 rows, created=4 updated=0 unchanged=0" in out
    assert "coverage.csv: 6 rows, created=6 updated=0 unchanged=0" in out
    bank = Account.objects.get(external_id="ACC-0001")
    assert (bank.region.code, bank.vertical.code, bank.size_band) == ("DACH", "FIN", "enterprise")
    assert (bank.converted_on, bank.converted_via) == (date(2025, 3, 1), ChannelKind.DIRECT)
    clinic = Account.objects.get(external_id="ACC-0002")
    assert clinic.name == "Berlin Clinic, GmbH"
    assert (clinic.archived_on, clinic.converted_on, clinic.converted_via) == (None, None, "")
    assert bank.created_at == bank.updated_at
    rita = SalesRep.objects.get(external_id="REP-01")
    assert sorted(rita.regions.values_list("code", flat=True)) == ["DACH", "NORDICS"]
    assert rita.is_active and rita.user is None
    statuses = dict(Agreement.objects.values_list("external_id", "status"))
    assert statuses == {
        "AG-001": AgreementStatus.ACTIVE,
        "AG-002": AgreementStatus.EXPIRED,
        "AG-003": AgreementStatus.TERMINATED,
        "AG-004": AgreementStatus.DRAFT,
    }
    first = Agreement.objects.get(external_id="AG-001")
    assert (first.notice_days, first.currency, first.exclusive) == (30, "USD", False)
    assert sorted(first.verticals.values_list("code", flat=True)) == ["FIN"]
    assert Agreement.objects.get(external_id="AG-002").regions.count() == 0
    online = CoverageAssignment.objects.get(kind=ChannelKind.ONLINE)
    assert (online.online_source, online.rep, online.partner) == ("web-signup", None, None)
    beta = CoverageAssignment.objects.get(kind=ChannelKind.DISTRIBUTION)
    assert beta.partner.external_id == "P-BETA"
    assert CoverageAssignment.objects.get(
        account__external_id="ACC-0003", kind=ChannelKind.DIRECT
    ).end_date == date(2024, 12, 31)


def test_it_takes_single_files_and_refers_to_existing_rows() -> None:
    RegionFactory(code="DACH")
    VerticalFactory(code="FIN")
    VerticalFactory(code="HEALTH")
    RegionFactory(code="EAST_CN")
    VerticalFactory(code="RETAIL")
    RegionFactory(code="NORDICS")

    out = _run(GOOD / "accounts.csv")

    assert out.startswith("accounts.csv: 4 rows, created=4 updated=0 unchanged=0")
    assert Account.objects.count() == 4


def test_it_reports_an_unknown_code_and_writes_nothing(market: Path) -> None:
    _replace(market, "accounts.csv", 'Berlin Clinic, GmbH",DACH', 'Berlin Clinic, GmbH",MARS')
    _replace(market, "reps.csv", "DACH;NORDICS", "DACH;ATLANTIS")

    assert _problems(market) == [
        "accounts.csv:3: region: unknown region code 'MARS'",
        "reps.csv:2: regions: unknown region code 'ATLANTIS'",
    ]
    _assert_nothing_written()


def test_it_takes_cells_as_written(market: Path) -> None:
    _replace(market, "accounts.csv", "Acme Bank,DACH,", "Acme Bank,DACH ,")
    with open(market / "regions.csv", "a", encoding="utf-8") as handle:
        handle.write(" BALTICS,Baltics,\n")

    assert _problems(market) == [
        "regions.csv:5: code: must not start or end with a space: ' BALTICS'",
        "accounts.csv:2: region: unknown region code 'DACH '",
    ]


def test_it_reports_a_bad_date(market: Path) -> None:
    _replace(market, "accounts.csv", "2024-02-01", "2024-02-30")
    _replace(market, "coverage.csv", "2024-05-01", "01/05/2024")

    assert _problems(market) == [
        "accounts.csv:3: entered_on: not a date (expected yyyy-mm-dd): '2024-02-30'",
        "coverage.csv:6: start_date: not a date (expected yyyy-mm-dd): '01/05/2024'",
    ]
    _assert_nothing_written()


def test_it_reports_an_end_before_its_start(market: Path) -> None:
    _replace(market, "accounts.csv", "2024-03-10,2025-06-30", "2024-03-10,2023-06-30")
    _replace(market, "agreements.csv", "2024-01-01,2024-12-31", "2024-01-01,2023-12-31")
    _replace(market, "coverage.csv", "2025-01-15,2025-12-31", "2025-01-15,2025-01-14")

    assert _problems(market) == [
        "accounts.csv:4: archived_on: 2023-06-30 is before entered_on 2024-03-10",
        "agreements.csv:3: end_date: 2023-12-31 is before start_date 2024-01-01",
        "coverage.csv:3: end_date: 2025-01-14 is before start_date 2025-01-15",
    ]
    _assert_nothing_written()


def test_it_reports_agreement_dates_outside_the_calendar_it_keeps(market: Path) -> None:
    _replace(market, "agreements.csv", "2024-01-01,2024-12-31", "0001-01-01,9999-12-31")

    assert _problems(market) == [
        "agreements.csv:3: start_date: 0001-01-01 is outside 1900-01-01 to 2199-12-31",
        "agreements.csv:3: end_date: 9999-12-31 is outside 1900-01-01 to 2199-12-31",
    ]
    _assert_nothing_written()


def test_it_reports_a_termination_outside_the_term_or_unsigned(market: Path) -> None:
    _replace(market, "agreements.csv", "2025-01-01,2025-06-30", "2025-01-01,2024-06-30")
    _replace(market, "agreements.csv", "2026-12-31,,", "2026-12-31,,2026-02-01")

    assert _problems(market) == [
        "agreements.csv:4: terminated_on: 2024-06-30 is before start_date 2025-01-01",
        "agreements.csv:5: terminated_on: set, but the agreement was never signed",
    ]


def test_it_reports_a_partner_of_the_wrong_channel_kind(market: Path) -> None:
    _replace(market, "coverage.csv", "ACC-0002,distribution,P-BETA", "ACC-0002,partner,P-BETA")
    _replace(market, "coverage.csv", "ACC-0004,partner,P-ALPHA", "ACC-0004,direct,P-ALPHA")

    assert _problems(market) == [
        "coverage.csv:4: owner: partner 'P-BETA' has channel kind distribution, not partner",
        "coverage.csv:7: owner: unknown rep external id 'P-ALPHA'",
    ]
    _assert_nothing_written()


def test_it_reports_a_duplicate_key_within_one_file(market: Path) -> None:
    for name, row in [
        ("regions.csv", "DACH,Germany,"),
        ("accounts.csv", "ACC-0002,Clinic,DACH,HEALTH,smb,2024-02-01,,,"),
        ("coverage.csv", "ACC-0001,partner,P-ALPHA,2025-01-15,"),
    ]:
        with open(market / name, "a", encoding="utf-8") as handle:
            handle.write(row + "\n")

    assert _problems(market) == [
        "regions.csv:5: code: duplicate region code 'DACH' (first on line 2)",
        "accounts.csv:6: external_id: duplicate external id 'ACC-0002' (first on line 3)",
        "coverage.csv:8: start_date: duplicate coverage of 'ACC-0001' by partner 'P-ALPHA' "
        "from 2025-01-15 (first on line 3)",
    ]
    _assert_nothing_written()


def test_it_reports_coverage_of_one_owner_that_overlaps_within_the_file(market: Path) -> None:
    with open(market / "coverage.csv", "a", encoding="utf-8") as handle:
        handle.write("ACC-0001,partner,P-ALPHA,2025-06-01,2026-03-31\n")  # inside line 3's term
        handle.write("ACC-0001,partner,P-ALPHA,2026-01-01,\n")  # the day after it: fine

    assert _problems(market) == [
        "coverage.csv:8: start_date: coverage of 'ACC-0001' by partner 'P-ALPHA' from "
        "2025-06-01 overlaps its coverage from 2025-01-15 on line 3",
    ]
    _assert_nothing_written()


@pytest.mark.parametrize("large_load", [False, True], ids=["upsert", "large-load"])
def test_it_reports_coverage_that_overlaps_stored_coverage_of_the_same_owner(
    market: Path, large_load: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    _run(market)
    if large_load:
        monkeypatch.setattr(store, "bulk_load_worthwhile", lambda **counts: True)
    lines = (market / "coverage.csv").read_text(encoding="utf-8").splitlines()
    # Only the new row: the stored ACC-0004 coverage from 2025-02-01 stays, open-ended.
    (market / "coverage.csv").write_text(
        "\n".join([lines[0], "ACC-0004,partner,P-ALPHA,2026-01-01,"]) + "\n", encoding="utf-8"
    )

    assert _problems(market / "coverage.csv") == [
        "coverage.csv:2: start_date: coverage of 'ACC-0004' by partner 'P-ALPHA' from "
        "2026-01-01 overlaps its stored coverage from 2025-02-01 to open",
    ]
    assert CoverageAssignment.objects.count() == 6


def test_it_moves_a_stored_coverage_start_by_replacing_its_row(market: Path) -> None:
    """A stored row with a staged row's key is replaced by it, so it never clashes."""
    _run(market)
    _replace(market, "coverage.csv", "2025-01-15,2025-12-31", "2025-01-15,2026-06-30")

    _run(market)

    assert CoverageAssignment.objects.filter(end_date=date(2026, 6, 30)).count() == 1


def test_it_reports_a_missing_column(market: Path) -> None:
    _replace(market, "partners.csv", "external_id,name,channel_kind,", "external_id,name,kind,")

    # Nothing about the agreements and coverage that refer to those partners: the one
    # problem is the header.
    assert _problems(market) == [
        "partners.csv:1: channel_kind: missing column",
        "partners.csv:1: kind: unknown column",
    ]
    _assert_nothing_written()


def test_it_reports_bad_choices(market: Path) -> None:
    _replace(market, "accounts.csv", "enterprise,2024-01-15", "huge,2024-01-15")
    _replace(market, "accounts.csv", "2025-03-01,direct", "2025-03-01,")
    _replace(market, "accounts.csv", "2024-02-01,,,", "2024-02-01,,,online")
    _replace(market, "agreements.csv", "FIN,false", "FIN,no")
    _replace(market, "partners.csv", "reseller,gold", "reseller,bronze")

    assert _problems(market) == [
        "accounts.csv:2: size_band: must be one of smb, mid_market, enterprise, strategic, "
        "not 'huge'",
        "accounts.csv:2: converted_via: required when converted_on is set",
        "accounts.csv:3: converted_via: must be empty when converted_on is",
        "partners.csv:2: tier: must be one of registered, silver, gold, platinum, not 'bronze'",
        "agreements.csv:2: exclusive: must be true or false, not 'no'",
    ]


def test_it_reports_an_unknown_file_name(market: Path) -> None:
    (market / "customers.csv").write_text("external_id\nX\n", encoding="utf-8")

    problems = _problems(market)

    assert problems == [
        "customers.csv:1: file: unknown file name (expected regions.csv, verticals.csv, "
        "fx_rates.csv, accounts.csv, reps.csv, partners.csv, agreements.csv, coverage.csv, "
        "registrations.csv, opportunities.csv)"
    ]
    _assert_nothing_written()


def test_it_reports_a_missing_path_and_a_row_of_the_wrong_width(market: Path) -> None:
    with open(market / "verticals.csv", "a", encoding="utf-8") as handle:
        handle.write("LOGISTICS,Logistics,,extra\n")

    assert _problems(market, market / "nowhere.csv") == [
        f"{market / 'nowhere.csv'}: no such file or directory",
        "verticals.csv:5: row: has 4 fields, expected 3",
    ]


def test_it_counts_physical_lines_and_accepts_a_bom(tmp_path: Path) -> None:
    (tmp_path / "regions.csv").write_text(
        '\ufeffcode,name\nDACH,"Germany,\nAustria, Switzerland"\n\nX;Y,Bad code\n',
        encoding="utf-8",
    )

    assert _problems(tmp_path / "regions.csv") == ["regions.csv:5: code: must not contain ';'"]


def test_it_changes_nothing_on_reimport(market: Path) -> None:
    _run(market)
    stamps = {model: sorted(model.objects.values_list("id", "updated_at")) for model in MODELS}

    out = _run(market)

    for name, rows in [("regions", 3), ("accounts", 4), ("reps", 3), ("agreements", 4)]:
        assert f"{name}.csv: {rows} rows, created=0 updated=0 unchanged={rows}" in out
    assert "coverage.csv: 6 rows, created=0 updated=0 unchanged=6" in out
    assert stamps == {
        model: sorted(model.objects.values_list("id", "updated_at")) for model in MODELS
    }


def test_it_updates_only_the_rows_that_changed(market: Path) -> None:
    _run(market)
    before = {a.external_id: a for a in Account.objects.all()}
    _replace(market, "accounts.csv", "Acme Bank", "Acme Bank AG")
    _replace(market, "reps.csv", "DACH;NORDICS", "NORDICS")
    _replace(market, "agreements.csv", "DACH;NORDICS,FIN", "DACH;NORDICS,")
    _replace(market, "coverage.csv", "2025-01-15,2025-12-31", "2025-01-15,2026-06-30")

    out = _run(market)

    assert "accounts.csv: 4 rows, created=0 updated=1 unchanged=3" in out
    assert "reps.csv: 3 rows, created=0 updated=1 unchanged=2" in out
    assert "agreements.csv: 4 rows, created=0 updated=1 unchanged=3" in out
    assert "coverage.csv: 6 rows, created=0 updated=1 unchanged=5" in out
    bank = Account.objects.get(external_id="ACC-0001")
    assert bank.name == "Acme Bank AG"
    assert bank.created_at == before["ACC-0001"].created_at
    assert bank.updated_at > before["ACC-0001"].updated_at
    assert Account.objects.get(external_id="ACC-0002").updated_at == before["ACC-0002"].updated_at
    rita = SalesRep.objects.get(external_id="REP-01")
    assert list(rita.regions.values_list("code", flat=True)) == ["NORDICS"]
    assert rita.updated_at > rita.created_at
    assert Agreement.objects.get(external_id="AG-001").verticals.count() == 0
    assert CoverageAssignment.objects.get(
        account__external_id="ACC-0001", kind=ChannelKind.PARTNER
    ).end_date == date(2026, 6, 30)
    assert CoverageAssignment.objects.count() == 6


def test_it_writes_nothing_on_a_dry_run(market: Path) -> None:
    out = _run(market, dry_run=True)

    assert "accounts.csv: 4 rows valid" in out
    assert "dry run, nothing written" in out
    _assert_nothing_written()


def test_it_reports_problems_on_a_dry_run(market: Path) -> None:
    _replace(market, "accounts.csv", "DACH,FIN", "DACH,FINANCE")
    err = StringIO()

    with pytest.raises(CommandError):
        call_command("import_csv", str(market), "--dry-run", stdout=StringIO(), stderr=err)

    assert err.getvalue().splitlines() == [
        "accounts.csv:2: vertical: unknown vertical code 'FINANCE'"
    ]


def test_it_rebuilds_indexes_and_foreign_keys_around_a_large_load(
    market: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "bulk_load_worthwhile", lambda **counts: True)
    with connection.cursor() as cursor:
        before = connection.introspection.get_constraints(cursor, Account._meta.db_table)

    _run(market)

    with connection.cursor() as cursor:
        after = connection.introspection.get_constraints(cursor, Account._meta.db_table)
    assert after == before
    assert Account.objects.count() == 4
    assert CoverageAssignment.objects.count() == 6


def test_it_updates_rows_the_same_way_during_a_large_load(
    market: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "bulk_load_worthwhile", lambda **counts: True)
    _run(market)
    _replace(market, "accounts.csv", "Acme Bank", "Acme Bank AG")
    _replace(market, "coverage.csv", "2025-01-15,2025-12-31", "2025-01-15,2026-06-30")
    with open(market / "coverage.csv", "a", encoding="utf-8") as handle:
        handle.write("ACC-0002,online,web-signup,2025-01-01,\n")

    out = _run(market)

    assert "accounts.csv: 4 rows, created=0 updated=1 unchanged=3" in out
    assert "coverage.csv: 7 rows, created=1 updated=1 unchanged=5" in out
    assert Account.objects.get(external_id="ACC-0001").name == "Acme Bank AG"
    assert CoverageAssignment.objects.filter(end_date=date(2026, 6, 30)).count() == 1


def test_it_leaves_agreement_history_working(market: Path) -> None:
    _run(market)
    agreement = Agreement.objects.get(external_id="AG-004")

    agreement.exclusive = True
    agreement.save()

    assert agreement.history.count() == 1


def test_bench_import_refuses_a_database_with_accounts() -> None:
    AccountFactory()

    with pytest.raises(CommandError, match="already holds accounts"):
        call_command("bench_import", "--accounts", "10", stdout=StringIO())


def test_it_benchmarks_a_small_synthetic_market() -> None:
    out = StringIO()

    call_command("bench_import", "--accounts", "200", "--with-coverage", stdout=out)

    last = out.getvalue().splitlines()[-1]
    assert last.startswith("bench_import: accounts=200 seconds=")
    assert "rows_per_second=" in last and "reimport_seconds=" in last
    # The re-import finds every row unchanged.
    assert "accounts.csv: 200 rows, created=0 updated=0 unchanged=200" in out.getvalue()
    assert Account.objects.count() == 200
    assert CoverageAssignment.objects.count() > 200


def test_it_imports_chinese_names_and_keeps_them_when_a_file_has_no_such_column(
    market: Path, tmp_path: Path
) -> None:
    _run(market)
    assert Region.objects.get(code="EAST_CN").name_zh == "华东"
    assert Vertical.objects.get(code="FIN").name_zh == "金融"
    assert Region.objects.get(code="NORDICS").name_zh == ""
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "regions.csv").write_text("code,name\nEAST_CN,Eastern China\n", encoding="utf-8")
    out = _run(plain / "regions.csv")
    assert "created=0 updated=1" in out
    east = Region.objects.get(code="EAST_CN")
    assert (east.name, east.name_zh) == ("Eastern China", "华东")


def test_it_reports_a_chinese_name_too_long(market: Path) -> None:
    _replace(market, "regions.csv", "华东", "东" * 201)
    problems = _problems(market)
    assert "regions.csv:3: name_zh: longer than 200 characters" in problems
    _assert_nothing_written()


AGREEMENT_STATUS = "agreement.status_changed"


def _announced() -> list[tuple[str, str, str]]:
    """(external id, previous status, status) of each agreement status delivery written."""
    return sorted(
        (
            delivery.payload["data"]["agreement"]["external_id"],
            delivery.payload["data"]["agreement"]["previous_status"],
            delivery.payload["data"]["agreement"]["status"],
        )
        for delivery in WebhookDelivery.objects.filter(event=AGREEMENT_STATUS)
    )


class TestAgreementWebhooks:
    @pytest.fixture(autouse=True)
    def _endpoint(self) -> None:
        WebhookEndpoint.objects.create(
            url="https://hooks.example/crm", secret="s" * 20, events=[AGREEMENT_STATUS]
        )

    def test_it_announces_the_agreements_it_creates_after_its_commit(
        self, market: Path, django_capture_on_commit_callbacks: Any
    ) -> None:
        with django_capture_on_commit_callbacks() as queued:
            _run(market)
        assert _announced() == [
            ("AG-001", "", AgreementStatus.ACTIVE),
            ("AG-002", "", AgreementStatus.EXPIRED),
            ("AG-003", "", AgreementStatus.TERMINATED),
            ("AG-004", "", AgreementStatus.DRAFT),
        ]
        assert queued, "the deliveries are queued once the import commits"
        assert WebhookDelivery.objects.filter(status="pending", attempts=0).count() == 4

    def test_it_announces_a_status_change_as_the_workspace_does(self, market: Path) -> None:
        _run(market)
        WebhookDelivery.objects.all().delete()
        _replace(market, "agreements.csv", "2025-01-10,,DACH", "2025-01-10,2025-06-01,DACH")
        _replace(market, "agreements.csv", "2023-12-20,,,,true", "2023-12-20,,,,false")

        _run(market)

        # AG-002 changed, but not its status: nothing to announce.
        assert _announced() == [("AG-001", AgreementStatus.ACTIVE, AgreementStatus.TERMINATED)]
        imported = WebhookDelivery.objects.get().payload["data"]
        agreement = Agreement.objects.get(external_id="AG-001")
        agreement.status = AgreementStatus.ACTIVE
        agreement.terminated_on = None
        agreement.save()
        WebhookDelivery.objects.all().delete()
        agreement_terminate(
            agreement=agreement, terminated_on=date(2025, 6, 1), reason="Left", by=UserFactory()
        )
        assert WebhookDelivery.objects.get().payload["data"] == imported

    def test_a_reimport_announces_nothing(self, market: Path) -> None:
        _run(market)
        WebhookDelivery.objects.all().delete()
        _run(market)
        assert _announced() == []

    def test_a_refused_import_announces_nothing(
        self, market: Path, django_capture_on_commit_callbacks: Any
    ) -> None:
        _run(market)
        WebhookDelivery.objects.all().delete()
        _replace(market, "agreements.csv", "2025-01-10,,DACH", "2025-01-10,2025-06-01,DACH")
        # Found only when coverage is stored, after the agreements were.
        lines = (market / "coverage.csv").read_text(encoding="utf-8").splitlines()
        (market / "coverage.csv").write_text(
            "\n".join([lines[0], "ACC-0004,partner,P-ALPHA,2026-01-01,"]) + "\n", encoding="utf-8"
        )
        with django_capture_on_commit_callbacks() as queued:
            problems = _problems(market / "agreements.csv", market / "coverage.csv")
        assert problems and "overlaps its stored coverage" in problems[0]
        assert _announced() == [] and queued == []
        assert Agreement.objects.get(external_id="AG-001").status == AgreementStatus.ACTIVE
