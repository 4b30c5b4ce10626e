"""Token and session authentication, throttling, and who may read the schema and its viewers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tests.cast import Cast
from tests.factories import TEST_PASSWORD

pytestmark = pytest.mark.django_db


def test_it_returns_a_token_for_a_username_and_password(cast: Cast) -> None:
    response = APIClient().post(
        "/api/v1/auth/token/", {"username": "manager", "password": TEST_PASSWORD}, format="json"
    )
    assert response.status_code == 200
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    assert api.get("/api/v1/partners/").status_code == 200


def test_it_refuses_a_wrong_password_with_a_field_free_400(cast: Cast) -> None:
    response = APIClient().post(
        "/api/v1/auth/token/", {"username": "manager", "password": "wrong"}, format="json"
    )
    assert response.status_code == 400
    assert "non_field_errors" in response.json()


def test_it_asks_anonymous_callers_to_authenticate(cast: Cast) -> None:
    response = APIClient().get("/api/v1/partners/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_it_accepts_the_browser_session(cast: Cast) -> None:
    browser = Client()
    browser.force_login(cast.executive)
    assert browser.get("/api/v1/partners/").status_code == 200


def test_it_serves_the_schema_and_viewers_to_internal_users_only(
    cast: Cast, api_as: Callable[[Any], APIClient]
) -> None:
    browser = Client()
    browser.force_login(cast.rep_user)
    assert browser.get("/api/schema/").status_code == 200
    docs = browser.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content
    assert b"<script>" not in docs.content  # the start-up script is a file of its own
    assert browser.get("/api/docs/?script").status_code == 200
    redoc = browser.get("/api/redoc/")
    assert redoc.status_code == 200
    assert b"<script>" not in redoc.content
    for page in (docs, redoc):
        assert b"https://" not in page.content  # everything is served by the app itself

    partner = Client()
    partner.force_login(cast.partner_a_user)
    anonymous = Client()
    for client in (partner, anonymous):
        for path in ("/api/schema/", "/api/docs/", "/api/redoc/"):
            assert client.get(path).status_code == 404, path
    assert api_as(cast.partner_a_user).get("/api/schema/").status_code == 404


def test_it_throttles_per_user_at_the_configured_rate(
    cast: Cast, api_as: Callable[[Any], APIClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    from rest_framework.throttling import UserRateThrottle

    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", {"user": "3/minute"})
    api = api_as(cast.executive)
    codes = [api.get("/api/v1/regions/").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]


def test_it_throttles_anonymous_clients_by_their_address_behind_the_proxy(
    db: None, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rest_framework.throttling import AnonRateThrottle

    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    monkeypatch.setattr(AnonRateThrottle, "THROTTLE_RATES", {"anon": "2/minute"})

    def ask(client_address: str) -> int:
        return (
            APIClient(REMOTE_ADDR="10.0.0.1")
            .post(
                "/api/v1/auth/token/",
                {"username": "nobody", "password": "not-a-password"},
                format="json",
                HTTP_X_FORWARDED_FOR=client_address,
            )
            .status_code
        )

    assert [ask("198.51.100.4") for _ in range(3)] == [400, 400, 429]
    assert ask("192.0.2.9") == 400  # another client behind the same proxy is not throttled
