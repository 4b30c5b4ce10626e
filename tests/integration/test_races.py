"""Two requests at once: the rules the numbers rest on hold on PostgreSQL.

SQLite serialises writers and hides these races, so every case here runs on PostgreSQL only:
conflicting requests are fired at the same moment through the whole app (Django's test client,
one thread and one database connection per request), many times, and exactly one of them must
win while the other gets the message it would get one after the other.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from celery import _state as celery_state
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, connections
from django.test import Client
from django.utils import timezone

from channels.models import CoverageAssignment
from crm.models import ChannelKind, OutboundEmail
from partners.models import Agreement, AgreementStatus, Feedback, PartnerUser
from partners.registration_models import DealRegistration
from partners.services import FEEDBACK_PER_HOUR, invitation_path
from tests.cast import Cast
from tests.factories import (
    AccountFactory,
    AgreementFactory,
    FeedbackFactory,
    PartnerFactory,
    PartnerUserFactory,
    RegionFactory,
    VerticalFactory,
)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PDF = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
# Repetitions per race: each pair is fired this many times with fresh objects. Before the fixes
# most pairs raced through in well over half of the tries.
TRIES = 10


def fire_together(*calls: Callable[[], Any]) -> list[Any]:
    """Run each call in its own thread (its own database connection), released together;
    their results in the order given. Each thread closes its connection when done."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(index: int, call: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = call()
        except BaseException as error:  # noqa: BLE001 - re-raised in the test's thread below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(index, call)) for index, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    if errors:
        raise errors[0]
    return results


def signed_in(user: Any) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


@pytest.fixture(autouse=True)
def _postgres_only() -> Iterator[None]:
    assert connection.vendor == "postgresql", "these races only show on PostgreSQL"
    yield


@pytest.fixture(autouse=True)
def _celery_join_flag_restored() -> Iterator[None]:
    """Tasks run eagerly in the test process, and Celery marks "inside a task" in one global
    flag that it saves and restores around each eager run: two threads doing so at once can
    leave it set, and later tests would be refused result.get(). Put it back."""
    before = celery_state.task_join_will_block()
    yield
    celery_state._set_task_join_will_block(before)


# Exclusive agreements ---------------------------------------------------------------------------


def test_it_activates_only_one_of_two_overlapping_exclusive_agreements(cast: Cast) -> None:
    manager = signed_in(cast.manager)
    today = timezone.localdate()
    outcomes = []
    for attempt in range(TRIES):
        region = RegionFactory(code=f"EXR{attempt}")
        vertical = VerticalFactory(code=f"EXV{attempt}")
        drafts = [
            AgreementFactory(
                partner=PartnerFactory(),
                status=AgreementStatus.DRAFT,
                signed_on=None,
                exclusive=True,
                start_date=today + timedelta(days=offset),
                end_date=today + timedelta(days=200 + offset),
                regions=[region],
                verticals=[vertical],
            )
            for offset in (0, 30)
        ]
        clients = [signed_in(cast.manager), manager]

        def activate(draft: Agreement, client: Client) -> Any:
            return client.post(
                f"/api/v1/agreements/{draft.pk}/activate/",
                {
                    "signed_on": today.isoformat(),
                    "signed_document": SimpleUploadedFile("signed.pdf", PDF),
                },
            )

        answers = fire_together(
            *(
                lambda d=draft, c=client: activate(d, c)
                for draft, client in zip(drafts, clients, strict=True)
            )
        )
        statuses = sorted(answer.status_code for answer in answers)
        active = Agreement.objects.filter(pk__in=[d.pk for d in drafts], status="active").count()
        outcomes.append((statuses, active))
        loser = next((a for a in answers if a.status_code == 400), None)
        if loser is not None:
            assert "overlaps" in loser.json()["non_field_errors"][0]
    assert outcomes == [([200, 400], 1)] * TRIES


# Coverage ---------------------------------------------------------------------------------------


