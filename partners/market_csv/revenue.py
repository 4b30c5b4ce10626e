"""fx_rates.csv and opportunities.csv: the rates and the deals, in the same all-or-nothing
market import as the other files.

Validated row by row (`file:line: column: problem`), including every rule the database holds on
opportunities (stages and dates, the owner fitting the channel, one opportunity per deal
registration) and docs/metrics.md rule 10: a deal in another currency than the reporting one
needs a rate of that currency valid on the day it opened, counting the rates stored and those of
fx_rates.csv, so no figure of it can ever lack one. Rows are staged and upserted by key (the
currency and day for rates, the external id for deals) with one set-based statement each, like
accounts and coverage: a million deals in seconds. Into an empty opportunities table, when every
account, rep, partner and registration the deals name is already stored, the checked rows are
copied straight in with their ids (`store.DirectLoad`): no staging table and no upsert pass.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from psycopg import sql

from channels.models import Opportunity, OpportunitySubStage, SalesRep
from crm.currencies import is_currency_code
from crm.models import EARLIEST_DATE, LATEST_DATE, Account, ChannelKind, CurrencyRate
from crm.sql import COPY_NULL, copy_text
from partners.market_csv.checks import RowChecks, longer_than, not_a_currency, other_kind
from partners.market_csv.files import (
    ACCOUNTS,
    FX_RATES,
    OPPORTUNITIES,
    PARTNERS,
    REGISTRATIONS,
    REPS,
)
from partners.market_csv.store import (
    STAGE_FX_RATE,
    STAGE_OPPORTUNITY,
    DirectLoad,
    MarketStore,
    _staged,
    _table,
    copy_ids,
    file_lines,
)
from partners.models import Partner
from partners.registration_models import DealRegistration

# A decimal with a dot, at most twelve digits before it and two after.
AMOUNT = re.compile(r"\d{1,12}(\.\d{1,2})?")
RATE_INTEGER_DIGITS = 10
RATE_DECIMALS = 10
STAGES = ("open", "won", "lost")
PARTNER_CHANNELS = ("distribution", "partner")
FIRST, LAST = EARLIEST_DATE.isoformat(), LATEST_DATE.isoformat()


def _rate(value: str) -> Decimal | None:
    """A rate: more than 0, at most ten digits before the dot and ten after."""
    try:
        rate = Decimal(value)
    except InvalidOperation:
        return None
    if not rate.is_finite() or rate <= 0 or "e" in value.lower():
        return None
    exponent = rate.as_tuple().exponent
    assert isinstance(exponent, int)
    if -exponent > RATE_DECIMALS or rate >= Decimal(10) ** RATE_INTEGER_DIGITS:
        return None
    return rate


def fx_rates_validate(validator: RowChecks, path: Path) -> None:
    """Check fx_rates.csv with `validator` (`market_csv.checks.RowChecks`), stage its
    good rows, and note each currency's earliest rate for the opportunities after it."""
    name = FX_RATES.name
    seen: dict[tuple[str, str], int] = {}
    reporting = settings.REPORTING_CURRENCY
    for line, (currency, valid_from, rate) in validator._rows(path, FX_RATES):
        count = len(validator.problems)
        if not is_currency_code(currency):
            validator.problem(name, line, "currency", not_a_currency(currency))
        elif currency == reporting:
            validator.problem(
                name,
                line,
                "currency",
                _(
                    "%(currency)s is the reporting currency: its rate is always 1 and is not "
                    "imported"
                )
                % {"currency": currency},
            )
        day = validator._date(name, line, "valid_from", valid_from, required=True)
        if day and not FIRST <= day <= LAST:
            validator.problem(name, line, "valid_from", _outside(day))
        if _rate(rate) is None:
            validator.problem(
                name,
                line,
                "rate_to_reporting",
                _(
                    "not a rate (more than 0, a dot for decimals, at most %(decimals)d "
                    "decimals): %(value)r"
                )
                % {"decimals": RATE_DECIMALS, "value": rate},
            )
        if day:
            first = seen.setdefault((currency, day), line)
            if first != line:
                validator.problem(
                    name,
                    line,
                    "valid_from",
                    _("duplicate rate of %(currency)s from %(day)s (first on line %(line)d)")
                    % {"currency": currency, "day": day, "line": first},
                )
        if len(validator.problems) != count:
            continue
        validator.staging.add(STAGE_FX_RATE, (currency, valid_from, rate))
        earliest = validator.rate_starts.get(currency)
        if earliest is None or valid_from < earliest:
            validator.rate_starts[currency] = valid_from


