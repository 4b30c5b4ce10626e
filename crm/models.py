"""The market core: regions, verticals and the accounts we could sell to.

Channel kinds live here too because an account records the kind of channel that won it,
and this is the lowest layer; `channels` re-exports them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.db.models.constraints import BaseConstraint
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from crm.check_constraints import checked_in_python
from crm.currencies import is_currency_code

# The dates a contract may carry. Anything outside is a typing slip (0001-01-01, 9999-12-31),
# and the date arithmetic of renewals and reports needs room on both sides.
EARLIEST_DATE = date(1900, 1, 1)
LATEST_DATE = date(2199, 12, 31)


def validate_business_date(value: date) -> None:
    """Refuse a date outside EARLIEST_DATE..LATEST_DATE with a message naming the range."""
    if not EARLIEST_DATE <= value <= LATEST_DATE:
        raise ValidationError(
            f"Give a date between {EARLIEST_DATE.isoformat()} and {LATEST_DATE.isoformat()}.",
            code="date_range",
        )


class TimeStamped(models.Model):
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True

    def get_constraints(self) -> list[tuple[type[models.Model], Sequence[BaseConstraint]]]:
        """The model's constraints, its check constraints validated in Python where that is
        exact instead of by a query each (crm.check_constraints)."""
        return checked_in_python(super().get_constraints())


class SizeBand(models.TextChoices):
    SMB = "smb", _("SMB")
    MID_MARKET = "mid_market", _("Mid-market")
    ENTERPRISE = "enterprise", _("Enterprise")
    STRATEGIC = "strategic", _("Strategic")


class ChannelKind(models.TextChoices):
    DIRECT = "direct", _("Direct sales")
    DISTRIBUTION = "distribution", _("Distribution")
    PARTNER = "partner", _("Partner")
    ONLINE = "online", _("Online")


# One bit per channel kind in `Account.coverage_kinds`.
CHANNEL_KIND_BITS: dict[str, int] = {
    ChannelKind.DIRECT: 1,
    ChannelKind.DISTRIBUTION: 2,
    ChannelKind.PARTNER: 4,
    ChannelKind.ONLINE: 8,
}


def localized_name(name: str, name_zh: str) -> str:
    """The name a reader of the active language knows: the Chinese name for Chinese readers
    when there is one, the name otherwise."""
    if name_zh and (get_language() or "").lower().startswith("zh"):
        return name_zh
    return name


class Region(TimeStamped):
    code = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=200)
    name_zh = models.CharField(
        _("Chinese name"),
        max_length=200,
        blank=True,
        help_text=_("Shown to readers of Simplified Chinese; the name when blank."),
    )
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        return localized_name(self.name, self.name_zh)


class Vertical(TimeStamped):
    code = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=200)
    name_zh = models.CharField(
        _("Chinese name"),
        max_length=200,
        blank=True,
        help_text=_("Shown to readers of Simplified Chinese; the name when blank."),
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        return localized_name(self.name, self.name_zh)


COVERAGE_KINDS_COLUMNS = ["coverage_kinds", "coverage_kinds_from", "coverage_kinds_until"]


class Account(TimeStamped):
    external_id = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=255)
    # The name folded for matching (crm.names.company_name_key): whoever writes the name writes
    # this too (the market import, the demo, an account created for a deal registration).
    name_key = models.CharField(max_length=255, blank=True, default="")
    # No single-column indexes: (region, vertical, size_band) and (vertical, name, id) below
    # lead with these columns, and every extra index slows the million-row import.
    region = models.ForeignKey(
        Region, on_delete=models.PROTECT, related_name="accounts", db_index=False
    )
    vertical = models.ForeignKey(
        Vertical, on_delete=models.PROTECT, related_name="accounts", db_index=False
    )
    size_band = models.CharField(max_length=16, choices=SizeBand.choices)
    entered_on = models.DateField(help_text="The day the account entered the market list.")
    archived_on = models.DateField(null=True, blank=True)
    converted_on = models.DateField(
        null=True, blank=True, help_text="The day it became a customer."
    )
    converted_via = models.CharField(
        max_length=16,
        choices=ChannelKind.choices,
        blank=True,
        help_text="The channel kind that won it.",
    )
    # The channel kinds whose coverage counts for the account (docs/metrics.md rule 3), one bit
    # each (`CHANNEL_KIND_BITS`), on every day from `coverage_kinds_from` through
    # `coverage_kinds_until` (none: for good). Kept by `partners.coverage_kinds` whenever
    # coverage, an agreement or the account's segment changes, so that the account lists count
    # covered accounts and white space without testing every assignment. A missing
    # `coverage_kinds_from` means not known: readers then test the assignments themselves.
    coverage_kinds = models.PositiveSmallIntegerField(default=0, db_default=0)
    coverage_kinds_from = models.DateField(null=True, blank=True)
    coverage_kinds_until = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(size_band__in=SizeBand.values), name="account_size_band_valid"
            ),
            models.CheckConstraint(
                condition=Q(archived_on__isnull=True) | Q(archived_on__gte=F("entered_on")),
                name="account_archived_not_before_entered",
            ),
            models.CheckConstraint(
                condition=(
                    Q(converted_on__isnull=True, converted_via="")
                    | Q(converted_on__isnull=False, converted_via__in=ChannelKind.values)
                ),
                name="account_converted_via_iff_converted_on",
            ),
        ]
        indexes = [
            # The segment counts group in-market accounts by (region, vertical, size band);
            # the included dates let PostgreSQL answer from the index alone.
            models.Index(
                fields=["region", "vertical", "size_band"],
                include=[
                    "entered_on",
                    "archived_on",
                    "converted_on",
                    "converted_via",
                    *COVERAGE_KINDS_COLUMNS,
                ],
                name="account_segment_idx",
            ),
            # The account list filters by one dimension and sorts by name: these let the
            # database walk an index in order and stop at the first page. The included dates
            # and coverage kinds (and the segment, which the coverage filter's agreement test
            # reads) let it test the in-market and coverage filters and count the matches
            # from the index alone.
            models.Index(fields=["name", "id"], name="account_name_idx"),
            models.Index(fields=["entered_on", "id"], name="account_entered_idx"),
            *(
                models.Index(
                    fields=[dimension, "name", "id"],
                    include=[*others, "entered_on", "archived_on", *COVERAGE_KINDS_COLUMNS],
                    name=f"account_{dimension}_name_idx",
                )
                for dimension, others in (
                    ("region", ["vertical"]),
                    ("vertical", ["region"]),
                    ("size_band", ["region", "vertical"]),
                )
            ),
            # A deal registration looks its company up by name key.
            models.Index(
                fields=["name_key"], condition=~Q(name_key=""), name="account_name_key_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.external_id})"


class CurrencyRate(TimeStamped):
    """The value of one unit of `currency` in the reporting currency (settings.
    REPORTING_CURRENCY) from `valid_from` on, until the currency's next rate (docs/metrics.md
    rule 10). The reporting currency has no rows: its rate is always 1."""

    currency = models.CharField(max_length=3, help_text="ISO 4217 code, e.g. EUR.")
    valid_from = models.DateField(validators=[validate_business_date])
    rate_to_reporting = models.DecimalField(
        max_digits=20,
        decimal_places=10,
        help_text="One unit of the currency in the reporting currency, e.g. 1.0850000000.",
    )

    class Meta:
        ordering = ["currency", "valid_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["currency", "valid_from"], name="currencyrate_one_per_day"
            ),
            models.CheckConstraint(
                condition=Q(rate_to_reporting__gt=0),
                name="currencyrate_positive",
                violation_error_message="A rate is more than 0.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.currency} {self.valid_from.isoformat()} {self.rate_to_reporting}"

    def clean(self) -> None:
        if not is_currency_code(self.currency):
            raise ValidationError(
                {"currency": f"{self.currency!r} is not an ISO 4217 currency code."}
            )
        if self.currency == settings.REPORTING_CURRENCY:
            raise ValidationError(
                {
                    "currency": f"{self.currency} is the reporting currency: its rate is always 1 "
                    "and is not stored."
                }
            )


class OutboundEmail(TimeStamped):
    """An e-mail written in the same transaction as the change that causes it.

    A task sends it after commit; when the broker or the mail server is down the row stays
    pending and the periodic flush sends it later, so no notification is lost or sent twice.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Being sent"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    to = models.JSONField(help_text="List of recipient addresses.")
    subject = models.CharField(max_length=255)
    body_text = models.TextField()
    body_html = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    claimed_until = models.DateTimeField(
        null=True, blank=True, help_text="While being sent: when another sender may take over."
    )
    topic = models.CharField(
        max_length=64, blank=True, help_text="What caused it, e.g. feedback-reply."
    )

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["status", "created_at"], name="outbound_email_status_idx")]

    def __str__(self) -> str:
        return f"{self.subject} → {', '.join(self.to)}"


