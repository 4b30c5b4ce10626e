"""Import the market files (regions, verticals, accounts, reps, partners, agreements, coverage).

The importer is all-or-nothing: every file is validated before anything is written, and the
writes happen in one transaction. The agreements whose status it creates or changes are
announced to the webhooks as the workspace's changes are, once that transaction commits.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.enqueue import task_enqueue
from partners.coverage_kinds import coverage_kinds_forget_written
from partners.market_csv.files import (
    ACCOUNTS,
    AGREEMENTS,
    COVERAGE,
    FX_RATES,
    MARKET_FILES,
    MARKET_FILES_BY_NAME,
    OPPORTUNITIES,
    REGISTRATIONS,
    MarketFile,
)
from partners.market_csv.registrations import registrations_store
from partners.market_csv.revenue import fx_rates_store, opportunities_store
from partners.market_csv.store import (
    MarketStore,
    Staging,
    StoredConflict,
    staging_buffers_raise,
)
from partners.market_csv.validate import MarketValidator
from partners.models import Agreement
from partners.webhook_models import WebhookEvent
from partners.webhooks import webhook_agreement_status, webhook_subscribers

__all__ = ["FileReport", "ImportReport", "MarketImportError", "market_files_in", "market_import"]


class MarketImportError(Exception):
    """The files had problems; nothing was written. `problems` lists every one."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the market files")
        self.problems = problems


@dataclass
class FileReport:
    name: str
    rows: int
    created: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass
class ImportReport:
    """`seconds`: the whole call, as its caller waited for it. `refresh_seconds`: the part of it
    spent after the commit on the accounts' coverage kinds (the refresh runs there when tasks
    run in-process; with a broker it is only queued)."""

    dry_run: bool
    files: list[FileReport] = field(default_factory=list)
    seconds: float = 0.0
    refresh_seconds: float = 0.0

    @property
    def rows(self) -> int:
        return sum(file.rows for file in self.files)


def market_files_in(paths: Iterable[str | Path]) -> tuple[list[tuple[MarketFile, Path]], list[str]]:
    """Find the market files among `paths` (files, or directories holding them).

    Returns the files in dependency order and the problems found: a path that does not exist,
    a file name the importer does not know, the same file name given twice. In a directory,
    only `*.csv` files count.
    """
    found: dict[str, Path] = {}
    problems: list[str] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            candidates = sorted(p for p in path.iterdir() if p.suffix.lower() == ".csv")
            if not candidates:
                problems.append(f"{path}: " + _("no .csv files in this directory"))
        elif path.is_file():
            candidates = [path]
        else:
            problems.append(f"{path}: " + _("no such file or directory"))
            continue
        for candidate in candidates:
            if candidate.name not in MARKET_FILES_BY_NAME:
                known = ", ".join(market_file.name for market_file in MARKET_FILES)
                problems.append(
                    f"{candidate.name}:1: file: "
                    + _("unknown file name (expected %(known)s)") % {"known": known}
                )
            elif candidate.name in found:
                first = found[candidate.name]
                problems.append(
                    f"{candidate.name}:1: file: "
                    + _("given twice (%(first)s and %(second)s)")
                    % {"first": first, "second": candidate}
                )
            else:
                found[candidate.name] = candidate
    ordered = [(each, found[each.name]) for each in MARKET_FILES if each.name in found]
    return ordered, problems


def _coverage_kinds_after_import(
    now: datetime, report: ImportReport, *, accounts_uncovered: bool, first_load: bool
) -> None:
    """The accounts' stored coverage kinds (`partners.coverage_kinds`): mark those whose
    coverage, agreements or segment the import wrote not known, and recompute them once the
    import has committed (the lists test their assignments meanwhile).

    A run that wrote no account, agreement or coverage row (a re-import of the same files)
    changed none of the facts the kinds are made of. A run without coverage.csv writes the
    accounts it creates with their kinds (none); when it changed nothing that bears on stored
    accounts (a first load into an empty accounts table), no account waits either. Then nothing
    is marked and no refresh is queued; accounts left unknown by something else are the hourly
    refresh's."""
    if accounts_uncovered and first_load:
        return  # every account there is, the run created, with its kinds known
    if not any(
        file.created or file.updated
        for file in report.files
        if file.name in (ACCOUNTS.name, AGREEMENTS.name, COVERAGE.name)
    ):
        return  # it wrote none of the rows the kinds are made of
    forgotten = coverage_kinds_forget_written(at=now)
    if accounts_uncovered and not forgotten:
        return

    def refresh() -> None:
        started = time.perf_counter()
        task_enqueue("partners.coverage_kinds_refresh")
        report.refresh_seconds = time.perf_counter() - started

    transaction.on_commit(refresh)


