"""Partners and distributors, their people, agreements and feedback."""

from __future__ import annotations

import secrets
import uuid
from datetime import date, timedelta
from pathlib import PurePosixPath

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from crm.models import ChannelKind, Region, TimeStamped, Vertical, validate_business_date
from partners.rules import AGREEMENT_IN_FORCE


class PartnerKind(models.TextChoices):
    DISTRIBUTION = ChannelKind.DISTRIBUTION.value, _("Distributor")
    PARTNER = ChannelKind.PARTNER.value, _("Partner")


class PartnerType(models.TextChoices):
    RESELLER = "reseller", _("Reseller")
    SYSTEM_INTEGRATOR = "system_integrator", _("System integrator")
    TECHNOLOGY = "technology", _("Technology partner")
    CLOUD = "cloud", _("Cloud partner")
    ACADEMIC = "academic", _("Academic partner")
    REFERRAL = "referral", _("Referral partner")
    CONSULTING = "consulting", _("Consulting partner")
    DISTRIBUTOR = "distributor", _("Distributor")
    VALUE_ADDED_DISTRIBUTOR = "value_added_distributor", _("Value-added distributor")


class PartnerTier(models.TextChoices):
    """The tiers a new programme starts with (migration partners 0005 creates them); managers
    rename, add and remove tiers (`partners.programme_models.Tier`), so a partner's tier is any
    tier code the programme defines."""

    REGISTERED = "registered", _("Registered")
    SILVER = "silver", _("Silver")
    GOLD = "gold", _("Gold")
    PLATINUM = "platinum", _("Platinum")


class Partner(TimeStamped):
    external_id = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    channel_kind = models.CharField(max_length=16, choices=PartnerKind.choices)
    partner_type = models.CharField(max_length=32, choices=PartnerType.choices)
    # A `Tier.code`: evaluated every week by the programme (docs/metrics.md rule 21), or set
    # by a manager; each change is kept in `tier_changes`.
    tier = models.CharField(max_length=16, default=PartnerTier.REGISTERED)
    is_active = models.BooleanField(default=True)
    website = models.URLField(blank=True)
    country = models.CharField(max_length=64, blank=True)
    notes = models.TextField(blank=True)
    # The sales manager who looks after the partner: new deal registrations are sent to them
    # (to every sales manager when nobody is named).
    channel_manager = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="managed_partners",
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(channel_kind__in=PartnerKind.values), name="partner_channel_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(partner_type__in=PartnerType.values), name="partner_type_valid"
            ),
        ]
        indexes = [models.Index(fields=["channel_kind", "name"], name="partner_kind_name_idx")]

    def __str__(self) -> str:
        return self.name

    @property
    def is_distributor(self) -> bool:
        return self.channel_kind == PartnerKind.DISTRIBUTION


class PartnerContact(TimeStamped):
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="contacts")
    name = models.CharField(max_length=200)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=50, blank=True)
    title = models.CharField(max_length=100, blank=True)
    is_primary = models.BooleanField(default=False)

    class Meta:
        ordering = ["-is_primary", "name"]

    def __str__(self) -> str:
        return self.name


