"""The stored coverage kinds (`partners.coverage_kinds`) against rule 3 on random markets, on
whichever database the suite runs (SQLite and PostgreSQL)."""

from __future__ import annotations

import random
import shutil
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.db.models import Q
from django.utils import timezone

from channels.models import PARTNER_KINDS, CoverageAssignment, SalesRep
from channels.rules import COVERAGE_RUNNING
from channels.services import CoverageOwner, coverage_assign, coverage_end
from crm.models import CHANNEL_KIND_BITS, Account, ChannelKind
from crm.rules import COVERAGE_KINDS_KNOWN, IN_MARKET
from partners.coverage_kinds import (
    coverage_kinds_forget,
    coverage_kinds_refresh_stale,
)
from partners.market_import import market_import
from partners.models import Agreement, AgreementStatus, Partner
from partners.selectors import Grants, account_coverage_q, coverage_counts
from partners.services import agreement_terminate, agreements_expire
from tests.factories import (
    AccountFactory,
    AgreementFactory,
    PartnerFactory,
    RegionFactory,
    SalesRepFactory,
    UserFactory,
    VerticalFactory,
)

pytestmark = pytest.mark.django_db

COVERAGE = ("none", "any", *ChannelKind.values)


def _random_market(rng: random.Random, today: date) -> tuple[list[SalesRep], list[Partner]]:
    regions = [RegionFactory() for _ in range(3)]
    verticals = [VerticalFactory() for _ in range(3)]
    reps = [SalesRepFactory() for _ in range(2)]
    partners = [
        PartnerFactory(channel_kind=kind)
        for kind in (ChannelKind.PARTNER, ChannelKind.PARTNER, ChannelKind.DISTRIBUTION)
    ]

    def day() -> date:
        return today + timedelta(days=rng.randint(-60, 60))

    for partner in partners:
        for _ in range(rng.randint(0, 3)):
            start = day()
            end = start + timedelta(days=rng.randint(0, 90))
            status = rng.choice(
                [AgreementStatus.DRAFT, *[AgreementStatus.ACTIVE] * 3, AgreementStatus.TERMINATED]
            )
            AgreementFactory(
                partner=partner,
                status=status,
                start_date=start,
                end_date=end,
                signed_on=None
                if status == AgreementStatus.DRAFT
                else start - timedelta(days=rng.randint(-5, 5)),
                terminated_on=(
                    min(end, start + timedelta(days=rng.randint(0, 30)))
                    if status == AgreementStatus.TERMINATED
                    else None
                ),
                regions=rng.sample(regions, rng.randint(0, 2)),
                verticals=rng.sample(verticals, rng.randint(0, 2)),
            )
    for _ in range(40):
        account = AccountFactory(
            region=rng.choice(regions),
            vertical=rng.choice(verticals),
            entered_on=today - timedelta(days=400),
        )
        owners = [("direct", rep) for rep in reps] + [(p.channel_kind, p) for p in partners]
        owners += [("online", "web")]
        for kind, owner in rng.sample(owners, rng.randint(0, 4)):
            start = day()
            CoverageAssignment.objects.create(
                account=account,
                kind=kind,
                rep=owner if kind == ChannelKind.DIRECT else None,
                partner=owner if kind in PARTNER_KINDS else None,
                online_source=owner if kind == ChannelKind.ONLINE else "",
                start_date=start,
                end_date=rng.choice([None, start + timedelta(days=rng.randint(0, 60))]),
            )
    return reps, partners


def _rule_kinds(account: Account, day: date, grants: Grants) -> int:
    """Rule 3 for one account on one day, in Python, one assignment at a time."""
    kinds = 0
    for assignment in account.coverage_assignments.all():
        if COVERAGE_RUNNING.holds(assignment, day) and coverage_counts(assignment, account, grants):
            kinds |= CHANNEL_KIND_BITS[assignment.kind]
    return kinds


def _check(days: list[date]) -> int:
    """Every account known on a day stores the rule's kinds, and every coverage filter lists
    the same accounts as the filter that tests the assignments. Returns how many (account,
    day) pairs the stored kinds answered."""
    answered = 0
    accounts = list(Account.objects.prefetch_related("coverage_assignments"))
    for day in days:
        grants = Grants.on(day)
        for account in accounts:
            if COVERAGE_KINDS_KNOWN.holds(account, day):
                answered += 1
                assert account.coverage_kinds == _rule_kinds(account, day, grants), (
                    account.pk,
                    day,
                )
        in_market = Account.objects.filter(IN_MARKET.q(day))
        for coverage in COVERAGE:
            stored = in_market.filter(account_coverage_q(coverage=coverage, day=day))
            tested = in_market.filter(account_coverage_q(coverage=coverage, day=day, stored=False))
            assert set(stored.values_list("pk", flat=True)) == set(
                tested.values_list("pk", flat=True)
            ), (coverage, day)
    return answered


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_it_stores_the_kinds_rule_3_counts_on_random_markets(seed: int) -> None:
    rng = random.Random(seed)
    today = timezone.localdate()
    _random_market(rng, today)
    assert coverage_kinds_refresh_stale() == Account.objects.count()
    assert Account.objects.filter(COVERAGE_KINDS_KNOWN.q(today)).count() == 40
    days = [today + timedelta(days=rng.randint(-90, 90)) for _ in range(6)]
    answered = _check([today, *days])
    assert answered >= 40  # every account on today, and some on the other days
    # Nothing to do on a second run the same day.
    assert coverage_kinds_refresh_stale() == 0


