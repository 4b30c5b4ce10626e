"""Operator job: time the market importer on a synthetic market of a given size."""

from __future__ import annotations

import csv
import random
import tempfile
from argparse import ArgumentParser
from collections.abc import Iterable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from crm.models import Account, ChannelKind, SizeBand
from partners.market_csv.files import (
    ACCOUNTS,
    AGREEMENTS,
    COVERAGE,
    FX_RATES,
    OPPORTUNITIES,
    PARTNERS,
    REGIONS,
    REPS,
    VERTICALS,
    MarketFile,
)
from partners.market_import import ImportReport, market_import

REGION_COUNT = 24
VERTICAL_COUNT = 20
REP_COUNT = 200
PARTNER_COUNT = 300
FIRST_DAY = date(2020, 1, 1)


def _write(directory: Path, market_file: MarketFile, rows: Iterable[Iterable[object]]) -> None:
    with open(directory / market_file.name, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(market_file.columns)
        writer.writerows(rows)


def market_generate(
    *,
    directory: Path,
    accounts: int,
    with_coverage: bool,
    with_owners: bool = False,
    seed: int = 7,
) -> None:
    """Write a synthetic market as CSV files into `directory`.

    Regions, verticals and `accounts` accounts always; with `with_owners` or `with_coverage`
    also reps, partners and one agreement per partner; with `with_coverage` about 1.6 coverage
    rows per account.
    """
    rng = random.Random(seed)
    regions = [f"R{n:02d}" for n in range(REGION_COUNT)]
    verticals = [f"V{n:02d}" for n in range(VERTICAL_COUNT)]
    bands = SizeBand.values
    kinds = ChannelKind.values
    days = [(FIRST_DAY + timedelta(days=n)).isoformat() for n in range(6 * 365)]
    _write(directory, REGIONS, ([code, f"Region {code}"] for code in regions))
    _write(directory, VERTICALS, ([code, f"Vertical {code}"] for code in verticals))

    def account_rows() -> Iterator[list[object]]:
        for n in range(accounts):
            entered = rng.randrange(len(days) - 400)
            archived = days[entered + 365] if rng.random() < 0.05 else ""
            converted, via = "", ""
            if rng.random() < 0.12:
                converted, via = days[entered + rng.randrange(1, 300)], rng.choice(kinds)
            yield [
                f"ACC-{n:08d}",
                f"Account {n}",
                rng.choice(regions),
                rng.choice(verticals),
                rng.choice(bands),
                days[entered],
                archived,
                converted,
                via,
            ]

    _write(directory, ACCOUNTS, account_rows())
    if not (with_coverage or with_owners):
        return
    reps = [f"REP-{n:04d}" for n in range(REP_COUNT)]
    _write(
        directory,
        REPS,
        ([rep, f"Rep {rep}", f"{rep.lower()}@example.com", rng.choice(regions)] for rep in reps),
    )
    partner_kinds = {
        f"P-{n:04d}": ChannelKind.DISTRIBUTION.value if n % 3 == 0 else ChannelKind.PARTNER.value
        for n in range(PARTNER_COUNT)
    }
    _write(
        directory,
        PARTNERS,
        (
            [
                external_id,
                f"Partner {external_id}",
                kind,
                "distributor" if kind == ChannelKind.DISTRIBUTION else "reseller",
                "silver",
            ]
            for external_id, kind in partner_kinds.items()
        ),
    )
    _write(
        directory,
        AGREEMENTS,
        (
            [
                f"AG-{external_id}",
                external_id,
                "reseller",
                "2024-01-01",
                "2027-12-31",
                "2023-12-15",
                "",
                rng.choice(regions),
                "",
                "false",
            ]
            for external_id in partner_kinds
        ),
    )
    partners = list(partner_kinds)
    if not with_coverage:
        return

    def coverage_rows() -> Iterator[list[object]]:
        for n in range(accounts):
            account = f"ACC-{n:08d}"
            for kind in rng.sample(kinds, 2 if rng.random() < 0.6 else 1):
                if kind == ChannelKind.DIRECT:
                    owner = rng.choice(reps)
                elif kind == ChannelKind.ONLINE:
                    owner = "web"
                else:
                    owner = rng.choice(partners)
                    while partner_kinds[owner] != kind:
                        owner = rng.choice(partners)
                start = rng.randrange(len(days) - 400)
                end = days[start + rng.randrange(30, 365)] if rng.random() < 0.3 else ""
                yield [account, kind, owner, days[start], end]

    _write(directory, COVERAGE, coverage_rows())


def opportunities_generate(
    *, directory: Path, accounts: int, opportunities: int, seed: int = 11
) -> None:
    """Write fx_rates.csv (EUR and CNY, a rate a quarter) and `opportunities` deals on the
    accounts, reps and partners of `market_generate(with_owners=True)` into `directory`: every
    channel, open, won and lost, a third recurring, some subscriptions ended, in three
    currencies, over six years."""
    rng = random.Random(seed)
    days = [(FIRST_DAY + timedelta(days=n)).isoformat() for n in range(6 * 365)]
    quarters = [date(FIRST_DAY.year + q // 4, 1 + 3 * (q % 4), 1) for q in range(6 * 4)]
    _write(
        directory,
        FX_RATES,
        (
            [currency, quarter.isoformat(), f"{base * (1 + rng.uniform(-0.05, 0.05)):.10f}"]
            for currency, base in (("EUR", 1.08), ("CNY", 0.14))
            for quarter in quarters
        ),
    )
    partner_kinds = {
        f"P-{n:04d}": ChannelKind.DISTRIBUTION.value if n % 3 == 0 else ChannelKind.PARTNER.value
        for n in range(PARTNER_COUNT)
    }
    by_kind = {
        kind: [p for p, k in partner_kinds.items() if k == kind]
        for kind in (ChannelKind.DISTRIBUTION.value, ChannelKind.PARTNER.value)
    }
    kinds = ChannelKind.values
    stages = ["open", "won", "won", "lost"]

    def rows() -> Iterator[list[object]]:
        for n in range(opportunities):
            channel = rng.choice(kinds)
            if channel == ChannelKind.DIRECT:
                owner = f"REP-{rng.randrange(REP_COUNT):04d}"
            elif channel == ChannelKind.ONLINE:
                owner = "web"
            else:
                owner = rng.choice(by_kind[channel])
            opened = rng.randrange(len(days) - 200)
            stage = rng.choice(stages)
            closed = days[opened + rng.randrange(0, 180)] if stage != "open" else ""
            recurring = rng.random() < 0.33
            ends = ""
            if stage == "won" and recurring and rng.random() < 0.25:
                ends = days[min(len(days) - 1, days.index(closed) + rng.randrange(30, 700))]
            yield [
                f"OPP-{n:09d}",
                f"ACC-{rng.randrange(accounts):08d}",
                channel,
                owner,
                stage,
                f"{rng.randrange(100, 50_000_000) / 100:.2f}",
                rng.choice(("USD", "USD", "EUR", "CNY")),
                "true" if recurring else "false",
                days[opened],
                days[opened + rng.randrange(0, 200)] if rng.random() < 0.8 else "",
                closed,
                ends,
            ]

    _write(directory, OPPORTUNITIES, rows())


class Command(BaseCommand):
    help = (
        "Generate a synthetic market as CSV files and time import_csv on them against the "
        "configured database, then time importing the same files again (a re-import that "
        "changes nothing). Refuses a database that already holds accounts unless --force."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--accounts", type=int, default=1_000_000)
        parser.add_argument(
            "--with-coverage",
            action="store_true",
            help="also reps, partners, agreements and ~1.6 coverage rows per account",
        )
        parser.add_argument(
            "--opportunities",
            type=int,
            default=0,
            help="then time importing fx_rates.csv and this many opportunities on that market",
        )
        parser.add_argument(
            "--force", action="store_true", help="run even if the database holds accounts"
        )
        parser.add_argument(
            "--no-reimport",
            action="store_true",
            help="skip importing the same files a second time (reimport_seconds)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        accounts = options["accounts"]
        if accounts < 1:
            raise CommandError("--accounts must be at least 1")
        if Account.objects.exists() and not options["force"]:
            raise CommandError(
                "The database already holds accounts; the benchmark would upsert synthetic rows "
                "into it. Point DATABASE_URL at a scratch database, or pass --force."
            )
        with tempfile.TemporaryDirectory(prefix="bench-import-") as directory:
            self.stdout.write(
                f"bench_import: generating {accounts} accounts in {directory} "
                f"for {connection.vendor} {connection.settings_dict['NAME']}"
            )
            opportunities = options["opportunities"]
            market_generate(
                directory=Path(directory),
                accounts=accounts,
                with_coverage=options["with_coverage"],
                with_owners=opportunities > 0,
            )
            report = market_import(paths=[directory])
            self._report(report)
            seconds = report.seconds
            # `seconds` is the whole call; `refresh_seconds` the part of it after the commit
            # that stores the accounts' coverage kinds (run in-process without REDIS_URL).
            line = (
                f"bench_import: accounts={accounts} seconds={seconds:.2f} "
                f"rows_per_second={report.rows / seconds:.0f} "
                f"refresh_seconds={report.refresh_seconds:.2f}"
            )
            reimport = not options["no_reimport"]
            if reimport:
                # The same files again: every row checked, matched and found unchanged.
                again = market_import(paths=[directory])
                self._report(again)
                line += (
                    f" reimport_seconds={again.seconds:.2f}"
                    f" reimport_refresh_seconds={again.refresh_seconds:.2f}"
                )
            if opportunities:
                deals = Path(directory) / "deals"
                deals.mkdir()
                opportunities_generate(
                    directory=deals, accounts=accounts, opportunities=opportunities
                )
                deals_report = market_import(paths=[deals])
                self._report(deals_report)
                line += (
                    f" opportunities={opportunities} "
                    f"opportunities_seconds={deals_report.seconds:.2f} "
                    f"opportunities_refresh_seconds={deals_report.refresh_seconds:.2f}"
                )
                if reimport:
                    deals_again = market_import(paths=[deals])
                    self._report(deals_again)
                    line += f" opportunities_reimport_seconds={deals_again.seconds:.2f}"
        self.stdout.write(line)

    def _report(self, report: ImportReport) -> None:
        for file in report.files:
            self.stdout.write(
                f"{file.name}: {file.rows} rows, created={file.created} "
                f"updated={file.updated} unchanged={file.unchanged}"
            )
