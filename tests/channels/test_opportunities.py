"""Opportunities: the writes and their rules (owner, amount, currency with a rate, dates,
stages), the history they leave, the constraints the database holds, and the opportunity
rules of docs/metrics.md read three ways."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from channels.models import Opportunity, OpportunityEventKind, OpportunityStage
from channels.rules import IN_FORECAST, IN_PIPELINE, SUBSCRIBED, WON_IN_52_WEEKS
from crm.models import ChannelKind
from partners.opportunity_services import (
    OpportunityOwner,
    opportunity_change,
    opportunity_create,
    opportunity_lose,
    opportunity_reopen,
    opportunity_win,
    subscription_end,
)
from tests.cast import Cast
from tests.factories import (
    AccountFactory,
    CurrencyRateFactory,
    OpportunityFactory,
    PartnerFactory,
    SalesRepFactory,
)

OPENED = date(2026, 3, 2)
TODAY = date(2026, 6, 1)


def create(user: Any, **values: Any) -> Opportunity:
    arguments: dict[str, Any] = {
        "account": AccountFactory(),
        "owner": OpportunityOwner(channel=ChannelKind.DIRECT, rep=SalesRepFactory()),
        "amount": Decimal("1200.00"),
        "currency": "USD",
        "opened_on": OPENED,
        "by": user,
    }
    arguments.update(values)
    return opportunity_create(**arguments)


@pytest.mark.django_db
class TestCreate:
    def test_it_opens_a_deal_in_the_first_step_and_records_it(self, cast: Cast) -> None:
        opportunity = create(cast.manager, name="Pilot", recurring=True)
        assert opportunity.stage == OpportunityStage.OPEN
        assert opportunity.sub_stage.code == "qualify"
        assert opportunity.external_id.startswith("OPP-")
        event = opportunity.events.get()
        assert (event.kind, event.by) == (OpportunityEventKind.CREATED, cast.manager)

    def test_a_currency_needs_a_rate_from_the_day_the_deal_opened(self, cast: Cast) -> None:
        with pytest.raises(ValidationError) as refused:
            create(cast.manager, currency="EUR")
        assert "no EUR rate valid on 2026-03-02" in str(refused.value.message_dict["currency"])
        CurrencyRateFactory(currency="EUR", valid_from=OPENED + timedelta(days=1))
        with pytest.raises(ValidationError):
            create(cast.manager, currency="EUR")
        CurrencyRateFactory(currency="EUR", valid_from=OPENED)
        assert create(cast.manager, currency="EUR").currency == "EUR"
        with pytest.raises(ValidationError) as refused:
            create(cast.manager, currency="EURO")
        assert "currency" in refused.value.message_dict
        assert not Opportunity.objects.filter(currency="EURO").exists()

    def test_the_owner_must_fit_the_channel(self, cast: Cast) -> None:
        distributor = PartnerFactory(channel_kind=ChannelKind.DISTRIBUTION)
        cases = [
            (OpportunityOwner(channel=ChannelKind.DIRECT), "rep"),
            (OpportunityOwner(channel=ChannelKind.PARTNER, partner=distributor), "partner"),
            (OpportunityOwner(channel=ChannelKind.ONLINE, online_source="  "), "online_source"),
            (OpportunityOwner(channel="phone"), "channel"),
        ]
        for owner, field in cases:
            with pytest.raises(ValidationError) as refused:
                create(cast.manager, owner=owner)
            assert field in refused.value.message_dict
        opportunity = create(
            cast.manager,
            owner=OpportunityOwner(
                channel=ChannelKind.DISTRIBUTION, partner=distributor, rep=SalesRepFactory()
            ),
        )
        assert (opportunity.partner, opportunity.rep) == (distributor, None)

    def test_a_negative_amount_or_an_early_expected_close_is_refused(self, cast: Cast) -> None:
        for values, field in (
            ({"amount": Decimal("-1")}, "amount"),
            ({"amount": Decimal("1.001")}, "amount"),
            ({"expected_close_on": OPENED - timedelta(days=1)}, "expected_close_on"),
        ):
            with pytest.raises(ValidationError) as refused:
                create(cast.manager, **values)
            assert field in refused.value.message_dict
        assert not Opportunity.objects.exists()


@pytest.mark.django_db
class TestLife:
    def test_win_lose_reopen_and_end_leave_a_history(self, cast: Cast) -> None:
        opportunity = create(cast.manager, recurring=True)
        opportunity_change(
            opportunity=opportunity, by=cast.manager, amount=Decimal("1500.00"), name="Bigger"
        )
        opportunity_win(
            opportunity=opportunity, closed_on=date(2026, 5, 1), by=cast.manager, today=TODAY
        )
        subscription_end(opportunity=opportunity, ends_on=date(2026, 9, 1), by=cast.manager)
        opportunity_reopen(opportunity=opportunity, by=cast.manager)
        opportunity_lose(
            opportunity=opportunity,
            closed_on=date(2026, 5, 2),
            reason="Went with a competitor",
            by=cast.manager,
            today=TODAY,
        )
        opportunity.refresh_from_db()
        assert (opportunity.stage, opportunity.closed_on) == ("lost", date(2026, 5, 2))
        assert opportunity.ends_on is None
        events = list(opportunity.events.values_list("kind", flat=True))
        assert events == ["created", "changed", "won", "ended", "reopened", "lost"]
        changed = opportunity.events.get(kind="changed")
        assert changed.changes == {"name": ["", "Bigger"], "amount": ["1200.00", "1500.00"]}

    def test_a_move_between_steps_is_recorded_as_a_move(self, cast: Cast) -> None:
        from channels.models import OpportunitySubStage

        opportunity = create(cast.manager)
        propose = OpportunitySubStage.objects.get(code="propose")
        opportunity_change(opportunity=opportunity, by=cast.manager, sub_stage=propose)
        assert opportunity.events.last().kind == OpportunityEventKind.MOVED  # type: ignore[union-attr]

    def test_closing_is_refused_in_the_future_before_opening_or_twice(self, cast: Cast) -> None:
        opportunity = create(cast.manager)
        for closed_on in (TODAY + timedelta(days=1), OPENED - timedelta(days=1)):
            with pytest.raises(ValidationError):
                opportunity_win(
                    opportunity=opportunity, closed_on=closed_on, by=cast.manager, today=TODAY
                )
        opportunity_win(opportunity=opportunity, closed_on=TODAY, by=cast.manager, today=TODAY)
        with pytest.raises(ValidationError):
            opportunity_lose(opportunity=opportunity, closed_on=TODAY, by=cast.manager, today=TODAY)
        with pytest.raises(ValidationError):
            opportunity_change(opportunity=opportunity, by=cast.manager, amount=Decimal(5))
        with pytest.raises(ValidationError):
            subscription_end(opportunity=opportunity, ends_on=TODAY, by=cast.manager)

    def test_the_database_holds_the_stage_and_date_rules(self) -> None:
        cases: list[dict[str, Any]] = [
            {"stage": "won"},  # won without a close date
            {"stage": "open", "closed_on": OPENED},
            {"stage": "won", "opened_on": OPENED, "closed_on": OPENED - timedelta(days=1)},
            {"stage": "lost", "closed_on": OPENED, "ends_on": OPENED},
            {"stage": "won", "closed_on": OPENED, "ends_on": OPENED},  # not recurring
            {"amount": Decimal("-0.01")},
            {"channel": "direct", "rep": None},
            {"opened_on": OPENED, "expected_close_on": OPENED - timedelta(days=1)},
        ]
        for values in cases:
            with pytest.raises(IntegrityError), transaction.atomic():
                OpportunityFactory(**values)


D = date(2026, 6, 7)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("rule", "holds", "fails"),
    [
        (
            IN_PIPELINE,
            [{"opened_on": D}, {"stage": "won", "closed_on": D + timedelta(days=1)}],
            [{"opened_on": D + timedelta(days=1)}, {"stage": "lost", "closed_on": D}],
        ),
        (
            IN_FORECAST,
            [{"expected_close_on": D + timedelta(days=91)}],
            [{"expected_close_on": D + timedelta(days=92)}, {}],
        ),
        (
            WON_IN_52_WEEKS,
            [
                {"stage": "won", "closed_on": D},
                {"stage": "won", "closed_on": D - timedelta(363), "opened_on": date(2025, 6, 1)},
            ],
            [
                {"stage": "won", "closed_on": D - timedelta(364), "opened_on": date(2025, 6, 1)},
                {"stage": "lost", "closed_on": D},
            ],
        ),
        (
            SUBSCRIBED,
            [
                {"stage": "won", "recurring": True, "closed_on": D},
                {"stage": "won", "recurring": True, "closed_on": D, "ends_on": D + timedelta(1)},
            ],
            [
                {"stage": "won", "recurring": True, "closed_on": D, "ends_on": D},
                {"stage": "won", "recurring": False, "closed_on": D},
            ],
        ),
    ],
)
def test_each_opportunity_rule_reads_the_same_three_ways(
    rule: Any, holds: list[dict[str, Any]], fails: list[dict[str, Any]]
) -> None:
    made = [(OpportunityFactory(**values), True) for values in holds]
    made += [(OpportunityFactory(**values), False) for values in fails]
    by_filter = set(Opportunity.objects.filter(rule.q(D)).values_list("pk", flat=True))
    columns = {
        field: np.array(
            [getattr(o, field) for o, _ in made],
            dtype="datetime64[D]" if field.endswith("_on") else object,
        )
        for field in rule.fields
    }
    masked = rule.mask(columns, D)
    for (opportunity, expected), by_array in zip(made, masked, strict=True):
        assert (opportunity.pk in by_filter) is expected
        assert bool(by_array) is expected
        assert rule.holds(opportunity, D) is expected
