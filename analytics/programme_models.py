"""The partner programme's weekly snapshot: each partner's programme figures and tier, each
rep's and partner's target attainment, and the week's satisfaction regression.

Written by the weekly programme step (`analytics.programme_services`) right after the week's
metrics, in the same way: a week's rows are replaced in one transaction. Loaded by
`analytics.models`; read only through `analytics.reports`.
"""

from __future__ import annotations

from django.db import models

from crm.models import TimeStamped


class PartnerProgramme(TimeStamped):
    """One partner's programme figures for one week (docs/metrics.md rules 20-22): the
    figures its tier requirements read beside rule 6's, the tier it qualified for and the tier
    it holds after the week's evaluation, and its yearly target.

    What the whole week's run shares (its as-of day, whether it is final) is kept once, on the
    week's `SatisfactionFit`, with the regression's inputs, which move with the day: a week run
    again each night then rewrites only the rows whose figures changed."""

    week = models.CharField(max_length=8)
    # No index of its own: `partnerprogramme_partner_idx` (partner, week) serves every read
    # by partner and the cascade, and one index fewer is less to write each week.
    partner = models.ForeignKey(
        "partners.Partner",
        on_delete=models.CASCADE,
        related_name="programme_snapshots",
        db_index=False,
    )
    covered_accounts = models.PositiveIntegerField(help_text="Rule 6's, copied from the week.")
    conversions = models.PositiveIntegerField(help_text="Covered accounts converted in 52 weeks.")
    conversions_ytd = models.PositiveIntegerField(help_text="... since 1 January.")
    registrations_submitted = models.PositiveIntegerField()
    registrations_won = models.PositiveIntegerField()
    registrations_lost = models.PositiveIntegerField()
    registrations_won_ytd = models.PositiveIntegerField()
    sourced_revenue = models.DecimalField(max_digits=16, decimal_places=2, null=True)
    sourced_revenue_ytd = models.DecimalField(max_digits=16, decimal_places=2, null=True)
    certifications = models.PositiveIntegerField()
    tier_before = models.CharField(max_length=16)
    qualified_tier = models.CharField(max_length=16)
    tier = models.CharField(max_length=16, help_text="Held after the week's evaluation.")
    weeks_below = models.PositiveIntegerField(
        help_text="Closed weeks in a row below the requirements of the tier held."
    )
    target_accounts_covered = models.PositiveIntegerField(null=True)
    target_conversions = models.PositiveIntegerField(null=True)
    target_revenue = models.DecimalField(max_digits=16, decimal_places=2, null=True)
    # "target" (the partner's yearly target), "agreements" (their annual targets) or "".
    revenue_target_source = models.CharField(max_length=16, blank=True)

    # On PostgreSQL half of each page is left free (migration 0010): a week run again rewrites
    # its rows in place, and a new version that fits on its row's page writes no index entry.

    class Meta:
        ordering = ["week", "partner_id"]
        constraints = [
            models.UniqueConstraint(fields=["week", "partner"], name="partnerprogramme_unique"),
        ]
        indexes = [
            # A partner's scorecard reads its latest weeks.
            models.Index(fields=["partner", "week"], name="partnerprogramme_partner_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.week} {self.partner_id} {self.tier}"


class RepProgramme(TimeStamped):
    """A sales rep's figures against its yearly target for one week (rule 22), for every rep
    with a target in the week's year."""

    week = models.CharField(max_length=8)
    as_of = models.DateField()
    final = models.BooleanField()
    rep = models.ForeignKey(
        "channels.SalesRep", on_delete=models.CASCADE, related_name="programme_snapshots"
    )
    external_id = models.CharField(max_length=64)
    name = models.CharField(max_length=200)
    covered_accounts = models.PositiveIntegerField()
    conversions_ytd = models.PositiveIntegerField()
    sourced_revenue_ytd = models.DecimalField(max_digits=16, decimal_places=2, null=True)
    target_accounts_covered = models.PositiveIntegerField(null=True)
    target_conversions = models.PositiveIntegerField(null=True)
    target_revenue = models.DecimalField(max_digits=16, decimal_places=2, null=True)

    class Meta:
        ordering = ["week", "external_id"]
        constraints = [
            models.UniqueConstraint(fields=["week", "rep"], name="repprogramme_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.week} {self.external_id}"


class DriverStatus(models.TextChoices):
    FITTED = "fitted", "Fitted"
    TOO_LITTLE_DATA = "too_little_data", "Too little data"


class SatisfactionFit(TimeStamped):
    """The week's regression of partner satisfaction on its explanatory variables (rule 23):
    how many partners it used, how many parameters, how much it explains, and the inputs it
    was fitted on. Written with the week's programme rows, one per week: it holds the week's
    as-of day and whether the week is final for them (`PartnerProgramme`)."""

    week = models.CharField(max_length=8, unique=True)
    as_of = models.DateField()
    final = models.BooleanField()
    status = models.CharField(max_length=16, choices=DriverStatus.choices)
    observations = models.PositiveIntegerField()
    parameters = models.PositiveIntegerField()
    r_squared = models.FloatField(null=True)
    adjusted_r_squared = models.FloatField(null=True)
    # Variables left out this week (no variation among the partners), by name.
    dropped = models.JSONField(default=list)
    # The regression's inputs of every active partner, column by column, one value per partner
    # in id order, as numpy's archive of arrays (`.npz`, read by `reports.regression_inputs`):
    # "partner_id"; "feedback_<category>", per category the partner's entries of the 90 days;
    # "response_days", the mean days to our first reply (NaN without a message);
    # "tenure_days", the days since its first agreement was signed (0 without one; its
    # tenure in years is the days / 365.25). They move with the day, so they are kept here
    # once a week, not on the partner rows; as arrays, a week's 10,000 partners take about
    # 0.5 MB (lz4 brings it to 0.2 MB) and 2 ms to write, where their JSON took 25-30 ms.
    inputs = models.BinaryField(default=bytes)

    class Meta:
        ordering = ["week"]

    def __str__(self) -> str:
        return f"{self.week} {self.status} n={self.observations}"


class SatisfactionDriver(TimeStamped):
    """One coefficient of a week's regression with its 95 % confidence interval, and its
    effect: the change in satisfaction for one standard deviation of the variable."""

    week = models.CharField(max_length=8)
    variable = models.CharField(max_length=32)
    coefficient = models.FloatField()
    std_error = models.FloatField()
    ci_low = models.FloatField()
    ci_high = models.FloatField()
    p_value = models.FloatField()
    std_dev = models.FloatField(help_text="Of the variable among the partners observed.")
    effect = models.FloatField()
    effect_low = models.FloatField()
    effect_high = models.FloatField()

    class Meta:
        ordering = ["week", "variable"]
        constraints = [
            models.UniqueConstraint(fields=["week", "variable"], name="satisfactiondriver_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.week} {self.variable} {self.coefficient:+.3f}"