def _agreement_statuses_announce(*, before: dict[int, str], after: dict[int, str]) -> int:
    """Announce each agreement whose status `after` differs from `before` (absent: created,
    announced with previous status "") with the payload the workspace's change gives, in the
    import's transaction (`webhook_publish`); returns how many deliveries were written."""
    endpoints = webhook_subscribers(event=WebhookEvent.AGREEMENT_STATUS)
    changed = sorted(pk for pk, status in after.items() if before.get(pk) != status)
    written = 0
    for start in range(0, len(changed), 500):  # within any database's limit of parameters
        chunk = changed[start : start + 500]
        for agreement in Agreement.objects.filter(pk__in=chunk).select_related("partner"):
            written += webhook_agreement_status(
                agreement=agreement, previous=before.get(agreement.pk, ""), endpoints=endpoints
            )
    return written


def _store(store: MarketStore, file_name: str) -> tuple[int, int]:
    """Upsert the staged rows of one market file; returns (created, updated)."""
    if file_name == REGISTRATIONS.name:
        return registrations_store(store.connection, now=store.now)
    if file_name == FX_RATES.name:
        return fx_rates_store(store)
    if file_name == OPPORTUNITIES.name:
        return opportunities_store(store)
    return store.upsert(file_name)


def market_import(
    *,
    paths: Iterable[str | Path],
    dry_run: bool = False,
    today: date | None = None,
) -> ImportReport:
    """Validate the market files in `paths` and upsert them, all or nothing.

    Rows are matched by external id (code for regions and verticals; account, kind, owner and
    start date for coverage). A row whose values all equal the stored ones is left untouched, so
    importing the same files twice changes nothing. Agreement status is derived from the dates
    as of `today` (default: the local date); each agreement whose status the import creates or
    changes is announced to the endpoints subscribed to agreement status changes
    (`webhook_agreement_status`, queued after the commit). With `dry_run` the files are only
    validated.

    Returns an `ImportReport` with per-file row counts and, unless `dry_run`, the created,
    updated and unchanged counts. Raises `MarketImportError` listing every problem
    (`file:line: column: problem`) when any file or row is bad; then nothing was written.
    """
    started = time.perf_counter()
    files, problems = market_files_in(paths)
    if not files and not problems:
        problems.append(_("no market files given"))
    report = ImportReport(dry_run=dry_run)
    now = timezone.now()
    accounts_uncovered = all(market_file.name != COVERAGE.name for market_file, _ in files)
    with nullcontext() if dry_run else transaction.atomic():
        staging = Staging(connection, enabled=not dry_run and not problems)
        if staging.enabled:
            staging_buffers_raise(connection)
        staging.create()
        validator = MarketValidator(
            staging=staging,
            today=today or timezone.localdate(),
            now=now,
            accounts_uncovered=accounts_uncovered,
        )
        for market_file, path in files:
            validator.validate(market_file, path)
        problems = problems + validator.problems
        if problems:
            raise MarketImportError(problems)
        report.files = [FileReport(name=f.name, rows=validator.rows[f.name]) for f, _ in files]
        if not dry_run:
            staging.analyze()
            store = MarketStore(
                connection,
                now=now,
                staged=staging.rows,
                optional_present=staging.optional_present,
                direct=staging.direct,
                accounts_uncovered=accounts_uncovered,
            )
            # Looked up only when someone listens: most imports announce nothing.
            announce = AGREEMENTS.name in validator.rows and bool(
                webhook_subscribers(event=WebhookEvent.AGREEMENT_STATUS)
            )
            for file_report in report.files:
                statuses = announce and file_report.name == AGREEMENTS.name
                before = store.agreement_statuses() if statuses else {}
                try:
                    early = staging.stored_early.get(file_report.name)
                    created, updated = early or _store(store, file_report.name)
                except StoredConflict as conflict:
                    raise MarketImportError(conflict.problems) from None
                if statuses:
                    _agreement_statuses_announce(before=before, after=store.agreement_statuses())
                file_report.created = created
                file_report.updated = updated
                file_report.unchanged = file_report.rows - created - updated
            _coverage_kinds_after_import(
                now,
                report,
                accounts_uncovered=accounts_uncovered,
                # accounts.csv went straight into the empty table
                first_load=ACCOUNTS.name in staging.direct,
            )
            staging.drop()
    report.seconds = time.perf_counter() - started
    return report
