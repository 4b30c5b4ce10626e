from __future__ import annotations

import socket
import threading
from typing import Any
from unittest import mock

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.db import connections, transaction

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
            "crm.tasks.outbound_email_send.apply_async", side_effect=ConnectionError("broker down")
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


class RecordingBackend(BaseEmailBackend):
    """Records, for each message, whether a database transaction was open while sending."""

    in_transaction: list[bool] = []

    def send_messages(self, email_messages: Any) -> int:
        RecordingBackend.in_transaction.append(transaction.get_connection().in_atomic_block)
        return len(email_messages)


@pytest.mark.django_db(transaction=True)
def test_it_talks_to_the_mail_server_with_no_transaction_open(settings: Any) -> None:
    settings.EMAIL_BACKEND = "tests.crm.test_outbox.RecordingBackend"
    RecordingBackend.in_transaction = []
    with mock.patch("crm.tasks.outbound_email_send.apply_async"):
        email = email_queue(to=["a@example.com"], subject="Hello", body_text="Hi")
    assert outbound_email_send(email_id=email.pk) is True
    assert outbound_emails_flush() == 0  # sent once
    assert RecordingBackend.in_transaction == [False]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_silent_mail_server_locks_nothing_while_the_sender_waits(settings: Any) -> None:
    """A mail server that accepts and never answers: the sender waits out EMAIL_TIMEOUT, and
    meanwhile the e-mail's row and every other write stay free."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = listener.getsockname()
    settings.EMAIL_USE_TLS, settings.EMAIL_TIMEOUT = False, 5
    with mock.patch("crm.tasks.outbound_email_send.apply_async"):
        email = email_queue(to=["a@example.com"], subject="Hello", body_text="Hi")
    accepted: list[socket.socket] = []

    def accept() -> None:
        accepted.append(listener.accept()[0])

    acceptor = threading.Thread(target=accept)
    acceptor.start()

    def send() -> None:
        try:
            outbound_email_send(email_id=email.pk)
        finally:
            connections.close_all()

    sender = threading.Thread(target=send)
    sender.start()
    acceptor.join(timeout=10)
    try:
        assert accepted, "the sender never reached the mail server"
        with transaction.atomic():
            # Raises at once if the sender held the row while it waits on the server.
            row = OutboundEmail.objects.select_for_update(nowait=True).get(pk=email.pk)
            row.save(update_fields=["updated_at"])
        assert sender.is_alive(), "the write waited for the mail server's timeout"
    finally:
        sender.join(timeout=15)
        for connection in accepted:
            connection.close()
        listener.close()
    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.PENDING and "timed out" in email.last_error


@pytest.mark.django_db
def test_housekeeping_deletes_what_no_longer_serves_on_the_beat_schedule(cast: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from crm.celery import app
    from crm.models import ApiToken, PasswordResetRequest, SubmissionKey
    from crm.services import api_token_issue, housekeeping

    now = timezone.now()
    stale, fresh = api_token_issue(user=cast.manager)[0], api_token_issue(user=cast.executive)[0]
    ApiToken.objects.filter(pk=stale.pk).update(last_used_at=now - timedelta(days=365))
    old_key = SubmissionKey.objects.create(user=cast.manager, key="form:old")
    SubmissionKey.objects.filter(pk=old_key.pk).update(created_at=now - timedelta(days=3))
    SubmissionKey.objects.create(user=cast.manager, key="form:new")
    done = PasswordResetRequest.objects.create(email="a@example.com", processed_at=now)
    PasswordResetRequest.objects.filter(pk=done.pk).update(created_at=now - timedelta(days=3))
    PasswordResetRequest.objects.create(email="b@example.com")

    assert housekeeping() == {"api_tokens": 1, "submission_keys": 1, "password_resets": 1}
    assert list(ApiToken.objects.values_list("pk", flat=True)) == [fresh.pk]
    assert list(SubmissionKey.objects.values_list("key", flat=True)) == ["form:new"]
    assert list(PasswordResetRequest.objects.values_list("email", flat=True)) == ["b@example.com"]
    app.loader.import_default_modules()  # the tasks modules, as a worker loads them
    assert app.conf.beat_schedule["crm-housekeeping"]["task"] in app.tasks