def _rate_starts() -> dict[str, str]:
    """Each currency's earliest stored rate day (ISO)."""
    starts: dict[str, str] = {}
    for currency, valid_from in CurrencyRate.objects.order_by("-valid_from").values_list(
        "currency", "valid_from"
    ):
        starts[currency] = valid_from.isoformat()
    return starts


# The columns an opportunity row is copied with when opportunities.csv goes straight into an
# empty table (every column of the model but the id).
DIRECT_COLUMNS = (
    "external_id",
    "name",
    "account_id",
    "channel",
    "rep_id",
    "partner_id",
    "online_source",
    "stage",
    "sub_stage_id",
    "amount",
    "currency",
    "recurring",
    "opened_on",
    "expected_close_on",
    "closed_on",
    "ends_on",
    "lost_reason",
    "registration_id",
    "created_at",
    "updated_at",
)


def _direct_load(validator: RowChecks, path: Path) -> DirectLoad | None:
    """Copy opportunities.csv straight into the opportunities table while checking it, when
    the table is empty and every account, rep, partner and registration a row can name is
    already stored (none of their files is in this import), so each row's ids are known now.
    None otherwise: the rows then go through the staging table and the upsert."""
    if not validator.staging.enabled or connection.vendor != "postgresql":
        return None
    if {ACCOUNTS.name, REPS.name, PARTNERS.name, REGISTRATIONS.name} & set(validator.rows):
        return None
    load = DirectLoad.begin(connection, Opportunity, DIRECT_COLUMNS, expected_rows=file_lines(path))
    if load is not None:
        validator.staging.direct[OPPORTUNITIES.name] = load
    return load


