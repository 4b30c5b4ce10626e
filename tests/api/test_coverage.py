"""Coverage writes over the API: the same services, rules and refusals as the web pages."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from rest_framework.test import APIClient

from channels import services
from channels.models import CoverageAssignment
from tests.api.conftest import Market
from tests.cast import Cast
from tests.factories import AccountFactory, PartnerFactory, SalesRepFactory, UserFactory

pytestmark = pytest.mark.django_db

Client = Callable[[Any], APIClient]


def _assign(api: APIClient, **payload: Any) -> Any:
    return api.post("/api/v1/coverage/", payload, format="json")


def _end(api: APIClient, assignment: CoverageAssignment, end_date: Any) -> Any:
    body = {} if end_date is None else {"end_date": end_date}
    return api.post(f"/api/v1/coverage/{assignment.pk}/end/", body, format="json")


def _direct_coverage_of_the_rep(cast: Cast, market: Market) -> CoverageAssignment:
    return CoverageAssignment.objects.get(account=market.account_rep, rep=cast.rep)


# Assigning --------------------------------------------------------------------------------------


def test_it_assigns_accounts_to_a_rep_a_partner_and_an_online_source(
    cast: Cast, market: Market, api_as: Client
) -> None:
    api = api_as(cast.manager)
    fresh = AccountFactory.create_batch(2)
    ids = [account.pk for account in fresh]

    direct = _assign(api, accounts=ids, kind="direct", rep=cast.rep.pk, start_date="2026-03-01")
    assert direct.status_code == 201, direct.json()
    assert direct.json() == {"created": 2, "already_covered": 0}
    partner = _assign(
        api, accounts=ids, kind="partner", partner=cast.partner_a.pk, start_date="2026-03-01"
    )
    assert partner.json() == {"created": 2, "already_covered": 0}
    online = _assign(
        api,
        accounts=ids[:1],
        kind="online",
        online_source=" web-signup ",
        start_date="2026-03-01",
        end_date="2026-12-31",
    )
    assert online.json() == {"created": 1, "already_covered": 0}

    rows = CoverageAssignment.objects.filter(account__in=fresh)
    assert {(row.kind, row.owner_label) for row in rows} == {
        ("direct", "Rita Rep"),
        ("partner", "Alpha Systems"),
        ("online", "web-signup"),
    }
    assert rows.get(kind="online").end_date == date(2026, 12, 31)


def test_it_lets_a_superuser_assign_like_a_sales_manager(
    cast: Cast, market: Market, api_as: Client
) -> None:
    admin = UserFactory(username="admin", is_staff=True, is_superuser=True)
    response = _assign(
        api_as(admin),
        accounts=[market.account_b.pk],
        kind="direct",
        rep=cast.rep.pk,
        start_date="2026-03-01",
    )
    assert response.status_code == 201
    assert CoverageAssignment.objects.filter(account=market.account_b, rep=cast.rep).exists()


def test_it_counts_accounts_the_owner_already_covers_instead_of_duplicating_them(
    cast: Cast, market: Market, api_as: Client
) -> None:
    api = api_as(cast.manager)
    payload = {
        "accounts": [market.account_a.pk, market.account_b.pk],
        "kind": "partner",
        "partner": cast.partner_a.pk,
        "start_date": "2026-03-01",
    }
    # Partner A already covers account A (open-ended, from 2025).
    assert _assign(api, **payload).json() == {"created": 1, "already_covered": 1}
    assert _assign(api, **payload).json() == {"created": 0, "already_covered": 2}
    assert CoverageAssignment.objects.filter(partner=cast.partner_a).count() == 2


def test_it_answers_an_identical_assignment_made_at_the_same_time_like_a_repeat(
    cast: Cast, market: Market, api_as: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked = services._accounts_covered

    def other_request_commits_after_the_check(**kwargs: Any) -> set[int]:
        covered = checked(**kwargs)
        monkeypatch.setattr(services, "_accounts_covered", checked)
        CoverageAssignment.objects.create(
            account=market.account_b,
            kind="partner",
            partner=cast.partner_a,
            start_date=date(2026, 3, 1),
        )
        return covered

    monkeypatch.setattr(services, "_accounts_covered", other_request_commits_after_the_check)
    response = _assign(
        api_as(cast.manager),
        accounts=[market.account_b.pk],
        kind="partner",
        partner=cast.partner_a.pk,
        start_date="2026-03-01",
    )
    assert response.status_code == 201
    assert response.json() == {"created": 0, "already_covered": 1}
    assert CoverageAssignment.objects.filter(partner=cast.partner_a).count() == 2


def test_it_refuses_reps_and_executives_with_403_and_partner_users_with_404(
    cast: Cast, market: Market, api_as: Client
) -> None:
    before = CoverageAssignment.objects.count()
    payload = {
        "accounts": [market.account_rep.pk],
        "kind": "online",
        "online_source": "web",
        "start_date": "2026-03-01",
    }
    assert _assign(api_as(cast.rep_user), **payload).status_code == 403
    assert _assign(api_as(cast.executive), **payload).status_code == 403
    assert _assign(api_as(cast.partner_a_user), **payload).status_code == 404
    assert _assign(APIClient(), **payload).status_code == 401
    assert CoverageAssignment.objects.count() == before


def test_it_reports_missing_and_malformed_fields_under_their_names(
    cast: Cast, market: Market, api_as: Client
) -> None:
    api = api_as(cast.manager)
    before = CoverageAssignment.objects.count()

    empty = _assign(api)
    assert empty.status_code == 400
    assert set(empty.json()) == {"accounts", "kind", "start_date"}

    malformed = _assign(api, accounts=[], kind="carrier-pigeon", start_date="1st of March")
    assert malformed.status_code == 400
    body = malformed.json()
    assert body["accounts"] == ["Give at least one account id."]
    assert set(body) == {"accounts", "kind", "start_date"}

    too_many = _assign(
        api,
        accounts=list(range(1, 1002)),
        kind="online",
        online_source="web",
        start_date="2026-03-01",
    )
    assert too_many.status_code == 400
    assert "accounts" in too_many.json()
    assert CoverageAssignment.objects.count() == before


def test_it_refuses_ids_the_caller_cannot_choose_as_if_they_did_not_exist(
    cast: Cast, market: Market, api_as: Client
) -> None:
    api = api_as(cast.manager)
    before = CoverageAssignment.objects.count()

    unknown_account = _assign(
        api,
        accounts=[market.account_b.pk, 999_999],
        kind="direct",
        rep=cast.rep.pk,
        start_date="2026-03-01",
    )
    assert unknown_account.status_code == 400
    assert unknown_account.json() == {"accounts": ['Invalid pk "999999" - object does not exist.']}
    unknown_rep = _assign(
        api, accounts=[market.account_b.pk], kind="direct", rep=999_999, start_date="2026-03-01"
    )
    assert unknown_rep.json() == {"rep": ['Invalid pk "999999" - object does not exist.']}
    unknown_partner = _assign(
        api,
        accounts=[market.account_b.pk],
        kind="partner",
        partner=999_999,
        start_date="2026-03-01",
    )
    assert unknown_partner.json() == {"partner": ['Invalid pk "999999" - object does not exist.']}
    # Nothing of the valid account was saved alongside the refused one.
    assert CoverageAssignment.objects.count() == before


def test_it_reports_the_services_refusals_under_their_field_names(
    cast: Cast, market: Market, api_as: Client
) -> None:
    api = api_as(cast.manager)
    before = CoverageAssignment.objects.count()
    accounts = [market.account_b.pk, market.account_rep.pk]

    wrong_kind = _assign(
        api,
        accounts=accounts,
        kind="distribution",
        partner=cast.partner_a.pk,
        start_date="2026-03-01",
    )
    assert wrong_kind.status_code == 400
    assert wrong_kind.json() == {
        "partner": ["Alpha Systems is a partner; choose the matching channel kind."]
    }
    no_owner = _assign(api, accounts=accounts, kind="direct", start_date="2026-03-01")
    assert no_owner.json() == {"rep": ["Choose the sales rep who works these accounts."]}
    no_source = _assign(
        api, accounts=accounts, kind="online", online_source="  ", start_date="2026-03-01"
    )
    assert no_source.json() == {"online_source": ["Name the online source, e.g. web-signup."]}
    backwards = _assign(
        api,
        accounts=accounts,
        kind="direct",
        rep=cast.rep.pk,
        start_date="2026-03-01",
        end_date="2026-02-01",
    )
    assert backwards.json() == {"end_date": ["The end date cannot be before the start date."]}
    retired = PartnerFactory(name="Gone Ltd", is_active=False)
    deactivated = _assign(
        api, accounts=accounts, kind="partner", partner=retired.pk, start_date="2026-03-01"
    )
    assert deactivated.json() == {"partner": ["Gone Ltd is deactivated."]}
    left = SalesRepFactory(name="Lee Left", is_active=False)
    inactive_rep = _assign(
        api, accounts=accounts, kind="direct", rep=left.pk, start_date="2026-03-01"
    )
    assert inactive_rep.json() == {"rep": ["Lee Left is deactivated."]}
    assert CoverageAssignment.objects.count() == before


# Ending -----------------------------------------------------------------------------------------


def test_it_ends_an_assignment_on_the_given_day(cast: Cast, market: Market, api_as: Client) -> None:
    response = _end(api_as(cast.manager), market.coverage_b, "2026-04-30")
    assert response.status_code == 200
    assert response.json()["id"] == market.coverage_b.pk
    assert response.json()["end_date"] == "2026-04-30"
    market.coverage_b.refresh_from_db()
    assert market.coverage_b.end_date == date(2026, 4, 30)


def test_it_leaves_an_assignment_that_already_ended_earlier_and_says_when(
    cast: Cast, market: Market, api_as: Client
) -> None:
    api = api_as(cast.manager)
    _end(api, market.coverage_b, "2026-04-30")

    later = _end(api, market.coverage_b, "2026-06-30")
    assert later.status_code == 200
    assert later.json()["end_date"] == "2026-04-30"
    again = _end(api, market.coverage_b, "2026-04-30")
    assert again.status_code == 200
    assert again.json()["end_date"] == "2026-04-30"
    # An earlier day still brings the end forward.
    earlier = _end(api, market.coverage_b, "2026-03-31")
    assert earlier.json()["end_date"] == "2026-03-31"
    market.coverage_b.refresh_from_db()
    assert market.coverage_b.end_date == date(2026, 3, 31)


def test_it_refuses_an_end_before_the_start_or_without_a_day(
    cast: Cast, market: Market, api_as: Client
) -> None:
    api = api_as(cast.manager)
    backwards = _end(api, market.coverage_b, "2024-12-31")
    assert backwards.status_code == 400
    assert backwards.json() == {
        "end_date": ["Coverage of Bolt West starts on 1 Jan 2025; the end date cannot be earlier."]
    }
    assert set(_end(api, market.coverage_b, None).json()) == {"end_date"}
    assert set(_end(api, market.coverage_b, "soon").json()) == {"end_date"}
    market.coverage_b.refresh_from_db()
    assert market.coverage_b.end_date is None


def test_it_refuses_to_end_coverage_for_anyone_but_sales_managers(
    cast: Cast, market: Market, api_as: Client
) -> None:
    own = _direct_coverage_of_the_rep(cast, market)
    rep = api_as(cast.rep_user)
    assert _end(rep, own, "2026-04-30").status_code == 403
    # Coverage of an account the rep cannot see: as if it did not exist.
    assert _end(rep, market.coverage_b, "2026-04-30").status_code == 404
    assert _end(api_as(cast.executive), market.coverage_b, "2026-04-30").status_code == 403
    partner = api_as(cast.partner_a_user)
    assert _end(partner, market.coverage_a, "2026-04-30").status_code == 404
    assert _end(partner, market.coverage_b, "2026-04-30").status_code == 404
    assert not CoverageAssignment.objects.filter(end_date__isnull=False).exists()


def test_it_answers_404_for_an_assignment_that_does_not_exist(
    cast: Cast, market: Market, api_as: Client
) -> None:
    response = api_as(cast.manager).post(
        "/api/v1/coverage/999999/end/", {"end_date": "2026-04-30"}, format="json"
    )
    assert response.status_code == 404
    assert (
        api_as(cast.rep_user)
        .post("/api/v1/coverage/999999/end/", {"end_date": "2026-04-30"}, format="json")
        .status_code
        == 404
    )
