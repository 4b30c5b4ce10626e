"""Log which coverage assignments each transaction changed, on PostgreSQL, for the metrics'
readers that keep the assignments between runs and read again only those changed since
(`channels.change_logs.COVERAGE`, `analytics.kept_rows`). SQLite keeps no log."""

from django.db import migrations

from channels.change_logs import COVERAGE
from crm.change_logs import operation


class Migration(migrations.Migration):
    dependencies = [
        ("channels", "0009_opportunity_change_log"),
        ("crm", "0016_account_change_log"),
    ]

    operations = [operation(COVERAGE)]
