"""Channel owners: sales reps on the direct channel, and who covers which account when."""

from __future__ import annotations

from datetime import date

from django.conf import settings
from django.contrib.postgres.fields import RangeBoundary, RangeOperators
from django.db import models
from django.db.models import F, Q

from channels.rules import COVERAGE_RUNNING
from crm.constraints import DateRange, PostgresExclusionConstraint
from crm.models import Account, ChannelKind, Region, TimeStamped

__all__ = [
    "ChannelKind",
    "CoverageAssignment",
    "Opportunity",
    "OpportunityEvent",
    "OpportunityEventKind",
    "OpportunityStage",
    "OpportunitySubStage",
    "SalesRep",
]

PARTNER_KINDS = (ChannelKind.DISTRIBUTION, ChannelKind.PARTNER)


class SalesRep(TimeStamped):
    external_id = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    email = models.EmailField()
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="sales_rep",
    )
    regions = models.ManyToManyField(Region, blank=True, related_name="sales_reps")
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class CoverageAssignment(TimeStamped):
    """This account is worked by this channel owner from `start_date` to `end_date` (inclusive)."""

    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="coverage_assignments"
    )
    kind = models.CharField(max_length=16, choices=ChannelKind.choices)
    rep = models.ForeignKey(
        SalesRep,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="coverage_assignments",
    )
    # A string reference: partners sit above channels and must not be imported here.
    partner = models.ForeignKey(
        "partners.Partner",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="coverage_assignments",
    )
    online_source = models.CharField(
        max_length=100, blank=True, help_text="Source label for online coverage."
    )
    start_date = models.DateField()
    end_date = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["account_id", "start_date"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=ChannelKind.values), name="coverage_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(end_date__isnull=True) | Q(end_date__gte=F("start_date")),
                name="coverage_end_not_before_start",
            ),
            models.CheckConstraint(
                condition=(
                    Q(
                        kind=ChannelKind.DIRECT,
                        rep__isnull=False,
                        partner__isnull=True,
                        online_source="",
                    )
                    | Q(
                        kind__in=PARTNER_KINDS,
                        rep__isnull=True,
                        partner__isnull=False,
                        online_source="",
                    )
                    | (
                        Q(kind=ChannelKind.ONLINE, rep__isnull=True, partner__isnull=True)
                        & ~Q(online_source="")
                    )
                ),
                name="coverage_owner_matches_kind",
            ),
            # One row per (account, owner, start): re-importing the same coverage updates it.
            models.UniqueConstraint(
                fields=["account", "rep", "start_date"],
                condition=Q(kind=ChannelKind.DIRECT),
                name="coverage_unique_direct",
            ),
            models.UniqueConstraint(
                fields=["account", "kind", "partner", "start_date"],
                condition=Q(kind__in=PARTNER_KINDS),
                name="coverage_unique_partner",
            ),
            models.UniqueConstraint(
                fields=["account", "online_source", "start_date"],
                condition=Q(kind=ChannelKind.ONLINE),
                name="coverage_unique_online",
            ),
            # One owner works an account at most once on any day: two overlapping assignments
            # of the same owner would be one coverage counted twice. Held by the database, so
            # two requests at once cannot both insert (PostgreSQL; SQLite serialises writers
            # and channels.services.coverage_assign checks first). One constraint per owner
            # column, each over its own kinds: narrower GiST indexes build in about half the
            # time of one over every owner column (a large import rebuilds them).
            *(
                PostgresExclusionConstraint(
                    name=f"coverage_{name}_no_overlap",
                    expressions=[
                        ("account", RangeOperators.EQUAL),
                        *owner,
                        (
                            DateRange(
                                "start_date",
                                "end_date",
                                RangeBoundary(inclusive_lower=True, inclusive_upper=True),
                            ),
                            RangeOperators.OVERLAPS,
                        ),
                    ],
                    condition=condition,
                    violation_error_message=(
                        "This owner already covers the account for some of these days."
                    ),
                )
                for name, owner, condition in (
                    ("direct", [("rep", RangeOperators.EQUAL)], Q(kind=ChannelKind.DIRECT)),
                    (
                        "partner",
                        [("kind", RangeOperators.EQUAL), ("partner", RangeOperators.EQUAL)],
                        Q(kind__in=PARTNER_KINDS),
                    ),
                    (
                        "online",
                        [("online_source", RangeOperators.EQUAL)],
                        Q(kind=ChannelKind.ONLINE),
                    ),
                )
            ),
        ]
        indexes = [
            # The metric queries walk every assignment by account with its dates and owner.
            models.Index(
                fields=["account", "kind"],
                include=["start_date", "end_date", "partner"],
                name="coverage_account_kind_idx",
            ),
            models.Index(fields=["kind", "start_date"], name="coverage_kind_start_idx"),
            # The API lists coverage of one kind in id order (its cursor): one index per kind
            # gives that order, where the primary key walked past every row of the other
            # kinds. (One index on (kind, id) gives it too, but PostgreSQL costs it above the
            # primary key and does not use it.)
            *(
                models.Index(
                    fields=["id"],
                    include=["start_date", "end_date"],
                    condition=Q(kind=kind),
                    name=f"coverage_{kind}_id_idx",
                )
                for kind in ChannelKind.values
            ),
            # The partner lists count each partner's covered accounts from the index alone.
            models.Index(
                fields=["partner", "account"],
                include=["start_date", "end_date"],
                condition=Q(partner__isnull=False),
                name="coverage_partner_account_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} {self.kind} {self.owner_label}"

    @property
    def owner_label(self) -> str:
        if self.kind == ChannelKind.DIRECT:
            return str(self.rep) if self.rep_id else ""
        if self.kind == ChannelKind.ONLINE:
            return self.online_source
        return str(self.partner) if self.partner_id else ""

    def running_on(self, day: date) -> bool:
        """Whether the assignment's dates include `day` (docs/metrics.md rule 3a)."""
        return COVERAGE_RUNNING.holds(self, day)


# Opportunities live in a module of their own; importing them here registers their models with
# the app.
from channels.opportunity_models import (  # noqa: E402, F401
    Opportunity,
    OpportunityEvent,
    OpportunityEventKind,
    OpportunityStage,
    OpportunitySubStage,
)
