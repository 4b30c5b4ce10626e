"""Export the market as the CSV files `market_import` reads."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from datetime import date
from pathlib import Path

from django.db.models import F, Model
from django.db.models.functions import Coalesce
from django.utils import timezone

from channels.models import CoverageAssignment, Opportunity, SalesRep
from crm.columns import account_code_lookups
from crm.models import Account, CurrencyRate, Region, Vertical
from partners.market_csv.files import (
    ACCOUNTS,
    AGREEMENTS,
    COVERAGE,
    FX_RATES,
    LIST_SEPARATOR,
    OPPORTUNITIES,
    PARTNERS,
    REGIONS,
    REGISTRATIONS,
    REPS,
    VERTICALS,
    MarketFile,
)
from partners.models import Agreement, Partner
from partners.registration_models import DealRegistration

__all__ = ["market_export"]

CHUNK = 20_000


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _codes_by_owner(through: type[Model], owner_column: str, code_path: str) -> dict[int, str]:
    codes: dict[int, list[str]] = {}
    for owner_id, code in through._default_manager.values_list(owner_column, code_path).order_by(
        owner_column, code_path
    ):
        codes.setdefault(owner_id, []).append(code)
    return {owner_id: LIST_SEPARATOR.join(values) for owner_id, values in codes.items()}


def _regions() -> Iterator[Iterable[object]]:
    return Region.objects.order_by("code").values_list("code", "name", "name_zh").iterator(CHUNK)


def _verticals() -> Iterator[Iterable[object]]:
    return Vertical.objects.order_by("code").values_list("code", "name", "name_zh").iterator(CHUNK)


def _accounts() -> Iterator[Iterable[object]]:
    return (
        Account.objects.order_by("external_id").values_list(*account_code_lookups()).iterator(CHUNK)
    )


def _reps() -> Iterator[Iterable[object]]:
    regions = _codes_by_owner(SalesRep.regions.through, "salesrep_id", "region__code")
    for rep_id, external_id, name, email in SalesRep.objects.order_by("external_id").values_list(
        "id", "external_id", "name", "email"
    ):
        yield external_id, name, email, regions.get(rep_id, "")


def _partners() -> Iterator[Iterable[object]]:
    return (
        Partner.objects.order_by("external_id")
        .values_list("external_id", "name", "channel_kind", "partner_type", "tier")
        .iterator(CHUNK)
    )


def _agreements() -> Iterator[Iterable[object]]:
    regions = _codes_by_owner(Agreement.regions.through, "agreement_id", "region__code")
    verticals = _codes_by_owner(Agreement.verticals.through, "agreement_id", "vertical__code")
    rows = Agreement.objects.order_by("external_id").values_list(
        "id",
        "external_id",
        "partner__external_id",
        "agreement_type",
        "start_date",
        "end_date",
        "signed_on",
        "terminated_on",
        "exclusive",
    )
    for agreement_id, *head, exclusive in rows.iterator(CHUNK):
        yield (
            *head,
            regions.get(agreement_id, ""),
            verticals.get(agreement_id, ""),
            exclusive,
        )


def _coverage() -> Iterator[Iterable[object]]:
    owner = Coalesce(F("rep__external_id"), F("partner__external_id"), F("online_source"))
    return (
        CoverageAssignment.objects.annotate(owner_key=owner)
        .order_by("account__external_id", "kind", "owner_key", "start_date")
        .values_list("account__external_id", "kind", "owner_key", "start_date", "end_date")
        .iterator(CHUNK)
    )


def _registrations() -> Iterator[Iterable[object]]:
    rows = DealRegistration.objects.order_by("external_id").values_list(
        "external_id",
        "partner__external_id",
        "company_name",
        "website",
        "region__code",
        "vertical__code",
        "size_band",
        "offering",
        "amount",
        "currency",
        "expected_close_on",
        "description",
        "contact_name",
        "contact_email",
        "contact_phone",
        "status",
        "account__external_id",
        "submitted_at",
        "decided_at",
        "protected_from",
        "protected_until",
        "decision_reason",
        "closed_on",
        "won_amount",
    )
    for (
        *head,
        submitted_at,
        decided_at,
        protected_from,
        until,
        reason,
        closed,
        won,
    ) in rows.iterator(CHUNK):
        # The day of the decision: the first protected day of an approval, else the decision's.
        decided_on = protected_from or (timezone.localdate(decided_at) if decided_at else None)
        yield (
            *head,
            timezone.localdate(submitted_at),
            decided_on,
            until,
            reason,
            closed,
            won,
        )


def _fx_rates() -> Iterator[Iterable[object]]:
    return (
        CurrencyRate.objects.order_by("currency", "valid_from")
        .values_list("currency", "valid_from", "rate_to_reporting")
        .iterator(CHUNK)
    )


def _opportunities() -> Iterator[Iterable[object]]:
    owner = Coalesce(F("rep__external_id"), F("partner__external_id"), F("online_source"))
    return (
        Opportunity.objects.annotate(owner_key=owner)
        .order_by("external_id")
        .values_list(
            "external_id",
            "account__external_id",
            "channel",
            "owner_key",
            "stage",
            "amount",
            "currency",
            "recurring",
            "opened_on",
            "expected_close_on",
            "closed_on",
            "ends_on",
            "name",
            "sub_stage__code",
            "lost_reason",
            "registration__external_id",
        )
        .iterator(CHUNK)
    )


EXPORTS = (
    (REGIONS, _regions),
    (VERTICALS, _verticals),
    (FX_RATES, _fx_rates),
    (ACCOUNTS, _accounts),
    (REPS, _reps),
    (PARTNERS, _partners),
    (AGREEMENTS, _agreements),
    (COVERAGE, _coverage),
    (REGISTRATIONS, _registrations),
    (OPPORTUNITIES, _opportunities),
)


def _write(path: Path, market_file: MarketFile, rows: Iterator[Iterable[object]]) -> int:
    count = 0
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow((*market_file.columns, *market_file.optional))
        for row in rows:
            writer.writerow([_cell(value) for value in row])
            count += 1
    return count


def market_export(*, directory: str | Path) -> dict[str, int]:
    """Write every market file (regions.csv ... registrations.csv, fx_rates.csv and
    opportunities.csv) into `directory` (created if missing).

    The files have the importer's headers and formats (dates yyyy-mm-dd, lists joined by `;`,
    booleans true/false, empty cells for nothing), rows ordered by their key, so importing them
    reproduces the same rows. Existing files of those names are overwritten. Returns the number
    of rows written per file name. Raises `OSError` when the directory cannot be written.
    """
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    return {
        market_file.name: _write(target / market_file.name, market_file, rows())
        for market_file, rows in EXPORTS
    }
