# One owner covers an account at most once on any day, held by PostgreSQL exclusion
# constraints (one per owner column). Overlapping assignments of one owner already stored (two
# requests at once could create them) are merged first: the earliest keeps its start and takes
# the latest end, which covers exactly the same days, so no metric changes.

import crm.constraints
import django.contrib.postgres.fields.ranges
from django.contrib.postgres.operations import BtreeGistExtension
from django.db import migrations, models
from django.db.models import Count


def merge_overlapping_assignments(apps, schema_editor):
    CoverageAssignment = apps.get_model("channels", "CoverageAssignment")
    owner = ("account_id", "kind", "rep_id", "partner_id", "online_source")
    repeated = (
        CoverageAssignment.objects.values(*owner)
        .annotate(rows=Count("id"))
        .filter(rows__gt=1)
        .values_list(*owner)
    )
    for key in repeated.iterator():
        kept = None
        for assignment in CoverageAssignment.objects.filter(**dict(zip(owner, key))).order_by(
            "start_date", "id"
        ):
            if kept is not None and (kept.end_date is None or assignment.start_date <= kept.end_date):
                if kept.end_date is not None and (
                    assignment.end_date is None or assignment.end_date > kept.end_date
                ):
                    kept.end_date = assignment.end_date
                    kept.save(update_fields=["end_date"])
                assignment.delete()
            else:
                kept = assignment
    if schema_editor.connection.vendor == "postgresql":
        # Deleting rows that other tables may reference queues deferred foreign-key checks,
        # and PostgreSQL refuses to alter a table with checks pending: run them now.
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")


class KeepBtreeGist(BtreeGistExtension):
    """Created on PostgreSQL going forwards; left in place going backwards (other constraints
    may use it, and SQLite has none to drop)."""

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        pass


class AddConstraintOnPostgres(migrations.AddConstraint):
    """The constraint in the model state everywhere; in the database only on PostgreSQL (so
    SQLite does not copy the whole table to add nothing)."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):

    dependencies = [
        ('channels', '0002_coverage_partner_account_index'),
        ('crm', '0006_account_indexes_for_import_and_sorting'),
        ('partners', '0002_import_job'),
    ]

    operations = [
        KeepBtreeGist(),
        migrations.RunPython(merge_overlapping_assignments, migrations.RunPython.noop),
        AddConstraintOnPostgres(
            model_name='coverageassignment',
            constraint=crm.constraints.PostgresExclusionConstraint(condition=models.Q(('kind', 'direct')), expressions=[('account', '='), ('rep', '='), (crm.constraints.DateRange('start_date', 'end_date', django.contrib.postgres.fields.ranges.RangeBoundary(inclusive_lower=True, inclusive_upper=True)), '&&')], name='coverage_direct_no_overlap', violation_error_message='This owner already covers the account for some of these days.'),
        ),
        AddConstraintOnPostgres(
            model_name='coverageassignment',
            constraint=crm.constraints.PostgresExclusionConstraint(condition=models.Q(('kind__in', ('distribution', 'partner'))), expressions=[('account', '='), ('kind', '='), ('partner', '='), (crm.constraints.DateRange('start_date', 'end_date', django.contrib.postgres.fields.ranges.RangeBoundary(inclusive_lower=True, inclusive_upper=True)), '&&')], name='coverage_partner_no_overlap', violation_error_message='This owner already covers the account for some of these days.'),
        ),
        AddConstraintOnPostgres(
            model_name='coverageassignment',
            constraint=crm.constraints.PostgresExclusionConstraint(condition=models.Q(('kind', 'online')), expressions=[('account', '='), ('online_source', '='), (crm.constraints.DateRange('start_date', 'end_date', django.contrib.postgres.fields.ranges.RangeBoundary(inclusive_lower=True, inclusive_upper=True)), '&&')], name='coverage_online_no_overlap', violation_error_message='This owner already covers the account for some of these days.'),
        ),
    ]
