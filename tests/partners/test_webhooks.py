"""Webhooks delivered to a real local receiver: signed, retried with backoff, logged."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import date, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from partners import webhooks
from partners.services import agreements_expire
from partners.webhook_models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from partners.webhooks import (
    MAX_ATTEMPTS,
    webhook_deliver,
    webhook_deliveries_flush,
    webhook_endpoint_create,
    webhook_ping,
    webhook_publish,
    webhook_redeliver,
)
from tests.factories import AgreementFactory
from tests.partners.webhook_receiver import Receiver

pytestmark = pytest.mark.django_db

SECRET = "a-shared-secret-of-some-length"
REGISTRATION = "deal_registration.status_changed"
AGREEMENT = "agreement.status_changed"


def endpoint(url: str, events: tuple[str, ...] = (REGISTRATION, AGREEMENT)) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(url=url, secret=SECRET, events=list(events))


@pytest.fixture
def after_commit(django_capture_on_commit_callbacks):
    """Run what a block queues for after its commit (the test's own transaction never
    commits), as the request or task would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def publish(after_commit):
    def publish_event(data: dict | None = None) -> None:
        with after_commit():
            webhook_publish(event=REGISTRATION, data=data or {"registration": {"id": 1}})

    return publish_event


class TestDelivery:
    @pytest.fixture(autouse=True)
    def _plain_http_receiver(self, settings) -> None:
        settings.WEBHOOK_ALLOW_HTTP = True

    def test_it_posts_signed_json_the_receiver_can_verify(
        self, http_receiver: Receiver, publish, after_commit
    ) -> None:
        endpoint(http_receiver.url)
        publish({"registration": {"id": 7, "status": "approved"}})
        (request,) = http_receiver.received
        timestamp = request.headers["x-crm-timestamp"]
        expected = hmac.new(
            SECRET.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256
        ).hexdigest()
        assert request.headers["x-crm-signature"] == f"sha256={expected}"
        assert abs(int(timestamp) - timezone.now().timestamp()) < 60
        assert request.headers["content-type"] == "application/json"
        assert request.headers["x-crm-event"] == REGISTRATION
        body = json.loads(request.body)
        assert body["event"] == REGISTRATION
        assert body["data"] == {"registration": {"id": 7, "status": "approved"}}
        assert body["id"] == request.headers["x-crm-delivery"]
        delivery = WebhookDelivery.objects.get()
        assert (delivery.status, delivery.attempts, delivery.response_status) == (
            DeliveryStatus.DELIVERED,
            1,
            200,
        )

    def test_it_sends_only_what_an_active_endpoint_subscribed_to(
        self, http_receiver: Receiver, publish, after_commit
    ) -> None:
        endpoint(http_receiver.url, events=(AGREEMENT,))
        paused = endpoint(http_receiver.url)
        paused.is_active = False
        paused.save()
        publish()
        assert http_receiver.received == []
        assert WebhookDelivery.objects.count() == 0

    def test_it_sends_nothing_for_a_change_that_was_rolled_back(
        self, http_receiver: Receiver, publish, after_commit
    ) -> None:
        endpoint(http_receiver.url)
        with after_commit(), pytest.raises(RuntimeError), transaction.atomic():
            webhook_publish(event=REGISTRATION, data={})
            raise RuntimeError("the change failed")
        assert http_receiver.received == [] and WebhookDelivery.objects.count() == 0

    def test_a_failed_attempt_waits_with_backoff_then_succeeds(
        self, http_receiver: Receiver, publish, after_commit
    ) -> None:
        endpoint(http_receiver.url)
        http_receiver.answers = [500, 503]
        publish()
        delivery = WebhookDelivery.objects.get()
        # Run eagerly (no broker), the retry waits for the flush instead of looping here.
        assert (delivery.status, delivery.attempts, delivery.response_status) == ("pending", 1, 500)
        assert delivery.last_error.startswith("HTTP 500")
        wait = delivery.next_attempt_at - delivery.last_attempt_at
        assert wait == timedelta(seconds=30)
        assert webhook_deliver(delivery_id=delivery.pk).attempted is False, "not due yet"
        later = delivery.next_attempt_at
        outcome = webhook_deliver(delivery_id=delivery.pk, now=later)
        assert outcome.retry_in == 60, "the backoff doubles"
        delivery.refresh_from_db()
        assert webhook_deliver(delivery_id=delivery.pk, now=delivery.next_attempt_at).delivered
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts) == ("delivered", 3)
        assert len(http_receiver.received) == 3

    def test_it_gives_up_after_the_last_attempt(
        self, http_receiver: Receiver, publish, after_commit
    ) -> None:
        endpoint(http_receiver.url)
        http_receiver.answers = [500] * MAX_ATTEMPTS
        publish()
        delivery = WebhookDelivery.objects.get()
        while delivery.status == DeliveryStatus.PENDING:
            webhook_deliver(delivery_id=delivery.pk, now=delivery.next_attempt_at)
            delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts) == ("failed", MAX_ATTEMPTS)
        assert len(http_receiver.received) == MAX_ATTEMPTS

    def test_a_redirect_is_not_followed(
        self, http_receiver: Receiver, publish, after_commit
    ) -> None:
        endpoint(http_receiver.url)
        http_receiver.answers = [302]
        http_receiver.location = http_receiver.url + "/stolen"
        publish()
        delivery = WebhookDelivery.objects.get()
        assert (delivery.status, delivery.response_status) == ("pending", 302)
        assert [request.path for request in http_receiver.received] == ["/hooks/crm"]

    def test_an_unreachable_endpoint_is_retried(self, publish) -> None:
        endpoint("http://127.0.0.1:9/nothing-listens-here")
        publish()
        delivery = WebhookDelivery.objects.get()
        assert delivery.status == "pending" and delivery.response_status is None
        assert delivery.last_error

    def test_the_flush_sends_what_is_due(
        self, http_receiver: Receiver, publish, after_commit
    ) -> None:
        endpoint(http_receiver.url)
        http_receiver.answers = [500]
        publish()
        delivery = WebhookDelivery.objects.get()
        assert webhook_deliveries_flush() == 0, "not due yet"
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            next_attempt_at=timezone.now() - timedelta(seconds=1)
        )
        assert webhook_deliveries_flush() == 1
        delivery.refresh_from_db()
        assert delivery.status == "delivered"

    def test_a_failed_delivery_can_be_sent_again(
        self, http_receiver: Receiver, publish, after_commit
    ) -> None:
        endpoint(http_receiver.url)
        publish()
        delivery = WebhookDelivery.objects.get()
        with after_commit():
            webhook_redeliver(delivery=delivery)
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts) == ("delivered", 1)
        assert len(http_receiver.received) == 2
        assert json.loads(http_receiver.received[0].body) == json.loads(
            http_receiver.received[1].body
        )

    def test_a_ping_reaches_one_endpoint(
        self, http_receiver: Receiver, publish, after_commit
    ) -> None:
        target = endpoint(http_receiver.url)
        endpoint(http_receiver.url + "/other")
        with after_commit():
            webhook_ping(endpoint=target)
        assert [json.loads(r.body)["event"] for r in http_receiver.received] == ["ping"]

    def test_agreement_status_changes_are_sent(
        self, http_receiver: Receiver, publish, after_commit
    ) -> None:
        endpoint(http_receiver.url, events=(AGREEMENT,))
        agreement = AgreementFactory(start_date=date(2025, 1, 1))
        with after_commit():
            agreements_expire(today=date(2026, 6, 1))
        (request,) = http_receiver.received
        data = json.loads(request.body)["data"]["agreement"]
        assert (data["external_id"], data["status"], data["previous_status"]) == (
            agreement.external_id,
            "expired",
            "active",
        )


