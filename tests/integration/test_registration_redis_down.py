"""Redis stops while a partner registers a deal: the registration, its e-mail to the managers
and its webhook delivery are all kept, and go out once Redis is back."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.core import mail
from django.test import Client

from crm.models import OutboundEmail
from crm.tasks import outbound_emails_flush
from partners import webhooks
from partners.registration_models import DealRegistration
from partners.webhook_models import WebhookDelivery, WebhookEndpoint
from tests.cast import Cast
from tests.factories import RegionFactory, VerticalFactory
from tests.integration.test_redis_down import (  # noqa: F401 - the fixtures
    BrokerWaits,
    RedisServer,
    _reset_celery_connections,
    broker_waits,
    redis_broker,
)
from tests.partners.webhook_receiver import Receiver

pytestmark = pytest.mark.redis


def test_a_deal_registered_while_redis_is_down_loses_nothing(
    cast: Cast,
    redis_broker: RedisServer,  # noqa: F811
    broker_waits: BrokerWaits,  # noqa: F811
    http_receiver: Receiver,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.WEBHOOK_ALLOW_HTTP = True
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    WebhookEndpoint.objects.create(
        url=http_receiver.url, secret="s" * 20, events=["deal_registration.status_changed"]
    )
    region, vertical = RegionFactory(code="EAST"), VerticalFactory(code="FIN")
    client = Client()
    client.force_login(cast.partner_a_user)
    redis_broker.stop()

    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/portal/registrations/new/",
            {
                "company_name": "Outage Analytics",
                "region": str(region.pk),
                "vertical": str(vertical.pk),
                "size_band": "smb",
                "currency": "USD",
            },
        )
    elapsed = time.monotonic() - started
    assert response.status_code == 302
    print(f"request {elapsed:.2f} s, publishing {broker_waits.seconds}")
    broker_waits.check()
    # The e-mail's publish fails; the webhook delivery's is not tried: the broker is marked down.
    assert len(broker_waits.seconds) == 1
    registration = DealRegistration.objects.get(company_name="Outage Analytics")
    email = OutboundEmail.objects.get(topic="reg-new")
    delivery = WebhookDelivery.objects.get()
    assert email.status == "pending" and delivery.status == "pending"
    assert http_receiver.received == [] and not mail.outbox

    redis_broker.start()
    _reset_celery_connections()
    outbound_emails_flush.apply()  # as beat would, once Redis is back
    assert webhooks.webhook_deliver(delivery_id=delivery.pk).delivered  # as the worker would
    email.refresh_from_db()
    assert email.status == "sent" and registration.company_name in mail.outbox[0].subject
    assert len(http_receiver.received) == 1
