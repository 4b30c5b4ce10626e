from __future__ import annotations

from unittest import mock

import pytest
from django.core import mail
from django.db import transaction

from crm.models import OutboundEmail
from crm.services import email_queue, outbound_email_send, outbound_emails_flush


@pytest.mark.django_db(transaction=True)
class TestOutbox:
    def test_it_sends_after_commit_exactly_once(self) -> None:
        with transaction.atomic():
            email = email_queue(to=["a@example.com"], subject="Hello", body_text="Hi", topic="t")
            assert len(mail.outbox) == 0
        assert len(mail.outbox) == 1 and mail.outbox[0].to == ["a@example.com"]
        email.refresh_from_db()
        assert email.status == OutboundEmail.Status.SENT
        assert outbound_email_send(email_id=email.pk) is False
        assert len(mail.outbox) == 1

    def test_it_sends_nothing_when_the_transaction_rolls_back(self) -> None:
        with pytest.raises(RuntimeError), transaction.atomic():
            email_queue(to=["a@example.com"], subject="Hello", body_text="Hi")
            raise RuntimeError("the change failed")
        assert not OutboundEmail.objects.exists() and not mail.outbox

    def test_it_keeps_the_email_when_the_broker_is_down_and_the_flush_sends_it(self) -> None:
        with mock.patch(
            "crm.tasks.outbound_email_send.delay", side_effect=ConnectionError("broker down")
        ):
            email = email_queue(to=["a@example.com"], subject="Hello", body_text="Hi")
        email.refresh_from_db()
        assert email.status == OutboundEmail.Status.PENDING and not mail.outbox
        assert outbound_emails_flush() == 1
        assert len(mail.outbox) == 1

    def test_it_records_a_mail_server_failure_and_retries_later(self) -> None:
        with mock.patch(
            "django.core.mail.EmailMultiAlternatives.send", side_effect=OSError("smtp down")
        ):
            email = email_queue(to=["a@example.com"], subject="Hello", body_text="Hi")
        email.refresh_from_db()
        assert email.status == OutboundEmail.Status.PENDING
        assert email.attempts == 1 and "smtp down" in email.last_error
        assert outbound_emails_flush() == 1
        email.refresh_from_db()
        assert email.status == OutboundEmail.Status.SENT

    def test_it_skips_an_email_with_no_recipients(self) -> None:
        assert email_queue(to=["", ""], subject="x", body_text="y") is None


def test_it_flushes_the_outbox_on_the_beat_schedule() -> None:
    from crm.celery import app

    entry = app.conf.beat_schedule["outbox-flush"]
    assert entry["task"] == "crm.outbound_emails_flush"
    assert entry["task"] in app.tasks
