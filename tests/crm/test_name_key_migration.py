from __future__ import annotations

from datetime import date

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from crm.models import Account

BEFORE = [("crm", "0011_submission_key")]
AFTER = [("crm", "0012_account_name_key")]


def migrate(target: list[tuple[str, str]]) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(target)


@pytest.mark.django_db(transaction=True)
def test_the_name_key_migration_folds_the_names_of_existing_accounts() -> None:
    migrate(BEFORE)
    old = MigrationExecutor(connection).loader.project_state(BEFORE).apps
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
    migrate(AFTER)
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
    assert dict(Account.objects.values_list("external_id", "name_key")) == {
        "ACC-0": "golden health 12",
        "ACC-1": "北京智源科技",
    }
