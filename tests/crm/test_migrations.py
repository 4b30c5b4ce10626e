from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from django.db import connection
from pytest_django import DjangoDbBlocker
from rest_framework.test import APIClient

from tests.factories import UserFactory
from tests.schema_trip import SchemaTrip, schema_trip

TOKENS_BEFORE = [("crm", "0007_region_vertical_chinese_names")]
TOKENS_AFTER = [("crm", "0008_api_tokens")]
NAME_KEY_BEFORE = [("crm", "0011_submission_key")]
NAME_KEY_AFTER = [("crm", "0012_account_name_key")]


@pytest.fixture(scope="module")
def trip(django_db_setup: None, django_db_blocker: DjangoDbBlocker) -> Iterator[SchemaTrip]:
    """One way back to the earliest migration these tests need (it unapplies 20 migrations of
    four apps; the way back to the name key's would unapply 16 of them again), shared: each test
    goes forward from there in a leg of its own, undone when the test ends. The tests hold the
    database through the trip; each test's own transaction nests inside it."""
    with django_db_blocker.unblock(), schema_trip() as trip:
        trip.migrate(TOKENS_BEFORE)
        yield trip


@pytest.fixture(autouse=True)
def _migration_rows() -> None:
    """Not here: the suite's rows of the latest migrations have no tables at the schemas of the
    trip."""


@pytest.mark.django_db
def test_it_keeps_the_tokens_issued_before_working_until_the_password_changes(
    trip: SchemaTrip,
) -> None:
    with trip.leg():
        trip.migrate(TOKENS_BEFORE)
        user = UserFactory(username="integrator", role="executive")
        key = "0123456789abcdef0123456789abcdef01234567"
        with connection.cursor() as cursor:
            # Django REST framework's token table, as databases from before have it (the leg's
            # rollback drops it again).
            cursor.execute(
                "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, created timestamp, "
                "user_id bigint)"
            )
            cursor.execute(
                "INSERT INTO authtoken_token (key, created, user_id) VALUES (%s, %s, %s)",
                [key, "2026-01-01 00:00:00", user.pk],
            )
        trip.migrate(TOKENS_AFTER)
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        assert api.get("/api/v1/regions/").status_code == 200
        user.set_password("a-new-password-for-the-integrator")
        user.save()
        assert api.get("/api/v1/regions/").status_code == 401


@pytest.mark.django_db
def test_the_name_key_migration_folds_the_names_of_existing_accounts(trip: SchemaTrip) -> None:
    with trip.leg():
        trip.migrate(NAME_KEY_BEFORE)
        old = trip.apps
        region = old.get_model("crm", "Region").objects.create(code="EAST", name="East")
        vertical = old.get_model("crm", "Vertical").objects.create(code="FIN", name="Finance")
        for number, name in enumerate(["Golden Health 12 Co., Ltd.", "北京智源科技有限公司"]):
            old.get_model("crm", "Account").objects.create(
                external_id=f"ACC-{number}",
                name=name,
                region=region,
                vertical=vertical,
                size_band="smb",
                entered_on=date(2025, 1, 1),
            )
        trip.migrate(NAME_KEY_AFTER)
        account = trip.apps.get_model("crm", "Account")
        assert dict(account.objects.values_list("external_id", "name_key")) == {
            "ACC-0": "golden health 12",
            "ACC-1": "北京智源科技",
        }
