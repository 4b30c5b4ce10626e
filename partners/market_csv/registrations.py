"""registrations.csv: deal registrations carried in and out of the market files.

Validated row by row like the other files (`file:line: column: problem`, nothing written when
any row is bad), including every rule the database holds: an approved registration names an
account and its protection, a won one its account and close date, and no account ends up with
two approved registrations, counting those already stored. Rows are few, so they are stored
through the ORM; created rows get an "imported" event, and submitted ones their conflicts.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from psycopg import sql

from crm.currencies import is_currency_code
from crm.models import Account, Region, SizeBand, Vertical
from crm.names import company_name_key, website_domain
from crm.sql import as_text
from partners.market_csv.checks import RowChecks, longer_than, not_a_currency
from partners.market_csv.files import PARTNERS, REGISTRATIONS
from partners.market_csv.store import STAGE_REGISTRATION
from partners.models import Partner
from partners.registration_facts import ImportedFacts
from partners.registration_models import (
    DealRegistration,
    DealRegistrationEvent,
    RegistrationEventKind,
    RegistrationStatus,
)
from partners.registration_services import registration_conflicts_refresh
from partners.registration_text import event_note_in_english

APPROVED = RegistrationStatus.APPROVED.value
# Whose decision the row records: these need decided_on.
DECIDED = {APPROVED, RegistrationStatus.REJECTED.value}
MONEY_MAX = Decimal("1e12")


def _money(value: str) -> Decimal | None:
    try:
        amount = Decimal(value)
    except InvalidOperation:
        return None
    if not amount.is_finite() or amount < 0 or amount >= MONEY_MAX:
        return None
    if amount.as_tuple().exponent < -2:  # type: ignore[operator]
        return None
    return amount


def registrations_validate(validator: RowChecks, path: Path) -> None:
    """Check registrations.csv with `validator` (`market_csv.checks.RowChecks`) and
    stage its good rows."""
    name = REGISTRATIONS.name
    seen: dict[str, int] = {}
    approved_in_file: dict[str, list[tuple[str, int]]] = defaultdict(list)
    statuses = RegistrationStatus.values
    limits = {
        "external_id": 64,
        "company_name": 255,
        "website": 255,
        "offering": 200,
        "description": 5000,
        "contact_name": 200,
        "contact_email": 254,
        "contact_phone": 50,
        "decision_reason": 2000,
    }
    for line, cells in validator._rows(path, REGISTRATIONS):
        count = len(validator.problems)
        row = dict(zip(REGISTRATIONS.columns, cells, strict=True))
        external_id = row["external_id"]
        validator._key(
            name, line, "external_id", external_id, 64, seen, gettext_noop("external id")
        )
        partner = row["partner"]
        if partner not in validator.partner_kinds and PARTNERS.name not in validator.unreadable:
            validator._unknown(name, line, "partner", partner, gettext_noop("partner external id"))
        validator._text(name, line, "company_name", row["company_name"], 255)
        for column in (
            "website",
            "offering",
            "description",
            "contact_name",
            "contact_email",
            "contact_phone",
            "decision_reason",
        ):
            if len(row[column]) > limits[column]:
                validator.problem(name, line, column, longer_than(limits[column]))
        if row["website"] and not website_domain(row["website"]):
            validator.problem(
                name,
                line,
                "website",
                _("not a web address: %(value)r") % {"value": row["website"]},
            )
        if row["region"] not in validator.region_codes:
            validator._unknown(name, line, "region", row["region"], gettext_noop("region code"))
        if row["vertical"] not in validator.vertical_codes:
            validator._unknown(
                name, line, "vertical", row["vertical"], gettext_noop("vertical code")
            )
        validator._choice(name, line, "size_band", row["size_band"], SizeBand.values)
        for column in ("amount", "won_amount"):
            if row[column] and _money(row[column]) is None:
                validator.problem(
                    name,
                    line,
                    column,
                    _("not an amount (at least 0, at most two decimals): %(value)r")
                    % {"value": row[column]},
                )
        if not is_currency_code(row["currency"]):
            validator.problem(
                name,
                line,
                "currency",
                not_a_currency(row["currency"]),
            )
        status = validator._choice(name, line, "status", row["status"], statuses)
        account = row["account"]
        if account and not validator._account_known(account):
            validator._unknown(name, line, "account", account, gettext_noop("account external id"))
        if status in (APPROVED, RegistrationStatus.WON) and not account:
            validator.problem(name, line, "account", _required_when(status))
        dates = {
            column: validator._date(
                name, line, column, row[column], required=column == "submitted_on"
            )
            for column in ("expected_close_on", "submitted_on", "decided_on", "closed_on")
        }
        until: str | None = row["protected_until"]
        if until:
            until = validator._date(name, line, "protected_until", until, required=False)
        if status in DECIDED and not row["decided_on"]:
            validator.problem(name, line, "decided_on", _required_when(status))
        if status == APPROVED and not row["protected_until"]:
            validator.problem(name, line, "protected_until", _required_when(APPROVED))
        if status == RegistrationStatus.WON and not row["closed_on"]:
            validator.problem(name, line, "closed_on", _required_when(RegistrationStatus.WON))
        submitted = dates["submitted_on"]
        validator._not_before(
            name, line, "decided_on", dates["decided_on"], "submitted_on", submitted
        )
        validator._not_before(
            name, line, "closed_on", dates["closed_on"], "submitted_on", submitted
        )
        validator._not_before(
            name, line, "protected_until", until or None, "decided_on", dates["decided_on"]
        )
        if len(validator.problems) != count:
            continue
        if status == APPROVED:
            approved_in_file[account].append((external_id, line))
        validator.staging.add(
            STAGE_REGISTRATION, [row[column] or None for column in REGISTRATIONS.columns]
        )
    _check_one_approval_per_account(validator, approved_in_file, set(seen))
    validator.registration_lines = seen


def _check_one_approval_per_account(
    validator: RowChecks,
    approved_in_file: dict[str, list[tuple[str, int]]],
    in_file: set[str],
) -> None:
    """The database's rule, checked before anything is written: one approved registration per
    account, counting the stored ones the file leaves as they are."""
    stored = defaultdict(list)
    for external_id, account in DealRegistration.objects.filter(
        status=APPROVED, account__external_id__in=list(approved_in_file)
    ).values_list("external_id", "account__external_id"):
        if external_id not in in_file:
            stored[account].append(external_id)
    for account, holders in approved_in_file.items():
        first = holders[0]
        for external_id, line in holders[1:]:
            validator.problem(
                REGISTRATIONS.name,
                line,
                "status",
                _(
                    "account %(account)r would have two approved registrations: %(second)s and "
                    "%(first)s (line %(line)d)"
                )
                % {"account": account, "second": external_id, "first": first[0], "line": first[1]},
            )
        for other in stored.get(account, []):
            validator.problem(
                REGISTRATIONS.name,
                first[1],
                "status",
                _(
                    "account %(account)r already has approved registration %(other)s; "
                    "expire or close it in the file first"
                )
                % {"account": account, "other": other},
            )


def _required_when(status: str) -> str:
    return _("required when the status is %(status)s") % {"status": status}


def _as_date(value: Any) -> date | None:
    if value in (None, ""):
        return None
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _at_midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time()))


def _values(row: dict[str, Any], ids: dict[str, dict[str, int]]) -> dict[str, Any]:
    """The model fields a staged row sets (dates of moments are compared as dates)."""
    status = row["status"]
    until = _as_date(row["protected_until"])
    decided = _as_date(row["decided_on"])
    return {
        "partner_id": ids["partner"][row["partner"]],
        "company_name": row["company_name"],
        "name_key": company_name_key(row["company_name"]),
        "website": row["website"] or "",
        "domain": website_domain(row["website"] or ""),
        "region_id": ids["region"][row["region"]],
        "vertical_id": ids["vertical"][row["vertical"]],
        "size_band": row["size_band"],
        "offering": row["offering"] or "",
        "amount": _money(row["amount"]) if row["amount"] else None,
        "currency": row["currency"],
        "expected_close_on": _as_date(row["expected_close_on"]),
        "description": row["description"] or "",
        "contact_name": row["contact_name"] or "",
        "contact_email": row["contact_email"] or "",
        "contact_phone": row["contact_phone"] or "",
        "status": status,
        "account_id": ids["account"].get(row["account"]) if row["account"] else None,
        "protected_from": decided if until else None,
        "protected_until": until,
        "decision_reason": row["decision_reason"] or "",
        "closed_on": _as_date(row["closed_on"]),
        "won_amount": _money(row["won_amount"]) if row["won_amount"] else None,
    }


def _moments(registration: DealRegistration, row: dict[str, Any]) -> dict[str, datetime | None]:
    """submitted_at and decided_at, changed only when the file gives another day."""
    changes: dict[str, datetime | None] = {}
    submitted = _as_date(row["submitted_on"])
    if timezone.localdate(registration.submitted_at) != submitted:
        changes["submitted_at"] = _at_midnight(submitted)  # type: ignore[arg-type]
    decided = _as_date(row["decided_on"])
    known = timezone.localdate(registration.decided_at) if registration.decided_at else None
    if decided != known:
        changes["decided_at"] = _at_midnight(decided) if decided else None
    return changes


def registrations_store(connection: BaseDatabaseWrapper, *, now: str | None) -> tuple[int, int]:
    """Upsert the staged registrations by external id; returns (created, updated)."""
    columns = REGISTRATIONS.columns
    with connection.cursor() as cursor:
        cursor.execute(
            as_text(
                sql.SQL("SELECT {} FROM {}").format(
                    sql.SQL(", ").join(map(sql.Identifier, columns)), STAGE_REGISTRATION.identifier
                ),
                connection,
            )
        )
        rows = [dict(zip(columns, values, strict=True)) for values in cursor.fetchall()]
    if not rows:
        return 0, 0
    ids = {
        "partner": dict(
            Partner.objects.filter(external_id__in={r["partner"] for r in rows}).values_list(
                "external_id", "pk"
            )
        ),
        "region": dict(Region.objects.values_list("code", "pk")),
        "vertical": dict(Vertical.objects.values_list("code", "pk")),
        "account": dict(
            Account.objects.filter(
                external_id__in={r["account"] for r in rows if r["account"]}
            ).values_list("external_id", "pk")
        ),
    }
    existing = DealRegistration.objects.in_bulk(
        [r["external_id"] for r in rows], field_name="external_id"
    )
    created: list[DealRegistration] = []
    changed: list[DealRegistration] = []
    # Rows leaving "approved" are saved before rows entering it, so the one-approval rule
    # holds after every statement, not only at the end.
    rows.sort(key=lambda r: r["status"] == APPROVED)
    today = timezone.localdate()
    for row in rows:
        values = _values(row, ids)
        registration = existing.get(row["external_id"])
        if registration is None:
            registration = DealRegistration(external_id=row["external_id"], **values)
            registration.submitted_at = _at_midnight(_as_date(row["submitted_on"]))  # type: ignore[arg-type]
            decided = _as_date(row["decided_on"])
            registration.decided_at = _at_midnight(decided) if decided else None
            registration.save()
            created.append(registration)
            continue
        updates = {
            field: value for field, value in values.items() if getattr(registration, field) != value
        }
        updates.update(_moments(registration, row))
        if updates:
            for field, value in updates.items():
                setattr(registration, field, value)
            registration.save(update_fields=[*updates, "updated_at"])
            changed.append(registration)
    imported = ImportedFacts(what="imported", file="registrations.csv")
    DealRegistrationEvent.objects.bulk_create(
        DealRegistrationEvent(
            registration=registration,
            kind=RegistrationEventKind.IMPORTED,
            to_status=registration.status,
            note=event_note_in_english(imported),
            facts=imported,
        )
        for registration in created
    )
    for registration in created + changed:
        if registration.status == RegistrationStatus.SUBMITTED:
            registration_conflicts_refresh(registration=registration, day=today)
    # A registration imported while it waits arrives now; one imported decided never did here.
    arrived = [r.pk for r in created if r.status == RegistrationStatus.SUBMITTED]
    DealRegistration.objects.filter(pk__in=arrived).update(
        arrival_conflicts=F("conflict_codes_text")
    )
    return len(created), len(changed)
