"""Log which accounts each transaction changed, on PostgreSQL, for the metrics' readers that
keep the accounts between runs and read again only those changed since
(`crm.change_logs.ACCOUNTS`, `analytics.kept_rows`). SQLite keeps no log."""

from django.db import migrations

from crm.change_logs import ACCOUNTS, operation


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0015_account_drop_external_id_pattern_index"),
    ]

    operations = [operation(ACCOUNTS)]
