"""Redis stops while partners write: nothing is lost, and the queued e-mail goes out later.

A real redis-server is started, used as the Celery broker and result store, and stopped.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.core import mail
from django.test import Client

from crm.celery import app as celery_app
from crm.models import OutboundEmail
from crm.tasks import outbound_emails_flush
from partners.models import Feedback
from tests.cast import Cast
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
    # The app caches its broker pool, producer pool and result backend; drop them so the
    # next call connects with the configuration in force.
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


def test_it_saves_feedback_while_redis_is_down_and_sends_the_notification_after(
    cast: Cast, redis_broker: RedisServer, django_capture_on_commit_callbacks: Any
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
    assert elapsed < 5, f"the request hung {elapsed:.1f} s on the dead broker"

    redis_broker.start()
    _reset_celery_connections()
    # The periodic flush (Celery beat) runs once Redis is back; here it is called as beat would.
    outbound_emails_flush.apply()
    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.SENT
    assert [m.to for m in mail.outbox] == [["manager@example.com"]]
    assert feedback.subject in mail.outbox[0].subject
