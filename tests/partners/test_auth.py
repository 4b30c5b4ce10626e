from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.test import Client

from crm.roles import Role, role_of
from partners.auth import ActivePartnerBackend
from partners.selectors import partner_of_user
from tests.cast import Cast
from tests.factories import TEST_PASSWORD


class TestActivePartnerBackend:
    def test_it_lets_a_partner_user_of_an_active_partner_log_in(self, cast: Cast) -> None:
        client = Client()
        assert client.login(request=HttpRequest(), username="partner-a", password=TEST_PASSWORD)

    def test_it_refuses_a_partner_user_whose_partner_is_deactivated(self, cast: Cast) -> None:
        cast.partner_a.is_active = False
        cast.partner_a.save()
        client = Client()
        assert not client.login(request=HttpRequest(), username="partner-a", password=TEST_PASSWORD)
        response = client.post(
            "/accounts/login/", {"username": "partner-a", "password": TEST_PASSWORD}
        )
        assert response.status_code == 200
        assert "_auth_user_id" not in client.session

    def test_it_ends_open_sessions_when_the_partner_is_deactivated(self, cast: Cast) -> None:
        client = Client()
        client.force_login(cast.partner_a_user)
        assert client.get("/portal/").status_code == 200
        cast.partner_a.is_active = False
        cast.partner_a.save()
        response = client.get("/portal/")
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")

    def test_a_requests_user_is_read_with_its_partner_in_one_query(
        self, cast: Cast, django_assert_num_queries: Any
    ) -> None:
        backend = ActivePartnerBackend()
        with django_assert_num_queries(1):
            partner_user = backend.get_user(cast.partner_a_user.pk)
        with django_assert_num_queries(1):
            manager = backend.get_user(cast.manager.pk)
        assert partner_user is not None and manager is not None
        with django_assert_num_queries(2):  # each user's groups, for the role
            assert role_of(partner_user) == Role.PARTNER_USER
            assert role_of(manager) == Role.SALES_MANAGER
        with django_assert_num_queries(0):
            assert partner_of_user(partner_user) == cast.partner_a
            assert partner_of_user(manager) is None
