"""Operator job: write the market as the CSV files import_csv reads."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from partners.market_export import market_export


class Command(BaseCommand):
    help = (
        "Write regions.csv, verticals.csv, accounts.csv, reps.csv, partners.csv, agreements.csv "
        "and coverage.csv into DIR, in the format import_csv reads."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("directory", help="where to write the files (created if missing)")

    def handle(self, *args: Any, **options: Any) -> None:
        counts = market_export(directory=options["directory"])
        for name, rows in counts.items():
            self.stdout.write(f"{name}: {rows} rows")
