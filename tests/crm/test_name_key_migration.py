from __future__ import annotations

from datetime import date

import pytest

from tests.schema_trip import schema_trip

BEFORE = [("crm", "0011_submission_key")]
AFTER = [("crm", "0012_account_name_key")]


@pytest.mark.django_db(transaction=True)
def test_the_name_key_migration_folds_the_names_of_existing_accounts() -> None:
    with schema_trip() as trip:
        trip.migrate(BEFORE)
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
        trip.migrate(AFTER)
        account = trip.apps.get_model("crm", "Account")
        assert dict(account.objects.values_list("external_id", "name_key")) == {
            "ACC-0": "golden health 12",
            "ACC-1": "北京智源科技",
        }
