"""The weekly programme step on a small market: each partner's programme figures (rule 20),
tier changes traced to the week and figures that caused them (rule 21), target attainment of
partners and reps (rule 22), and the regression's record (rule 23)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from analytics import programme_selectors, programme_services, reports, selectors, services
from analytics.models import PartnerProgramme, RepProgramme, SatisfactionDriver, SatisfactionFit
from channels.models import SalesRep
from crm.models import ChannelKind, Region, SizeBand, Vertical
from partners.models import Partner, Tier, TierChange
from partners.programme_services import (
    certification_add,
    partner_tier_set,
    programme_settings_set,
    target_set,
)
from partners.registration_models import DealRegistration, RegistrationStatus
from partners.registration_services import tier_terms
from tests.factories import (
    AccountFactory,
    AgreementFactory,
    CoverageAssignmentFactory,
    CurrencyRateFactory,
    FeedbackFactory,
    FeedbackReplyFactory,
    OpportunityFactory,
    PartnerFactory,
    PartnerUserFactory,
    RegionFactory,
    SalesRepFactory,
    UserFactory,
    VerticalFactory,
    tier_set,
)

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 20, 12, 0, tzinfo=UTC)
WEEK = "2026-W46"  # as of Sunday 2026-11-15


@pytest.fixture(autouse=True)
def frozen() -> Any:
    with time_machine.travel(NOW, tick=False):
        yield


@dataclass
class Market:
    partner: Partner
    rep: SalesRep
    kept: Any  # the covered, unconverted account whose coverage a test may end


def at(day: date) -> datetime:
    return timezone.make_aware(datetime(day.year, day.month, day.day, 10))


def registered(
    partner: Partner, status: str, submitted: datetime, closed: date | None, *, account: Any
) -> DealRegistration:
    """A deal registration of `partner` in the EAST region's finance vertical, won with
    `account` (none otherwise)."""
    return DealRegistration.objects.create(
        partner=partner,
        company_name=f"Deal {status} {submitted}",
        region=Region.objects.get(code="EAST"),
        vertical=Vertical.objects.get(code="FIN"),
        size_band=SizeBand.SMB,
        status=status,
        submitted_at=submitted,
        account=account,
        closed_on=closed,
    )


@pytest.fixture
def market() -> Market:
    east, west = RegionFactory(code="EAST"), RegionFactory(code="WEST")
    finance = VerticalFactory(code="FIN")
    partner = PartnerFactory(external_id="P-ONE", tier="registered")
    AgreementFactory(
        partner=partner,
        start_date=date(2025, 1, 1),
        end_date=date(2027, 12, 31),
        regions=[east],
        annual_target=Decimal("500000"),
        currency="USD",
    )

    def covered(region: Any, **account: Any) -> Any:
        covered_account = AccountFactory(region=region, vertical=finance, **account)
        CoverageAssignmentFactory(
            account=covered_account, kind=ChannelKind.PARTNER, partner=partner
        )
        return covered_account

    this_year = covered(east, converted_on=date(2026, 3, 1), converted_via=ChannelKind.PARTNER)
    covered(east, converted_on=date(2025, 9, 1), converted_via=ChannelKind.PARTNER)  # too old
    covered(west, converted_on=date(2026, 5, 1), converted_via=ChannelKind.PARTNER)  # no grant
    kept = covered(east)
    rep = SalesRepFactory(external_id="REP-ONE")
    won_by_rep = AccountFactory(
        region=west, vertical=finance, converted_on=date(2026, 2, 1), converted_via="direct"
    )
    CoverageAssignmentFactory(account=won_by_rep, kind=ChannelKind.DIRECT, rep=rep)
    for status, submitted, closed in (
        (RegistrationStatus.WON, date(2026, 4, 1), date(2026, 6, 1)),
        (RegistrationStatus.LOST, date(2026, 4, 2), date(2026, 7, 1)),
        (RegistrationStatus.SUBMITTED, date(2026, 10, 1), None),
        (RegistrationStatus.WON, date(2025, 1, 1), date(2025, 3, 1)),  # before the 52 weeks
    ):
        registered(
            partner,
            status,
            at(submitted),
            closed,
            account=this_year if status == RegistrationStatus.WON else None,
        )
    certification_add(partner=partner, name="Valid", earned_on=date(2026, 1, 1))
    certification_add(
        partner=partner, name="Expired", earned_on=date(2025, 1, 1), expires_on=date(2026, 6, 1)
    )
    certification_add(partner=partner, name="Later", earned_on=date(2026, 12, 1))
    feedback = FeedbackFactory(partner=partner, satisfaction=5, nps=10)
    type(feedback).objects.filter(pk=feedback.pk).update(created_at=at(date(2026, 11, 10)))
    tier_set("silver", min_covered_accounts=3, min_satisfaction=Decimal("4"), protection_days=120)
    tier_set("gold", min_conversions=5)
    Tier.objects.filter(code="platinum").delete()
    target_set(year=2026, partner=partner, accounts_covered=4, conversions=2)
    target_set(year=2026, rep=rep, accounts_covered=2, conversions=1, revenue=Decimal("1000"))
    return Market(partner=partner, rep=rep, kept=kept)


def run(week: str, *, final: bool = True) -> None:
    services.metrics_compute_week(week=week, final=final)


def test_a_week_records_each_partners_programme_figures(market: Market) -> None:
    run(WEEK)
    row = PartnerProgramme.objects.get(week=WEEK, partner=market.partner)
    # The east's three (the west is not granted), the one converted too long ago included.
    assert row.covered_accounts == 3
    assert (row.conversions, row.conversions_ytd) == (1, 1)
    # Submitted in the 52 weeks: all three of 2026; won and lost by the day they closed.
    assert (row.registrations_submitted, row.registrations_won, row.registrations_lost) == (
        3,
        1,
        1,
    )
    assert row.registrations_won_ytd == 1
    assert row.certifications == 1
    assert row.sourced_revenue == 0  # no deal sourced
    figures = reports.programme_partners(WEEK)[0]
    assert figures.satisfaction == 5.0 and figures.win_rate == 0.5


def test_a_partners_tenure_counts_from_its_first_signed_agreement(market: Market) -> None:
    # WEEK's day is 2026-11-15; the market's agreement was signed on 2025-01-01.
    PartnerFactory(external_id="P-UNSIGNED")  # no agreement yet
    later = PartnerFactory(external_id="P-LATER")
    AgreementFactory(partner=later, start_date=date(2026, 11, 20))
    run(WEEK)
    # Kept with the week's regression, partner by partner in id order.
    inputs = reports.regression_inputs(WEEK)
    names = dict(Partner.objects.values_list("pk", "external_id"))
    tenure = {
        names[pk]: days
        for pk, days in zip(
            inputs["partner_id"].tolist(), inputs["tenure_days"].tolist(), strict=True
        )
    }
    assert tenure == {"P-ONE": 683, "P-UNSIGNED": 0, "P-LATER": 0}


def test_the_partners_inputs_come_in_id_order(market: Market) -> None:
    others = [PartnerFactory(external_id=f"P-{n}") for n in range(3)]
    # Rewritten after the others: its row is no longer first where it is stored.
    Partner.objects.filter(pk=market.partner.pk).update(name="Renamed")
    ids = programme_selectors.partner_inputs(date(2026, 11, 15))["partner_id"].tolist()
    assert ids == sorted([market.partner.pk, *(p.pk for p in others)])


def test_a_partner_moves_up_in_the_week_it_qualifies_with_the_figures_that_caused_it(
    market: Market,
) -> None:
    run(WEEK)
    market.partner.refresh_from_db()
    assert market.partner.tier == "silver"
    change = TierChange.objects.get(partner=market.partner)
    assert (change.week, change.as_of, change.from_tier, change.to_tier, change.source) == (
        WEEK,
        date(2026, 11, 15),
        "registered",
        "silver",
        "evaluation",
    )
    assert change.evidence["tier"] == "silver"
    assert change.evidence["requirements"] == [
        {"key": "covered_accounts", "minimum": 3.0, "value": 3.0, "met": True},
        {"key": "satisfaction", "minimum": 4.0, "value": 5.0, "met": True},
    ]
    assert change.evidence["figures"]["conversions"] == 1.0
    # Deal registration reads the benefits of the tier the evaluation gave.
    assert tier_terms(market.partner.tier).protection_days == 120


def test_running_a_week_again_records_its_change_once(market: Market) -> None:
    run(WEEK)
    run(WEEK)
    assert TierChange.objects.filter(partner=market.partner).count() == 1
    assert PartnerProgramme.objects.filter(week=WEEK).count() == 1


def test_running_a_week_again_rewrites_its_rows_as_a_first_run_would_write_them(
    market: Market,
) -> None:
    joiner = PartnerFactory(external_id="P-JOINS", is_active=False)
    leaver = PartnerFactory(external_id="P-LEAVES")
    run(WEEK)
    assert {row.partner_id for row in PartnerProgramme.objects.filter(week=WEEK)} == {
        market.partner.pk,
        leaver.pk,
    }
    # Between the nightly runs a partner joins, another leaves and a figure changes.
    Partner.objects.filter(pk=joiner.pk).update(is_active=True)
    Partner.objects.filter(pk=leaver.pk).update(is_active=False)
    certification_add(partner=market.partner, name="New", earned_on=date(2026, 11, 1))
    run(WEEK, final=False)

    def rows() -> list[dict[str, Any]]:
        return list(
            PartnerProgramme.objects.filter(week=WEEK)
            .order_by("partner_id")
            .values(*(f.attname for f in PartnerProgramme._meta.concrete_fields))
        )

    again = rows()
    assert [row["partner_id"] for row in again] == [market.partner.pk, joiner.pk]
    assert again[0]["certifications"] == 2 and not SatisfactionFit.objects.get(week=WEEK).final
    PartnerProgramme.objects.filter(week=WEEK).delete()
    run(WEEK, final=False)
    written = ("id", "created_at", "updated_at")
    assert [{k: v for k, v in row.items() if k not in written} for row in again] == [
        {k: v for k, v in row.items() if k not in written} for row in rows()
    ]


def test_a_partner_below_its_tier_keeps_it_through_the_grace_weeks(market: Market) -> None:
    programme_settings_set(downgrade_grace_weeks=1)
    run(WEEK)
    # From the next week it covers one account too few for silver (3 at the boundary).
    type(market.kept.coverage_assignments.get()).objects.filter(account=market.kept).update(
        end_date=date(2026, 11, 16)
    )
    run("2026-W47")
    market.partner.refresh_from_db()
    assert market.partner.tier == "silver"
    assert PartnerProgramme.objects.get(week="2026-W47").weeks_below == 1
    run("2026-W48")
    market.partner.refresh_from_db()
    assert market.partner.tier == "registered"
    down = TierChange.objects.get(week="2026-W48")
    assert (down.from_tier, down.to_tier) == ("silver", "registered")
    assert down.evidence["weeks_below"] == 2 and down.evidence["grace_weeks"] == 1
    missed = [r for r in down.evidence["requirements"] if not r["met"]]
    assert missed == [{"key": "covered_accounts", "minimum": 3.0, "value": 2.0, "met": False}]


def test_a_provisional_week_changes_no_tier(market: Market) -> None:
    run("2026-W51", final=False)
    market.partner.refresh_from_db()
    assert market.partner.tier == "registered"
    assert PartnerProgramme.objects.get(week="2026-W51").qualified_tier == "silver"
    assert not TierChange.objects.exists()


def test_the_evaluation_goes_on_from_a_managers_change(market: Market) -> None:
    manager = UserFactory(role="sales_manager")
    with time_machine.travel(datetime(2026, 11, 11, 9, tzinfo=UTC), tick=False):
        partner_tier_set(partner=market.partner, tier="gold", by=manager, reason="Strategic")
    programme_settings_set(downgrade_grace_weeks=0)
    run(WEEK)
    market.partner.refresh_from_db()
    manual, evaluated = TierChange.objects.order_by("created_at")
    assert (manual.source, manual.week, manual.changed_by, manual.reason) == (
        "manager",
        WEEK,
        manager,
        "Strategic",
    )
    assert (evaluated.from_tier, evaluated.to_tier) == ("gold", "silver")
    assert market.partner.tier == "silver"


def test_target_attainment_is_kept_for_partners_and_reps(market: Market) -> None:
    run(WEEK)
    partner = reports.programme_partners(WEEK)[0]
    assert (partner.target_accounts_covered, partner.target_conversions) == (4, 2)
    # No revenue target of its own: its agreement's annual target.
    assert (partner.target_revenue, partner.revenue_target_source) == (
        Decimal("500000"),
        "agreements",
    )
    rep = RepProgramme.objects.get(week=WEEK)
    assert (rep.covered_accounts, rep.conversions_ytd) == (1, 1)
    assert (rep.target_accounts_covered, rep.target_conversions) == (2, 1)
    totals = reports.attainment_totals(WEEK)
    assert (totals["partners"].accounts_actual, totals["partners"].accounts_target) == (3, 4)
    assert totals["reps"].conversions_reached == 1


def test_the_regression_says_when_there_is_too_little_data(market: Market) -> None:
    run(WEEK)
    fit = SatisfactionFit.objects.get(week=WEEK)
    assert (fit.status, fit.observations) == ("too_little_data", 1)
    assert reports.satisfaction_drivers(WEEK).drivers == []  # type: ignore[union-attr]


def test_deactivated_partners_are_not_evaluated(market: Market) -> None:
    Partner.objects.filter(pk=market.partner.pk).update(is_active=False)
    run(WEEK)
    assert not PartnerProgramme.objects.exists()
    assert not TierChange.objects.exists()


def test_a_tier_without_partners_can_be_evaluated_into_later(market: Market) -> None:
    assert Tier.objects.filter(code="gold").exists()
    PartnerFactory(tier="gold", external_id="P-TWO")
    run(WEEK)
    # The second partner meets nothing above the entry tier and drops once the grace ends.
    assert PartnerProgramme.objects.filter(week=WEEK).count() == 2


@pytest.fixture
def deals(market: Market) -> Market:
    """Won deals of the partner and the rep, by hand, as of 2026-11-15 (the 52 weeks from
    2025-11-17): EUR at 1.05 from 2025-01-01 and 1.20 from 2026-06-01."""
    CurrencyRateFactory(currency="EUR", valid_from=date(2025, 1, 1), rate_to_reporting="1.05")
    CurrencyRateFactory(currency="EUR", valid_from=date(2026, 6, 1), rate_to_reporting="1.20")
    partner, account = market.partner, market.kept

    def won(closed: date, amount: str, currency: str = "EUR", **values: Any) -> None:
        values.setdefault("channel", ChannelKind.PARTNER)
        values.setdefault("partner", partner if values["channel"] != "direct" else None)
        OpportunityFactory(
            account=account,
            stage="won",
            amount=Decimal(amount),
            currency=currency,
            opened_on=date(2025, 10, 1),
            closed_on=closed,
            **values,
        )

    won(date(2025, 12, 1), "500.00")  # 525.00, in the 52 weeks, not this year
    won(date(2026, 3, 10), "1000.00")  # 1,050.00
    won(date(2026, 5, 1), "0.10")  # 0.105, and again the next day: 0.21 once summed
    won(date(2026, 5, 2), "0.10")
    won(date(2026, 7, 1), "100.00", "USD", recurring=True)  # 12 monthly fees: 1,200.00
    won(date(2026, 9, 1), "2000.00")  # at 1.20: 2,400.00
    won(date(2025, 11, 16), "9999.00", "USD")  # a day before the 52 weeks
    won(date(2026, 11, 16), "9999.00", "USD")  # the day after
    OpportunityFactory(  # lost: counts nowhere
        account=account,
        channel=ChannelKind.PARTNER,
        partner=partner,
        stage="lost",
        opened_on=date(2026, 1, 5),
        closed_on=date(2026, 8, 1),
    )
    won(date(2026, 4, 1), "7777.00", "USD", partner=PartnerFactory(external_id="P-OTHER"))
    won(date(2026, 2, 1), "400.00", "USD", channel="direct", rep=market.rep)
    won(date(2025, 12, 15), "300.00", "USD", channel="direct", rep=market.rep)  # last year
    return market


def test_a_partners_sourced_revenue_counts_in_its_figures_and_targets(deals: Market) -> None:
    partner = deals.partner
    target_set(year=2026, partner=partner, accounts_covered=4, revenue=Decimal("9300.42"))
    run(WEEK)
    row = PartnerProgramme.objects.get(week=WEEK, partner=partner)
    # 525.00 + 1,050.00 + 0.21 + 1,200.00 + 2,400.00, rounded once.
    assert row.sourced_revenue == Decimal("5175.21")
    assert row.sourced_revenue_ytd == Decimal("4650.21")
    figures = reports.programme_partners(WEEK, partner_ids=[partner.pk])[0]
    assert figures.target_revenue == Decimal("9300.42")
    assert figures.revenue_target_source == "target"
    rep = RepProgramme.objects.get(week=WEEK)
    assert (rep.sourced_revenue_ytd, rep.target_revenue) == (Decimal("400.00"), Decimal("1000"))
    totals = reports.attainment_totals(WEEK)
    assert (totals["partners"].revenue_actual, totals["partners"].revenue_reached) == (
        Decimal("4650.21"),
        0,
    )
    assert (totals["reps"].revenue_actual, totals["reps"].revenue_target) == (
        Decimal("400.00"),
        Decimal("1000.00"),
    )


def test_the_revenue_step_hands_over_the_revenue_sourced_this_year(
    deals: Market, monkeypatch: pytest.MonkeyPatch
) -> None:
    def read(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the programme step read the won deals again")

    # Read as one week and as a week of a backfill: the programme step reads no deal.
    monkeypatch.setattr(programme_selectors, "sourced_revenue_since", read)
    for compute in (
        lambda: run(WEEK),
        lambda: services.metrics_compute_weeks(weeks=["2026-W45", WEEK], final_weeks=[WEEK]),
    ):
        compute()
        row = PartnerProgramme.objects.get(week=WEEK, partner=deals.partner)
        assert row.sourced_revenue_ytd == Decimal("4650.21")
        assert RepProgramme.objects.get(week=WEEK).sourced_revenue_ytd == Decimal("400.00")
        other = PartnerProgramme.objects.get(week=WEEK, partner__external_id="P-OTHER")
        assert other.sourced_revenue_ytd == Decimal("7777.00")


def test_on_the_years_last_days_the_programme_reads_what_the_weeks_deals_miss(
    deals: Market,
) -> None:
    # 2028-12-31 is a Sunday, the 366th day of its year: its 52 weeks start on 3 January, so
    # the week's read misses the deals won on 1 and 2 January that count since 1 January.
    partner, account = deals.partner, deals.kept
    for closed, amount in ((date(2028, 1, 1), "10.00"), (date(2028, 1, 3), "0.01")):
        OpportunityFactory(
            account=account,
            channel=ChannelKind.PARTNER,
            partner=partner,
            stage="won",
            amount=Decimal(amount),
            currency="USD",
            opened_on=date(2027, 12, 1),
            closed_on=closed,
        )
    target_set(year=2028, rep=deals.rep, revenue=Decimal("1"))
    for compute in (
        lambda: run("2028-W52"),
        lambda: services.metrics_compute_weeks(weeks=["2028-W52"], final_weeks=["2028-W52"]),
    ):
        compute()
        row = PartnerProgramme.objects.get(week="2028-W52", partner=partner)
        assert row.sourced_revenue_ytd == Decimal("10.01")
        assert row.sourced_revenue == Decimal("0.01")  # the 52 weeks
        assert RepProgramme.objects.get(week="2028-W52").sourced_revenue_ytd == Decimal("0.00")


def test_a_revenue_requirement_is_met_at_its_minimum(deals: Market) -> None:
    tier_set("gold", min_conversions=None, min_sourced_revenue=Decimal("5175.21"))
    tier_set("platinum", min_sourced_revenue=Decimal("5175.22"))
    run(WEEK)
    deals.partner.refresh_from_db()
    assert deals.partner.tier == "gold"
    change = TierChange.objects.get(partner=deals.partner)
    assert change.evidence["requirements"] == [
        {"key": "sourced_revenue", "minimum": 5175.21, "value": 5175.21, "met": True}
    ]
    assert PartnerProgramme.objects.get(week=WEEK, partner=deals.partner).qualified_tier == "gold"


def test_a_blank_revenue_target_takes_the_agreements_at_the_days_rates(deals: Market) -> None:
    AgreementFactory(
        partner=deals.partner,
        start_date=date(2026, 1, 1),
        end_date=date(2026, 12, 31),
        regions=[RegionFactory(code="NORTH")],
        annual_target=Decimal("10000.01"),
        currency="EUR",
    )
    run(WEEK)
    figures = reports.programme_partners(WEEK, partner_ids=[deals.partner.pk])[0]
    # 500,000 USD + 10,000.01 EUR at 1.20 on 2026-11-15 (12,000.012), rounded once.
    assert (figures.target_revenue, figures.revenue_target_source) == (
        Decimal("512000.01"),
        "agreements",
    )


def test_without_a_rate_the_programme_has_no_revenue_figures(deals: Market) -> None:
    OpportunityFactory(
        account=deals.kept,
        channel=ChannelKind.PARTNER,
        partner=deals.partner,
        stage="won",
        currency="GBP",
        opened_on=date(2026, 1, 5),
        closed_on=date(2026, 6, 1),
    )
    tier_set("gold", min_conversions=None, min_sourced_revenue=Decimal("0"))
    run(WEEK)
    row = PartnerProgramme.objects.get(week=WEEK, partner=deals.partner)
    assert (row.sourced_revenue, row.sourced_revenue_ytd, row.target_revenue) == (None,) * 3
    assert RepProgramme.objects.get(week=WEEK).sourced_revenue_ytd is None
    # A missing figure meets no requirement, not even a minimum of 0.
    assert row.qualified_tier == "silver"


def test_the_response_time_counts_our_first_reply_to_each_message() -> None:
    partner = PartnerFactory()
    manager = UserFactory(role="sales_manager")
    partner_user = PartnerUserFactory(partner=partner).user

    def entry(created: datetime, **values: Any) -> Any:
        feedback = FeedbackFactory(partner=partner, **values)
        type(feedback).objects.filter(pk=feedback.pk).update(created_at=created)
        return feedback

    def reply(feedback: Any, author: Any, when: datetime) -> None:
        answer = FeedbackReplyFactory(feedback=feedback, author=author)
        type(answer).objects.filter(pk=answer.pk).update(created_at=when)

    answered = entry(datetime(2026, 11, 10, 10, tzinfo=UTC))
    reply(answered, partner_user, datetime(2026, 11, 11, 10, tzinfo=UTC))  # theirs: not ours
    reply(answered, manager, datetime(2026, 11, 12, 10, tzinfo=UTC))  # 2 days
    reply(answered, manager, datetime(2026, 11, 13, 10, tzinfo=UTC))  # not the first
    entry(datetime(2026, 11, 14, 12, tzinfo=UTC))  # waiting: 1.5 days to the end of the 15th
    late = entry(datetime(2026, 11, 13, 0, tzinfo=UTC))  # answered after the day: 3 days
    reply(late, manager, datetime(2026, 11, 17, 9, tzinfo=UTC))
    entry(datetime(2026, 6, 1, 9, tzinfo=UTC))  # before the 90 days
    entry(datetime(2026, 11, 12, 9, tzinfo=UTC), source="survey", category="pricing")

    (row,) = programme_selectors.feedback_inputs(date(2026, 11, 15)).to_dict(orient="records")

    assert row["partner_id"] == partner.pk
    assert row["response_days"] == pytest.approx((2 + 1.5 + 3) / 3)
    assert (row["feedback_product"], row["feedback_pricing"], row["feedback_support"]) == (3, 1, 0)


def test_the_partners_inputs_of_many_days_read_at_once_are_each_days(market: Market) -> None:
    other = PartnerFactory(external_id="P-EDGES", is_active=False, tier="gold")
    AgreementFactory(partner=other, signed_on=date(2026, 6, 1), start_date=date(2026, 6, 1))
    AgreementFactory(partner=other, signed_on=date(2026, 9, 1), start_date=date(2026, 9, 1))
    PartnerFactory(external_id="P-NOTHING")
    certification_add(
        partner=other, name="Ends", earned_on=date(2026, 1, 4), expires_on=date(2026, 6, 1)
    )
    certification_add(partner=other, name="Starts", earned_on=date(2026, 11, 15))
    east, finance = market.kept.region, market.kept.vertical
    for status, submitted, closed in (
        (RegistrationStatus.WON, datetime(2025, 11, 16, 23, 59, tzinfo=UTC), date(2026, 1, 1)),
        (RegistrationStatus.WON, datetime(2025, 11, 17, 0, 0, tzinfo=UTC), date(2025, 12, 31)),
        (RegistrationStatus.LOST, datetime(2026, 5, 31, 23, 0, tzinfo=UTC), date(2026, 6, 1)),
        (RegistrationStatus.LOST, datetime(2025, 6, 1, 9, 0, tzinfo=UTC), date(2025, 11, 17)),
        (RegistrationStatus.SUBMITTED, datetime(2026, 11, 15, 23, 59, tzinfo=UTC), None),
        (RegistrationStatus.SUBMITTED, datetime(2026, 11, 16, 0, 0, tzinfo=UTC), None),
    ):
        registered(
            other,
            status,
            submitted,
            closed,
            account=(
                AccountFactory(region=east, vertical=finance)
                if status == RegistrationStatus.WON
                else None
            ),
        )
    # Each window's first and last day, the year's turn, a certification's last day.
    days = [
        date(2025, 12, 31),
        date(2026, 1, 1),
        date(2026, 1, 4),
        date(2026, 5, 31),
        date(2026, 6, 1),
        date(2026, 8, 31),
        date(2026, 11, 15),
        date(2026, 11, 16),
    ]

    at_once = programme_selectors.partner_inputs_of_days(days)

    assert list(at_once) == days
    for day in days:
        read = programme_selectors.partner_inputs(day)
        # The same days, whatever unit the database's dates arrive in.
        pd.testing.assert_frame_equal(
            at_once[day].drop(columns="first_signed"), read.drop(columns="first_signed")
        )
        assert at_once[day]["first_signed"].tolist() == read["first_signed"].tolist()
    edges = {day: at_once[day].set_index("partner_id").loc[other.pk].to_dict() for day in days}
    assert edges[date(2026, 6, 1)]["certifications"] == 1  # its last day
    assert edges[date(2026, 8, 31)]["first_signed"] == pd.Timestamp(2026, 6, 1)
    assert pd.isna(edges[date(2026, 5, 31)]["first_signed"])
    assert [edges[day]["registrations_won_ytd"] for day in days[:3]] == [1, 1, 1]
    # On the 16th the registration of 2025-11-17 leaves the 52 weeks and that of its
    # first minute enters them.
    assert [edges[day]["registrations_submitted"] for day in days[-2:]] == [3, 3]


def test_the_first_replies_of_many_days_read_at_once_are_each_days() -> None:
    partner, manager = PartnerFactory(), UserFactory(role="sales_manager")
    partner_user = PartnerUserFactory(partner=partner).user

    def entry(created: datetime, source: str = "portal") -> Any:
        feedback = FeedbackFactory(partner=partner, source=source)
        type(feedback).objects.filter(pk=feedback.pk).update(created_at=created)
        return feedback

    def reply(feedback: Any, author: Any, when: datetime) -> None:
        answer = FeedbackReplyFactory(feedback=feedback, author=author)
        type(answer).objects.filter(pk=answer.pk).update(created_at=when)

    early = entry(datetime(2026, 8, 18, 0, tzinfo=UTC))  # the first of the 90 days to 11-15
    reply(early, partner_user, datetime(2026, 8, 19, 9, tzinfo=UTC))  # theirs
    reply(early, manager, datetime(2026, 11, 15, 23, 59, tzinfo=UTC))
    late = entry(datetime(2026, 11, 15, 23, 0, tzinfo=UTC))
    reply(late, manager, datetime(2026, 11, 16, 0, 0, tzinfo=UTC))  # the next day
    reply(late, manager, datetime(2026, 11, 20, 0, 0, tzinfo=UTC))
    survey = entry(datetime(2026, 10, 1, 9, tzinfo=UTC), source="survey")
    reply(survey, manager, datetime(2026, 10, 2, 9, tzinfo=UTC))
    days = [date(2026, 8, 17), date(2026, 11, 15), date(2026, 11, 16), date(2026, 11, 22)]

    at_once = programme_selectors.first_replies_of_days(days)

    def rows(found: Any) -> list[list[int]]:
        return sorted(found.tolist())

    for day in days:
        assert rows(at_once[day]) == rows(programme_selectors.first_replies(day))
    # The first message is out of the 90 days from the 16th, when the second's reply counts.
    assert [at_once[day][:, 0].tolist() for day in days] == [[], [early.pk], [late.pk], [late.pk]]


def test_the_feedback_taken_from_the_weeks_pass_gives_what_the_database_gives() -> None:
    first, second = PartnerFactory(), PartnerFactory()

    def entry(partner: Partner, created: datetime, category: str, source: str = "portal") -> None:
        feedback = FeedbackFactory(partner=partner, category=category, source=source)
        type(feedback).objects.filter(pk=feedback.pk).update(created_at=created)

    entry(first, datetime(2026, 8, 17, 23, tzinfo=UTC), "pricing")  # the day before the 90
    entry(first, datetime(2026, 8, 18, 0, tzinfo=UTC), "support")  # the first of the 90 days
    entry(first, datetime(2026, 11, 15, 23, tzinfo=UTC), "support")  # the last
    entry(first, datetime(2026, 11, 16, 0, tzinfo=UTC), "technical")  # after the day
    entry(second, datetime(2026, 10, 1, 9, tzinfo=UTC), "other")
    entry(second, datetime(2026, 10, 2, 9, tzinfo=UTC), "other")
    entry(second, datetime(2026, 11, 2, 9, tzinfo=UTC), "other", source="survey")
    d = date(2026, 11, 15)
    # What the week's pass reads: the 90 days and anything after them.
    week = selectors.feedback_frame(since=date(2026, 8, 18), moments=True)

    handed = programme_selectors.feedback_inputs(d, week).sort_values("partner_id")
    read = programme_selectors.feedback_inputs(d).sort_values("partner_id")

    assert handed.to_dict(orient="records") == read.to_dict(orient="records")
    assert handed[["feedback_support", "feedback_other", "feedback_pricing"]].values.tolist() == [
        [2, 0, 0],
        [0, 3, 0],
    ]
    # Waiting to the end of the day, at most 30 days: the survey answer is no message.
    assert handed["response_days"].tolist() == [pytest.approx((30 + 1 / 24) / 2), 30.0]


def test_the_weeks_pass_hands_over_the_counts_the_programme_would_read(market: Market) -> None:
    east = market.kept.region
    finance = market.kept.vertical
    # In the 52 weeks but not this year; converted after the day; two reps on one account.
    for converted_on in (date(2025, 12, 10), date(2026, 12, 1)):
        account = AccountFactory(
            region=east, vertical=finance, converted_on=converted_on, converted_via="partner"
        )
        CoverageAssignmentFactory(account=account, kind=ChannelKind.PARTNER, partner=market.partner)
    other_rep = SalesRepFactory(external_id="REP-TWO")
    shared = AccountFactory(
        region=east, vertical=finance, converted_on=date(2026, 1, 5), converted_via="direct"
    )
    for rep in (market.rep, other_rep):
        CoverageAssignmentFactory(account=shared, kind=ChannelKind.DIRECT, rep=rep)
    as_of = services.metrics_as_of(week=WEEK, final=True)

    handed = services.metrics_week_figures(as_of).programme

    assert handed is not None
    read = programme_selectors.conversions(as_of)
    partners = handed.partners[
        handed.partners["conversions_ytd"] + handed.partners["conversions"] > 0
    ]
    assert partners.to_dict(orient="records") == read.partners.to_dict(orient="records")
    assert partners.to_dict(orient="records") == [
        {"partner_id": market.partner.pk, "conversions": 2, "conversions_ytd": 1}
    ]
    assert handed.reps[["rep_id", "conversions_ytd"]].to_dict(orient="records") == (
        read.reps.sort_values("rep_id").to_dict(orient="records")
    )
    rep_ids = [market.rep.pk, other_rep.pk]
    assert dict(zip(handed.reps["rep_id"], handed.reps["covered_accounts"], strict=True)) == (
        programme_selectors.rep_covered_accounts(as_of, rep_ids)
    )
    assert dict(zip(handed.reps["rep_id"], handed.reps["conversions_ytd"], strict=True)) == {
        market.rep.pk: 2,
        other_rep.pk: 1,
    }


PROGRAMME_MODELS = (PartnerProgramme, RepProgramme, SatisfactionFit, SatisfactionDriver, TierChange)


def programme_rows(weeks: list[str]) -> dict[str, list[tuple[Any, ...]]]:
    """The programme's rows of `weeks` and the tier changes, without ids and time stamps, and
    every partner's tier."""
    skip = {"id", "created_at", "updated_at"}
    rows: dict[str, list[tuple[Any, ...]]] = {}
    for model in PROGRAMME_MODELS:
        names = [f.attname for f in model._meta.concrete_fields if f.attname not in skip]
        found = model._default_manager.filter(week__in=weeks).values_list(*names)
        rows[model._meta.label] = sorted(found, key=repr)
    rows["tiers"] = sorted(Partner.objects.values_list("id", "tier"))
    return rows


