"""A real Celery worker on PostgreSQL and Redis delivers a webhook to a local receiver,
retrying after a failed attempt."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

import pytest
from celery import Celery
from django.utils import timezone

from partners.webhook_models import WebhookDelivery, WebhookEndpoint
from tests.analytics.conftest import StartWorker
from tests.integration.conftest import wait_for
from tests.partners.webhook_receiver import Receiver

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

SECRET = "worker-test-shared-secret"


def test_the_worker_retries_a_failed_delivery_until_the_endpoint_takes_it(
    start_worker: StartWorker, sender: Celery, http_receiver: Receiver
) -> None:
    endpoint = WebhookEndpoint.objects.create(
        url=http_receiver.url, secret=SECRET, events=["deal_registration.status_changed"]
    )
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint,
        event="deal_registration.status_changed",
        payload={"event": "deal_registration.status_changed", "data": {"registration": {}}},
        next_attempt_at=timezone.now(),
    )
    http_receiver.answers = [503]
    start_worker(
        WEBHOOK_ALLOW_HTTP="true",
        WEBHOOK_ALLOW_PRIVATE_ADDRESSES="true",
        WEBHOOK_FIRST_RETRY_SECONDS="1",
    )
    started = time.monotonic()
    sender.send_task("partners.webhook_deliver", args=[delivery.pk])

    def delivered() -> Any:
        delivery.refresh_from_db()
        return delivery.status == "delivered"

    wait_for(delivered, seconds=60, what="the webhook delivered by the worker")
    assert delivery.attempts == 2 and delivery.response_status == 200
    assert len(http_receiver.received) == 2
    assert time.monotonic() - started >= 1, "the retry waited for its backoff"
    for request in http_receiver.received:
        timestamp = request.headers["x-crm-timestamp"]
        expected = hmac.new(
            SECRET.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256
        ).hexdigest()
        assert request.headers["x-crm-signature"] == f"sha256={expected}"
