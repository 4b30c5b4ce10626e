"""Rule 3a (docs/metrics.md): a coverage assignment runs from its start day through its end day,
read alike as a filter, over arrays and on one object."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from channels.models import CoverageAssignment
from channels.rules import COVERAGE_RUNNING
from channels.selectors import active_coverage_q
from tests.crm.test_rules import readings
from tests.factories import AccountFactory, CoverageAssignmentFactory

D = date(2026, 11, 15)
BEFORE, AFTER = D - timedelta(days=1), D + timedelta(days=1)


@pytest.mark.django_db
def test_it_runs_from_the_start_day_through_the_end_day_or_for_good() -> None:
    def assigned(start: date, end: date | None) -> CoverageAssignment:
        return CoverageAssignmentFactory(account=AccountFactory(), start_date=start, end_date=end)

    running = [assigned(D, None), assigned(BEFORE, D), assigned(date(2020, 1, 1), None)]
    not_running = [assigned(AFTER, None), assigned(date(2020, 1, 1), BEFORE)]
    expected = sorted(c.pk for c in running)
    assert readings(COVERAGE_RUNNING, running + not_running, CoverageAssignment, D) == (
        expected,
        expected,
        expected,
    )
    assert [c.running_on(D) for c in running + not_running] == [True] * 3 + [False] * 2
    assert (
        sorted(CoverageAssignment.objects.filter(active_coverage_q(D)).values_list("pk", flat=True))
        == expected
    )
