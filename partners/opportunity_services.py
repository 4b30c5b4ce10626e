"""Writes with business rules for opportunities: open, change, move through the pipeline, win,
lose, reopen, and end a subscription. Every change leaves an `OpportunityEvent` saying who
changed what from what to what. The opportunity models are in `channels`; their writes live here,
in the layer that knows the partners and deal registrations a deal may name."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import TypedDict, cast

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from channels.models import (
    PARTNER_KINDS,
    Opportunity,
    OpportunityEvent,
    OpportunityEventKind,
    OpportunityStage,
    OpportunitySubStage,
    SalesRep,
)
from crm.currencies import MissingRate, is_currency_code
from crm.models import Account, ChannelKind
from crm.selectors import rate_table
from partners.models import Partner
from partners.registration_models import DealRegistration

AMOUNT_LIMIT = Decimal("1e12")
# The fields `opportunity_change` may set, in the order the history lists them.
CHANGEABLE = (
    "name",
    "channel",
    "rep",
    "partner",
    "online_source",
    "sub_stage",
    "amount",
    "currency",
    "recurring",
    "opened_on",
    "expected_close_on",
)


class OwnerFields(TypedDict):
    """An opportunity's owner fields, as `OpportunityOwner.fields` sets them."""

    channel: str
    rep: SalesRep | None
    partner: Partner | None
    online_source: str


@dataclass(frozen=True)
class OpportunityOwner:
    """Who sourced the deal: a rep (direct), a distributor or partner, or an online source."""

    channel: str
    rep: SalesRep | None = None
    partner: Partner | None = None
    online_source: str = ""

    def validate(self) -> None:
        """Raises ValidationError when the owner does not fit the channel or is deactivated."""
        if self.channel not in ChannelKind.values:
            raise ValidationError(
                {"channel": _("Unknown channel %(channel)r.") % {"channel": self.channel}}
            )
        if self.channel == ChannelKind.DIRECT:
            if self.rep is None:
                raise ValidationError({"rep": _("Choose the sales rep who owns the deal.")})
            if not self.rep.is_active:
                raise ValidationError(
                    {"rep": _("%(name)s is deactivated.") % {"name": self.rep.name}}
                )
        if self.channel in PARTNER_KINDS:
            if self.partner is None:
                raise ValidationError(
                    {"partner": _("Choose the distributor or partner who sourced the deal.")}
                )
            if self.partner.channel_kind != self.channel:
                text = (
                    _("%(name)s is a distributor; choose the matching channel.")
                    if self.partner.channel_kind == ChannelKind.DISTRIBUTION
                    else _("%(name)s is a partner; choose the matching channel.")
                )
                raise ValidationError({"partner": text % {"name": self.partner.name}})
        if self.channel == ChannelKind.ONLINE and not self.online_source.strip():
            raise ValidationError({"online_source": _("Name the online source, e.g. web-signup.")})

    def fields(self) -> OwnerFields:
        """The opportunity's owner fields: only the one the channel takes is set."""
        return {
            "channel": self.channel,
            "rep": self.rep if self.channel == ChannelKind.DIRECT else None,
            "partner": self.partner if self.channel in PARTNER_KINDS else None,
            "online_source": (
                self.online_source.strip() if self.channel == ChannelKind.ONLINE else ""
            ),
        }


def first_sub_stage() -> OpportunitySubStage:
    """Where new deals start: the first open sub-stage by position. Raises ValidationError when
    none is configured."""
    sub_stage = OpportunitySubStage.objects.order_by("position", "code").first()
    if sub_stage is None:
        raise ValidationError(
            {"sub_stage": _("No pipeline step is configured; add one in the admin first.")}
        )
    return sub_stage


def _check_amount(amount: Decimal | None) -> None:
    if amount is None or not amount.is_finite() or not 0 <= amount < AMOUNT_LIMIT:
        raise ValidationError({"amount": _("Enter an amount of at least 0.")})
    if amount.as_tuple().exponent < -2:  # type: ignore[operator]
        raise ValidationError({"amount": _("Enter the amount with at most two decimals.")})


def _check_currency(currency: str, opened_on: date) -> None:
    """An ISO code with a rate valid from the day the deal opened (docs/metrics.md rule 10):
    every later figure of the deal can then be converted."""
    if not is_currency_code(currency):
        raise ValidationError(
            {"currency": _("Use an ISO 4217 currency code such as USD, EUR or CNY.")}
        )
    if currency == settings.REPORTING_CURRENCY:
        return
    try:
        rate_table().rate_on(currency, opened_on)
    except MissingRate:
        raise ValidationError(
            {
                "currency": _(
                    "There is no %(currency)s rate valid on %(day)s, so the deal's revenue could "
                    "not be converted. Add a rate of %(currency)s from that day or earlier "
                    "(fx_rates.csv or the admin) first."
                )
                % {"currency": currency, "day": opened_on.isoformat()}
            }
        ) from None


