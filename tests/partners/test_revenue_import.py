"""fx_rates.csv and opportunities.csv in the market import: what a good file stores, every
problem as `file:line: column: problem` with nothing written, upserts, and optional columns."""

from __future__ import annotations

import shutil
from datetime import date
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from channels.models import Opportunity
from crm.models import CurrencyRate
from partners.market_csv import store

GOOD = Path(__file__).parent / "csv" / "good"
HEADER = (
    "external_id,account,channel,owner,stage,amount,currency,recurring,opened_on,"
    "expected_close_on,closed_on,ends_on"
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def market(tmp_path: Path) -> Path:
    directory = tmp_path / "market"
    shutil.copytree(GOOD, directory)
    return directory


def _run(*paths: Path) -> str:
    out = StringIO()
    call_command("import_csv", *map(str, paths), stdout=out, stderr=StringIO())
    return out.getvalue()


def _problems(*paths: Path) -> list[str]:
    err = StringIO()
    with pytest.raises(CommandError, match="nothing was imported"):
        call_command("import_csv", *map(str, paths), stdout=StringIO(), stderr=err)
    return err.getvalue().splitlines()


def _write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def test_it_imports_rates_and_opportunities(market: Path) -> None:
    out = _run(market)

    assert "fx_rates.csv: 3 rows, created=3 updated=0 unchanged=0" in out
    assert "opportunities.csv: 4 rows, created=4 updated=0 unchanged=0" in out
    assert CurrencyRate.objects.get(
        currency="EUR", valid_from=date(2025, 7, 1)
    ).rate_to_reporting == (Decimal("1.125"))
    partner_deal = Opportunity.objects.get(external_id="OPP-0001")
    assert partner_deal.partner is not None
    assert (partner_deal.channel, partner_deal.partner.external_id, partner_deal.rep) == (
        "partner",
        "P-ALPHA",
        None,
    )
    assert partner_deal.sub_stage.code == "propose"
    assert partner_deal.registration.external_id == "REG-0001"  # type: ignore[union-attr]
    assert (partner_deal.amount, partner_deal.currency) == (Decimal("250000.00"), "EUR")
    subscription = Opportunity.objects.get(external_id="OPP-0004")
    assert (subscription.online_source, subscription.recurring) == ("web-signup", True)
    assert (subscription.closed_on, subscription.ends_on) == (date(2025, 5, 20), date(2026, 1, 1))
    lost = Opportunity.objects.get(external_id="OPP-0003")
    assert lost.lost_reason == "Budget moved to next year"


def test_bad_rows_are_named_and_nothing_is_written(market: Path) -> None:
    _write(
        market,
        "fx_rates.csv",
        "currency,valid_from,rate_to_reporting\n"
        "EUR,2024-01-01,1.08\n"
        "USD,2024-01-01,1\n"
        "EUR,2024-01-01,1.09\n"
        "GBP,2024-13-01,0\n"
        "EURO,2024-01-01,1e3\n",
    )
    _write(
        market,
        "opportunities.csv",
        HEADER
        + "\n"
        + "\n".join(
            [
                "O-1,ACC-0001,direct,REP-01,open,100.00,USD,false,2026-01-01,,,",
                "O-1,ACC-9999,direct,REP-99,maybe,1.005,USD,yes,2026-01-01,2025-01-01,,",
                "O-3,ACC-0001,partner,P-BETA,won,100,USD,false,2026-01-01,,,",
                "O-4,ACC-0001,online,web,open,100,USD,false,2026-01-01,,2026-02-01,",
                "O-5,ACC-0001,direct,REP-01,won,100,USD,false,2026-01-01,,2026-02-01,2026-03-01",
                "O-6,ACC-0001,direct,REP-01,open,100,JPY,false,2026-01-01,,,",
                "O-7,ACC-0001,direct,REP-01,open,100,EUR,false,2023-12-31,,,",
                "O-8,ACC-0001,phone,x,open,-5,usd,false,,,,",
            ]
        )
        + "\n",
    )

    problems = _problems(market)

    assert problems == [
        "fx_rates.csv:3: currency: USD is the reporting currency: its rate is always 1 and is "
        "not imported",
        "fx_rates.csv:4: valid_from: duplicate rate of EUR from 2024-01-01 (first on line 2)",
        "fx_rates.csv:5: valid_from: not a date (expected yyyy-mm-dd): '2024-13-01'",
        "fx_rates.csv:5: rate_to_reporting: not a rate (more than 0, a dot for decimals, at "
        "most 10 decimals): '0'",
        "fx_rates.csv:6: currency: not an ISO 4217 currency code: 'EURO'",
        "fx_rates.csv:6: rate_to_reporting: not a rate (more than 0, a dot for decimals, at "
        "most 10 decimals): '1e3'",
        "opportunities.csv:3: external_id: duplicate external id 'O-1' (first on line 2)",
        "opportunities.csv:3: account: unknown account external id 'ACC-9999'",
        "opportunities.csv:3: owner: unknown rep external id 'REP-99'",
        "opportunities.csv:3: stage: must be one of open, won, lost, not 'maybe'",
        "opportunities.csv:3: amount: not an amount (at least 0, a dot for decimals, at most "
        "two): '1.005'",
        "opportunities.csv:3: recurring: must be true or false, not 'yes'",
        "opportunities.csv:3: expected_close_on: 2025-01-01 is before opened_on 2026-01-01",
        "opportunities.csv:4: owner: partner 'P-BETA' has channel kind distribution, not partner",
        "opportunities.csv:4: closed_on: required when the stage is won",
        "opportunities.csv:5: closed_on: must be empty while the deal is open",
        "opportunities.csv:6: ends_on: only a won recurring deal (a subscription) ends",
        "opportunities.csv:7: currency: no JPY rate valid on 2026-01-01, the day the deal "
        "opened: add a rate of JPY from that day or earlier to fx_rates.csv",
        "opportunities.csv:8: currency: no EUR rate valid on 2023-12-31, the day the deal "
        "opened: add a rate of EUR from that day or earlier to fx_rates.csv",
        "opportunities.csv:9: channel: must be one of direct, distribution, partner, online, "
        "not 'phone'",
        "opportunities.csv:9: amount: not an amount (at least 0, a dot for decimals, at most "
        "two): '-5'",
        "opportunities.csv:9: opened_on: required",
        "opportunities.csv:9: currency: not an ISO 4217 currency code: 'usd'",
    ]
    assert not Opportunity.objects.exists() and not CurrencyRate.objects.exists()


def test_a_stored_rate_serves_the_deals_of_a_later_import(tmp_path: Path, market: Path) -> None:
    _run(market)
    later = tmp_path / "later"
    later.mkdir()
    _write(
        later,
        "opportunities.csv",
        HEADER + "\nO-9,ACC-0002,direct,REP-01,open,10.00,CNY,false,2024-06-01,,,\n",
    )

    assert "created=1" in _run(later)


def test_it_updates_by_external_id_and_keeps_what_a_file_leaves_out(market: Path) -> None:
    _run(market)
    deal = Opportunity.objects.get(external_id="OPP-0002")
    _write(
        market,
        "opportunities.csv",
        HEADER + "\nOPP-0002,ACC-0001,direct,REP-01,won,1750.00,USD,true,2025-02-01,,2025-03-01,\n",
    )

    out = _run(market)

    assert "opportunities.csv: 1 rows, created=0 updated=1 unchanged=0" in out
    deal.refresh_from_db()
    assert (deal.amount, deal.name, deal.sub_stage.code) == (Decimal("1750.00"), "Seats", "commit")
    assert Opportunity.objects.count() == 4


def test_a_registration_becomes_one_opportunity_only(market: Path) -> None:
    _run(market)
    path = market / "opportunities.csv"
    path.write_text(
        path.read_text(encoding="utf-8")
        + "OPP-0005,ACC-0001,partner,P-ALPHA,open,1.00,USD,false,2026-11-02,,,,,,,REG-0001\n",
        encoding="utf-8",
    )
    problems = _problems(market)
    assert problems == [
        "opportunities.csv:6: registration: registration 'REG-0001' already became the "
        "opportunity on line 2"
    ]
    _write(
        market,
        "opportunities.csv",
        HEADER + ",registration\n"
        "OPP-0005,ACC-0001,partner,P-ALPHA,open,1.00,USD,false,2026-11-02,,,,REG-0001\n",
    )
    assert _problems(market) == [
        "opportunities.csv:2: registration: registration 'REG-0001' already became opportunity "
        "OPP-0001"
    ]


@pytest.mark.postgres
def test_a_session_whose_staging_memory_is_fixed_still_imports(
    market: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A temporary table used first fixes the session's temp_buffers: the raise is refused.
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE earlier (n integer)")
        cursor.execute("INSERT INTO earlier VALUES (1)")
        cursor.execute("SHOW temp_buffers")
        fixed = cursor.fetchone()[0]
    monkeypatch.setattr(store, "STAGING_BUFFERS", "300MB" if fixed != "300MB" else "200MB")

    out = _run(market)

    assert "opportunities.csv: 4 rows, created=4 updated=0 unchanged=0" in out
    with connection.cursor() as cursor:
        cursor.execute("SHOW temp_buffers")
        assert cursor.fetchone()[0] == fixed
