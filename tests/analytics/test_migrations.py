from __future__ import annotations

import importlib
from datetime import UTC, date, datetime

import numpy as np
import pytest
import time_machine
from django.db import connection

from analytics import reports
from analytics.models import (
    FeedbackRollup,
    PartnerRollup,
    PartnerSnapshot,
    RegistrationRollup,
)
from analytics.services import registration_rollup_rows
from partners.models import DealRegistration, Feedback
from partners.registration_services import registration_approve, registration_submit
from tests.cast import Cast
from tests.factories import FeedbackFactory, PartnerFactory
from tests.partners.registration_market import RegistrationMarket
from tests.schema_trip import schema_trip

BEFORE = [("analytics", "0004_partner_rollup")]
AFTER = [("analytics", "0005_feedback_rollups")]


@pytest.mark.django_db(transaction=True)
def test_the_feedback_rollups_migration_fills_the_weeks_already_stored() -> None:
    with schema_trip() as trip:
        trip.migrate(BEFORE)
        old = trip.apps
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

        trip.migrate(AFTER)

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


@pytest.mark.django_db(transaction=True)
def test_the_registration_rollups_migration_fills_the_weeks_already_stored(
    registration_market: RegistrationMarket,
) -> None:
    """Weeks stored before rule 18's rollups existed get the rows a run now writes."""
    market = registration_market
    moments = [datetime(2026, 11, day, 10, tzinfo=UTC) for day in (10, 11, 17)]
    with time_machine.travel(moments[0], tick=False):
        clean = registration_submit(
            user=market.cast.partner_a_user,
            details=market.details(company_name="Acme Finance"),
            now=moments[0],
        )
    with time_machine.travel(moments[1], tick=False):
        registration_approve(registration=clean, by=market.cast.manager)
    with time_machine.travel(moments[2], tick=False):
        registration_submit(
            user=market.cast.partner_a_user,
            details=market.details(company_name="Bolt Finance"),
            now=moments[2],
        )
    stored = {"2026-W46": date(2026, 11, 15), "2026-W47": date(2026, 11, 18)}  # W47 provisional
    with schema_trip() as trip:
        trip.migrate([("analytics", "0005_feedback_rollups")])
        old = trip.apps
        for week, as_of in stored.items():
            old.get_model("analytics", "SegmentSnapshot").objects.create(
                week=week,
                as_of=as_of,
                final=week == "2026-W46",
                region="EAST",
                vertical="FIN",
                size_band="smb",
                **dict.fromkeys(
                    [
                        "accounts",
                        "covered_direct",
                        "covered_distribution",
                        "covered_partner",
                        "covered_online",
                        "covered_any",
                        "overlap",
                        "converted",
                        "converted_direct",
                        "converted_distribution",
                        "converted_partner",
                        "converted_online",
                        "white_space",
                    ],
                    0,
                ),
            )

        trip.migrate([("analytics", "0006_registration_rollups")])

        fields = [f.attname for f in RegistrationRollup._meta.concrete_fields][4:]
        for week, as_of in stored.items():
            written = {
                tuple(row[fields.index(key)] for key in ("region", "vertical", "size_band"))
                + row[fields.index("channel_kind") :]
                for row in RegistrationRollup.objects.filter(week=week).values_list(*fields)
            }
            rows = registration_rollup_rows(week=week, as_of=as_of, final=week == "2026-W46")
            columns = next(iter(rows.values())).columns
            expected = {
                tuple(columns[key][i] for key in ("region", "vertical", "size_band"))
                + tuple(columns[key][i] for key in fields[fields.index("channel_kind") :])
                for i in range(next(iter(rows.values())).count)
            }
            assert written == expected, week
        overall = RegistrationRollup.objects.get(
            week="2026-W46", region="", vertical="", size_band="", channel_kind=""
        )
        assert (overall.submitted, overall.approved, overall.decisions_timed) == (1, 1, 1)
        assert overall.decision_hours_median == 24.0
        assert (
            RegistrationRollup.objects.get(
                week="2026-W47", region="", vertical="", size_band="", channel_kind=""
            ).submitted
            == 1
        )


@pytest.mark.django_db(transaction=True)
def test_registrations_stored_before_keep_their_conflicts_as_met_on_arrival(cast: Cast) -> None:
    """Those that arrived through the portal or the API keep their conflicts as last checked;
    those imported already decided were never checked on arrival."""
    from tests.factories import RegionFactory, VerticalFactory

    region, vertical = RegionFactory(), VerticalFactory()
    with schema_trip() as trip:
        trip.migrate(
            [("analytics", "0005_feedback_rollups"), ("partners", "0005_registration_event_facts")]
        )
        old = trip.apps
        registration = old.get_model("partners", "DealRegistration")
        event = old.get_model("partners", "DealRegistrationEvent")
        common = {
            "partner_id": cast.partner_a.pk,
            "region_id": region.pk,
            "vertical_id": vertical.pk,
            "size_band": "smb",
        }
        arrived = registration.objects.create(
            **common,
            external_id="REG-ARRIVED",
            company_name="Arrived",
            status="rejected",
            conflict_codes_text=" covered_by_other_channel ",
        )
        event.objects.create(registration=arrived, kind="submitted")
        imported = registration.objects.create(
            **common, external_id="REG-IMPORTED", company_name="Imported", status="rejected"
        )
        event.objects.create(registration=imported, kind="imported")
        waiting = registration.objects.create(
            **common, external_id="REG-WAITING", company_name="Waiting", status="submitted"
        )
        event.objects.create(registration=waiting, kind="imported")

        trip.migrate([("partners", "0006_registration_arrival_conflicts")])

        kept = dict(DealRegistration.objects.values_list("external_id", "arrival_conflicts"))
        assert kept == {
            "REG-ARRIVED": " covered_by_other_channel ",
            "REG-IMPORTED": None,
            "REG-WAITING": "",
        }


