"""Webhooks delivered to a real local receiver: signed, retried with backoff, logged."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from unittest import mock
from urllib.parse import urlsplit

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


@pytest.fixture
def local_receivers(settings) -> None:
    """Admit the test receivers: plain HTTP on a loopback address."""
    settings.WEBHOOK_ALLOW_HTTP = True
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True


@pytest.mark.usefixtures("local_receivers")
class TestDelivery:
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


@pytest.mark.usefixtures("local_receivers")
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

    @override_settings(WEBHOOK_ALLOW_HTTP=True, WEBHOOK_ALLOW_PRIVATE_ADDRESSES=True)
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


@contextmanager
def resolving(names: dict[str, str]) -> Iterator[list[str]]:
    """DNS as a delivery sees it: each of `names` resolves to its address, any other host as
    usual. Yields the names looked up, in order."""
    real = socket.getaddrinfo
    looked_up: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):  # type: ignore[no-untyped-def]
        looked_up.append(host)
        return real(names.get(host, host), port, *args, **kwargs)

    with mock.patch.object(socket, "getaddrinfo", getaddrinfo):
        yield looked_up


class TestAddresses:
    @pytest.mark.parametrize(
        "url",
        [
            "https://127.0.0.1/hooks",
            "https://localhost:8443/hooks",
            "https://10.0.0.5/hooks",
            "https://172.16.4.1/hooks",
            "https://192.168.1.20/hooks",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/hooks",
            "https://[fd12:3456::1]/hooks",
            "https://[::ffff:127.0.0.1]/hooks",
            "https://224.0.0.1/hooks",
            "https://0.0.0.0/hooks",
        ],
    )
    def test_it_refuses_to_register_a_local_address(self, cast, url) -> None:
        with pytest.raises(ValidationError) as error:
            webhook_endpoint_create(url=url, secret=SECRET, events=[AGREEMENT], by=cast.manager)
        message = error.value.message_dict["url"][0]
        assert "loopback, private, link-local or multicast" in message
        assert not WebhookEndpoint.objects.exists()

    def test_it_registers_a_public_address(self, cast) -> None:
        created = webhook_endpoint_create(
            url="https://93.184.215.14/hooks", secret=SECRET, events=[AGREEMENT], by=cast.manager
        )
        assert created.url == "https://93.184.215.14/hooks"

    @override_settings(WEBHOOK_ALLOW_PRIVATE_ADDRESSES=True)
    def test_a_setting_admits_private_addresses_but_never_link_local_ones(self, cast) -> None:
        for url in ("https://10.0.0.5/hooks", "https://[fd12:3456::1]/hooks"):
            webhook_endpoint_create(url=url, secret=SECRET, events=[AGREEMENT], by=cast.manager)
        for url in ("https://169.254.169.254/latest/meta-data", "https://224.0.0.1/hooks"):
            with pytest.raises(ValidationError):
                webhook_endpoint_create(url=url, secret=SECRET, events=[AGREEMENT], by=cast.manager)
        assert WebhookEndpoint.objects.count() == 2

    def test_a_name_resolving_to_a_loopback_address_is_refused_at_delivery(
        self, cast, settings, http_receiver: Receiver, publish, after_commit
    ) -> None:
        settings.WEBHOOK_ALLOW_HTTP = True
        port = urlsplit(http_receiver.url).port
        registered = webhook_endpoint_create(
            url=f"http://hooks.example:{port}/hooks/crm",
            secret=SECRET,
            events=[REGISTRATION],
            by=cast.manager,
        )
        with resolving({"hooks.example": "127.0.0.1"}):
            publish()
        delivery = WebhookDelivery.objects.get()
        assert (delivery.status, delivery.attempts, delivery.response_status) == ("failed", 1, None)
        assert "hooks.example resolves to 127.0.0.1, a loopback address" in delivery.last_error
        assert http_receiver.received == [], "nothing was posted"
        assert webhook_deliveries_flush(now=timezone.now() + timedelta(days=1)) == 0, "no retry"
        # The deployment says its receivers are on its own network: a manager sends it again.
        settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
        with resolving({"hooks.example": "127.0.0.1"}), after_commit():
            webhook_redeliver(delivery=delivery)
        delivery.refresh_from_db()
        assert delivery.status == "delivered" and delivery.endpoint == registered
        assert [r.headers["host"] for r in http_receiver.received] == [f"hooks.example:{port}"]

    def test_a_stored_link_local_address_is_refused_even_with_the_setting(
        self, settings, publish
    ) -> None:
        settings.WEBHOOK_ALLOW_HTTP = True
        settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
        endpoint("http://169.254.169.254/latest/meta-data")
        publish()
        delivery = WebhookDelivery.objects.get()
        assert delivery.status == "failed" and "a link-local address" in delivery.last_error

    def test_it_connects_to_the_resolved_address_and_checks_the_certificate_by_name(
        self, settings, https_receiver: Receiver, self_signed, publish
    ) -> None:
        settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
        settings.WEBHOOK_CA_FILE = str(self_signed.cert)
        port = urlsplit(https_receiver.url).port
        endpoint(f"https://receiver.test:{port}/hooks/crm")  # the certificate's name
        endpoint(f"https://impostor.test:{port}/hooks/crm")
        with resolving({"receiver.test": "127.0.0.1", "impostor.test": "127.0.0.1"}) as looked_up:
            publish()
        # Each name once: the connection goes to the address checked, not to a second answer.
        assert sorted(name for name in looked_up if name.endswith(".test")) == [
            "impostor.test",
            "receiver.test",
        ]
        by_host = {
            urlsplit(d.endpoint.url).hostname: d
            for d in WebhookDelivery.objects.select_related("endpoint")
        }
        assert by_host["receiver.test"].status == "delivered"
        impostor = by_host["impostor.test"]
        assert impostor.status == "pending" and "CERTIFICATE_VERIFY_FAILED" in impostor.last_error
        assert [r.headers["host"] for r in https_receiver.received] == [f"receiver.test:{port}"]


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
