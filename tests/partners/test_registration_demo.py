from __future__ import annotations

from datetime import date

import pytest

from crm.models import OutboundEmail
from partners.demo import demo_seed
from partners.registration_demo import demo_registrations
from partners.registration_models import ConflictCode, DealRegistration, RegistrationStatus

TODAY = date(2026, 11, 22)


@pytest.mark.django_db
def test_the_demo_has_registrations_in_every_state_and_with_every_conflict() -> None:
    demo_seed(accounts=600, password="demo-password-1", today=TODAY)
    registrations = list(DealRegistration.objects.all())
    assert {r.status for r in registrations} == set(RegistrationStatus.values)
    assert {code for r in registrations for code in r.conflict_codes} == set(ConflictCode.values)
    partner_a = DealRegistration.objects.filter(partner__portal_users__user__username="partner-a")
    assert partner_a.exists(), "the demo partner user has registrations to look at"
    assert not OutboundEmail.objects.filter(topic__startswith="reg").exists()
    # The weekly figures count a decision in the week it was made: an automatic approval was
    # made as its registration arrived, on the demo's past day, not when the demo ran.
    automatic = [r for r in registrations if r.auto_approved]
    assert automatic
    assert all(r.decided_at == r.submitted_at for r in automatic)
    # Every decision stands on a day of the demo's past, never after its "today".
    late = [r.pk for r in registrations if r.decided_at and r.decided_at.date() > TODAY]
    assert not late
    assert demo_registrations(today=TODAY) == 0, "a second run adds none"
