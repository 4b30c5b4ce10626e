"""Rule 2 (docs/metrics.md): an agreement in force, read alike as a filter, over arrays and on
one object, through its last day and its termination day, and never as a draft."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from partners.models import Agreement, AgreementStatus
from partners.rules import AGREEMENT_IN_FORCE
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
