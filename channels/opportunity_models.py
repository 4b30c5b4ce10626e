"""Opportunities: the deals of every channel, their open sub-stages and their history.

Loaded by `channels.models`; the writes with their rules are in `partners.opportunity_services`,
the date rules the revenue figures read in `channels.rules` (docs/metrics.md rules 11-14).
"""

from __future__ import annotations

import secrets
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Cast, Round
from django.utils.translation import gettext_lazy as _

from crm.models import Account, ChannelKind, TimeStamped, localized_name, validate_business_date

PARTNER_KINDS = (ChannelKind.DISTRIBUTION, ChannelKind.PARTNER)


class OpportunityStage(models.TextChoices):
    OPEN = "open", _("Open")
    WON = "won", _("Won")
    LOST = "lost", _("Lost")


class OpportunitySubStage(TimeStamped):
    """A step of the open pipeline (qualify, propose, negotiate, ...) with the probability of a
    win that the weighted pipeline gives the deals in it (docs/metrics.md rule 12). Kept in the
    admin; the first by position is where new deals start."""

    code = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=100)
    name_zh = models.CharField(
        _("Chinese name"),
        max_length=100,
        blank=True,
        help_text=_("Shown to readers of Simplified Chinese; the name when blank."),
    )
    probability = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        validators=[MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(100))],
        help_text="Chance of a win in per cent, 0 to 100.",
    )
    position = models.PositiveSmallIntegerField(default=0, help_text="Order on the board.")

    class Meta:
        ordering = ["position", "code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(probability__gte=0, probability__lte=100),
                name="opportunitysubstage_probability_range",
                violation_error_message="A probability lies between 0 and 100 %.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.display_name} ({self.probability:g} %)"

    @property
    def display_name(self) -> str:
        return localized_name(self.name, self.name_zh)


def _new_opportunity_id() -> str:
    return f"OPP-{secrets.token_hex(5).upper()}"


class Opportunity(TimeStamped):
    """A deal on an account, sourced by one channel and owned like a coverage assignment: a rep
    (direct), a distributor or partner, or an online source. `amount` is in `currency`; when
    `recurring`, it is a monthly fee and the deal, once won, is a subscription until `ends_on`
    (the first day it no longer runs)."""

    external_id = models.CharField(max_length=64, unique=True, default=_new_opportunity_id)
    name = models.CharField(max_length=200, blank=True)
    # No single-column indexes on account, rep and partner: the (field, stage) indexes below lead
    # with them and serve the same lookups, and every extra index slows the million-row import.
    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="opportunities", db_index=False
    )
    channel = models.CharField(
        max_length=16, choices=ChannelKind.choices, help_text="The sourcing channel."
    )
    rep = models.ForeignKey(
        "channels.SalesRep",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="opportunities",
        db_index=False,
    )
    # A string reference: partners sit above channels and must not be imported here.
    partner = models.ForeignKey(
        "partners.Partner",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="opportunities",
        db_index=False,
    )
    online_source = models.CharField(max_length=100, blank=True)
    stage = models.CharField(
        max_length=8, choices=OpportunityStage.choices, default=OpportunityStage.OPEN
    )
    # Kept when the deal closes: the step it was last in (docs/metrics.md rule 12).
    sub_stage = models.ForeignKey(
        OpportunitySubStage, on_delete=models.PROTECT, related_name="opportunities"
    )
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    # `amount` in whole cents, kept by the database on every write (no path can miss it):
    # the revenue figures read cents (docs/metrics.md rule 10) without converting two million
    # decimals on every read. Rounded so that an engine holding the decimal as a float
    # (SQLite) stores the exact cents too.
    cents = models.GeneratedField(
        expression=Cast(Round(F("amount") * 100), models.BigIntegerField()),
        output_field=models.BigIntegerField(),
        db_persist=True,
    )
    currency = models.CharField(max_length=3)
    recurring = models.BooleanField(
        default=False, help_text="The amount is a monthly fee (a subscription)."
    )
    opened_on = models.DateField(validators=[validate_business_date])
    expected_close_on = models.DateField(null=True, blank=True, validators=[validate_business_date])
    closed_on = models.DateField(
        null=True, blank=True, validators=[validate_business_date], help_text="Won or lost on."
    )
    ends_on = models.DateField(
        null=True,
        blank=True,
        validators=[validate_business_date],
        help_text="A subscription that stopped: the first day it no longer runs.",
    )
    lost_reason = models.TextField(max_length=2000, blank=True)
    registration = models.OneToOneField(
        "partners.DealRegistration",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="opportunity",
        help_text="The deal registration it came from.",
    )

    class Meta:
        ordering = ["-opened_on", "-id"]
        verbose_name_plural = "opportunities"
        constraints = [
            models.CheckConstraint(
                condition=Q(channel__in=ChannelKind.values), name="opportunity_channel_valid"
            ),
            models.CheckConstraint(
                condition=Q(stage__in=OpportunityStage.values), name="opportunity_stage_valid"
            ),
            models.CheckConstraint(
                condition=(
                    Q(
                        channel=ChannelKind.DIRECT,
                        rep__isnull=False,
                        partner__isnull=True,
                        online_source="",
                    )
                    | Q(
                        channel__in=PARTNER_KINDS,
                        rep__isnull=True,
                        partner__isnull=False,
                        online_source="",
                    )
                    | (
                        Q(channel=ChannelKind.ONLINE, rep__isnull=True, partner__isnull=True)
                        & ~Q(online_source="")
                    )
                ),
                name="opportunity_owner_matches_channel",
                violation_error_message="The owner does not fit the channel.",
            ),
            models.CheckConstraint(
                condition=Q(amount__gte=Decimal(0)),
                name="opportunity_amount_not_negative",
                violation_error_message="An amount is 0 or more.",
            ),
            # Closed on a day exactly when won or lost.
            models.CheckConstraint(
                condition=Q(stage=OpportunityStage.OPEN, closed_on__isnull=True)
                | (~Q(stage=OpportunityStage.OPEN) & Q(closed_on__isnull=False)),
                name="opportunity_closed_on_iff_closed",
                violation_error_message="A won or lost deal has a close date; an open one none.",
            ),
            models.CheckConstraint(
                condition=Q(closed_on__isnull=True) | Q(closed_on__gte=F("opened_on")),
                name="opportunity_closed_not_before_opened",
                violation_error_message="A deal cannot close before it opened.",
            ),
            models.CheckConstraint(
                condition=Q(expected_close_on__isnull=True)
                | Q(expected_close_on__gte=F("opened_on")),
                name="opportunity_expected_not_before_opened",
                violation_error_message="The expected close cannot be before the deal opened.",
            ),
            # Only a won subscription stops, and not before it started.
            models.CheckConstraint(
                condition=Q(ends_on__isnull=True)
                | Q(stage=OpportunityStage.WON, recurring=True, ends_on__gte=F("closed_on")),
                name="opportunity_ends_on_only_for_won_subscriptions",
                violation_error_message="Only a won subscription ends, on or after its close.",
            ),
        ]
        indexes = [
            models.Index(fields=["account", "stage"], name="opportunity_account_stage_idx"),
            models.Index(fields=["partner", "stage"], name="opportunity_partner_stage_idx"),
            models.Index(fields=["rep", "stage"], name="opportunity_rep_stage_idx"),
            # The pipeline list and board: a stage, newest first.
            models.Index(fields=["stage", "opened_on", "id"], name="opportunity_stage_opened_idx"),
            models.Index(fields=["stage", "closed_on"], name="opportunity_stage_closed_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.external_id} {self.name}".strip()

    @property
    def owner_label(self) -> str:
        if self.channel == ChannelKind.DIRECT:
            return str(self.rep) if self.rep_id else ""
        if self.channel == ChannelKind.ONLINE:
            return self.online_source
        return str(self.partner) if self.partner_id else ""

    @property
    def is_open(self) -> bool:
        return self.stage == OpportunityStage.OPEN


class OpportunityEventKind(models.TextChoices):
    CREATED = "created", _("Created")
    IMPORTED = "imported", _("Imported")
    CHANGED = "changed", _("Changed")
    MOVED = "moved", _("Moved to another step")
    WON = "won", _("Won")
    LOST = "lost", _("Lost")
    REOPENED = "reopened", _("Reopened")
    ENDED = "ended", _("Subscription ended")


class OpportunityEvent(TimeStamped):
    """One change in an opportunity's life: who (none: the system or an import), when, what
    changed from what to what (`changes`: field → [before, after], as text), and a note."""

    opportunity = models.ForeignKey(Opportunity, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=16, choices=OpportunityEventKind.choices)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    changes = models.JSONField(default=dict, blank=True)
    note = models.TextField(max_length=2000, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["opportunity", "created_at"], name="opportunity_event_opp_idx")
        ]

    def __str__(self) -> str:
        return f"{self.opportunity_id} {self.kind}"
