"""Webhooks: HTTPS endpoints of integrators and every delivery made to them.

Loaded by `partners.models`; signing and delivery are in `partners.webhooks`.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from crm.models import TimeStamped


class WebhookEvent(models.TextChoices):
    REGISTRATION_STATUS = "deal_registration.status_changed", _("Deal registration status changed")
    AGREEMENT_STATUS = "agreement.status_changed", _("Agreement status changed")
    PING = "ping", _("Test event")


class WebhookEndpoint(TimeStamped):
    url = models.URLField(max_length=500)
    # Shared with the receiver, who checks each delivery's HMAC-SHA256 signature with it.
    secret = models.CharField(max_length=128)
    description = models.CharField(max_length=200, blank=True)
    events = models.JSONField(default=list, help_text="The event types sent to this endpoint.")
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["url", "id"]

    def __str__(self) -> str:
        return self.url

    @property
    def secret_hint(self) -> str:
        """The last four characters, enough to tell two secrets apart on a page."""
        return f"…{self.secret[-4:]}"

    @property
    def event_labels(self) -> list[str]:
        """The events it receives, named in the reader's language."""
        labels = dict(WebhookEvent.choices)
        return [str(labels.get(event, event)) for event in self.events]


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    DELIVERED = "delivered", _("Delivered")
    FAILED = "failed", _("Failed")


class WebhookDelivery(TimeStamped):
    """One event for one endpoint, written in the transaction of the change it reports; the
    delivery task POSTs it, retrying with backoff until the endpoint answers 2xx or the attempts
    run out."""

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    event_id = models.UUIDField(default=uuid.uuid4, help_text="The same for every endpoint.")
    event = models.CharField(max_length=64)
    payload = models.JSONField()
    status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    response_status = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=DeliveryStatus.values), name="webhookdelivery_status_valid"
            ),
        ]
        indexes = [
            # The flush job picks the pending deliveries that are due.
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status=DeliveryStatus.PENDING),
                name="webhookdelivery_due_idx",
            ),
            models.Index(fields=["endpoint", "created_at"], name="webhookdelivery_endpoint_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.endpoint_id} ({self.status})"

    @property
    def event_label(self) -> str:
        return str(dict(WebhookEvent.choices).get(self.event, self.event))