class AuditEvent(models.Model):
    """Who did what security-relevant thing, from where and when. Never a password or a
    session id."""

    class Kind(models.TextChoices):
        LOGIN = "login", "Login"
        LOGOUT = "logout", "Logout"
        LOGIN_FAILED = "login_failed", "Login failed"
        LOCKED_OUT = "locked_out", "Locked out"
        PERMISSION_DENIED = "permission_denied", "Permission denied"
        NOT_FOUND = "not_found", "Not found for a partner user"
        PASSWORD_CHANGED = "password_changed", "Password changed"
        TOKEN_ISSUED = "token_issued", "API token issued"
        TOKEN_REVOKED = "token_revoked", "API token revoked"

    kind = models.CharField(max_length=32, choices=Kind.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    username = models.CharField(max_length=150, blank=True)
    # An upward reference by name: partners sit above this layer.
    partner = models.ForeignKey(
        "partners.Partner", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    path = models.CharField(max_length=500, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["kind", "created_at"], name="audit_kind_created_idx")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.kind} {self.username}"


class ApiToken(models.Model):
    """A key for the REST API (`Authorization: Token <key>`). The key is shown once, when it is
    issued; only its SHA-256 digest is kept, so the table leaks no working key.

    It stops working when revoked (deleted), when its user's password changes (the password
    fingerprint no longer matches), after settings.API_TOKEN_IDLE_DAYS unused, and whenever
    its user may no longer sign in (deactivated, or a deactivated partner's user).
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    digest = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=8, help_text="The key's first characters, to tell it.")
    password_fingerprint = models.CharField(max_length=128)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "last_used_at"], name="api_token_user_used_idx")]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"


class PasswordResetRequest(models.Model):
    """Someone asked for a password-reset e-mail to this address. The request only writes this
    row, whatever the address; a worker finds the users and writes the e-mails to the outbox,
    so the answer neither waits on the mail server nor tells which addresses have a login."""

    email = models.EmailField()
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    language = models.CharField(
        max_length=16, blank=True, help_text="The language the e-mail is written in."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # The rate limits count the last hour by address and by client.
            models.Index(fields=["email", "created_at"], name="reset_email_created_idx"),
            models.Index(fields=["ip_address", "created_at"], name="reset_client_created_idx"),
            models.Index(
                fields=["created_at"],
                condition=Q(processed_at__isnull=True),
                name="reset_unprocessed_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.email}"


class SubmissionKey(models.Model):
    """A write that was done once: a form's one-time token or an API client's
    Idempotency-Key, per user. The unique key makes a second submission (one after the other
    or at the same moment) find the first and answer as it did, instead of writing again."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(
        max_length=64,
        blank=True,
        help_text="What was asked (API): the same key for another request is refused.",
    )
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    answer = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="submission_key_once_per_user")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.key}"
