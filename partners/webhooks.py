"""Webhooks: registration and agreement status changes POSTed to integrators' HTTPS endpoints.

A change writes one `WebhookDelivery` per subscribed endpoint in its own transaction (so a
rolled-back change sends nothing and a committed one is never lost), and the delivery task is
queued after commit. Each attempt POSTs the JSON body with two headers:

    X-CRM-Timestamp: 1767225600
    X-CRM-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" keyed with the secret>

A receiver recomputes the signature over the raw body and refuses timestamps older than a few
minutes (README, "Webhooks"). A failed attempt (no 2xx answer, a timeout, a TLS error) is
retried with exponential backoff, MAX_ATTEMPTS in all; a delivery still pending when its time
comes (a lost retry, the broker down) is picked up by the periodic flush. An endpoint whose host
is or resolves to an address webhooks are not sent to (`partners.webhook_addresses`: loopback,
private, link-local...) is refused at registration and its deliveries fail at once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.enqueue import task_enqueue
from partners.webhook_addresses import (
    AddressRefused,
    host_refusal,
    pinned_handlers,
    receiver_address,
)
from partners.webhook_models import DeliveryStatus, WebhookDelivery, WebhookEndpoint, WebhookEvent

if TYPE_CHECKING:
    from partners.models import Agreement

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
LONGEST_RETRY_SECONDS = 3600
SECRET_MIN_LENGTH = 16
EARLY_GRACE = timedelta(seconds=5)
SIGNATURE_HEADER = "X-CRM-Signature"
TIMESTAMP_HEADER = "X-CRM-Timestamp"
SUBSCRIBABLE = (WebhookEvent.REGISTRATION_STATUS, WebhookEvent.AGREEMENT_STATUS)


def webhook_signature(*, secret: str, timestamp: int, body: bytes) -> str:
    """The value of the signature header: "sha256=" and the hex HMAC-SHA256, keyed with
    `secret`, of the timestamp, a dot and the raw body."""
    message = str(timestamp).encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def retry_delay(attempts: int) -> int:
    """Seconds to wait after the `attempts`-th failed attempt: WEBHOOK_FIRST_RETRY_SECONDS
    (30 s), doubling, at most an hour (the eight attempts span about two hours)."""
    first: int = settings.WEBHOOK_FIRST_RETRY_SECONDS
    return min(first << max(attempts - 1, 0), LONGEST_RETRY_SECONDS)  # doubled per failure


# Endpoints ---------------------------------------------------------------------------------------


def _validate_url(url: str) -> None:
    schemes = ["https", "http"] if settings.WEBHOOK_ALLOW_HTTP else ["https"]
    try:
        URLValidator(schemes=schemes)(url)
    except ValidationError:
        scheme = urlsplit(url).scheme
        if scheme == "http" and not settings.WEBHOOK_ALLOW_HTTP:
            message = _("Webhooks are sent over HTTPS only; use an https:// address.")
        else:
            message = _("Enter the full address of the endpoint, e.g. https://example.com/hooks.")
        raise ValidationError({"url": message}) from None
    host = urlsplit(url).hostname or ""
    if host_refusal(host) is not None:
        message = _(
            "Webhooks are not sent to %(host)s: it is a loopback, private, link-local or "
            "multicast address. Use the endpoint's public address."
        ) % {"host": host}
        raise ValidationError({"url": message})


@transaction.atomic
def webhook_endpoint_create(
    *, url: str, secret: str, events: list[str], description: str = "", by: User
) -> WebhookEndpoint:
    """Register an endpoint for `events`. Raises ValidationError for an address that is not
    HTTPS (unless settings.WEBHOOK_ALLOW_HTTP) or is a loopback, private, link-local or
    multicast IP address or a localhost name (`partners.webhook_addresses`), a secret shorter
    than SECRET_MIN_LENGTH or no known event."""
    url = url.strip()
    _validate_url(url)
    errors: dict[str, str] = {}
    if len(secret) < SECRET_MIN_LENGTH:
        errors["secret"] = _(
            "Use a secret of at least %(count)s characters; the receiver keeps the same."
        ) % {"count": SECRET_MIN_LENGTH}
    chosen = [event for event in SUBSCRIBABLE if event in events]
    if not chosen or len(chosen) != len(set(events)):
        errors["events"] = _("Choose the events to send: %(events)s.") % {
            "events": ", ".join(str(event.label) for event in SUBSCRIBABLE)
        }
    if errors:
        raise ValidationError(errors)
    endpoint = WebhookEndpoint(
        url=url, secret=secret, events=chosen, description=description.strip(), created_by=by
    )
    endpoint.full_clean()
    endpoint.save()
    return endpoint


@transaction.atomic
def webhook_endpoint_set_active(*, endpoint: WebhookEndpoint, active: bool) -> WebhookEndpoint:
    """Pause or resume an endpoint: a paused one gets no new deliveries."""
    endpoint.is_active = active
    endpoint.save(update_fields=["is_active", "updated_at"])
    return endpoint


# Publishing ---------------------------------------------------------------------------------------


def webhook_subscribers(*, event: str) -> list[WebhookEndpoint]:
    """The active endpoints subscribed to `event`."""
    return [e for e in WebhookEndpoint.objects.filter(is_active=True) if event in e.events]


def webhook_publish(
    *, event: str, data: dict[str, Any], endpoints: list[WebhookEndpoint] | None = None
) -> int:
    """Write a delivery of `event` for each active endpoint subscribed to it (or for
    `endpoints`) in the current transaction, and queue their delivery once it commits.
    Returns how many deliveries were written."""
    now = timezone.now()
    targets = endpoints if endpoints is not None else webhook_subscribers(event=event)
    if not targets:
        return 0
    deliveries = [
        WebhookDelivery(endpoint=endpoint, event=event, next_attempt_at=now) for endpoint in targets
    ]
    event_id = deliveries[0].event_id
    payload = json.loads(
        json.dumps(
            {"id": str(event_id), "event": event, "created_at": now, "data": data},
            cls=DjangoJSONEncoder,
        )
    )
    for delivery in deliveries:
        delivery.event_id = event_id
        delivery.payload = payload
    WebhookDelivery.objects.bulk_create(deliveries)
    ids = [delivery.pk for delivery in deliveries]
    transaction.on_commit(lambda: _enqueue(ids))
    return len(deliveries)


def _enqueue(delivery_ids: list[int]) -> None:
    for delivery_id in delivery_ids:
        try:
            task_enqueue("partners.webhook_deliver", delivery_id)
        except Exception as error:  # noqa: BLE001 - any broker failure: the flush job sends it
            logger.warning("webhook delivery %s waits for the flush: %s", delivery_id, error)


# Delivering ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryOutcome:
    """What one call to `webhook_deliver` did; `retry_in` is set when another attempt is due."""

    attempted: bool
    delivered: bool = False
    retry_in: int | None = None


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not a delivery: following it would post the signed event to
    an address nobody registered."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _ssl_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    if settings.WEBHOOK_CA_FILE:
        context.load_verify_locations(cafile=settings.WEBHOOK_CA_FILE)
    return context


def _post(url: str, *, body: bytes, headers: dict[str, str]) -> tuple[int | None, str]:
    """POST `body` to the address the URL's host resolves to, if webhooks may be sent there;
    returns the HTTP status (None when none came back) and an error text. Raises
    AddressRefused when the host resolves only to refused addresses."""
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        address = receiver_address(parts.hostname or "", port)
    except (OSError, ValueError) as error:  # the name does not resolve (yet): retried
        return None, str(error)[:2000] or error.__class__.__name__
    opener = urllib.request.build_opener(_NoRedirects(), *pinned_handlers(address, _ssl_context()))
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with opener.open(request, timeout=settings.WEBHOOK_TIMEOUT_SECONDS) as response:
            return response.status, ""
    except urllib.error.HTTPError as error:
        return error.code, f"HTTP {error.code} {error.reason}"
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        return None, str(reason)[:2000] or error.__class__.__name__


def webhook_deliver(*, delivery_id: int, now: datetime | None = None) -> DeliveryOutcome:
    """Make one attempt at a pending delivery that is due.

    Locks the row, so two workers never post the same attempt. A 2xx answer marks it delivered;
    anything else records the status or error and schedules the next attempt (`retry_in`), or
    marks it failed after MAX_ATTEMPTS. An endpoint whose host resolves only to refused
    addresses (`partners.webhook_addresses`) is not posted to: the delivery fails at once, with
    the reason as its error (a manager may send it again once the address is fixed). A delivery
    not pending, not due, or of a paused endpoint is left alone.
    """
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update()
            .select_related("endpoint")
            .filter(pk=delivery_id)
            .first()
        )
        now = now or timezone.now()
        if delivery is None or delivery.status != DeliveryStatus.PENDING:
            return DeliveryOutcome(attempted=False)
        # A retry's countdown may fire a moment early; a few seconds' grace spares it a wait
        # for the flush.
        if delivery.next_attempt_at > now + EARLY_GRACE or not delivery.endpoint.is_active:
            return DeliveryOutcome(attempted=False)
        body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Channel-CRM-Webhooks/1",
            "X-CRM-Event": delivery.event,
            "X-CRM-Delivery": str(delivery.event_id),
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: webhook_signature(
                secret=delivery.endpoint.secret, timestamp=timestamp, body=body
            ),
        }
        try:
            status, error = _post(delivery.endpoint.url, body=body, headers=headers)
            refused = False
        except AddressRefused as refusal:
            status, error, refused = None, str(refusal), True
        delivery.attempts += 1
        delivery.last_attempt_at = timezone.now()
        delivery.response_status = status
        fields = [
            "attempts",
            "last_attempt_at",
            "response_status",
            "last_error",
            "status",
            "next_attempt_at",
            "delivered_at",
            "updated_at",
        ]
        if status is not None and 200 <= status < 300:
            delivery.status = DeliveryStatus.DELIVERED
            delivery.delivered_at = delivery.last_attempt_at
            delivery.last_error = ""
            delivery.save(update_fields=fields)
            return DeliveryOutcome(attempted=True, delivered=True)
        delivery.last_error = error or f"HTTP {status}"
        if delivery.attempts >= MAX_ATTEMPTS or refused:
            delivery.status = DeliveryStatus.FAILED
            delivery.save(update_fields=fields)
            logger.warning("webhook delivery %s failed for good: %s", delivery.pk, error)
            return DeliveryOutcome(attempted=True)
        delay = retry_delay(delivery.attempts)
        delivery.next_attempt_at = delivery.last_attempt_at + timedelta(seconds=delay)
        delivery.save(update_fields=fields)
        return DeliveryOutcome(attempted=True, retry_in=delay)


def webhook_deliveries_flush(*, now: datetime | None = None, limit: int = 500) -> int:
    """Queue the pending deliveries whose next attempt is due (retries lost with a worker, or
    never queued while the broker was down); returns how many were queued."""
    now = now or timezone.now()
    due = list(
        WebhookDelivery.objects.filter(
            status=DeliveryStatus.PENDING, next_attempt_at__lte=now, endpoint__is_active=True
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    _enqueue(due)
    return len(due)


@transaction.atomic
def webhook_redeliver(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a failed (or delivered) event again: the same payload, a fresh set of attempts.
    Raises ValidationError while the delivery is still pending."""
    delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
    if delivery.status == DeliveryStatus.PENDING:
        raise ValidationError(_("This delivery is still being attempted."))
    delivery.status = DeliveryStatus.PENDING
    delivery.attempts = 0
    delivery.next_attempt_at = timezone.now()
    delivery.save(update_fields=["status", "attempts", "next_attempt_at", "updated_at"])
    transaction.on_commit(lambda: _enqueue([delivery.pk]))
    return delivery