@pytest.mark.django_db(transaction=True)
def test_the_programme_week_migration_carries_each_weeks_day_and_inputs_there_and_back() -> None:
    with schema_trip() as trip:
        trip.migrate([("analytics", "0011_week_rows_fillfactor")])
        old = trip.apps
        rows, fits = (
            old.get_model("analytics", name) for name in ("PartnerProgramme", "SatisfactionFit")
        )
        first, second = PartnerFactory(), PartnerFactory()
        as_of = date(2026, 11, 14)  # a provisional night of 2026-W46
        common = {"week": "2026-W46", "as_of": as_of, "final": False}
        counts = dict.fromkeys(
            (
                "covered_accounts",
                "conversions",
                "conversions_ytd",
                "registrations_submitted",
                "registrations_won",
                "registrations_lost",
                "registrations_won_ytd",
                "certifications",
                "weeks_below",
            ),
            0,
        )
        tiers = {"tier_before": "registered", "qualified_tier": "registered", "tier": "registered"}
        for partner, categories, response, tenure in [
            (first, {"support": 2, "product": 1}, 1.5, 683 / 365.25),
            (second, {}, None, 0.0),
        ]:
            rows.objects.create(
                **common,
                **counts,
                **tiers,
                partner_id=partner.pk,
                feedback_categories=categories,
                response_days=response,
                tenure_years=tenure,
            )
        fits.objects.create(
            **common, status="too_little_data", observations=1, parameters=13, dropped=[]
        )

        trip.migrate([("analytics", "0012_programme_week_kept_once")])

        kept_once = trip.apps.get_model("analytics", "SatisfactionFit")
        inputs = kept_once.objects.get(week="2026-W46").inputs
        assert inputs["partner_id"] == [first.pk, second.pk]
        assert inputs["response_days"] == [1.5, None]
        assert inputs["tenure_days"] == [683, 0]
        assert (inputs["feedback"]["support"], inputs["feedback"]["product"]) == ([2, 0], [1, 0])
        assert inputs["feedback"]["pricing"] == [0, 0]
        assert [(f.as_of, f.final) for f in reports.programme_partners("2026-W46")] == [
            (as_of, False),
            (as_of, False),
        ]

        trip.migrate([("analytics", "0011_week_rows_fillfactor")])

        back = trip.apps.get_model("analytics", "PartnerProgramme").objects.order_by("partner_id")
        assert list(
            back.values_list(
                "as_of", "final", "feedback_categories", "response_days", "tenure_years"
            )
        ) == [
            (as_of, False, {"support": 2, "product": 1}, 1.5, 683 / 365.25),
            (as_of, False, {}, None, 0.0),
        ]


@pytest.mark.django_db(transaction=True)
def test_the_regression_inputs_migration_carries_each_weeks_inputs_there_and_back() -> None:
    with schema_trip() as trip:
        trip.migrate([("analytics", "0012_programme_week_kept_once")])
        fits = trip.apps.get_model("analytics", "SatisfactionFit").objects
        first, second = PartnerFactory(), PartnerFactory()
        inputs = {
            "partner_id": [first.pk, second.pk],
            "feedback": {"product": [1, 0], "support": [2, 0], "pricing": [0, 0]},
            "response_days": [1.5, None],
            "tenure_days": [683, 0],
        }
        common = {"status": "too_little_data", "observations": 1, "parameters": 13}
        fits.create(week="2026-W46", as_of=date(2026, 11, 14), final=False, inputs=inputs, **common)
        fits.create(week="2026-W45", as_of=date(2026, 11, 8), final=True, inputs={}, **common)

        trip.migrate([("analytics", "0013_regression_inputs_as_arrays")])

        arrays = reports.regression_inputs("2026-W46")
        assert arrays["partner_id"].tolist() == [first.pk, second.pk]
        assert arrays["feedback_product"].tolist() == [1, 0]
        assert arrays["feedback_support"].tolist() == [2, 0]
        assert arrays["feedback_pricing"].tolist() == [0, 0]
        assert arrays["response_days"][0] == 1.5 and np.isnan(arrays["response_days"][1])
        assert arrays["tenure_days"].tolist() == [683, 0]
        assert reports.regression_inputs("2026-W45") == {}

        trip.migrate([("analytics", "0012_programme_week_kept_once")])

        back = trip.apps.get_model("analytics", "SatisfactionFit").objects
        assert dict(back.values_list("week", "inputs")) == {
            "2026-W46": inputs,
            "2026-W45": {},
        }


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_revenue_tables_leave_room_for_a_nights_rewrite_on_postgresql() -> None:
    # Half of each page kept free: a row rewritten in place stays on its page (migration 0014).
    tables = importlib.import_module("analytics.migrations.0014_revenue_rows_fillfactor").TABLES

    def options() -> dict[str, list[str] | None]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT relname, reloptions FROM pg_class WHERE relname = ANY(%s)", [list(tables)]
            )
            return dict(cursor.fetchall())

    with schema_trip() as trip:
        trip.migrate([("analytics", "0013_regression_inputs_as_arrays")])
        assert options() == dict.fromkeys(tables)
        trip.migrate([("analytics", "0014_revenue_rows_fillfactor")])
        assert options() == dict.fromkeys(tables, ["fillfactor=50"])