def programme_forget(weeks: list[str]) -> None:
    """The programme as it was before `weeks` were evaluated: no tier change, every partner
    at the entry tier; with `weeks`' rows deleted too when given."""
    for model in PROGRAMME_MODELS[:-1]:
        model._default_manager.filter(week__in=weeks).delete()
    TierChange.objects.all().delete()
    Partner.objects.update(tier="registered")


def test_many_weeks_at_once_write_what_each_week_in_turn_writes(market: Market) -> None:
    programme_settings_set(downgrade_grace_weeks=1)
    # Partners enough for the regression to be fitted, each with a score in the 90 days.
    categories = ["product", "support", "pricing", "other"]
    for number in range(30):
        partner = PartnerFactory(
            channel_kind=ChannelKind.DISTRIBUTION if number % 3 == 0 else ChannelKind.PARTNER
        )
        feedback = FeedbackFactory(
            partner=partner,
            satisfaction=1 + number % 5,
            nps=number % 11,
            category=categories[number % len(categories)],
        )
        type(feedback).objects.filter(pk=feedback.pk).update(created_at=at(date(2026, 10, 20)))
    # Silver in W46, below it from W47 (one account fewer), down in W48 after a week of
    # grace; W49 provisional.
    type(market.kept.coverage_assignments.get()).objects.filter(account=market.kept).update(
        end_date=date(2026, 11, 16)
    )
    # A week of the year before too, which has no target.
    weeks = ["2025-W52", "2026-W46", "2026-W47", "2026-W48", "2026-W49"]
    final = {week: week != "2026-W49" for week in weeks}
    services.metrics_compute_weeks(weeks=weeks, final_weeks=[w for w in weeks if final[w]])
    backfilled = programme_rows(weeks)
    steps = [
        programme_services.ProgrammeWeek(
            week=week,
            as_of=services.metrics_as_of(week=week, final=final[week]),
            final=final[week],
        )
        for week in weeks
    ]

    programme_forget(weeks)
    for step in steps:
        programme_services.programme_week(week=step.week, as_of=step.as_of, final=step.final)
    in_turn = programme_rows(weeks)
    assert [row[1:3] for row in in_turn["partners.TierChange"]] == [
        ("2026-W46", date(2026, 11, 15)),
        ("2026-W48", date(2026, 11, 29)),
    ]
    assert any(fit[3] == "fitted" for fit in in_turn["analytics.SatisfactionFit"])
    # The backfill, which read every week's partners, replies and feedback at once.
    assert backfilled == in_turn

    # Over the rows a first run wrote (rewritten in place), then from none.
    programme_forget([])
    assert programme_services.programme_compute_weeks(weeks=steps)
    assert programme_rows(weeks) == in_turn
    programme_forget(weeks)
    programme_services.programme_compute_weeks(weeks=steps)
    assert programme_rows(weeks) == in_turn


