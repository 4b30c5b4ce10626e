"""Deal registrations: a partner's claim on an opportunity, its life and its history. The
protection each approval gives is a benefit of the partner's tier (`partners.Tier`).

Loaded by `partners.models`; the rules they follow are in `partners.registration_services`.
"""

from __future__ import annotations

import secrets
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.models import SizeBand, TimeStamped


class RegistrationStatus(models.TextChoices):
    SUBMITTED = "submitted", _("Submitted")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")
    WON = "won", _("Won")
    LOST = "lost", _("Lost")
    EXPIRED = "expired", _("Expired")
    WITHDRAWN = "withdrawn", _("Withdrawn")


class ConflictCode(models.TextChoices):
    """Why a registration needs a manager's look; each comes with a sentence saying what to do."""

    ALREADY_REGISTERED = "already_registered", _("Already registered")
    COVERED_BY_OTHER_CHANNEL = "covered_by_other_channel", _("Covered by another channel")
    EXCLUSIVE_ELSEWHERE = "exclusive_elsewhere", _("Exclusive elsewhere")
    OUTSIDE_AGREEMENT = "outside_agreement", _("Outside the agreement")
    ALREADY_CUSTOMER = "already_customer", _("Already a customer")
    POSSIBLE_DUPLICATE = "possible_duplicate", _("Possible duplicate")


class MatchReason(models.TextChoices):
    """How a registration came to name its account (empty: a prospect, no account yet)."""

    NONE = "", _("prospect")
    EXTERNAL_ID = "external_id", _("the partner's own account id")
    DOMAIN = "domain", _("same website domain")
    NAME = "name", _("same company name")
    MANAGER = "manager", _("linked by a manager")
    CREATED = "created", _("account created on approval")


class ExtensionStatus(models.TextChoices):
    NONE = "", _("None")
    REQUESTED = "requested", _("Requested")
    GRANTED = "granted", _("Granted")
    DECLINED = "declined", _("Declined")


def _new_registration_id() -> str:
    return f"REG-{secrets.token_hex(4).upper()}"


# The states a registration leaves no more.
CLOSED_STATUSES = (
    RegistrationStatus.REJECTED,
    RegistrationStatus.WON,
    RegistrationStatus.LOST,
    RegistrationStatus.EXPIRED,
    RegistrationStatus.WITHDRAWN,
)


