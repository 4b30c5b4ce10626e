"""Rule 2 (docs/metrics.md): an agreement in force, read alike as a filter, over arrays and on
one object, through its last day and its termination day, and never as a draft."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from partners.models import Agreement, AgreementStatus
from partners.rules import AGREEMENT_ENDING_SOON, AGREEMENT_IN_FORCE, ENDING_WITHIN_DAYS
from partners.selectors import agreements_in_force_q
from tests.crm.test_rules import readings
from tests.factories import AgreementFactory

D = date(2026, 11, 15)
BEFORE, AFTER = D - timedelta(days=1), D + timedelta(days=1)
LONG_AGO = date(2025, 1, 1)


@pytest.mark.django_db
def test_it_keeps_an_agreement_in_force_through_its_last_and_termination_days() -> None:
    def agreement(**fields: object) -> Agreement:
        values = {"start_date": LONG_AGO, "end_date": date(2027, 1, 1), "signed_on": LONG_AGO}
        return AgreementFactory(**{**values, **fields})

    in_force = [
        agreement(end_date=D),
        agreement(status=AgreementStatus.TERMINATED, terminated_on=D),
        agreement(signed_on=D, start_date=D),
        agreement(status=AgreementStatus.EXPIRED, end_date=D),
    ]
    not_in_force = [
        agreement(end_date=BEFORE),
        agreement(status=AgreementStatus.TERMINATED, terminated_on=BEFORE),
        agreement(signed_on=AFTER),
        agreement(start_date=AFTER, end_date=date(2027, 1, 1)),
        agreement(status=AgreementStatus.DRAFT, signed_on=None),
        # A draft carrying a signed date is still a draft.
        agreement(status=AgreementStatus.DRAFT, signed_on=LONG_AGO),
    ]
    expected = sorted(a.pk for a in in_force)
    assert readings(AGREEMENT_IN_FORCE, in_force + not_in_force, Agreement, D) == (
        expected,
        expected,
        expected,
    )
    assert [a.in_force_on(D) for a in in_force + not_in_force] == [True] * 4 + [False] * 6
    assert (
        sorted(Agreement.objects.filter(agreements_in_force_q(D)).values_list("pk", flat=True))
        == expected
    )


def test_the_rule_names_the_draft_status_as_the_model_does() -> None:
    assert AgreementStatus.DRAFT.value in {
        c.value for c in AGREEMENT_IN_FORCE.conditions if hasattr(c, "value")
    }


@pytest.mark.django_db
def test_it_reads_an_agreement_ending_soon_alike_through_the_last_day_of_the_window() -> None:
    """Rule 9: in force on d and its effective end (the end date, or an earlier termination
    date) within the 90 days from d, as a filter, over arrays and on one object."""
    horizon = D + timedelta(days=ENDING_WITHIN_DAYS)

    def agreement(**fields: object) -> Agreement:
        values = {"start_date": LONG_AGO, "end_date": date(2027, 12, 31), "signed_on": LONG_AGO}
        return AgreementFactory(**{**values, **fields})

    ending = [
        agreement(end_date=D),
        agreement(end_date=horizon),
        agreement(status=AgreementStatus.TERMINATED, terminated_on=horizon),
        agreement(status=AgreementStatus.TERMINATED, terminated_on=D),
    ]
    not_ending = [
        agreement(end_date=horizon + timedelta(days=1)),
        agreement(status=AgreementStatus.TERMINATED, terminated_on=horizon + timedelta(days=1)),
        agreement(end_date=BEFORE),  # no longer in force
        agreement(status=AgreementStatus.DRAFT, signed_on=None, end_date=D),
    ]
    expected = sorted(a.pk for a in ending)
    assert readings(AGREEMENT_ENDING_SOON, ending + not_ending, Agreement, D) == (
        expected,
        expected,
        expected,
    )