def test_the_figures_handed_over_and_read_ahead_give_what_the_step_reads(market: Market) -> None:
    programme_settings_set(downgrade_grace_weeks=1)
    reply = FeedbackReplyFactory(
        feedback=market.partner.feedback.get(), author=UserFactory(role="sales_manager")
    )
    type(reply).objects.filter(pk=reply.pk).update(created_at=at(date(2026, 11, 12)))
    # Silver in W46, below it in W47 (one account fewer).
    type(market.kept.coverage_assignments.get()).objects.filter(account=market.kept).update(
        end_date=date(2026, 11, 16)
    )
    weeks = ["2026-W46", "2026-W47"]
    services.metrics_compute_weeks(weeks=weeks, final_weeks=weeks)
    days = {week: services.metrics_as_of(week=week, final=True) for week in weeks}

    programme_forget(weeks)
    for week in weeks:
        programme_services.programme_week(week=week, as_of=days[week], final=True)
    read_in_the_step = programme_rows(weeks)
    assert [row[1] for row in read_in_the_step["partners.TierChange"]] == ["2026-W46"]

    programme_forget(weeks)
    for week in weeks:
        figures = services.metrics_week_figures(days[week])
        programme_services.programme_week(
            week=week,
            as_of=days[week],
            final=True,
            counts=figures.programme,
            partners=figures.partners,
            reads=programme_services.ProgrammeReads.on(week, days[week]),
        )
    assert programme_rows(weeks) == read_in_the_step


