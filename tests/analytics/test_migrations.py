from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from analytics.models import FeedbackRollup, PartnerRollup, PartnerSnapshot
from partners.models import Feedback
from tests.factories import FeedbackFactory, PartnerFactory

BEFORE = [("analytics", "0004_partner_rollup")]
AFTER = [("analytics", "0005_feedback_rollups")]


def migrate(target: list[tuple[str, str]]) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(target)


@pytest.mark.django_db(transaction=True)
def test_the_feedback_rollups_migration_fills_the_weeks_already_stored() -> None:
    migrate(BEFORE)
    old = MigrationExecutor(connection).loader.project_state(BEFORE).apps
    snapshot, rollup = (
        old.get_model("analytics", name) for name in ("PartnerSnapshot", "PartnerRollup")
    )
    reseller = PartnerFactory(channel_kind="partner")
    distributor = PartnerFactory(channel_kind="distribution")
    as_of = date(2026, 11, 15)  # the Sunday that closes 2026-W46
    for created, partner, category, satisfaction, nps in [
        (datetime(2026, 11, 10, 9, tzinfo=UTC), reseller, "product", 5, 10),
        (datetime(2026, 11, 15, 9, tzinfo=UTC), reseller, "product", 2, 3),
        (datetime(2026, 9, 1, 9, tzinfo=UTC), reseller, "support", 4, 9),  # in the 90 days
        (datetime(2026, 8, 1, 9, tzinfo=UTC), reseller, "support", 1, 0),  # before them
        (datetime(2026, 11, 16, 9, tzinfo=UTC), reseller, "support", 1, 0),  # after the week
        (datetime(2026, 11, 12, 9, tzinfo=UTC), distributor, "pricing", 3, None),
    ]:
        entry = FeedbackFactory(
            partner=partner, category=category, satisfaction=satisfaction, nps=nps
        )
        Feedback.objects.filter(pk=entry.pk).update(created_at=created)
    common = {"week": "2026-W46", "as_of": as_of, "final": True}
    for partner in (reseller, distributor):
        snapshot.objects.create(
            **common,
            partner_id=partner.pk,
            external_id=partner.external_id,
            name=partner.name,
            channel_kind=partner.channel_kind,
            covered_accounts=0,
            converted_accounts=0,
            agreements_in_force=0,
            feedback_count=0,
        )
    for kind in ("", "partner", "distribution"):
        rollup.objects.create(
            **common,
            channel_kind=kind,
            partners=1,
            active_partners=0,
            agreements_in_force=0,
            feedback_count=0,
            satisfaction_weighted=0.0,
        )

    migrate(AFTER)

    counts = ("nps_responses", "nps_promoters", "nps_detractors")
    by_partner = {
        row[0]: row[1:] for row in PartnerSnapshot.objects.values_list("partner_id", *counts)
    }
    # The reseller's scores in the 90 days: 10, 3 and 9.
    assert by_partner == {reseller.pk: (3, 2, 1), distributor.pk: (0, 0, 0)}
    rollups = {
        row[0]: row[1:] for row in PartnerRollup.objects.values_list("channel_kind", *counts)
    }
    assert rollups == {"": (3, 2, 1), "partner": (3, 2, 1), "distribution": (0, 0, 0)}
    cells = FeedbackRollup.objects.values_list(
        "week", "channel_kind", "category", "feedback_count", "satisfaction_sum"
    )
    assert sorted(cells) == [
        ("2026-W46", "", "pricing", 1, 3),
        ("2026-W46", "", "product", 2, 7),
        ("2026-W46", "distribution", "pricing", 1, 3),
        ("2026-W46", "partner", "product", 2, 7),
    ]
