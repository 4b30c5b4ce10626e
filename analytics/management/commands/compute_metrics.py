"""Compute weekly metric snapshots: one week, a range (backfill) or the last N weeks."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from tqdm import tqdm

from analytics import metrics
from analytics.services import (
    MetricsRunInProgress,
    metrics_compute_week,
    metrics_compute_weeks,
)
from analytics.tasks import compute_week_split


class Command(BaseCommand):
    help = (
        "Compute weekly coverage and penetration snapshots. --week W (final unless --provisional), "
        "--from W --to W (backfill, final), or --last N (the current week provisional, the "
        "weeks before it final)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--week", help='An ISO week, e.g. "2026-W46".')
        parser.add_argument("--from", dest="first", help="First ISO week of a backfill.")
        parser.add_argument("--to", dest="last", help="Last ISO week of a backfill (inclusive).")
        parser.add_argument("--last", dest="count", type=int, help="The last N weeks up to now.")
        parser.add_argument(
            "--provisional", action="store_true", help="With --week: mark the run provisional."
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")
        parser.add_argument(
            "--split",
            type=int,
            metavar="N",
            help="With --week: queue the week for the workers as N region shares merged into "
            'one write (README, "Production").',
        )

    def handle(self, *args: Any, **options: Any) -> None:
        modes = [options["week"] is not None, options["first"] is not None]
        modes.append(options["count"] is not None)
        if sum(modes) != 1 or (options["first"] is None) != (options["last"] is None):
            raise CommandError("give exactly one of --week W, --from W --to W, or --last N")
        if options["split"] is not None and (options["week"] is None or options["split"] < 1):
            raise CommandError("--split N takes --week W and N of at least 1")
        current = metrics.iso_week_of(timezone.localdate())
        try:
            if options["week"]:
                metrics.iso_week_as_of(options["week"])
                weeks = [options["week"]]
                final = set() if options["provisional"] else set(weeks)
            elif options["count"] is not None:
                if options["count"] < 1:
                    raise CommandError("--last must be at least 1")
                today = timezone.localdate()
                first = metrics.iso_week_of(today - timedelta(weeks=options["count"] - 1))
                weeks = metrics.iso_weeks_between(first, current)
                final = set(weeks) - {current}
            else:
                weeks = metrics.iso_weeks_between(options["first"], options["last"])
                if not weeks:
                    raise CommandError("--to comes before --from")
                # A week that has not closed yet can only be provisional.
                today = timezone.localdate()
                final = {week for week in weeks if metrics.iso_week_as_of(week) < today}
        except ValueError as error:
            raise CommandError(str(error)) from None

        if options["split"] is not None:
            week, is_final = weeks[0], weeks[0] in final
            compute_week_split.delay(week, is_final, options["split"])
            self.stdout.write(f"{week}: queued in {options['split']} region shares")
            return
        try:
            if len(weeks) == 1:
                run = metrics_compute_week(week=weeks[0], final=weeks[0] in final)
                self.stdout.write(
                    f"{run.week}: {run.rows_written} rows as of {run.as_of} "
                    f"({'final' if run.final else 'provisional'}) in {run.seconds:.2f} s"
                )
                return
            bar = tqdm(
                total=len(weeks), unit="week", disable=options["no_progress"], file=self.stderr
            )
            runs = metrics_compute_weeks(
                weeks=weeks, final_weeks=final, progress=lambda week: bar.update(1)
            )
            bar.close()
        except MetricsRunInProgress as error:
            raise CommandError(str(error)) from None
        rows = sum(run.rows_written for run in runs)
        self.stdout.write(f"{len(runs)} weeks ({weeks[0]} .. {weeks[-1]}): {rows} rows written")