def test_a_week_run_again_with_its_rows_read_ahead_writes_what_a_first_run_writes(
    market: Market,
) -> None:
    joiner = PartnerFactory(external_id="P-JOINS", is_active=False)
    leaver = PartnerFactory(external_id="P-LEAVES")
    run(WEEK)
    kept = PartnerProgramme.objects.get(week=WEEK, partner=market.partner).pk
    # Between the runs a partner joins, another leaves and a figure changes.
    Partner.objects.filter(pk=joiner.pk).update(is_active=True)
    Partner.objects.filter(pk=leaver.pk).update(is_active=False)
    certification_add(partner=market.partner, name="New", earned_on=date(2026, 11, 1))
    as_of = services.metrics_as_of(week=WEEK, final=True)
    reads = programme_services.ProgrammeReads.on(WEEK, as_of)
    assert sorted(reads.week_rows["partner_id"].tolist()) == [market.partner.pk, leaver.pk]
    programme_services.programme_week(week=WEEK, as_of=as_of, final=True, reads=reads)
    again = programme_rows([WEEK])
    assert sorted(row[1] for row in again["analytics.PartnerProgramme"]) == sorted(
        [market.partner.pk, joiner.pk]
    )
    if connection.vendor == "postgresql":
        # Rewritten in place.
        assert PartnerProgramme.objects.get(week=WEEK, partner=market.partner).pk == kept

    programme_forget([WEEK])
    programme_services.programme_week(week=WEEK, as_of=as_of, final=True)
    assert programme_rows([WEEK]) == again


def test_a_weeks_rows_are_read_back_as_stored_whatever_their_text(market: Market) -> None:
    PartnerFactory(external_id="P-TWO")
    run(WEEK)
    rows = PartnerProgramme.objects.filter(week=WEEK)
    fields = programme_services.PARTNER_PROGRAMME_FIELDS

    def stored() -> dict[int, tuple[Any, ...]]:
        return {row[0]: row for row in rows.values_list(*fields)}

    def read() -> dict[int, tuple[Any, ...]]:
        columns = reports.programme_week_rows(WEEK, fields)
        return {
            int(pk): tuple(
                None if isinstance(value, float) and value != value else value
                for value in (columns[name][index] for name in fields)
            )
            for index, pk in enumerate(columns["partner_id"].tolist())
        }

    assert read() == stored()
    # A text holding what separates values when they are read together.
    rows.filter(partner=market.partner).update(tier_before="odd\x1fcode", target_revenue=None)
    rows.exclude(partner=market.partner).update(target_revenue=Decimal("1234.56"))
    assert read() == stored()
    assert reports.programme_week_rows("2026-W01", fields)["partner_id"].tolist() == []
