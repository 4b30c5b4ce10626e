"""Operator job: time the market importer on a synthetic market of a given size."""

from __future__ import annotations

import csv
import random
import tempfile
from argparse import ArgumentParser
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
    PARTNERS,
    REGIONS,
    REPS,
    VERTICALS,
    MarketFile,
)
from partners.market_import import market_import

REGION_COUNT = 24
VERTICAL_COUNT = 20
REP_COUNT = 200
PARTNER_COUNT = 300
FIRST_DAY = date(2020, 1, 1)


def _write(directory: Path, market_file: MarketFile, rows: Any) -> None:
    with open(directory / market_file.name, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(market_file.columns)
        writer.writerows(rows)


def market_generate(*, directory: Path, accounts: int, with_coverage: bool, seed: int = 7) -> None:
    """Write a synthetic market as CSV files into `directory`.

    Regions, verticals and `accounts` accounts always; with `with_coverage` also reps, partners,
    one agreement per partner and about 1.6 coverage rows per account.
    """
    rng = random.Random(seed)
    regions = [f"R{n:02d}" for n in range(REGION_COUNT)]
    verticals = [f"V{n:02d}" for n in range(VERTICAL_COUNT)]
    bands = SizeBand.values
    kinds = ChannelKind.values
    days = [(FIRST_DAY + timedelta(days=n)).isoformat() for n in range(6 * 365)]
    _write(directory, REGIONS, ([code, f"Region {code}"] for code in regions))
    _write(directory, VERTICALS, ([code, f"Vertical {code}"] for code in verticals))

    def account_rows() -> Any:
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
    if not with_coverage:
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

    def coverage_rows() -> Any:
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


class Command(BaseCommand):
    help = (
        "Generate a synthetic market as CSV files and time import_csv on them against the "
        "configured database. Refuses a database that already holds accounts unless --force."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--accounts", type=int, default=1_000_000)
        parser.add_argument(
            "--with-coverage",
            action="store_true",
            help="also reps, partners, agreements and ~1.6 coverage rows per account",
        )
        parser.add_argument(
            "--force", action="store_true", help="run even if the database holds accounts"
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
            market_generate(
                directory=Path(directory), accounts=accounts, with_coverage=options["with_coverage"]
            )
            report = market_import(paths=[directory])
        for file in report.files:
            self.stdout.write(
                f"{file.name}: {file.rows} rows, created={file.created} "
                f"updated={file.updated} unchanged={file.unchanged}"
            )
        seconds = report.seconds
        self.stdout.write(
            f"bench_import: accounts={accounts} seconds={seconds:.2f} "
            f"rows_per_second={report.rows / seconds:.0f}"
        )
