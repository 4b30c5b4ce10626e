"""API tokens: a new one at each sign-in, void after a password change, revocable by their user
and by a sales manager, expiring when unused, and refused for a deactivated partner's users."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from crm.models import ApiToken, AuditEvent
from tests.cast import Cast
from tests.factories import TEST_PASSWORD

pytestmark = pytest.mark.django_db


def issue(username: str, password: str = TEST_PASSWORD, **extra: Any) -> Any:
    return APIClient(**extra).post(
        "/api/v1/auth/token/", {"username": username, "password": password}, format="json"
    )


def bearer(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def works(key: str) -> bool:
    return bearer(key).get("/api/v1/partners/").status_code == 200


def test_it_issues_a_new_token_at_each_request_and_keeps_only_its_digest(cast: Cast) -> None:
    first, second = issue("manager"), issue("manager")
    assert first.status_code == second.status_code == 200
    keys = [first.json()["token"], second.json()["token"]]
    assert keys[0] != keys[1] and all(works(key) for key in keys)
    assert first.json()["expires_after_days_unused"] == settings.API_TOKEN_IDLE_DAYS
    stored = " ".join(str(v) for token in ApiToken.objects.all() for v in vars(token).values())
    assert not any(key in stored for key in keys)


def test_it_voids_every_token_when_the_password_changes(cast: Cast) -> None:
    key = issue("partner-a").json()["token"]
    portal = Client()
    portal.force_login(cast.partner_a_user)
    new = "another-long-passphrase-42"
    portal.post(
        "/portal/profile/",
        {"old_password": TEST_PASSWORD, "new_password1": new, "new_password2": new},
    )
    answer = bearer(key).get("/api/v1/partners/")
    assert answer.status_code == 401
    assert "password" in answer.json()["detail"]
    assert works(issue("partner-a", new).json()["token"])


def test_it_voids_tokens_when_the_password_is_reset_or_set_elsewhere(cast: Cast) -> None:
    key = issue("exec").json()["token"]
    cast.executive.set_password("set-by-an-administrator-99")
    cast.executive.save()
    assert not works(key)


def test_its_user_lists_and_revokes_their_own_tokens(cast: Cast) -> None:
    kept, revoked = (issue("partner-a").json() for _ in range(2))
    api = bearer(kept["token"])
    listed = api.get("/api/v1/auth/tokens/").json()
    assert sorted(t["id"] for t in listed["results"]) == sorted([kept["id"], revoked["id"]])
    assert all("token" not in t and len(t["prefix"]) == 8 for t in listed["results"])
    assert api.delete(f"/api/v1/auth/tokens/{revoked['id']}/").status_code == 204
    assert not works(revoked["token"]) and works(kept["token"])
    # Signing out with the token revokes the token used.
    assert api.delete("/api/v1/auth/token/").status_code == 204
    assert not works(kept["token"])


def test_a_partner_user_sees_and_revokes_only_their_own_tokens(cast: Cast) -> None:
    theirs = issue("partner-b").json()
    api = bearer(issue("partner-a").json()["token"])
    assert theirs["id"] not in [t["id"] for t in api.get("/api/v1/auth/tokens/").json()["results"]]
    assert api.delete(f"/api/v1/auth/tokens/{theirs['id']}/").status_code == 404
    assert works(theirs["token"])


def test_a_sales_manager_revokes_anyones_tokens(cast: Cast) -> None:
    partner_token = issue("partner-a").json()
    manager = bearer(issue("manager").json()["token"])
    listed = manager.get("/api/v1/auth/tokens/", {"user": cast.partner_a_user.pk}).json()
    assert [t["id"] for t in listed["results"]] == [partner_token["id"]]
    assert manager.delete(f"/api/v1/auth/tokens/{partner_token['id']}/").status_code == 204
    assert not works(partner_token["token"])
    event = AuditEvent.objects.get(kind="token_revoked")
    assert (event.user, event.username) == (cast.manager, "partner-a")


def test_a_sales_manager_revokes_a_portal_users_tokens_from_the_partner_page(cast: Cast) -> None:
    key = issue("partner-a").json()["token"]
    workspace = Client()
    workspace.force_login(cast.manager)
    page = workspace.get(f"/workspace/partners/{cast.partner_a.pk}/").content.decode()
    assert "Revoke API token (1)" in page
    response = workspace.post(
        f"/workspace/partners/{cast.partner_a.pk}/users/{cast.partner_a_user.pk}/revoke-tokens/"
    )
    assert response.status_code == 302
    assert not works(key)


def test_a_portal_user_revokes_their_tokens_from_the_profile(cast: Cast) -> None:
    key = issue("partner-a").json()["token"]
    portal = Client()
    portal.force_login(cast.partner_a_user)
    assert "API tokens" in portal.get("/portal/profile/").content.decode()
    assert portal.post("/portal/profile/tokens/revoke/").status_code == 302
    assert not works(key)


def test_it_expires_a_token_left_unused(cast: Cast) -> None:
    key = issue("exec").json()["token"]
    idle = timedelta(days=settings.API_TOKEN_IDLE_DAYS)
    with time_machine.travel(timezone.now() + idle - timedelta(hours=1)):
        assert works(key)  # used: the idle time starts again
    with time_machine.travel(timezone.now() + 2 * idle - timedelta(hours=2)):
        assert works(key)
    with time_machine.travel(timezone.now() + 3 * idle):
        answer = bearer(key).get("/api/v1/partners/")
    assert answer.status_code == 401 and "unused" in answer.json()["detail"]


def test_it_refuses_the_tokens_of_a_deactivated_partners_users(cast: Cast) -> None:
    key = issue("partner-a").json()["token"]
    cast.partner_a.is_active = False
    cast.partner_a.save()
    assert bearer(key).get("/api/v1/agreements/").status_code == 401


def test_it_answers_a_locked_out_token_request_with_429_and_when_to_retry(cast: Cast) -> None:
    for _ in range(settings.AXES_FAILURE_LIMIT):
        issue("manager", "wrong-password-123", REMOTE_ADDR="10.6.6.6")
    locked = issue("manager", REMOTE_ADDR="10.6.6.6")
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.json()["detail"]
    assert int(locked["Retry-After"]) == settings.AXES_COOLOFF_TIME * 3600
    assert issue("manager", REMOTE_ADDR="10.6.6.7").status_code == 200