def _check_expected(opened_on: date, expected_close_on: date | None) -> None:
    if expected_close_on is not None and expected_close_on < opened_on:
        raise ValidationError(
            {"expected_close_on": _("The expected close cannot be before the deal opened.")}
        )


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _record(
    opportunity: Opportunity,
    *,
    kind: str,
    by: User | None,
    changes: dict[str, list[str]] | None = None,
    note: str = "",
) -> OpportunityEvent:
    return OpportunityEvent.objects.create(
        opportunity=opportunity,
        kind=kind,
        by=by if getattr(by, "is_authenticated", False) else None,
        changes=changes or {},
        note=note[:2000],
    )


def _save(opportunity: Opportunity) -> None:
    # The related objects were validated above; the database holds the constraints too.
    opportunity.full_clean(exclude=["account", "rep", "partner", "sub_stage", "registration"])
    opportunity.save()


def _locked(opportunity: Opportunity) -> Opportunity:
    return Opportunity.objects.select_for_update(of=("self",)).get(pk=opportunity.pk)


@transaction.atomic
def opportunity_create(
    *,
    account: Account,
    owner: OpportunityOwner,
    amount: Decimal,
    currency: str,
    opened_on: date,
    by: User | None,
    name: str = "",
    recurring: bool = False,
    expected_close_on: date | None = None,
    sub_stage: OpportunitySubStage | None = None,
    registration: DealRegistration | None = None,
    note: str = "",
) -> Opportunity:
    """Open a deal on `account`, sourced by `owner`, in `sub_stage` (default: the first).

    Raises ValidationError naming the field: an owner that does not fit the channel or is
    deactivated, a negative amount, an unknown currency or one without a rate valid on
    `opened_on` (docs/metrics.md rule 10), an expected close before the opening.
    """
    owner.validate()
    _check_amount(amount)
    _check_currency(currency, opened_on)
    _check_expected(opened_on, expected_close_on)
    opportunity = Opportunity(
        account=account,
        name=name.strip(),
        **owner.fields(),
        stage=OpportunityStage.OPEN,
        sub_stage=sub_stage or first_sub_stage(),
        amount=amount,
        currency=currency,
        recurring=recurring,
        opened_on=opened_on,
        expected_close_on=expected_close_on,
        registration=registration,
    )
    _save(opportunity)
    _record(opportunity, kind=OpportunityEventKind.CREATED, by=by, note=note)
    return opportunity


@transaction.atomic
def opportunity_change(
    *, opportunity: Opportunity, by: User | None, **values: object
) -> Opportunity:
    """Change any of `CHANGEABLE` (owner fields as a whole through `owner`: an
    `OpportunityOwner`). A change of sub-stage alone is recorded as a move. Raises
    ValidationError as `opportunity_create` does, and for a deal that has closed (only its
    name and sub-stage may change then; reopen it first).
    """
    opportunity = _locked(opportunity)
    owner = cast("OpportunityOwner | None", values.pop("owner", None))
    unknown = set(values) - set(CHANGEABLE)
    if unknown:
        raise TypeError(f"not changeable: {sorted(unknown)}")
    if owner is not None:
        owner.validate()
        values.update(owner.fields())
    changes: dict[str, list[str]] = {}
    for field, value in values.items():
        before = getattr(opportunity, field)
        if before != value:
            changes[field] = [_text(before), _text(value)]
            setattr(opportunity, field, value)
    if not changes:
        return opportunity
    if not opportunity.is_open and set(changes) - {"name", "sub_stage"}:
        raise ValidationError(_("This deal is closed; reopen it before changing its terms."))
    if "amount" in changes:
        _check_amount(opportunity.amount)
    if {"currency", "opened_on"} & set(changes):
        _check_currency(opportunity.currency, opportunity.opened_on)
    _check_expected(opportunity.opened_on, opportunity.expected_close_on)
    _save(opportunity)
    kind = (
        OpportunityEventKind.MOVED
        if set(changes) == {"sub_stage"}
        else OpportunityEventKind.CHANGED
    )
    _record(opportunity, kind=kind, by=by, changes=changes)
    return opportunity


def _close_date(opportunity: Opportunity, closed_on: date, today: date) -> None:
    if closed_on > today:
        raise ValidationError({"closed_on": _("The close date cannot be in the future.")})
    if closed_on < opportunity.opened_on:
        raise ValidationError(
            {
                "closed_on": _("The deal opened on %(day)s; it cannot close before.")
                % {"day": opportunity.opened_on.isoformat()}
            }
        )


