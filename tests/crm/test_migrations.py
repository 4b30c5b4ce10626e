from __future__ import annotations

import pytest
from django.db import connection
from rest_framework.test import APIClient

from tests.factories import UserFactory
from tests.schema_trip import schema_trip

BEFORE = [("crm", "0007_region_vertical_chinese_names")]
AFTER = [("crm", "0008_api_tokens")]


@pytest.mark.django_db(transaction=True)
def test_it_keeps_the_tokens_issued_before_working_until_the_password_changes() -> None:
    with schema_trip() as trip:
        trip.migrate(BEFORE)
        user = UserFactory(username="integrator", role="executive")
        key = "0123456789abcdef0123456789abcdef01234567"
        with connection.cursor() as cursor:
            # Django REST framework's token table, as databases from before have it (the
            # trip's rollback drops it again).
            cursor.execute(
                "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, created timestamp, "
                "user_id bigint)"
            )
            cursor.execute(
                "INSERT INTO authtoken_token (key, created, user_id) VALUES (%s, %s, %s)",
                [key, "2026-01-01 00:00:00", user.pk],
            )
        trip.migrate(AFTER)
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        assert api.get("/api/v1/regions/").status_code == 200
        user.set_password("a-new-password-for-the-integrator")
        user.save()
        assert api.get("/api/v1/regions/").status_code == 401
