"""Operator job: load market data from CSV files, all or nothing."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from partners.market_import import MarketImportError, market_import


class Command(BaseCommand):
    help = (
        "Import regions.csv, verticals.csv, accounts.csv, reps.csv, partners.csv, agreements.csv "
        "and coverage.csv (files, or directories holding them). Rows are upserted by external id "
        "or code; if any row is bad, nothing is written and every problem is listed."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("paths", nargs="+", help="CSV files or directories holding them")
        parser.add_argument("--dry-run", action="store_true", help="validate only; write nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            report = market_import(paths=options["paths"], dry_run=options["dry_run"])
        except MarketImportError as error:
            for problem in error.problems:
                self.stderr.write(problem)
            raise CommandError(
                f"{len(error.problems)} problem(s) found; nothing was imported."
            ) from None
        for file in report.files:
            if report.dry_run:
                self.stdout.write(f"{file.name}: {file.rows} rows valid")
            else:
                self.stdout.write(
                    f"{file.name}: {file.rows} rows, created={file.created} "
                    f"updated={file.updated} unchanged={file.unchanged}"
                )
        outcome = "validated (dry run, nothing written)" if report.dry_run else "imported"
        line = f"{report.rows} rows {outcome} in {report.seconds:.1f} s"
        if report.refresh_seconds >= 0.05:
            line += f", of which {report.refresh_seconds:.1f} s storing coverage kinds after it"
        self.stdout.write(line)