@transaction.atomic
def webhook_ping(*, endpoint: WebhookEndpoint) -> WebhookDelivery:
    """Send a test event to one active endpoint. Raises ValidationError for a paused one."""
    if not endpoint.is_active:
        raise ValidationError(_("This endpoint is paused; resume it to send events to it."))
    webhook_publish(
        event=WebhookEvent.PING,
        data={"message": "A test event from Channel CRM."},
        endpoints=[endpoint],
    )
    return endpoint.deliveries.order_by("-id").first()  # type: ignore[return-value]


def webhook_agreement_status(
    *, agreement: Agreement, previous: str, endpoints: list[WebhookEndpoint] | None = None
) -> int:
    """Announce an agreement's new status (a new draft has `previous` "") to the endpoints
    subscribed (or to `endpoints`, when the caller announces many and looked them up once)."""
    return webhook_publish(
        endpoints=endpoints,
        event=WebhookEvent.AGREEMENT_STATUS,
        data={
            "agreement": {
                "id": agreement.pk,
                "external_id": agreement.external_id,
                "partner": agreement.partner.external_id,
                "status": agreement.status,
                "previous_status": previous,
                "start_date": agreement.start_date,
                "end_date": agreement.end_date,
                "signed_on": agreement.signed_on,
                "terminated_on": agreement.terminated_on,
            }
        },
    )