def opportunities_validate(validator: RowChecks, path: Path) -> None:
    """Check opportunities.csv with `validator` and stage its good rows."""
    name = OPPORTUNITIES.name
    seen: dict[str, int] = {}
    registrations: dict[str, int] = {}
    reporting = settings.REPORTING_CURRENCY
    rate_starts = _rate_starts()
    for currency, first in validator.rate_starts.items():
        if currency not in rate_starts or first < rate_starts[currency]:
            rate_starts[currency] = first
    reps, partner_kinds = validator.rep_ids, validator.partner_kinds
    accounts = validator.account_ids
    direct = _direct_load(validator, path)
    stored_accounts: set[str] | dict[str, str]
    account_ids: dict[str, str] = {}
    if direct is not None:
        # Every account is stored: keep its id with its external id, for the row's account_id.
        account_ids = copy_ids(
            Account.objects.values_list("external_id", "id").iterator(chunk_size=20_000)
        )
        stored_accounts = account_ids
    elif validator.unreadable & {"accounts.csv"}:
        stored_accounts = set()
    else:
        stored_accounts = validator.stored_account_ids()
    sub_stages = set(OpportunitySubStage.objects.values_list("code", flat=True))
    known_registrations = set(DealRegistration.objects.values_list("external_id", flat=True))
    known_registrations |= set(validator.registration_lines)
    partners_unreadable = PARTNERS.name in validator.unreadable
    stage = validator.staging.add
    problems = validator.problems
    setdefault = seen.setdefault
    amount_ok = AMOUNT.fullmatch
    # Dates already found good: a million deals carry a few thousand distinct days.
    good_days: set[str] = set()
    direct_add = direct.add if direct is not None else None
    if direct is not None:
        # Ids as the text `COPY` reads.
        rep_ids = copy_ids(SalesRep.objects.values_list("external_id", "id"))
        partner_ids = copy_ids(Partner.objects.values_list("external_id", "id"))
        sub_stage_ids = copy_ids(OpportunitySubStage.objects.values_list("code", "id"))
        first_step = _first_sub_stage()
        first_sub_stage = COPY_NULL if first_step is None else str(first_step)
        registration_ids = copy_ids(DealRegistration.objects.values_list("external_id", "id"))
        now = validator.now.isoformat()

    def day(column: str, value: str, line: int, required: bool) -> str | None:
        if value in good_days:
            return value
        checked: str | None = validator._date(name, line, column, value, required=required)
        if checked and not FIRST <= checked <= LAST:
            validator.problem(name, line, column, _outside(checked))
            return None
        if checked:
            good_days.add(checked)
        return checked

    # The checks are spelled out inline: this loop runs once per deal, a million times.
    for line, cells in validator._rows(path, OPPORTUNITIES):
        count = len(problems)
        (
            external_id,
            account,
            channel,
            owner,
            stage_name,
            amount,
            currency,
            recurring,
            opened,
            expected,
            closed,
            ends,
            label,
            sub_stage,
            lost_reason,
            registration,
        ) = cells
        if not (external_id and len(external_id) <= 64 and setdefault(external_id, line) == line):
            validator._key(
                name, line, "external_id", external_id, 64, seen, gettext_noop("external id")
            )
        if account not in accounts and account not in stored_accounts:
            if not validator._account_known(account):
                validator._unknown(
                    name, line, "account", account, gettext_noop("account external id")
                )
        if channel == "direct":
            if owner not in reps:
                validator._unknown(name, line, "owner", owner, gettext_noop("rep external id"))
        elif channel == "online":
            if not owner or len(owner) > 100:
                validator._text(name, line, "owner", owner, 100)
        elif channel in PARTNER_CHANNELS:
            owner_kind = partner_kinds.get(owner)
            if owner_kind != channel:
                if owner_kind is None and not partners_unreadable:
                    validator._unknown(
                        name, line, "owner", owner, gettext_noop("partner external id")
                    )
                elif owner_kind is not None:
                    validator.problem(
                        name,
                        line,
                        "owner",
                        other_kind(owner, owner_kind, channel),
                    )
        else:
            validator._choice(name, line, "channel", channel, ChannelKind.values)
        if stage_name not in STAGES:
            validator._choice(name, line, "stage", stage_name, list(STAGES))
        if not amount_ok(amount):
            validator.problem(
                name,
                line,
                "amount",
                _("not an amount (at least 0, a dot for decimals, at most two): %(value)r")
                % {"value": amount},
            )
        if recurring != "false" and recurring != "true":
            validator.problem(
                name,
                line,
                "recurring",
                _("must be true or false, not %(value)r") % {"value": recurring},
            )
        opened_on = opened if opened in good_days else day("opened_on", opened, line, True)
        if expected and expected not in good_days:
            expected = day("expected_close_on", expected, line, False) or ""
        if closed and closed not in good_days:
            closed = day("closed_on", closed, line, False) or ""
        if ends and ends not in good_days:
            ends = day("ends_on", ends, line, False) or ""
        if currency != reporting:
            if not is_currency_code(currency):
                validator.problem(name, line, "currency", not_a_currency(currency))
            elif opened_on and not (rate_starts.get(currency, "~") <= opened_on):
                validator.problem(
                    name,
                    line,
                    "currency",
                    _(
                        "no %(currency)s rate valid on %(day)s, the day the deal opened: add a "
                        "rate of %(currency)s from that day or earlier to fx_rates.csv"
                    )
                    % {"currency": currency, "day": opened_on},
                )
        if stage_name == "open":
            if closed:
                validator.problem(
                    name, line, "closed_on", _("must be empty while the deal is open")
                )
        elif not closed and stage_name in STAGES:
            validator.problem(
                name,
                line,
                "closed_on",
                _("required when the stage is %(stage)s") % {"stage": stage_name},
            )
        if opened_on and (expected and expected < opened_on or closed and closed < opened_on):
            for column, value in (("expected_close_on", expected), ("closed_on", closed)):
                validator._not_before(name, line, column, value, "opened_on", opened_on)
        if ends:
            if stage_name != "won" or recurring != "true":
                validator.problem(
                    name, line, "ends_on", _("only a won recurring deal (a subscription) ends")
                )
            else:
                validator._not_before(name, line, "ends_on", ends, "closed_on", closed)
        # The optional columns read None when the file has no such column.
        if label and len(label) > 200:
            validator.problem(name, line, "name", longer_than(200))
        if sub_stage and sub_stage not in sub_stages:
            validator._unknown(name, line, "sub_stage", sub_stage, gettext_noop("sub-stage code"))
        if lost_reason and len(lost_reason) > 2000:
            validator.problem(name, line, "lost_reason", longer_than(2000))
        if registration:
            if registration not in known_registrations:
                validator._unknown(
                    name,
                    line,
                    "registration",
                    registration,
                    gettext_noop("registration external id"),
                )
            else:
                first_line = registrations.setdefault(registration, line)
                if first_line != line:
                    validator.problem(
                        name,
                        line,
                        "registration",
                        _(
                            "registration %(registration)r already became the opportunity on "
                            "line %(line)d"
                        )
                        % {"registration": registration, "line": first_line},
                    )
        if len(problems) != count:
            continue
        if direct_add is not None:
            label, lost_reason = label or "", lost_reason or ""
            free = external_id + label + owner + lost_reason
            if "\\" in free or "\t" in free or "\n" in free or "\r" in free:
                external_id, label, owner, lost_reason = map(
                    copy_text, (external_id, label, owner, lost_reason)
                )
            direct_add(
                "\t".join(
                    (
                        external_id,
                        label,
                        account_ids[account],
                        channel,
                        rep_ids[owner] if channel == "direct" else COPY_NULL,
                        partner_ids[owner] if channel in PARTNER_CHANNELS else COPY_NULL,
                        owner if channel == "online" else "",
                        stage_name,
                        sub_stage_ids[sub_stage] if sub_stage else first_sub_stage,
                        amount,
                        currency,
                        "t" if recurring == "true" else "f",
                        opened,
                        expected or COPY_NULL,
                        closed or COPY_NULL,
                        ends or COPY_NULL,
                        lost_reason,
                        registration_ids[registration] if registration else COPY_NULL,
                        now,
                        now,
                    )
                )
            )
            continue
        stage(
            STAGE_OPPORTUNITY,
            (
                external_id,
                account,
                channel,
                owner,
                stage_name,
                amount,
                currency,
                recurring == "true",
                opened,
                expected or None,
                closed or None,
                ends or None,
                label or "",
                sub_stage or None,
                lost_reason or "",
                registration or None,
            ),
        )
    _check_registrations_taken(validator, registrations, seen)


