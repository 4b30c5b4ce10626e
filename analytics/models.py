"""Weekly metric snapshots, the runs that write them, and the database lock between runs.

Snapshot rows hold codes (region, vertical, size band, partner external id) rather than only
foreign keys: a snapshot records the week as it was, and dashboards and exports read it without
joining the live tables.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from crm.models import TimeStamped


class RunStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class MetricsRun(TimeStamped):
    """One attempt at computing a week. A crashed attempt stays `running` until the next run of
    the same week takes the lock and marks it failed."""

    week = models.CharField(max_length=8, help_text='ISO week, e.g. "2026-W46".')
    as_of = models.DateField(help_text="The Sunday that closes the week.")
    final = models.BooleanField(help_text="Final (the week is closed) or provisional.")
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.RUNNING)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    rows_written = models.PositiveIntegerField(default=0)
    seconds = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True)
    # Why a succeeded run wrote no revenue figures (a missing rate, docs/metrics.md rule 10);
    # the coverage figures of the week are written all the same.
    revenue_problem = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=RunStatus.values), name="metricsrun_status_valid"
            ),
        ]
        indexes = [models.Index(fields=["week", "status"], name="metricsrun_week_status_idx")]

    def __str__(self) -> str:
        return f"{self.week} {'final' if self.final else 'provisional'} {self.status}"


class SegmentCounts(TimeStamped):
    """The counts of docs/metrics.md rule 4 for one week, as of its run."""

    week = models.CharField(max_length=8)
    as_of = models.DateField()
    final = models.BooleanField()
    accounts = models.PositiveIntegerField()
    covered_direct = models.PositiveIntegerField()
    covered_distribution = models.PositiveIntegerField()
    covered_partner = models.PositiveIntegerField()
    covered_online = models.PositiveIntegerField()
    covered_any = models.PositiveIntegerField()
    overlap = models.PositiveIntegerField()
    converted = models.PositiveIntegerField()
    converted_direct = models.PositiveIntegerField()
    converted_distribution = models.PositiveIntegerField()
    converted_partner = models.PositiveIntegerField()
    converted_online = models.PositiveIntegerField()
    white_space = models.PositiveIntegerField()

    class Meta:
        abstract = True


class SegmentSnapshot(SegmentCounts):
    """The counts of one segment (region, vertical, size band) for one week; ratios derived."""

    region = models.CharField(max_length=32)
    vertical = models.CharField(max_length=32)
    size_band = models.CharField(max_length=16)
    # Null when the segment has no in-market accounts.
    coverage = models.FloatField(null=True, blank=True)
    coverage_direct = models.FloatField(null=True, blank=True)
    coverage_distribution = models.FloatField(null=True, blank=True)
    coverage_partner = models.FloatField(null=True, blank=True)
    coverage_online = models.FloatField(null=True, blank=True)
    penetration = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["week", "region", "vertical", "size_band"]
        constraints = [
            models.UniqueConstraint(
                fields=["week", "region", "vertical", "size_band"], name="segmentsnapshot_unique"
            ),
        ]
        indexes = [
            # The dashboard's trend lines sum every count column over a range of weeks; with
            # the counts included, PostgreSQL answers from the index alone (measured: 52 weeks
            # of ~1,920 segments in 44-62 ms instead of 73-91 ms).
            models.Index(
                fields=["week"],
                include=[
                    "accounts",
                    "covered_direct",
                    "covered_distribution",
                    "covered_partner",
                    "covered_online",
                    "covered_any",
                    "overlap",
                    "converted",
                    "converted_direct",
                    "converted_distribution",
                    "converted_partner",
                    "converted_online",
                    "white_space",
                ],
                name="segment_week_counts_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.week} {self.region}/{self.vertical}/{self.size_band}"


class SegmentRollup(SegmentCounts):
    """A week's segment counts summed over the segments that match a region, a vertical and a
    size band, where "" matches any: one row for every combination that has segments, written
    with the week's snapshot. A dashboard reads one row a week for any filter instead of
    summing up to ~2,000 (rule 5: the ratios are computed from these sums when read)."""

    region = models.CharField(max_length=32, blank=True)
    vertical = models.CharField(max_length=32, blank=True)
    size_band = models.CharField(max_length=16, blank=True)

    class Meta:
        ordering = ["week", "region", "vertical", "size_band"]
        constraints = [
            models.UniqueConstraint(
                fields=["week", "region", "vertical", "size_band"], name="segmentrollup_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.week} {self.region or '*'}/{self.vertical or '*'}/{self.size_band or '*'}"


class PartnerSnapshot(TimeStamped):
    """One partner's figures for one week (docs/metrics.md rule 6)."""

    week = models.CharField(max_length=8)
    as_of = models.DateField()
    final = models.BooleanField()
    partner = models.ForeignKey(
        "partners.Partner", on_delete=models.CASCADE, related_name="metric_snapshots"
    )
    external_id = models.CharField(max_length=64)
    name = models.CharField(max_length=200)
    channel_kind = models.CharField(max_length=16)
    covered_accounts = models.PositiveIntegerField()
    converted_accounts = models.PositiveIntegerField()
    agreements_in_force = models.PositiveIntegerField()
    feedback_count = models.PositiveIntegerField()
    satisfaction_mean = models.FloatField(null=True, blank=True)
    nps = models.FloatField(null=True, blank=True)
    nps_responses = models.PositiveIntegerField(
        default=0, help_text="Feedback of the 90 days with an NPS score."
    )
    nps_promoters = models.PositiveIntegerField(default=0, help_text="Of those, scores 9-10.")
    nps_detractors = models.PositiveIntegerField(default=0, help_text="Of those, scores 0-6.")

    class Meta:
        ordering = ["week", "external_id"]
        constraints = [
            models.UniqueConstraint(fields=["week", "partner"], name="partnersnapshot_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.week} {self.external_id}"


class PartnerRollup(TimeStamped):
    """A week's partner figures summed over the partners of one channel kind ("" = every
    partner), written with the week's snapshot, so that a dashboard trend reads one row a week.
    `satisfaction_weighted` is the sum over partners of mean satisfaction x feedback count; the
    feedback-weighted mean is that divided by `feedback_count`."""

    week = models.CharField(max_length=8)
    as_of = models.DateField()
    final = models.BooleanField()
    channel_kind = models.CharField(max_length=16, blank=True)
    partners = models.PositiveIntegerField()
    active_partners = models.PositiveIntegerField(help_text="With an agreement in force.")
    agreements_in_force = models.PositiveIntegerField()
    feedback_count = models.PositiveIntegerField()
    nps_responses = models.PositiveIntegerField(default=0)
    nps_promoters = models.PositiveIntegerField(default=0)
    nps_detractors = models.PositiveIntegerField(default=0)
    satisfaction_weighted = models.FloatField()

    class Meta:
        ordering = ["week", "channel_kind"]
        constraints = [
            models.UniqueConstraint(fields=["week", "channel_kind"], name="partnerrollup_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.week} {self.channel_kind or '*'}"


class FeedbackRollup(TimeStamped):
    """The feedback created in a week (Monday to the run's as-of date), counted with its summed
    satisfaction per category and channel kind of the partner ("" = every partner); written
    with the week's snapshot, so that the dashboard's feedback chart reads no live feedback."""

    week = models.CharField(max_length=8)
    as_of = models.DateField()
    final = models.BooleanField()
    channel_kind = models.CharField(max_length=16, blank=True)
    category = models.CharField(max_length=32)
    feedback_count = models.PositiveIntegerField()
    satisfaction_sum = models.PositiveIntegerField()

    class Meta:
        ordering = ["week", "channel_kind", "category"]
        constraints = [
            models.UniqueConstraint(
                fields=["week", "channel_kind", "category"], name="feedbackrollup_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.week} {self.channel_kind or '*'} {self.category}"


class MetricsLock(TimeStamped):
    """A named lock with an expiry, used when there is no Redis: a holder that dies stops
    blocking others once `expires_at` passes."""

    name = models.CharField(max_length=100, unique=True)
    token = models.CharField(max_length=64)
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.name


class RegistrationRollup(TimeStamped):
    """A week's deal registrations (docs/metrics.md rule 18) summed over the registrations
    whose segment matches a region, a vertical and a size band and whose partner is of a
    channel kind, "" matching any: one row for every combination that has registrations in
    the week, and always the row of all of them, written with the week's snapshot. The median
    time to decision is taken over the registrations of each row, never from other medians."""

    week = models.CharField(max_length=8)
    as_of = models.DateField()
    final = models.BooleanField()
    region = models.CharField(max_length=32, blank=True)
    vertical = models.CharField(max_length=32, blank=True)
    size_band = models.CharField(max_length=16, blank=True)
    channel_kind = models.CharField(max_length=16, blank=True)
    submitted = models.PositiveIntegerField()
    checked = models.PositiveIntegerField(
        help_text="Of those submitted, the ones whose conflicts were checked on arrival."
    )
    with_conflicts = models.PositiveIntegerField(help_text="Of those, with a conflict.")
    approved = models.PositiveIntegerField()
    rejected = models.PositiveIntegerField()
    won = models.PositiveIntegerField()
    decisions_timed = models.PositiveIntegerField(
        help_text="Approvals and rejections by a manager in the week."
    )
    decision_hours_median = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["week", "region", "vertical", "size_band", "channel_kind"]
        constraints = [
            models.UniqueConstraint(
                fields=["week", "region", "vertical", "size_band", "channel_kind"],
                name="registrationrollup_unique",
            ),
        ]

    def __str__(self) -> str:
        keys = (self.region, self.vertical, self.size_band, self.channel_kind)
        return f"{self.week} {'/'.join(key or '*' for key in keys)}"


class RevenueCounts(TimeStamped):
    """The revenue figures of docs/metrics.md rules 11-16 for one week, as of its run. Money is
    in whole cents of `currency`, the reporting currency of the run, each sum rounded once."""

    week = models.CharField(max_length=8)
    as_of = models.DateField()
    final = models.BooleanField()
    currency = models.CharField(max_length=3)
    # The sourcing channel kind, or "" for all channels together (rule 17).
    channel = models.CharField(max_length=16, blank=True)
    pipeline_count = models.PositiveIntegerField()
    pipeline_cents = models.BigIntegerField()
    weighted_pipeline_cents = models.BigIntegerField()
    won_count = models.PositiveIntegerField()
    won_cents = models.BigIntegerField()
    won_accounts = models.PositiveIntegerField()
    mrr_cents = models.BigIntegerField()
    subscribers = models.PositiveIntegerField()
    influenced_count = models.PositiveIntegerField()
    influenced_cents = models.BigIntegerField()
    forecast_count = models.PositiveIntegerField()
    forecast_cents = models.BigIntegerField()
    # Rule 15, on the all-channel rows only; null without a won account (no D).
    white_space_value_cents = models.BigIntegerField(null=True, blank=True)
    sales_revenue_cents = models.BigIntegerField(null=True, blank=True)

    class Meta:
        abstract = True


class RevenueSnapshot(RevenueCounts):
    """The revenue figures of one segment and sourcing channel (or all channels) for one week.
    A segment and channel without any deal counted has no row."""

    region = models.CharField(max_length=32)
    vertical = models.CharField(max_length=32)
    size_band = models.CharField(max_length=16)

    class Meta:
        ordering = ["week", "region", "vertical", "size_band", "channel"]
        constraints = [
            models.UniqueConstraint(
                fields=["week", "region", "vertical", "size_band", "channel"],
                name="revenuesnapshot_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.week} {self.region}/{self.vertical}/{self.size_band} {self.channel or '*'}"


class RevenueRollup(RevenueCounts):
    """A week's revenue figures summed over the segments that match a region, a vertical and
    a size band ("" matches any), per channel: every combination but the segments themselves
    (those are `RevenueSnapshot`), written with the week's snapshot (rule 17)."""

    region = models.CharField(max_length=32, blank=True)
    vertical = models.CharField(max_length=32, blank=True)
    size_band = models.CharField(max_length=16, blank=True)

    class Meta:
        ordering = ["week", "region", "vertical", "size_band", "channel"]
        constraints = [
            models.UniqueConstraint(
                fields=["week", "region", "vertical", "size_band", "channel"],
                name="revenuerollup_unique",
            ),
        ]

    def __str__(self) -> str:
        keys = (self.region or "*", self.vertical or "*", self.size_band or "*")
        return f"{self.week} {'/'.join(keys)} {self.channel or '*'}"


class PartnerRevenueSnapshot(TimeStamped):
    """One partner's revenue figures for one week (rules 16 and 17): the deals it sourced,
    the won deals its coverage influenced, its forecast and its target for the next 13 weeks."""

    week = models.CharField(max_length=8)
    as_of = models.DateField()
    final = models.BooleanField()
    currency = models.CharField(max_length=3)
    partner = models.ForeignKey(
        "partners.Partner", on_delete=models.CASCADE, related_name="revenue_snapshots"
    )
    external_id = models.CharField(max_length=64)
    name = models.CharField(max_length=200)
    channel_kind = models.CharField(max_length=16)
    pipeline_count = models.PositiveIntegerField()
    pipeline_cents = models.BigIntegerField()
    weighted_pipeline_cents = models.BigIntegerField()
    won_count = models.PositiveIntegerField()
    won_cents = models.BigIntegerField()
    mrr_cents = models.BigIntegerField()
    subscribers = models.PositiveIntegerField()
    influenced_count = models.PositiveIntegerField()
    influenced_cents = models.BigIntegerField()
    forecast_count = models.PositiveIntegerField()
    forecast_cents = models.BigIntegerField()
    target_cents = models.BigIntegerField()

    class Meta:
        ordering = ["week", "external_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["week", "partner"], name="partnerrevenuesnapshot_unique"
            ),
        ]
        indexes = [
            # Top partners by sourced revenue: a week's rows by won revenue.
            models.Index(fields=["week", "-won_cents"], name="partnerrevenue_week_won_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.week} {self.external_id}"


class PartnerRevenueRollup(TimeStamped):
    """A week's partner revenue figures summed per partner channel kind ("" = every partner):
    sourced pipeline, wins, MRR, forecast and targets (rule 17)."""

    week = models.CharField(max_length=8)
    as_of = models.DateField()
    final = models.BooleanField()
    currency = models.CharField(max_length=3)
    channel_kind = models.CharField(max_length=16, blank=True)
    partners = models.PositiveIntegerField()
    pipeline_count = models.PositiveIntegerField()
    pipeline_cents = models.BigIntegerField()
    weighted_pipeline_cents = models.BigIntegerField()
    won_count = models.PositiveIntegerField()
    won_cents = models.BigIntegerField()
    mrr_cents = models.BigIntegerField()
    forecast_count = models.PositiveIntegerField()
    forecast_cents = models.BigIntegerField()
    target_cents = models.BigIntegerField()

    class Meta:
        ordering = ["week", "channel_kind"]
        constraints = [
            models.UniqueConstraint(
                fields=["week", "channel_kind"], name="partnerrevenuerollup_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.week} {self.channel_kind or '*'}"


class RevenueForecast(TimeStamped):
    """A week's weighted pipeline expected to close in each of the 13 weeks after its as-of
    day (rule 12), per sourcing channel ("" = all channels)."""

    week = models.CharField(max_length=8)
    as_of = models.DateField()
    final = models.BooleanField()
    currency = models.CharField(max_length=3)
    channel = models.CharField(max_length=16, blank=True)
    weeks_ahead = models.PositiveSmallIntegerField()
    forecast_count = models.PositiveIntegerField()
    forecast_cents = models.BigIntegerField()

    class Meta:
        ordering = ["week", "channel", "weeks_ahead"]
        constraints = [
            models.UniqueConstraint(
                fields=["week", "channel", "weeks_ahead"], name="revenueforecast_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.week} {self.channel or '*'} +{self.weeks_ahead}"


# The partner programme's weekly rows live in a module of their own; importing them here
# registers their models with the app.
from analytics.programme_models import (  # noqa: E402, F401
    DriverStatus,
    PartnerProgramme,
    RepProgramme,
    SatisfactionDriver,
    SatisfactionFit,
)
