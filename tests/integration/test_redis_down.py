"""Redis stops while partners write: nothing is lost, and the queued e-mail goes out later.

A real redis-server is started, used as the Celery broker and result store, and stopped.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from crm import enqueue
from crm.celery import app as celery_app
from crm.models import OutboundEmail
from crm.tasks import outbound_emails_flush
from partners.models import Feedback
from tests.cast import Cast
from tests.factories import TEST_PASSWORD
from tests.integration.conftest import wait_for
from tests.services import _redis_answers, free_port, service_missing

pytestmark = pytest.mark.redis


class RedisServer:
    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            service_missing("needs redis-server on PATH")
        self.binary = binary
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not _redis_answers(self.url):
            if self.process.poll() is not None or time.monotonic() > deadline:
                service_missing(f"redis-server on port {self.port} did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


def _reset_celery_connections() -> None:
    # The app caches its broker pool, producer pool and result backend, and queueing remembers
    # a failed broker for a few seconds (crm.enqueue); drop them so the next call connects with
    # the configuration in force.
    enqueue._broker_down_until = 0.0
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    if hasattr(celery_app._local, "backend"):
        del celery_app._local.backend


@pytest.fixture
def redis_broker() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    saved = {
        key: celery_app.conf[key] for key in ("broker_url", "result_backend", "task_always_eager")
    }
    celery_app.conf.update(
        broker_url=server.url, result_backend=server.url, task_always_eager=False
    )
    _reset_celery_connections()
    try:
        yield server
    finally:
        server.stop()
        celery_app.conf.update(saved)
        _reset_celery_connections()


class BrokerWaits:
    """Wall-clock seconds of every publish to the broker (Task.apply_async) in this process.

    A request with Redis stopped must not wait on the broker: the time spent publishing is
    what a hang would show in, and it is measured apart from the request's own work (template
    rendering, the first import of the task modules), which a busy machine slows by any factor.
    A stopped server refuses the connection at once, so the whole of it stays well under one
    broker connect timeout (crm/settings.py), however loaded the machine is.
    """

    def __init__(self) -> None:
        self.seconds: list[float] = []

    @property
    def bound(self) -> float:
        return float(celery_app.conf.broker_connection_timeout)

    def check(self) -> None:
        assert self.seconds, "the request queued nothing"
        assert sum(self.seconds) < self.bound, (
            f"the request waited {sum(self.seconds):.2f} s on the dead broker "
            f"({', '.join(f'{s:.2f}' for s in self.seconds)} s per publish)"
        )


@pytest.fixture
def broker_waits(monkeypatch: pytest.MonkeyPatch) -> BrokerWaits:
    from celery.app.task import Task

    waits = BrokerWaits()
    publish = Task.apply_async

    def timed(self: Task, *args: Any, **kwargs: Any) -> Any:
        started = time.monotonic()
        try:
            return publish(self, *args, **kwargs)
        finally:
            waits.seconds.append(time.monotonic() - started)

    monkeypatch.setattr(Task, "apply_async", timed)
    return waits


def test_it_saves_feedback_while_redis_is_down_and_sends_the_notification_after(
    cast: Cast,
    redis_broker: RedisServer,
    broker_waits: BrokerWaits,
    django_capture_on_commit_callbacks: Any,
) -> None:
    cast.manager.email = "manager@example.com"
    cast.manager.save()
    client = Client()
    client.force_login(cast.partner_a_user)
    redis_broker.stop()

    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/portal/feedback/new/",
            {
                "category": "support",
                "satisfaction": "2",
                "subject": "Sent during an outage",
                "body": "Redis is down right now.",
            },
            follow=True,
        )
    elapsed = time.monotonic() - started

    assert response.status_code == 200
    assert "your feedback has been received" in response.content.decode()
    feedback = Feedback.objects.get(subject="Sent during an outage")
    email = OutboundEmail.objects.get(topic="feedback-to-managers")
    assert email.status == OutboundEmail.Status.PENDING and not mail.outbox
    print(f"request {elapsed:.2f} s, publishing {broker_waits.seconds}")
    broker_waits.check()

    redis_broker.start()
    _reset_celery_connections()
    # The periodic flush (Celery beat) runs once Redis is back; here it is called as beat would.
    outbound_emails_flush.apply()
    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.SENT
    assert [m.to for m in mail.outbox] == [["manager@example.com"]]
    assert feedback.subject in mail.outbox[0].subject


# The whole app with Redis stopped ----------------------------------------------------------------

PDF = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
API_LISTS = [
    "regions",
    "verticals",
    "accounts",
    "reps",
    "coverage",
    "partners",
    "contacts",
    "agreements",
    "feedback",
    "metrics/runs",
    "metrics/weeks",
    "metrics/segments",
    "metrics/rollup",
    "metrics/trend",
    "metrics/partners",
    "metrics/registrations",
    "metrics/revenue",
    "auth/tokens",
    "deal-registrations",
    "opportunities",
    "programme/tiers",
    "programme/tier-changes",
    "programme/certifications",
    "programme/targets",
    "programme/surveys",
    "programme/survey-waves",
    "programme/survey-responses",
]
PORTAL_PAGES = [
    "/portal/",
    "/portal/accounts/",
    "/portal/agreements/",
    "/portal/feedback/",
    "/portal/registrations/",
    "/portal/opportunities/",
    "/portal/scorecard/",
]


def _signed_in(user: Any) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def test_every_api_list_is_covered() -> None:
    from crm.api_urls import router

    listed = {prefix for prefix, _viewset, _basename in router.registry}
    assert listed <= set(API_LISTS), sorted(listed - set(API_LISTS))


@pytest.mark.postgres
def test_it_serves_lists_creates_dashboard_and_portal_with_redis_stopped_and_delivers_after(
    cast: Cast,
    settings: Any,
    start_worker: Any,
) -> None:
    from django.core.management import call_command

    from channels.models import CoverageAssignment
    from crm.celery import app
    from partners.models import Agreement, FeedbackNote, FeedbackReply, ImportJob, Partner
    from tests.factories import AccountFactory, AgreementFactory, FeedbackFactory

    redis_server = RedisServer()
    redis_server.start()
    try:
        settings.REDIS_URL = redis_server.url
        settings.CACHES = {
            "default": {
                "BACKEND": "crm.cache.ResilientRedisCache",
                "LOCATION": redis_server.url,
                "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
            }
        }
        saved = {
            key: app.conf[key] for key in ("broker_url", "result_backend", "task_always_eager")
        }
        app.conf.update(
            broker_url=redis_server.url, result_backend=redis_server.url, task_always_eager=False
        )
        _reset_celery_connections()
        for user in (cast.manager, cast.partner_a_user):
            user.email = f"{user.username}@example.com"
            user.save()
        account = AccountFactory()
        agreement = AgreementFactory(partner=cast.partner_a, start_date=date(2026, 1, 1))
        feedback = FeedbackFactory(partner=cast.partner_a)
        CoverageAssignment.objects.create(
            account=account, kind="partner", partner=cast.partner_a, start_date=date(2026, 1, 1)
        )
        call_command("compute_metrics", "--last", "2", "--no-progress", stdout=io.StringIO())
        manager, partner = _signed_in(cast.manager), _signed_in(cast.partner_a_user)
        assert manager.get("/dashboard/").status_code == 200  # figures cached in Redis

        redis_server.stop()

        answers: dict[str, int] = {}
        for name in API_LISTS:
            answers[f"GET /api/v1/{name}/"] = manager.get(f"/api/v1/{name}/").status_code
        answers["GET /api/v1/agreements/ (partner)"] = partner.get(
            "/api/v1/agreements/"
        ).status_code
        for page in ("/dashboard/", "/workspace/", "/workspace/partners/", "/workspace/accounts/"):
            answers[f"GET {page}"] = manager.get(page).status_code
        for page in PORTAL_PAGES:
            answers[f"GET {page}"] = partner.get(page).status_code

        def post(client: Client, path: str, data: Any, **extra: Any) -> None:
            kwargs = {"content_type": "application/json"} if isinstance(data, dict) else {}
            body = json.dumps(data) if isinstance(data, dict) else data
            answers[f"POST {path}"] = client.post(path, body, **kwargs, **extra).status_code

        post(
            manager,
            "/api/v1/partners/",
            {
                "external_id": "P-OUTAGE",
                "name": "Outage Partner",
                "channel_kind": "partner",
                "partner_type": "reseller",
            },
        )
        post(
            manager,
            "/api/v1/contacts/",
            {"partner": cast.partner_a.pk, "name": "Contact in the outage"},
        )
        post(
            manager,
            "/api/v1/agreements/",
            {
                "partner": cast.partner_b.pk,
                "agreement_type": "reseller",
                "start_date": "2027-01-01",
                "end_date": "2027-12-31",
            },
        )
        post(manager, f"/api/v1/agreements/{agreement.pk}/renew/", {})
        post(
            manager,
            "/api/v1/coverage/",
            {
                "accounts": [account.pk],
                "kind": "direct",
                "rep": cast.rep.pk,
                "start_date": "2026-02-01",
            },
        )
        post(
            partner,
            "/api/v1/feedback/",
            {
                "category": "support",
                "satisfaction": 2,
                "subject": "API during the outage",
                "body": "Sent while Redis is down.",
            },
        )
        post(manager, f"/api/v1/feedback/{feedback.pk}/replies/", {"body": "Reply in the outage"})
        post(manager, f"/api/v1/feedback/{feedback.pk}/notes/", {"body": "Note in the outage"})
        answers["POST /api/v1/auth/token/"] = (
            Client(raise_request_exception=False)
            .post(
                "/api/v1/auth/token/",
                {"username": "manager", "password": TEST_PASSWORD},
                content_type="application/json",
            )
            .status_code
        )
        answers["POST /portal/feedback/new/"] = partner.post(
            "/portal/feedback/new/",
            {
                "category": "other",
                "satisfaction": "3",
                "subject": "Portal during the outage",
                "body": "Also sent while Redis is down.",
            },
        ).status_code
        answers["POST /workspace/partners/invite/"] = manager.post(
            f"/workspace/partners/{cast.partner_a.pk}/invite/", {"email": "new@example.com"}
        ).status_code
        answers["POST /workspace/imports/"] = manager.post(
            "/workspace/imports/",
            {"files": SimpleUploadedFile("regions.csv", b"code,name\nOUT,Outage\n")},
        ).status_code

        refused = {request: code for request, code in answers.items() if code >= 500}
        assert refused == {}
        assert answers["GET /dashboard/"] == 200
        assert all(answers[f"GET {page}"] == 200 for page in PORTAL_PAGES)
        # Nothing lost: every create is stored.
        assert Partner.objects.filter(external_id="P-OUTAGE").exists()
        assert cast.partner_a.contacts.filter(name="Contact in the outage").exists()
        assert Agreement.objects.filter(partner=cast.partner_b).exists()
        assert Agreement.objects.filter(renews=agreement).exists()
        assert CoverageAssignment.objects.filter(account=account, kind="direct").exists()
        assert (
            Feedback.objects.filter(
                subject__in=["API during the outage", "Portal during the outage"]
            ).count()
            == 2
        )
        assert FeedbackReply.objects.filter(body="Reply in the outage").exists()
        assert FeedbackNote.objects.filter(body="Note in the outage").exists()
        assert ImportJob.objects.exists()
        pending = set(
            OutboundEmail.objects.filter(status=OutboundEmail.Status.PENDING).values_list(
                "topic", flat=True
            )
        )
        assert pending == {"feedback-to-managers", "feedback-reply", "portal-invitation"}

        # Redis is back: a worker starts, and beat's periodic flush delivers what waited.
        redis_server.start()
        start_worker(REDIS_URL=redis_server.url)
        flusher = celery_app.__class__("flusher", broker=redis_server.url, set_as_current=False)
        try:
            flusher.send_task("crm.outbound_emails_flush")
        finally:
            flusher.close()
        wait_for(
            lambda: not OutboundEmail.objects.exclude(status=OutboundEmail.Status.SENT).exists(),
            seconds=60,
            what="the waiting e-mails to be sent",
        )
        # And the web process enqueues to the broker again by itself, once the few seconds it
        # remembers the failed broker for (crm.enqueue) are over.
        time.sleep(enqueue.broker_down_for())
        answers_after = partner.post(
            "/api/v1/feedback/",
            json.dumps(
                {
                    "category": "support",
                    "satisfaction": 4,
                    "subject": "After",
                    "body": "Redis is back.",
                }
            ),
            content_type="application/json",
        )
        assert answers_after.status_code == 201
        wait_for(
            lambda: (
                OutboundEmail.objects.filter(status=OutboundEmail.Status.PENDING).count() == 0
                and OutboundEmail.objects.filter(body_text__contains="Redis is back.").exists()
            ),
            seconds=60,
            what="the new e-mail to be sent by the worker",
        )
    finally:
        redis_server.stop()
        app.conf.update(saved)
        _reset_celery_connections()