def _check_registrations_taken(
    validator: RowChecks, registrations: dict[str, int], in_file: dict[str, int]
) -> None:
    """One opportunity per registration, counting the stored ones the file does not name."""
    taken = Opportunity.objects.filter(
        registration__external_id__in=list(registrations)
    ).values_list("registration__external_id", "external_id")
    for registration, holder in taken:
        if holder not in in_file:
            validator.problem(
                OPPORTUNITIES.name,
                registrations[registration],
                "registration",
                _("registration %(registration)r already became opportunity %(holder)s")
                % {"registration": registration, "holder": holder},
            )


def _outside(day: str) -> str:
    return _("%(day)s is outside %(first)s to %(last)s") % {
        "day": day,
        "first": FIRST,
        "last": LAST,
    }


def _first_sub_stage() -> int | None:
    """The open step a deal gets when its row names none."""
    return (
        OpportunitySubStage.objects.order_by("position", "code")
        .values_list("id", flat=True)
        .first()
    )


def fx_rates_store(store: MarketStore) -> tuple[int, int]:
    """Upsert the staged rates by (currency, valid_from); returns (created, updated)."""
    cast = sql.SQL("CAST({} AS numeric)").format(_staged("rate_to_reporting"))
    return store._upsert(
        model=CurrencyRate,
        select={
            "currency": _staged("currency"),
            "valid_from": _staged("valid_from"),
            "rate_to_reporting": cast,
        },
        source=sql.SQL("{} s WHERE true").format(STAGE_FX_RATE.identifier),
        key=("currency", "valid_from"),
        compare=("rate_to_reporting",),
    )