class DealRegistration(TimeStamped):
    external_id = models.CharField(max_length=64, unique=True, default=_new_registration_id)
    partner = models.ForeignKey(
        "partners.Partner", on_delete=models.PROTECT, related_name="deal_registrations"
    )
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    submitted_at = models.DateTimeField(default=timezone.now)
    # The language the partner registered in: its e-mails about this deal are written in it.
    language = models.CharField(max_length=16, blank=True)
    # What the partner tells us about the opportunity.
    company_name = models.CharField(max_length=255)
    website = models.CharField(max_length=255, blank=True)
    region = models.ForeignKey("crm.Region", on_delete=models.PROTECT, related_name="+")
    vertical = models.ForeignKey("crm.Vertical", on_delete=models.PROTECT, related_name="+")
    size_band = models.CharField(max_length=16, choices=SizeBand.choices)
    offering = models.CharField(max_length=200, blank=True)
    amount = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, default="USD")
    expected_close_on = models.DateField(null=True, blank=True)
    description = models.TextField(max_length=5000, blank=True)
    contact_name = models.CharField(max_length=200, blank=True)
    contact_email = models.EmailField(blank=True)
    contact_phone = models.CharField(max_length=50, blank=True)
    # The company in our terms: its folded name and domain (crm.names) and the account, if any.
    name_key = models.CharField(max_length=255, blank=True)
    domain = models.CharField(max_length=255, blank=True)
    account = models.ForeignKey(
        "crm.Account",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="deal_registrations",
    )
    match_reason = models.CharField(max_length=16, choices=MatchReason.choices, blank=True)
    # Conflicts as last computed: [{"code": ..., "message": ...}]; the manager's sentences.
    conflicts = models.JSONField(default=list, blank=True)
    # The same codes as " code code ", so lists can filter by one on any database.
    conflict_codes_text = models.CharField(max_length=200, blank=True)
    conflicts_checked_at = models.DateTimeField(null=True, blank=True)
    # The conflict codes met on arrival (" code code ", "" for none), kept as they were for the
    # weekly figures (docs/metrics.md rule 18); null when they were not checked on arrival (a
    # registration imported already decided).
    arrival_conflicts = models.CharField(max_length=200, null=True, blank=True)
    needs_review = models.BooleanField(default=False)
    status = models.CharField(
        max_length=16, choices=RegistrationStatus.choices, default=RegistrationStatus.SUBMITTED
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decision_reason = models.TextField(max_length=2000, blank=True)
    auto_approved = models.BooleanField(default=False)
    protected_from = models.DateField(null=True, blank=True)
    protected_until = models.DateField(null=True, blank=True)
    extension_status = models.CharField(
        max_length=16, choices=ExtensionStatus.choices, blank=True, default=ExtensionStatus.NONE
    )
    extension_note = models.TextField(max_length=2000, blank=True)
    expiry_warned_for = models.DateField(
        null=True, blank=True, help_text="The protection end the partner was last warned of."
    )
    closed_on = models.DateField(null=True, blank=True, help_text="Won or lost on.")
    won_amount = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    # The coverage assignment the approval created, ended when the registration is lost,
    # withdrawn or expires (none when the partner covered the account already).
    coverage = models.ForeignKey(
        "channels.CoverageAssignment",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        ordering = ["submitted_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=RegistrationStatus.values),
                name="dealregistration_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(size_band__in=SizeBand.values),
                name="dealregistration_size_band_valid",
            ),
            models.CheckConstraint(
                condition=Q(extension_status__in=ExtensionStatus.values),
                name="dealregistration_extension_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(amount__isnull=True) | Q(amount__gte=Decimal(0)),
                name="dealregistration_amount_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(won_amount__isnull=True) | Q(won_amount__gte=Decimal(0)),
                name="dealregistration_won_amount_not_negative",
            ),
            # An approved registration protects an account over a range of days.
            models.CheckConstraint(
                condition=~Q(status=RegistrationStatus.APPROVED)
                | Q(
                    account__isnull=False,
                    protected_from__isnull=False,
                    protected_until__isnull=False,
                    protected_until__gte=F("protected_from"),
                ),
                name="dealregistration_approved_protects_an_account",
            ),
            models.CheckConstraint(
                condition=~Q(status=RegistrationStatus.WON)
                | Q(account__isnull=False, closed_on__isnull=False),
                name="dealregistration_won_has_account_and_date",
            ),
            # At most one approved, protected registration per account at any moment: two
            # managers approving rival registrations at once (or an approval racing an
            # auto-approval) leave one approved; the database refuses the second. A
            # registration past its protection is expired before a rival is approved
            # (registration_approve), so an approved row is a protected one.
            models.UniqueConstraint(
                fields=["account"],
                condition=Q(status=RegistrationStatus.APPROVED),
                name="dealregistration_one_approved_per_account",
            ),
        ]
        indexes = [
            # The manager's queue: a status, oldest first.
            models.Index(
                fields=["status", "submitted_at", "id"], name="dealreg_status_submitted_idx"
            ),
            models.Index(fields=["partner", "status"], name="dealreg_partner_status_idx"),
            # A partner user's submissions of the last hour (the rate limit).
            models.Index(fields=["submitted_by", "submitted_at"], name="dealreg_submitter_idx"),
            models.Index(fields=["account", "status"], name="dealreg_account_status_idx"),
            # Matching and duplicates look companies up by folded name and by domain.
            models.Index(
                fields=["name_key"], condition=~Q(name_key=""), name="dealreg_name_key_idx"
            ),
            models.Index(fields=["domain"], condition=~Q(domain=""), name="dealreg_domain_idx"),
            # The daily expiry and warning walk the approved ones by protection end.
            models.Index(
                fields=["protected_until"],
                condition=Q(status=RegistrationStatus.APPROVED),
                name="dealreg_approved_until_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.external_id} {self.company_name}"

    @property
    def is_open(self) -> bool:
        return self.status not in CLOSED_STATUSES

    @property
    def conflict_codes(self) -> list[str]:
        return [conflict["code"] for conflict in self.conflicts]


class RegistrationEventKind(models.TextChoices):
    SUBMITTED = "submitted", _("Submitted")
    IMPORTED = "imported", _("Imported")
    APPROVED = "approved", _("Approved")
    AUTO_APPROVED = "auto_approved", _("Approved automatically")
    REJECTED = "rejected", _("Rejected")
    WON = "won", _("Won")
    LOST = "lost", _("Lost")
    EXPIRED = "expired", _("Expired")
    WITHDRAWN = "withdrawn", _("Withdrawn")
    EXTENSION_REQUESTED = "extension_requested", _("Extension requested")
    EXTENDED = "extended", _("Protection extended")
    EXTENSION_DECLINED = "extension_declined", _("Extension declined")
    ACCOUNT_LINKED = "account_linked", _("Account linked")
    AUTO_APPROVAL_REFUSED = "auto_approval_refused", _("Not approved automatically")


class DealRegistrationEvent(TimeStamped):
    """One change in a registration's life: who (none: the system), when, what, and why."""

    registration = models.ForeignKey(
        DealRegistration, on_delete=models.CASCADE, related_name="events"
    )
    kind = models.CharField(max_length=32, choices=RegistrationEventKind.choices)
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16, blank=True)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.TextField(max_length=2000, blank=True)
    # A step the system writes keeps its facts, put into words in the reader's language
    # (`registration_text.event_note`); `note` then holds its English sentence.
    facts = models.JSONField(default=dict, blank=True)
    # Internal steps (which account was linked, why auto-approval held back) stay internal.
    partner_visible = models.BooleanField(default=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["registration", "created_at"], name="dealreg_event_reg_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.registration_id} {self.kind}"
