"""Writes of the market core, and the e-mail outbox every app uses."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.utils import timezone

from crm.models import OutboundEmail

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 10


def email_queue(
    *, to: Sequence[str], subject: str, body_text: str, body_html: str = "", topic: str = ""
) -> OutboundEmail | None:
    """Write an e-mail to the outbox and send it once the surrounding transaction commits.

    Returns None when there is nobody to send to. The row is the promise: if the broker is
    unreachable the e-mail waits for `outbound_emails_flush`.
    """
    recipients = sorted({address for address in to if address})
    if not recipients:
        return None
    email = OutboundEmail.objects.create(
        to=recipients, subject=subject[:255], body_text=body_text, body_html=body_html, topic=topic
    )
    transaction.on_commit(lambda: _enqueue(email.pk))
    return email


def _enqueue(email_id: int) -> None:
    from crm.tasks import outbound_email_send

    try:
        outbound_email_send.delay(email_id)
    except Exception as error:  # noqa: BLE001 - any broker failure: the flush job delivers it later
        logger.warning("outbox: e-mail %s stays pending, broker unavailable: %s", email_id, error)


def outbound_email_send(*, email_id: int) -> bool:
    """Send one pending e-mail; True when sent now, False when already sent or it failed.

    Locks the row so two workers never send the same e-mail; records the error and leaves it
    pending (up to MAX_ATTEMPTS) when the mail server refuses.
    """
    with transaction.atomic():
        email = OutboundEmail.objects.select_for_update().filter(pk=email_id).first()
        if email is None or email.status != OutboundEmail.Status.PENDING:
            return False
        message = EmailMultiAlternatives(
            subject=email.subject,
            body=email.body_text,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=list(email.to),
        )
        if email.body_html:
            message.attach_alternative(email.body_html, "text/html")
        email.attempts += 1
        try:
            message.send()
        except Exception as error:  # noqa: BLE001 - SMTP, DNS and socket errors alike
            email.last_error = str(error)[:2000]
            if email.attempts >= MAX_ATTEMPTS:
                email.status = OutboundEmail.Status.FAILED
            email.save(update_fields=["attempts", "last_error", "status", "updated_at"])
            logger.warning(
                "outbox: e-mail %s not sent (attempt %s): %s", email.pk, email.attempts, error
            )
            return False
        email.status = OutboundEmail.Status.SENT
        email.sent_at = timezone.now()
        email.last_error = ""
        email.save(update_fields=["attempts", "status", "sent_at", "last_error", "updated_at"])
        return True


def outbound_emails_flush(*, limit: int = 500) -> int:
    """Send pending e-mails, oldest first; returns how many were sent."""
    pending = OutboundEmail.objects.filter(status=OutboundEmail.Status.PENDING).order_by(
        "created_at"
    )
    return sum(
        outbound_email_send(email_id=pk) for pk in pending.values_list("pk", flat=True)[:limit]
    )