def opportunities_store(store: MarketStore) -> tuple[int, int]:
    """Upsert the staged opportunities by external id; returns (created, updated). The
    optional columns are written only when the file has them."""
    direct = store.direct.get(OPPORTUNITIES.name)
    if direct is not None:
        # Written while the file was checked; an empty table gained every row.
        return direct.finish(), 0
    optional = store.optional_present.get(OPPORTUNITIES.name, set())
    first_stage = _first_sub_stage()
    channel = _staged("channel")
    select: dict[str, sql.Composable] = {
        "external_id": _staged("external_id"),
        "account_id": sql.Identifier("a", "id"),
        "channel": channel,
        "rep_id": sql.Identifier("r", "id"),
        "partner_id": sql.Identifier("p", "id"),
        "online_source": sql.SQL("CASE WHEN {} = {} THEN {} ELSE {} END").format(
            channel, sql.Literal("online"), _staged("owner"), sql.Literal("")
        ),
        "stage": _staged("stage"),
        "amount": sql.SQL("CAST({} AS numeric)").format(_staged("amount")),
        "currency": _staged("currency"),
        "recurring": _staged("recurring"),
        "opened_on": _staged("opened_on"),
        "expected_close_on": _staged("expected_close_on"),
        "closed_on": _staged("closed_on"),
        "ends_on": _staged("ends_on"),
    }
    imported = [
        "external_id",
        "account",
        "channel",
        "rep",
        "partner",
        "online_source",
        "stage",
        "amount",
        "currency",
        "recurring",
        "opened_on",
        "expected_close_on",
        "closed_on",
        "ends_on",
    ]
    joins = [
        sql.SQL("{} s JOIN {} a ON a.external_id = s.account").format(
            STAGE_OPPORTUNITY.identifier, _table(Account)
        ),
        sql.SQL("LEFT JOIN {} r ON s.channel = {} AND r.external_id = s.owner").format(
            _table(SalesRep), sql.Literal("direct")
        ),
        sql.SQL("LEFT JOIN {} p ON s.channel IN ({}, {}) AND p.external_id = s.owner").format(
            _table(Partner), sql.Literal("distribution"), sql.Literal("partner")
        ),
    ]
    compare = [column for column in select if column != "external_id"]
    if "sub_stage" in optional:
        joins.append(
            sql.SQL("LEFT JOIN {} ss ON ss.code = s.sub_stage").format(_table(OpportunitySubStage))
        )
        select["sub_stage_id"] = sql.SQL("COALESCE({}, {})").format(
            sql.Identifier("ss", "id"), sql.Literal(first_stage)
        )
        compare.append("sub_stage_id")
    else:
        select["sub_stage_id"] = sql.Literal(first_stage)
    imported.append("sub_stage")
    for column in ("name", "lost_reason"):
        if column in optional:
            select[column] = _staged(column)
            compare.append(column)
            imported.append(column)
    if "registration" in optional:
        joins.append(
            sql.SQL("LEFT JOIN {} g ON g.external_id = s.registration").format(
                _table(DealRegistration)
            )
        )
        select["registration_id"] = sql.Identifier("g", "id")
        compare.append("registration_id")
    else:
        # Typed, so that a subquery's column keeps its type (a new row links none).
        select["registration_id"] = sql.SQL("CAST(NULL AS bigint)")
    imported.append("registration")
    select, params = store._with_defaults(Opportunity, select, imported)
    with store._bulk_load(Opportunity, store.staged[STAGE_OPPORTUNITY]):
        return store._upsert(
            model=Opportunity,
            select=select,
            source=sql.SQL("{} WHERE true").format(sql.SQL(" ").join(joins)),
            key=("external_id",),
            compare=compare,
            params=params,
        )