def test_it_assigns_an_account_once_when_two_api_requests_overlap(cast: Cast) -> None:
    today = timezone.localdate()
    outcomes = []
    for _ in range(TRIES):
        account = AccountFactory()

        def assign(start: date, account: Any = account) -> Any:
            return signed_in(cast.manager).post(
                "/api/v1/coverage/",
                {
                    "accounts": [account.pk],
                    "kind": ChannelKind.PARTNER,
                    "partner": cast.partner_a.pk,
                    "start_date": start.isoformat(),
                },
                content_type="application/json",
            )

        answers = fire_together(lambda: assign(today), lambda: assign(today + timedelta(days=1)))
        rows = CoverageAssignment.objects.filter(account=account).count()
        outcomes.append(
            (
                [answer.status_code for answer in answers],
                sorted(answer.json()["created"] for answer in answers),
                rows,
            )
        )
    assert outcomes == [([201, 201], [0, 1], 1)] * TRIES


def test_it_assigns_an_account_once_when_two_bulk_forms_overlap(cast: Cast) -> None:
    today = timezone.localdate()
    outcomes = []
    for _ in range(TRIES):
        account = AccountFactory()

        def assign(start: date, account: Any = account) -> Any:
            return signed_in(cast.manager).post(
                "/workspace/coverage/assign/",
                {
                    "scope": "selected",
                    "account": [str(account.pk)],
                    "kind": ChannelKind.DIRECT,
                    "rep": str(cast.rep.pk),
                    "start_date": start.isoformat(),
                },
            )

        answers = fire_together(lambda: assign(today), lambda: assign(today - timedelta(days=1)))
        rows = CoverageAssignment.objects.filter(account=account).count()
        outcomes.append(([answer.status_code for answer in answers], rows))
    assert outcomes == [([302, 302], 1)] * TRIES


# Feedback limit ---------------------------------------------------------------------------------


def test_it_keeps_the_hourly_feedback_limit_under_parallel_submissions(cast: Cast) -> None:
    extra = 10
    clients = [signed_in(cast.partner_a_user) for _ in range(FEEDBACK_PER_HOUR + extra)]

    def submit(client: Client, number: int) -> Any:
        return client.post(
            "/api/v1/feedback/",
            {
                "category": "support",
                "satisfaction": 3,
                "subject": f"Parallel {number}",
                "body": "Sent at the same moment as many others.",
            },
            content_type="application/json",
        )

    answers = fire_together(
        *(lambda c=client, n=number: submit(c, n) for number, client in enumerate(clients))
    )
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201] * FEEDBACK_PER_HOUR + [429] * extra
    assert Feedback.objects.filter(submitted_by=cast.partner_a_user).count() == FEEDBACK_PER_HOUR


# Invitations ------------------------------------------------------------------------------------


def test_it_accepts_an_invitation_link_once(cast: Cast) -> None:
    outcomes = []
    for attempt in range(TRIES):
        membership: PartnerUser = PartnerUserFactory(
            partner=cast.partner_a, user__username=f"invitee{attempt}@example.com"
        )
        user = membership.user
        user.set_unusable_password()
        user.save()
        path = invitation_path(user)

        def accept(password: str, path: str = path) -> Any:
            return Client(raise_request_exception=False).post(
                path, {"new_password1": password, "new_password2": password}
            )

        passwords = ("first-password-long-enough", "second-password-long-enough")
        answers = fire_together(*(lambda p=p: accept(p) for p in passwords))
        user.refresh_from_db()
        winners = [
            password
            for password, answer in zip(passwords, answers, strict=True)
            if answer.status_code == 302
        ]
        outcomes.append(
            (
                sorted(answer.status_code for answer in answers),
                len(winners) == 1 and user.check_password(winners[0]),
            )
        )
    assert outcomes == [([302, 400], True)] * TRIES


# Renewal ----------------------------------------------------------------------------------------


def test_it_creates_one_renewal_when_two_managers_renew_at_once(cast: Cast) -> None:
    outcomes = []
    for _ in range(TRIES):
        agreement = AgreementFactory(partner=cast.partner_a, start_date=date(2026, 1, 1))

        def renew(agreement: Agreement = agreement) -> Any:
            return signed_in(cast.manager).post(
                f"/api/v1/agreements/{agreement.pk}/renew/", content_type="application/json"
            )

        answers = fire_together(renew, renew)
        statuses = sorted(answer.status_code for answer in answers)
        loser = next((a for a in answers if a.status_code == 400), None)
        outcomes.append(
            (
                statuses,
                Agreement.objects.filter(renews=agreement).count(),
                loser is not None and "already" in loser.json()["non_field_errors"][0],
            )
        )
    assert outcomes == [([201, 400], 1, True)] * TRIES