class TestHttps:
    def test_it_delivers_to_an_https_endpoint_it_trusts(
        self, https_receiver: Receiver, self_signed, publish, after_commit
    ) -> None:
        endpoint(https_receiver.url)
        with override_settings(WEBHOOK_CA_FILE=str(self_signed.cert)):
            publish()
        assert WebhookDelivery.objects.get().status == "delivered"
        assert len(https_receiver.received) == 1

    def test_it_refuses_a_certificate_nobody_vouches_for(
        self, https_receiver: Receiver, publish, after_commit
    ) -> None:
        endpoint(https_receiver.url)
        publish()
        delivery = WebhookDelivery.objects.get()
        assert delivery.status == "pending" and "CERTIFICATE_VERIFY_FAILED" in delivery.last_error
        assert https_receiver.received == []


class TestEndpoints:
    def test_production_requires_https(self, cast) -> None:
        with pytest.raises(ValidationError) as error:
            webhook_endpoint_create(
                url="http://hooks.example/crm",
                secret=SECRET,
                events=[REGISTRATION],
                by=cast.manager,
            )
        assert "HTTPS only" in error.value.message_dict["url"][0]
        created = webhook_endpoint_create(
            url="https://hooks.example/crm", secret=SECRET, events=[REGISTRATION], by=cast.manager
        )
        assert created.events == [REGISTRATION]

    @override_settings(WEBHOOK_ALLOW_HTTP=True)
    def test_a_setting_admits_plain_http_for_a_local_receiver(self, cast) -> None:
        created = webhook_endpoint_create(
            url="http://127.0.0.1:8046/hooks", secret=SECRET, events=[AGREEMENT], by=cast.manager
        )
        assert created.url.startswith("http://")

    @pytest.mark.parametrize(
        ("url", "secret", "events", "field"),
        [
            ("https://hooks.example", "short", [REGISTRATION], "secret"),
            ("https://hooks.example", SECRET, [], "events"),
            ("https://hooks.example", SECRET, ["everything"], "events"),
            ("hooks.example", SECRET, [REGISTRATION], "url"),
            ("ftp://hooks.example", SECRET, [REGISTRATION], "url"),
        ],
    )
    def test_it_refuses_bad_endpoints(self, cast, url, secret, events, field) -> None:
        with pytest.raises(ValidationError) as error:
            webhook_endpoint_create(url=url, secret=secret, events=events, by=cast.manager)
        assert field in error.value.message_dict
        assert not WebhookEndpoint.objects.exists()


def test_the_backoff_doubles_up_to_an_hour() -> None:
    assert [webhooks.retry_delay(n) for n in range(1, MAX_ATTEMPTS + 1)] == [
        30,
        60,
        120,
        240,
        480,
        960,
        1920,
        3600,
    ]
