"""The partner programme: tiers with their requirements and benefits, the history of every
partner's tier, certifications, yearly targets, scheduled surveys and quarterly business
reviews.

Loaded by `partners.models`. The rules they follow are in `partners.programme_services`,
`partners.survey_services` and `partners.review_services`; the weekly evaluation of tiers and
targets is in `analytics.programme` (docs/metrics.md, "The partner programme").
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _
from django_stubs_ext import StrOrPromise

from crm.models import TimeStamped, localized_name, validate_business_date

TIER_CODE = RegexValidator(
    r"^[a-z][a-z0-9_-]{0,15}$",
    _("Use 1-16 lower-case letters, digits, - or _, starting with a letter."),
)


@dataclass(frozen=True)
class Requirement:
    """One requirement a tier may set: the figure it reads (a column of the weekly programme
    snapshot, docs/metrics.md rule 20), the tier's field holding the minimum, and how the
    figure is shown (count, money, score, nps)."""

    key: str
    field: str
    label: StrOrPromise
    kind: str


# Every requirement a tier may set, in the order pages show them. A tier sets a minimum for
# some of them; a partner meets the tier when its figure reaches every minimum set.
REQUIREMENTS: tuple[Requirement, ...] = (
    Requirement(
        "covered_accounts", "min_covered_accounts", _("Accounts covered under agreement"), "count"
    ),
    Requirement("conversions", "min_conversions", _("Conversions in the last 52 weeks"), "count"),
    Requirement(
        "sourced_revenue", "min_sourced_revenue", _("Sourced revenue in the last 52 weeks"), "money"
    ),
    Requirement(
        "registrations_won",
        "min_registrations_won",
        _("Deal registrations won in the last 52 weeks"),
        "count",
    ),
    Requirement("satisfaction", "min_satisfaction", _("Satisfaction (90 days)"), "score"),
    Requirement("nps", "min_nps", _("NPS (90 days)"), "nps"),
    Requirement("certifications", "min_certifications", _("Certifications held"), "count"),
)
REQUIREMENT_KEYS: tuple[str, ...] = tuple(r.key for r in REQUIREMENTS)


class Tier(TimeStamped):
    """A tier of the programme, ranked from the entry tier (rank 0) up. Its requirements are
    minimums over a partner's weekly figures (blank: not required); its benefits are read by the
    features that grant them (deal registration's protection, extension and auto-approval)."""

    code = models.CharField(
        _("Code"),
        max_length=16,
        unique=True,
        validators=[TIER_CODE],
        help_text=_("Stored on each partner and in imports, e.g. gold."),
    )
    name = models.CharField(_("Name"), max_length=100)
    name_zh = models.CharField(
        _("Chinese name"),
        max_length=100,
        blank=True,
        help_text=_("Shown to readers of Simplified Chinese; the name when blank."),
    )
    rank = models.PositiveSmallIntegerField(
        _("Rank"),
        unique=True,
        validators=[MaxValueValidator(99)],
        help_text=_("0 for the entry tier; higher ranks are higher tiers."),
    )
    # Requirements: the minimum of each figure, or blank when the tier does not ask for it.
    min_covered_accounts = models.PositiveIntegerField(null=True, blank=True)
    min_conversions = models.PositiveIntegerField(null=True, blank=True)
    min_sourced_revenue = models.DecimalField(
        max_digits=14,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(0))],
    )
    min_registrations_won = models.PositiveIntegerField(null=True, blank=True)
    min_satisfaction = models.DecimalField(
        max_digits=3,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(1)), MaxValueValidator(Decimal(5))],
    )
    min_nps = models.SmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(-100), MaxValueValidator(100)]
    )
    min_certifications = models.PositiveIntegerField(null=True, blank=True)
    # Benefits.
    protection_days = models.PositiveIntegerField(
        _("Registration protection (days)"),
        default=90,
        validators=[MinValueValidator(1), MaxValueValidator(730)],
    )
    extension_days = models.PositiveIntegerField(
        _("Registration extension (days)"),
        default=30,
        validators=[MinValueValidator(1), MaxValueValidator(365)],
    )
    auto_approve = models.BooleanField(
        _("Approve clean registrations automatically"),
        default=False,
        help_text=_(
            "Registrations with no conflict are approved as they arrive (the partner's "
            "agreement must grant the segment)."
        ),
    )
    discount_percent = models.DecimalField(
        _("Discount (%)"),
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(100))],
    )
    benefits_note = models.TextField(
        _("Other benefits"),
        max_length=2000,
        blank=True,
        help_text=_("Shown to the partner, e.g. market development funds."),
    )

    class Meta:
        ordering = ["rank"]
        constraints = [
            models.CheckConstraint(
                condition=Q(protection_days__gte=1, protection_days__lte=730),
                name="tier_protection_days_range",
            ),
            models.CheckConstraint(
                condition=Q(extension_days__gte=1, extension_days__lte=365),
                name="tier_extension_days_range",
            ),
            models.CheckConstraint(
                condition=Q(min_satisfaction__isnull=True)
                | Q(min_satisfaction__gte=1, min_satisfaction__lte=5),
                name="tier_min_satisfaction_range",
            ),
            models.CheckConstraint(
                condition=Q(min_nps__isnull=True) | Q(min_nps__gte=-100, min_nps__lte=100),
                name="tier_min_nps_range",
            ),
            models.CheckConstraint(
                condition=Q(discount_percent__isnull=True)
                | Q(discount_percent__gte=0, discount_percent__lte=100),
                name="tier_discount_percent_range",
            ),
            models.CheckConstraint(
                condition=Q(min_sourced_revenue__isnull=True) | Q(min_sourced_revenue__gte=0),
                name="tier_min_sourced_revenue_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        return localized_name(self.name, self.name_zh)

    def minimum(self, key: str) -> Decimal | int | None:
        """The tier's minimum of requirement `key`, or None when it does not set one."""
        requirement = next(r for r in REQUIREMENTS if r.key == key)
        value: Decimal | int | None = getattr(self, requirement.field)
        return value


class ProgrammeSettings(TimeStamped):
    """The programme's settings: one row (id 1), created by the migration."""

    downgrade_grace_weeks = models.PositiveSmallIntegerField(
        _("Downgrade grace period (weeks)"),
        default=4,
        validators=[MaxValueValidator(52)],
        help_text=_(
            "A partner below its tier's requirements keeps the tier this many closed weeks; "
            "it moves down in the next week it is still below them."
        ),
    )

    class Meta:
        verbose_name_plural = "programme settings"
        constraints = [
            models.CheckConstraint(
                condition=Q(downgrade_grace_weeks__lte=52), name="programme_grace_weeks_range"
            ),
        ]

    def __str__(self) -> str:
        return f"grace {self.downgrade_grace_weeks} weeks"


class TierChangeSource(models.TextChoices):
    EVALUATION = "evaluation", _("Weekly evaluation")
    MANAGER = "manager", _("Set by a manager")


class TierChange(TimeStamped):
    """A change of a partner's tier: by the weekly evaluation of `week`, with the figures of
    that week that caused it, or by a manager."""

    partner = models.ForeignKey(
        "partners.Partner", on_delete=models.CASCADE, related_name="tier_changes"
    )
    week = models.CharField(max_length=8, help_text='ISO week, e.g. "2026-W46".')
    as_of = models.DateField(help_text="The day the figures were taken on.")
    from_tier = models.CharField(max_length=16)
    to_tier = models.CharField(max_length=16)
    source = models.CharField(max_length=16, choices=TierChangeSource.choices)
    # {"figures": {key: value}, "requirements": [{"key", "minimum", "value", "met"}], ...}
    evidence = models.JSONField(default=dict, blank=True)
    reason = models.TextField(max_length=2000, blank=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-week", "-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(source__in=TierChangeSource.values), name="tierchange_source_valid"
            ),
            models.CheckConstraint(
                condition=~Q(from_tier=F("to_tier")), name="tierchange_changes_the_tier"
            ),
            # A week's evaluation changes a partner's tier at most once; re-running the week
            # replaces its change.
            models.UniqueConstraint(
                fields=["partner", "week"],
                condition=Q(source=TierChangeSource.EVALUATION),
                name="tierchange_one_evaluation_per_week",
            ),
        ]
        indexes = [
            models.Index(fields=["partner", "week"], name="tierchange_partner_week_idx"),
            models.Index(fields=["week"], name="tierchange_week_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.partner_id} {self.week}: {self.from_tier} → {self.to_tier}"


class Certification(TimeStamped):
    """A certification a partner holds (for one of its people), counted by the programme while
    it is valid (docs/metrics.md rule 20)."""

    partner = models.ForeignKey(
        "partners.Partner", on_delete=models.CASCADE, related_name="certifications"
    )
    name = models.CharField(_("Certification"), max_length=200)
    holder = models.CharField(_("Held by"), max_length=200, blank=True)
    earned_on = models.DateField(_("Earned on"), validators=[validate_business_date])
    expires_on = models.DateField(
        _("Expires on"), null=True, blank=True, validators=[validate_business_date]
    )

    class Meta:
        ordering = ["-earned_on", "name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(expires_on__isnull=True) | Q(expires_on__gte=F("earned_on")),
                name="certification_expires_after_earned",
                violation_error_message="A certification cannot expire before it is earned.",
            ),
        ]
        indexes = [models.Index(fields=["partner", "earned_on"], name="certification_partner_idx")]

    def __str__(self) -> str:
        return f"{self.name} ({self.holder})" if self.holder else self.name


class Target(TimeStamped):
    """A yearly target of a partner or of a sales rep: accounts covered, conversions and
    revenue (in the reporting currency) for a calendar year; blank figures are not targeted. A
    partner's revenue target, when blank, is the annual target of its agreements in force
    (docs/metrics.md rule 22)."""

    year = models.PositiveSmallIntegerField(
        _("Year"), validators=[MinValueValidator(2000), MaxValueValidator(2199)]
    )
    partner = models.ForeignKey(
        "partners.Partner",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="targets",
    )
    rep = models.ForeignKey(
        "channels.SalesRep",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="targets",
    )
    accounts_covered = models.PositiveIntegerField(_("Accounts covered"), null=True, blank=True)
    conversions = models.PositiveIntegerField(_("Conversions"), null=True, blank=True)
    revenue = models.DecimalField(
        _("Revenue"),
        max_digits=14,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(0))],
    )

    class Meta:
        ordering = ["-year", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(partner__isnull=False) & Q(rep__isnull=True))
                | (Q(partner__isnull=True) & Q(rep__isnull=False)),
                name="target_one_owner",
                violation_error_message="A target belongs to one partner or one rep.",
            ),
            models.CheckConstraint(
                condition=Q(year__gte=2000, year__lte=2199), name="target_year_range"
            ),
            models.CheckConstraint(
                condition=Q(revenue__isnull=True) | Q(revenue__gte=0),
                name="target_revenue_not_negative",
            ),
            models.UniqueConstraint(
                fields=["year", "partner"],
                condition=Q(partner__isnull=False),
                name="target_one_per_partner_year",
                violation_error_message="This partner already has a target for that year.",
            ),
            models.UniqueConstraint(
                fields=["year", "rep"],
                condition=Q(rep__isnull=False),
                name="target_one_per_rep_year",
                violation_error_message="This rep already has a target for that year.",
            ),
        ]

    def __str__(self) -> str:
        owner = self.partner if self.partner_id else self.rep
        return f"{self.year} {owner}"