class PartnerUser(TimeStamped):
    """A portal login; the one-to-one on the user keeps each partner user to exactly one partner."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="partner_membership"
    )
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="portal_users")

    def __str__(self) -> str:
        return f"{self.user} @ {self.partner}"


class AgreementType(models.TextChoices):
    RESELLER = "reseller", _("Reseller agreement")
    DISTRIBUTION = "distribution", _("Distribution agreement")
    REFERRAL = "referral", _("Referral agreement")
    SYSTEM_INTEGRATION = "system_integration", _("System integration agreement")
    TECHNOLOGY = "technology", _("Technology partnership")
    OEM = "oem", _("OEM agreement")
    ACADEMIC = "academic", _("Academic agreement")
    CLOUD_MARKETPLACE = "cloud_marketplace", _("Cloud marketplace agreement")


class AgreementStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    ACTIVE = "active", _("Active")
    EXPIRED = "expired", _("Expired")
    TERMINATED = "terminated", _("Terminated")


def _new_agreement_id() -> str:
    return f"AGR-{secrets.token_hex(4).upper()}"


def signed_document_path(instance: Agreement, filename: str) -> str:
    # A generated name: the uploader's file name never reaches the file system.
    return f"agreements/{date.today():%Y}/{uuid.uuid4().hex}.pdf"


class Agreement(TimeStamped):
    external_id = models.CharField(max_length=64, unique=True, default=_new_agreement_id)
    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="agreements")
    agreement_type = models.CharField(max_length=32, choices=AgreementType.choices)
    status = models.CharField(
        max_length=16, choices=AgreementStatus.choices, default=AgreementStatus.DRAFT
    )
    start_date = models.DateField(validators=[validate_business_date])
    end_date = models.DateField(validators=[validate_business_date])
    signed_on = models.DateField(null=True, blank=True, validators=[validate_business_date])
    terminated_on = models.DateField(null=True, blank=True, validators=[validate_business_date])
    termination_reason = models.TextField(blank=True)
    auto_renew = models.BooleanField(default=False)
    notice_days = models.PositiveIntegerField(
        default=30, help_text="Days of notice before the end date."
    )
    regions = models.ManyToManyField(
        Region, blank=True, related_name="agreements", help_text="None means all."
    )
    verticals = models.ManyToManyField(
        Vertical, blank=True, related_name="agreements", help_text="None means all."
    )
    exclusive = models.BooleanField(default=False)
    discount_percent = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    revenue_share_percent = models.DecimalField(
        max_digits=5, decimal_places=2, null=True, blank=True
    )
    annual_target = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, default="USD")
    responsibilities = models.TextField(blank=True)
    rights = models.TextField(blank=True)
    signed_document = models.FileField(upload_to=signed_document_path, blank=True, max_length=200)
    renews = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="renewals"
    )
    history = HistoricalRecords(m2m_fields=[regions, verticals])

    class Meta:
        ordering = ["-start_date", "external_id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=AgreementStatus.values),
                name="agreement_status_valid",
                violation_error_message="Choose one of the agreement statuses.",
            ),
            models.CheckConstraint(
                condition=Q(agreement_type__in=AgreementType.values),
                name="agreement_type_valid",
                violation_error_message="Choose one of the agreement types.",
            ),
            models.CheckConstraint(
                condition=Q(end_date__gte=F("start_date")),
                name="agreement_end_not_before_start",
                violation_error_message="The end date cannot be before the start date.",
            ),
            models.CheckConstraint(
                condition=Q(terminated_on__isnull=True)
                | Q(terminated_on__gte=F("start_date"), terminated_on__lte=F("end_date")),
                name="agreement_terminated_within_term",
                violation_error_message="The termination date must lie within the term.",
            ),
            models.CheckConstraint(
                condition=Q(status=AgreementStatus.DRAFT) | Q(signed_on__isnull=False),
                name="agreement_signed_unless_draft",
                violation_error_message="Only a draft may lack its signed date.",
            ),
            models.CheckConstraint(
                condition=(
                    Q(status=AgreementStatus.TERMINATED, terminated_on__isnull=False)
                    | (~Q(status=AgreementStatus.TERMINATED) & Q(terminated_on__isnull=True))
                ),
                name="agreement_terminated_iff_termination_date",
                violation_error_message=(
                    "A terminated agreement has a termination date, and only a terminated one."
                ),
            ),
            models.CheckConstraint(
                condition=Q(discount_percent__isnull=True)
                | Q(discount_percent__gte=0, discount_percent__lte=100),
                name="agreement_discount_percent_range",
                violation_error_message="The discount lies between 0 and 100 %.",
            ),
            models.CheckConstraint(
                condition=Q(revenue_share_percent__isnull=True)
                | Q(revenue_share_percent__gte=0, revenue_share_percent__lte=100),
                name="agreement_revenue_share_percent_range",
                violation_error_message="The revenue share lies between 0 and 100 %.",
            ),
            # At most one renewal per agreement; the renewal itself is renewed onwards.
            models.UniqueConstraint(
                fields=["renews"],
                name="agreement_renewed_once",
                violation_error_message="This agreement is already renewed.",
            ),
        ]
        indexes = [
            models.Index(fields=["partner", "status"], name="agreement_partner_status_idx"),
            models.Index(fields=["status", "end_date"], name="agreement_status_end_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.external_id} ({self.partner})"

    def in_force_on(self, day: date) -> bool:
        """Whether the agreement is in force on `day` (docs/metrics.md rule 2)."""
        return AGREEMENT_IN_FORCE.holds(self, day)

    @property
    def effective_end(self) -> date:
        """The last day the agreement can be in force: its termination date when it was
        terminated before the end of its term, otherwise its end date. Pages, e-mails and
        exports show this as its end, beside the termination date when there is one."""
        if self.terminated_on is not None and self.terminated_on < self.end_date:
            return self.terminated_on
        return self.end_date

    @property
    def notice_deadline(self) -> date | None:
        """The last day to give notice before the end of the term; None once it is
        terminated, expired or still a draft, when there is no notice left to give."""
        if self.status != AgreementStatus.ACTIVE:
            return None
        return self.end_date - timedelta(days=self.notice_days)

    @property
    def signed_document_name(self) -> str:
        return PurePosixPath(self.signed_document.name).name if self.signed_document else ""


class FeedbackCategory(models.TextChoices):
    PRODUCT = "product", _("Product")
    PRICING = "pricing", _("Pricing and commercial terms")
    SUPPORT = "support", _("Support")
    ENABLEMENT = "enablement", _("Training and enablement")
    SALES_PROCESS = "sales_process", _("Sales process and deal registration")
    TECHNICAL = "technical", _("Technical integration")
    MARKETING = "marketing", _("Marketing")
    OTHER = "other", _("Other")


class FeedbackSource(models.TextChoices):
    PORTAL = "portal", _("Partner (portal or API)")
    MANAGER = "manager", _("Logged by a manager")
    SURVEY = "survey", _("Survey")


class FeedbackStatus(models.TextChoices):
    NEW = "new", _("New")
    ACKNOWLEDGED = "acknowledged", _("Acknowledged")
    IN_PROGRESS = "in_progress", _("In progress")
    RESOLVED = "resolved", _("Resolved")
    CLOSED = "closed", _("Closed")


def feedback_attachment_path(instance: Feedback, filename: str) -> str:
    suffix = PurePosixPath(filename).suffix.lower()
    if suffix not in {".pdf", ".png", ".jpg"}:
        suffix = ""
    return f"feedback/{date.today():%Y}/{uuid.uuid4().hex}{suffix}"


class Feedback(TimeStamped):
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="feedback")
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    logged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The manager who logged it on the partner's behalf, if any.",
    )
    category = models.CharField(max_length=32, choices=FeedbackCategory.choices)
    satisfaction = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    nps = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(0), MaxValueValidator(10)]
    )
    subject = models.CharField(max_length=200)
    body = models.TextField(max_length=5000)
    status = models.CharField(
        max_length=16, choices=FeedbackStatus.choices, default=FeedbackStatus.NEW
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_feedback",
    )
    attachment = models.FileField(upload_to=feedback_attachment_path, blank=True, max_length=200)
    source = models.CharField(
        max_length=16, choices=FeedbackSource.choices, default=FeedbackSource.PORTAL
    )
    # The survey answer this entry is part of (one entry per category rated).
    survey_response = models.ForeignKey(
        "partners.SurveyResponse",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="feedback",
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "feedback"
        constraints = [
            models.CheckConstraint(
                condition=Q(satisfaction__gte=1, satisfaction__lte=5),
                name="feedback_satisfaction_1_to_5",
            ),
            models.CheckConstraint(
                condition=Q(nps__isnull=True) | Q(nps__gte=0, nps__lte=10),
                name="feedback_nps_0_to_10",
            ),
            models.CheckConstraint(
                condition=Q(status__in=FeedbackStatus.values), name="feedback_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(category__in=FeedbackCategory.values), name="feedback_category_valid"
            ),
            models.CheckConstraint(
                condition=Q(source__in=FeedbackSource.values), name="feedback_source_valid"
            ),
            models.CheckConstraint(
                condition=Q(source=FeedbackSource.SURVEY) | Q(survey_response__isnull=True),
                name="feedback_survey_response_only_from_surveys",
            ),
        ]
        indexes = [
            models.Index(fields=["partner", "created_at"], name="feedback_partner_created_idx"),
            models.Index(fields=["status", "created_at"], name="feedback_status_created_idx"),
        ]

    def __str__(self) -> str:
        return self.subject

    @property
    def attachment_download_name(self) -> str:
        """The name a downloaded attachment is saved under: the stored name is a random one."""
        return f"feedback-{self.pk}-attachment{PurePosixPath(self.attachment.name).suffix}"


class FeedbackReply(TimeStamped):
    """Part of the thread the partner sees."""

    feedback = models.ForeignKey(Feedback, on_delete=models.CASCADE, related_name="replies")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    body = models.TextField(max_length=5000)

    class Meta:
        ordering = ["created_at"]
        verbose_name_plural = "feedback replies"


class FeedbackNote(TimeStamped):
    """An internal note: never shown to partner users, in pages or in the API."""

    feedback = models.ForeignKey(Feedback, on_delete=models.CASCADE, related_name="internal_notes")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    body = models.TextField(max_length=5000)

    class Meta:
        ordering = ["created_at"]


class ImportJobStatus(models.TextChoices):
    VALIDATING = "validating", _("Checking the files")
    INVALID = "invalid", _("Problems found")
    VALID = "valid", _("Ready to apply")
    APPLYING = "applying", _("Importing")
    APPLIED = "applied", _("Imported")
    FAILED = "failed", _("Failed")


class ImportJob(TimeStamped):
    """Market files uploaded in the browser: validated first, applied on request, by a task."""

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    folder = models.CharField(
        max_length=64, unique=True, help_text="Private folder holding the uploaded files."
    )
    file_names = models.JSONField(default=list)
    status = models.CharField(
        max_length=16, choices=ImportJobStatus.choices, default=ImportJobStatus.VALIDATING
    )
    problems = models.JSONField(default=list, blank=True)
    report = models.JSONField(default=dict, blank=True)
    preview = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    language = models.CharField(
        max_length=16,
        blank=True,
        help_text="The language the files were uploaded in: the job words its problems in it.",
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Import {self.pk} ({self.status})"

    @property
    def busy(self) -> bool:
        return self.status in (ImportJobStatus.VALIDATING, ImportJobStatus.APPLYING)


# Deal registrations and webhooks live in modules of their own; importing them here registers
# their models with the app.
from partners.programme_models import (  # noqa: E402, F401
    BusinessReview,
    Certification,
    ProgrammeSettings,
    ReviewAction,
    Survey,
    SurveyInvitation,
    SurveyResponse,
    SurveyWave,
    Target,
    Tier,
    TierChange,
)
from partners.registration_models import (  # noqa: E402, F401
    ConflictCode,
    DealRegistration,
    DealRegistrationEvent,
    RegistrationStatus,
)
from partners.webhook_models import WebhookDelivery, WebhookEndpoint  # noqa: E402, F401