# Double submits ----------------------------------------------------------------------------------


def test_it_saves_a_form_sent_twice_at_once_a_single_time(cast: Cast) -> None:
    outcomes = []
    for attempt in range(TRIES):
        feedback = FeedbackFactory(partner=cast.partner_a)
        token = f"double-submit-token-{attempt:04d}"

        def reply(feedback: Any = feedback, token: str = token) -> Any:
            return signed_in(cast.manager).post(
                f"/workspace/feedback/{feedback.pk}/reply/",
                {"reply-body": "Sent with a double click.", "submission_token": token},
            )

        def submit(token: str = token) -> Any:
            return signed_in(cast.partner_a_user).post(
                "/portal/feedback/new/",
                {
                    "category": "support",
                    "satisfaction": "3",
                    "subject": f"Double click {token}",
                    "body": "Sent twice at once.",
                    "submission_token": token,
                },
            )

        answers = fire_together(reply, reply, submit, submit)
        outcomes.append(
            (
                [answer.status_code for answer in answers],
                feedback.replies.count(),
                OutboundEmail.objects.filter(
                    topic="feedback-reply", subject=f"Reply to your feedback: {feedback.subject}"
                ).count(),
                Feedback.objects.filter(subject=f"Double click {token}").count(),
            )
        )
    assert outcomes == [([302, 302, 302, 302], 1, 1, 1)] * TRIES


def test_it_creates_once_for_one_idempotency_key_sent_twice_at_once(cast: Cast) -> None:
    outcomes = []
    for attempt in range(TRIES):

        def create(attempt: int = attempt) -> Any:
            return signed_in(cast.partner_a_user).post(
                "/api/v1/feedback/",
                {
                    "category": "support",
                    "satisfaction": 3,
                    "subject": f"Retried {attempt}",
                    "body": "The client retried at once.",
                },
                content_type="application/json",
                HTTP_IDEMPOTENCY_KEY=f"retry-{attempt}",
            )

        answers = fire_together(create, create)
        outcomes.append(
            (
                [answer.status_code for answer in answers],
                len({answer.json()["id"] for answer in answers}),
                Feedback.objects.filter(subject=f"Retried {attempt}").count(),
            )
        )
    assert outcomes == [([201, 201], 1, 1)] * TRIES


def test_it_registers_a_deal_sent_twice_at_once_a_single_time(cast: Cast) -> None:
    """The portal's registration form and the API's create, each sent twice at once with one
    token or key: one registration each, one e-mail to the channel team each."""
    region, vertical = RegionFactory(), VerticalFactory()
    close = (timezone.localdate() + timedelta(days=30)).isoformat()
    outcomes = []
    for attempt in range(TRIES):
        form_name, api_name = f"Double Click {attempt} Ltd", f"Retried Deal {attempt} Ltd"

        def submit(name: str = form_name, token: str = f"registration-token-{attempt:04d}") -> Any:
            return signed_in(cast.partner_a_user).post(
                "/portal/registrations/new/",
                {
                    "company_name": name,
                    "region": region.pk,
                    "vertical": vertical.pk,
                    "size_band": "smb",
                    "currency": "USD",
                    "expected_close_on": close,
                    "submission_token": token,
                },
            )

        def create(name: str = api_name, key: str = f"registration-{attempt}") -> Any:
            return signed_in(cast.partner_a_user).post(
                "/api/v1/deal-registrations/",
                {
                    "company_name": name,
                    "region": region.code,
                    "vertical": vertical.code,
                    "size_band": "smb",
                },
                content_type="application/json",
                HTTP_IDEMPOTENCY_KEY=key,
            )

        answers = fire_together(submit, submit, create, create)
        outcomes.append(
            (
                [answer.status_code for answer in answers],
                DealRegistration.objects.filter(company_name=form_name).count(),
                DealRegistration.objects.filter(company_name=api_name).count(),
                OutboundEmail.objects.filter(topic="reg-new", subject__contains=form_name).count(),
            )
        )
    assert outcomes == [([302, 302, 201, 201], 1, 1, 1)] * TRIES