def test_it_tests_the_assignments_of_accounts_whose_kinds_are_not_known() -> None:
    rng = random.Random(7)
    today = timezone.localdate()
    _random_market(rng, today)
    coverage_kinds_refresh_stale()
    # Stored kinds made wrong on purpose, then marked not known: the filters must not read them.
    Account.objects.update(coverage_kinds=15)
    assert coverage_kinds_forget(Q()) == 40
    assert _check([today]) == 0


@pytest.mark.parametrize("seed", [4, 5])
def test_the_services_keep_the_stored_kinds_exact(seed: int) -> None:
    rng = random.Random(seed)
    today = timezone.localdate()
    reps, partners = _random_market(rng, today)
    coverage_kinds_refresh_stale()
    manager: User = UserFactory()
    accounts = list(Account.objects.order_by("pk"))
    for _ in range(8):
        chosen = Account.objects.filter(pk__in=[a.pk for a in rng.sample(accounts, 5)])
        action = rng.choice(["rep", "partner", "end", "terminate"])
        if action == "rep":
            coverage_assign(
                accounts=chosen,
                owner=CoverageOwner(kind=ChannelKind.DIRECT, rep=rng.choice(reps)),
                start_date=today - timedelta(days=rng.randint(0, 3)),
            )
        elif action == "partner":
            partner = rng.choice(partners)
            coverage_assign(
                accounts=chosen,
                owner=CoverageOwner(kind=partner.channel_kind, partner=partner),
                start_date=today + timedelta(days=rng.randint(-3, 3)),
            )
        elif action == "end":
            running = CoverageAssignment.objects.filter(
                COVERAGE_RUNNING.q(today), account__in=chosen, start_date__lte=today
            )
            coverage_end(assignments=running, end_date=today)
        else:
            agreement = (
                Agreement.objects.filter(status=AgreementStatus.ACTIVE, start_date__lte=today)
                .filter(end_date__gte=today)
                .first()
            )
            if agreement is not None:
                agreement_terminate(
                    agreement=agreement, terminated_on=today, reason="test", by=manager
                )
        # Everything the services touched is known today and right.
        assert _check([today, today + timedelta(days=1)]) >= 40
    agreements_expire(today=today)
    assert _check([today]) == 40


GOOD = Path(__file__).parent / "csv" / "good"


def _known_today() -> set[str]:
    day = timezone.localdate()
    return set(
        Account.objects.filter(COVERAGE_KINDS_KNOWN.q(day)).values_list("external_id", flat=True)
    )


def test_the_market_import_stores_or_forgets_the_kinds_of_the_accounts_it_writes(
    tmp_path: Path,
) -> None:
    today = timezone.localdate()
    segment = tmp_path / "segment"
    segment.mkdir()
    for name in ("regions.csv", "verticals.csv", "accounts.csv"):
        shutil.copy(GOOD / name, segment)
    # A first load without coverage: the accounts it creates hold no kind, known for good.
    market_import(paths=[segment])
    assert _known_today() == {"ACC-0001", "ACC-0002", "ACC-0003", "ACC-0004"}
    assert coverage_kinds_refresh_stale() == 0
    assert _check([today, date(2024, 1, 1)]) == 8

    # A new account and a changed region: the new one is stored, the changed one forgotten.
    accounts = segment / "accounts.csv"
    text = accounts.read_text(encoding="utf-8").replace(
        'ACC-0002,"Berlin Clinic, GmbH",DACH', 'ACC-0002,"Berlin Clinic, GmbH",NORDICS'
    )
    accounts.write_text(text + "ACC-0005,Lonely Ltd,DACH,FIN,smb,2024-01-01,,,\n")
    market_import(paths=[accounts])
    assert _known_today() == {"ACC-0001", "ACC-0003", "ACC-0004", "ACC-0005"}

    # The whole market: the accounts its coverage names are forgotten, the others kept.
    market = tmp_path / "market"
    shutil.copytree(GOOD, market)
    shutil.copy(accounts, market / "accounts.csv")
    market_import(paths=[market])
    assert _known_today() == {"ACC-0005"}
    assert coverage_kinds_refresh_stale() == 4
    assert _known_today() == {f"ACC-000{n}" for n in range(1, 6)}
    assert _check([today, date(2024, 6, 1), date(2025, 3, 1), date(2025, 12, 31)]) >= 5


def test_a_first_load_with_coverage_leaves_the_kinds_to_the_refresh() -> None:
    market_import(paths=[GOOD])
    assert _known_today() == set()
    assert coverage_kinds_refresh_stale() == 4
    assert _check([timezone.localdate(), date(2025, 3, 1)]) >= 4
