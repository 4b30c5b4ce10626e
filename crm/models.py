"""The market core: regions, verticals and the accounts we could sell to.

Channel kinds live here too because an account records the kind of channel that won it,
and this is the lowest layer; `channels` re-exports them.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _


class TimeStamped(models.Model):
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


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


class Region(TimeStamped):
    code = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=200)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Vertical(TimeStamped):
    code = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=200)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


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
                include=["entered_on", "archived_on", "converted_on", "converted_via"],
                name="account_segment_idx",
            ),
            # The account list filters by one dimension and sorts by name: these let the
            # database walk an index in order and stop at the first page.
            models.Index(fields=["name", "id"], name="account_name_idx"),
            models.Index(fields=["entered_on", "id"], name="account_entered_idx"),
            models.Index(fields=["region", "name", "id"], name="account_region_name_idx"),
            models.Index(fields=["vertical", "name", "id"], name="account_vertical_name_idx"),
            models.Index(fields=["size_band", "name", "id"], name="account_size_band_name_idx"),
            # A deal registration looks its company up by name key.
            models.Index(
                fields=["name_key"], condition=~Q(name_key=""), name="account_name_key_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.external_id})"


class OutboundEmail(TimeStamped):
    """An e-mail written in the same transaction as the change that causes it.

    A task sends it after commit; when the broker or the mail server is down the row stays
    pending and the periodic flush sends it later, so no notification is lost or sent twice.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
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