def _refuse_unless_open(opportunity: Opportunity, action: str) -> None:
    if not opportunity.is_open:
        raise ValidationError(
            _("This deal is already %(stage)s; it cannot be %(action)s.")
            % {"stage": opportunity.get_stage_display().lower(), "action": action}
        )


@transaction.atomic
def opportunity_win(
    *,
    opportunity: Opportunity,
    closed_on: date,
    by: User | None,
    amount: Decimal | None = None,
    note: str = "",
    today: date | None = None,
) -> Opportunity:
    """Record the deal won on `closed_on` (for `amount` when given: the final figure). A
    recurring deal becomes a running subscription. Raises ValidationError unless the deal is
    open, for a close in the future or before the opening, or a bad amount."""
    today = today or timezone.localdate()
    opportunity = _locked(opportunity)
    _refuse_unless_open(opportunity, _("won"))
    _close_date(opportunity, closed_on, today)
    changes = {"stage": [OpportunityStage.OPEN.value, OpportunityStage.WON.value]}
    if amount is not None and amount != opportunity.amount:
        _check_amount(amount)
        changes["amount"] = [_text(opportunity.amount), _text(amount)]
        opportunity.amount = amount
    opportunity.stage = OpportunityStage.WON
    opportunity.closed_on = closed_on
    changes["closed_on"] = ["", closed_on.isoformat()]
    _save(opportunity)
    _record(opportunity, kind=OpportunityEventKind.WON, by=by, changes=changes, note=note)
    return opportunity


@transaction.atomic
def opportunity_lose(
    *,
    opportunity: Opportunity,
    closed_on: date,
    by: User | None,
    reason: str = "",
    today: date | None = None,
) -> Opportunity:
    """Record the deal lost on `closed_on`, with the reason. Raises ValidationError unless the
    deal is open, or for a close in the future or before the opening."""
    today = today or timezone.localdate()
    opportunity = _locked(opportunity)
    _refuse_unless_open(opportunity, _("lost"))
    _close_date(opportunity, closed_on, today)
    opportunity.stage = OpportunityStage.LOST
    opportunity.closed_on = closed_on
    opportunity.lost_reason = reason.strip()[:2000]
    _save(opportunity)
    _record(
        opportunity,
        kind=OpportunityEventKind.LOST,
        by=by,
        changes={
            "stage": [OpportunityStage.OPEN.value, OpportunityStage.LOST.value],
            "closed_on": ["", closed_on.isoformat()],
        },
        note=opportunity.lost_reason,
    )
    return opportunity


@transaction.atomic
def opportunity_reopen(*, opportunity: Opportunity, by: User | None, note: str = "") -> Opportunity:
    """Open a won or lost deal again (a close recorded by mistake): its close date, end date
    and lost reason go. Raises ValidationError when it is open."""
    opportunity = _locked(opportunity)
    if opportunity.is_open:
        raise ValidationError(_("This deal is open already."))
    changes = {
        "stage": [opportunity.stage, OpportunityStage.OPEN.value],
        "closed_on": [_text(opportunity.closed_on), ""],
    }
    if opportunity.ends_on:
        changes["ends_on"] = [_text(opportunity.ends_on), ""]
    opportunity.stage = OpportunityStage.OPEN
    opportunity.closed_on = None
    opportunity.ends_on = None
    opportunity.lost_reason = ""
    _save(opportunity)
    _record(opportunity, kind=OpportunityEventKind.REOPENED, by=by, changes=changes, note=note)
    return opportunity


@transaction.atomic
def subscription_end(
    *, opportunity: Opportunity, ends_on: date | None, by: User | None, note: str = ""
) -> Opportunity:
    """End a won subscription: `ends_on` is the first day it no longer runs (None: it runs
    again). Raises ValidationError for a deal that is not a won subscription, or an end before
    its start."""
    opportunity = _locked(opportunity)
    if opportunity.stage != OpportunityStage.WON or not opportunity.recurring:
        raise ValidationError(_("Only a won subscription can end."))
    assert opportunity.closed_on is not None
    if ends_on is not None and ends_on < opportunity.closed_on:
        raise ValidationError(
            {
                "ends_on": _("The subscription started on %(day)s; it cannot end before.")
                % {"day": opportunity.closed_on.isoformat()}
            }
        )
    if ends_on == opportunity.ends_on:
        return opportunity
    changes = {"ends_on": [_text(opportunity.ends_on), _text(ends_on)]}
    opportunity.ends_on = ends_on
    _save(opportunity)
    _record(opportunity, kind=OpportunityEventKind.ENDED, by=by, changes=changes, note=note)
    return opportunity
