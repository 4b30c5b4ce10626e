"""A small market around the shared cast, and API clients holding each role's token."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from channels.models import CoverageAssignment
from crm.models import Account, ChannelKind
from crm.services import api_token_issue
from partners.models import Agreement, AgreementStatus, Feedback
from tests.cast import Cast
from tests.factories import (
    AccountFactory,
    AgreementFactory,
    CoverageAssignmentFactory,
    FeedbackFactory,
    FeedbackNoteFactory,
    FeedbackReplyFactory,
    PartnerContactFactory,
    RegionFactory,
    VerticalFactory,
)

PDF = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"


@dataclass
class Market:
    """What each partner owns, so tests can aim one partner's token at the other's objects."""

    account_a: Account
    account_b: Account
    account_rep: Account
    coverage_a: CoverageAssignment
    coverage_b: CoverageAssignment
    agreement_a: Agreement
    agreement_b: Agreement
    draft_a: Agreement
    feedback_a: Feedback
    feedback_b: Feedback


@pytest.fixture(autouse=True)
def _fresh_throttles() -> Iterator[None]:
    # Throttle counters live in the cache; each test starts with none.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def market(cast: Cast) -> Market:
    east, west = RegionFactory(code="EAST"), RegionFactory(code="WEST")
    finance = VerticalFactory(code="FIN")
    account_a = AccountFactory(region=east, vertical=finance, name="Acme East")
    account_b = AccountFactory(region=west, vertical=finance, name="Bolt West")
    account_rep = AccountFactory(region=east, vertical=finance, name="Rita's Account")
    coverage_a = CoverageAssignmentFactory(
        account=account_a, kind=ChannelKind.PARTNER, partner=cast.partner_a
    )
    coverage_b = CoverageAssignmentFactory(
        account=account_b, kind=ChannelKind.PARTNER, partner=cast.partner_b
    )
    CoverageAssignmentFactory(account=account_rep, kind=ChannelKind.DIRECT, rep=cast.rep)
    agreement_a = AgreementFactory(partner=cast.partner_a, start_date=date(2026, 1, 1))
    agreement_b = AgreementFactory(partner=cast.partner_b, start_date=date(2026, 1, 1))
    draft_a = AgreementFactory(
        partner=cast.partner_a,
        status=AgreementStatus.DRAFT,
        signed_on=None,
        start_date=date(2026, 6, 1),
    )
    feedback_a = FeedbackFactory(partner=cast.partner_a, subject="Alpha's feedback")
    feedback_b = FeedbackFactory(partner=cast.partner_b, subject="Beta's feedback")
    for feedback in (feedback_a, feedback_b):
        FeedbackReplyFactory(feedback=feedback, author=cast.manager)
        FeedbackNoteFactory(feedback=feedback, author=cast.manager)
    PartnerContactFactory(partner=cast.partner_a)
    PartnerContactFactory(partner=cast.partner_b)
    return Market(
        account_a=account_a,
        account_b=account_b,
        account_rep=account_rep,
        coverage_a=coverage_a,
        coverage_b=coverage_b,
        agreement_a=agreement_a,
        agreement_b=agreement_b,
        draft_a=draft_a,
        feedback_a=feedback_a,
        feedback_b=feedback_b,
    )


@pytest.fixture
def api_as() -> Callable[[Any], APIClient]:
    """An API client sending `user`'s token, as an integration would."""

    def client_for(user: Any) -> APIClient:
        client = APIClient()
        _, key = api_token_issue(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        return client

    return client_for