# Surveys --------------------------------------------------------------------------------------


class SurveySchedule(models.TextChoices):
    QUARTERLY = "quarterly", _("Quarterly (January, April, July, October)")
    HALF_YEARLY = "half_yearly", _("Twice a year (January, July)")
    YEARLY = "yearly", _("Once a year (January)")
    MONTHLY = "monthly", _("Monthly")


# The months a schedule opens a wave in, on its `send_day`.
SCHEDULE_MONTHS: dict[str, tuple[int, ...]] = {
    SurveySchedule.QUARTERLY: (1, 4, 7, 10),
    SurveySchedule.HALF_YEARLY: (1, 7),
    SurveySchedule.YEARLY: (1,),
    SurveySchedule.MONTHLY: tuple(range(1, 13)),
}


class Survey(TimeStamped):
    """A short survey sent on a schedule to the contacts of every active partner: a
    satisfaction score (1-5) for each of its categories, an NPS score (0-10) and one free text.
    Each answer becomes feedback with the `survey` source."""

    name = models.CharField(_("Name"), max_length=200)
    intro = models.TextField(
        _("Introduction"), max_length=2000, blank=True, help_text=_("Shown above the questions.")
    )
    categories = models.JSONField(
        _("Categories rated"), default=list, help_text=_("Feedback categories, each rated 1-5.")
    )
    free_text_question = models.CharField(
        _("Free-text question"),
        max_length=300,
        default="What should we do better?",
    )
    schedule = models.CharField(
        _("Schedule"), max_length=16, choices=SurveySchedule.choices, default="quarterly"
    )
    send_day = models.PositiveSmallIntegerField(
        _("Day of the month a wave opens"),
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(28)],
    )
    open_days = models.PositiveSmallIntegerField(
        _("Days a wave stays open"),
        default=21,
        validators=[MinValueValidator(3), MaxValueValidator(90)],
    )
    reminder_days_before_close = models.PositiveSmallIntegerField(
        _("Reminder, days before a wave closes"),
        default=7,
        validators=[MinValueValidator(1), MaxValueValidator(60)],
    )
    is_active = models.BooleanField(_("Send on schedule"), default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(schedule__in=SurveySchedule.values), name="survey_schedule_valid"
            ),
            models.CheckConstraint(
                condition=Q(send_day__gte=1, send_day__lte=28), name="survey_send_day_range"
            ),
            models.CheckConstraint(
                condition=Q(open_days__gte=3, open_days__lte=90), name="survey_open_days_range"
            ),
            models.CheckConstraint(
                condition=Q(reminder_days_before_close__lt=F("open_days")),
                name="survey_reminder_within_wave",
                violation_error_message="The reminder must go out while the wave is open.",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class SurveyWave(TimeStamped):
    """One sending of a survey: invitations go out when it opens, a reminder once before it
    closes, and answers are taken until `closes_on` (inclusive)."""

    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="waves")
    opens_on = models.DateField()
    closes_on = models.DateField()
    sent_at = models.DateTimeField(null=True, blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opens_on", "-id"]
        constraints = [
            # Beat and a manager opening a wave at the same time open one.
            models.UniqueConstraint(fields=["survey", "opens_on"], name="surveywave_once_a_day"),
            models.CheckConstraint(
                condition=Q(closes_on__gte=F("opens_on")), name="surveywave_closes_after_opening"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.survey} {self.opens_on.isoformat()}"


class SurveyInvitation(TimeStamped):
    """A survey wave sent to one contact of one partner; the signed link in its e-mail names
    it. Answered once."""

    wave = models.ForeignKey(SurveyWave, on_delete=models.CASCADE, related_name="invitations")
    partner = models.ForeignKey(
        "partners.Partner", on_delete=models.CASCADE, related_name="survey_invitations"
    )
    contact = models.ForeignKey(
        "partners.PartnerContact",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    email = models.EmailField()
    channel_kind = models.CharField(max_length=16, help_text="The partner's, when sent.")
    reminded_at = models.DateTimeField(null=True, blank=True)
    responded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["wave", "partner", "email"]
        constraints = [
            models.UniqueConstraint(
                fields=["wave", "partner", "email"], name="surveyinvitation_once_per_address"
            ),
        ]
        indexes = [
            models.Index(fields=["wave", "responded_at"], name="surveyinv_wave_responded_idx"),
            models.Index(fields=["partner", "wave"], name="surveyinv_partner_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.wave} → {self.email}"


class SurveyResponse(TimeStamped):
    """The answer to one invitation: its scores live in the feedback it created."""

    invitation = models.OneToOneField(
        SurveyInvitation, on_delete=models.CASCADE, related_name="response"
    )
    partner = models.ForeignKey(
        "partners.Partner", on_delete=models.CASCADE, related_name="survey_responses"
    )
    nps = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(0), MaxValueValidator(10)]
    )
    comment = models.TextField(max_length=5000, blank=True)
    language = models.CharField(max_length=16, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(nps__isnull=True) | Q(nps__gte=0, nps__lte=10),
                name="surveyresponse_nps_0_to_10",
            ),
        ]

    def __str__(self) -> str:
        return f"response to {self.invitation}"


# Quarterly business reviews ---------------------------------------------------------------------


class BusinessReview(TimeStamped):
    """A quarterly business review with a partner: the meeting's notes and its agreed actions;
    the scorecard it discussed is read from the snapshots of the quarter."""

    partner = models.ForeignKey(
        "partners.Partner", on_delete=models.CASCADE, related_name="business_reviews"
    )
    year = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(2000), MaxValueValidator(2199)]
    )
    quarter = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(4)]
    )
    held_on = models.DateField(
        _("Held on"), null=True, blank=True, validators=[validate_business_date]
    )
    attendees = models.CharField(_("Attendees"), max_length=500, blank=True)
    notes = models.TextField(_("Notes"), max_length=20000, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    summary_sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-year", "-quarter", "partner_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["partner", "year", "quarter"],
                name="businessreview_one_per_quarter",
                violation_error_message="This partner already has a review for that quarter.",
            ),
            models.CheckConstraint(
                condition=Q(quarter__gte=1, quarter__lte=4), name="businessreview_quarter_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.partner} {self.quarter_label}"

    @property
    def quarter_label(self) -> str:
        return f"{self.year}-Q{self.quarter}"


class ReviewAction(TimeStamped):
    """An action agreed in a business review: what, who (one of our users, or someone at the
    partner by name), by when, and whether it is done."""

    review = models.ForeignKey(BusinessReview, on_delete=models.CASCADE, related_name="actions")
    description = models.CharField(_("Action"), max_length=500)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="review_actions",
        verbose_name=_("Owner (ours)"),
    )
    partner_owner = models.CharField(_("Owner at the partner"), max_length=200, blank=True)
    due_on = models.DateField(_("Due on"), validators=[validate_business_date])
    done_on = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["due_on", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(owner__isnull=False) & Q(partner_owner=""))
                | (Q(owner__isnull=True) & ~Q(partner_owner="")),
                name="reviewaction_one_owner",
                violation_error_message="Name one owner: one of ours, or someone at the partner.",
            ),
        ]
        indexes = [
            models.Index(
                fields=["owner", "due_on"],
                condition=Q(done_on__isnull=True),
                name="reviewaction_open_owner_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.description

    @property
    def is_open(self) -> bool:
        return self.done_on is None
