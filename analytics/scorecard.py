"""A partner's scorecard, from the weekly snapshots only: its coverage, conversions,
registrations and win rate, satisfaction, tier, the distance to the next tier requirement by
requirement, its yearly target's attainment and a 12-week trend (docs/metrics.md rules 6 and
20-22).

The portal, the workspace's partner page and business reviews, the review summary e-mail and
the API all show this one object; it holds the asking partner's figures and nothing else.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from django.utils.translation import gettext as _

from analytics import programme, reports
from partners.programme_models import REQUIREMENTS, Tier
from partners.programme_services import programme_settings

TREND_WEEKS = 12


@dataclass(frozen=True)
class RequirementStatus:
    """One requirement of a tier against the partner's figure: met, or how far off."""

    key: str
    label: str
    kind: str
    minimum: float
    value: float | None
    met: bool
    gap: float | None  # how much is missing (none when met or when there is no figure)


@dataclass(frozen=True)
class Attainment:
    """One figure of the yearly target (rule 22): actual to date, target, share reached."""

    key: str
    label: str
    kind: str
    actual: float | None
    target: float | None
    share: float | None
    source: str = ""


@dataclass(frozen=True)
class TrendWeek:
    week: str
    covered_accounts: int
    conversions: int
    registrations_won: int
    satisfaction: float | None
    nps: float | None
    tier: str
    sourced_revenue: float | None = None


@dataclass(frozen=True)
class Scorecard:
    partner_id: int
    week: str
    as_of: date
    final: bool
    tier: str
    tier_name: str
    qualified_tier: str
    weeks_below: int
    grace_weeks: int
    covered_accounts: int
    converted_accounts: int
    conversions: int
    conversions_ytd: int
    registrations_submitted: int
    registrations_won: int
    registrations_lost: int
    win_rate: float | None
    satisfaction: float | None
    nps: float | None
    feedback_count: int
    certifications: int
    # Won revenue it sourced, in the reporting currency: the 52 weeks (its tier requirement)
    # and since 1 January (its yearly target); none when the week has no revenue figures.
    sourced_revenue: float | None
    sourced_revenue_ytd: float | None
    # The requirements of the tier held (is the partner keeping it?) and of the next tier up.
    current: list[RequirementStatus] = field(default_factory=list)
    next_tier: str = ""
    next_tier_name: str = ""
    distance: list[RequirementStatus] = field(default_factory=list)
    attainment: list[Attainment] = field(default_factory=list)
    trend: list[TrendWeek] = field(default_factory=list)

    @property
    def below_tier(self) -> bool:
        return any(not r.met for r in self.current)


def _statuses(figures: dict[str, float | None], tier: Tier | None) -> list[RequirementStatus]:
    if tier is None:
        return []
    minimums = {
        r.key: float(getattr(tier, r.field))
        for r in REQUIREMENTS
        if getattr(tier, r.field) is not None
    }
    rule = programme.TierRule(tier.code, tier.rank, minimums)
    requirements = {r.key: r for r in REQUIREMENTS}
    statuses = []
    for check in programme.requirement_checks(figures, rule):
        value, minimum = check["value"], check["minimum"]
        gap = None if check["met"] or value is None else minimum - value
        requirement = requirements[check["key"]]
        statuses.append(
            RequirementStatus(
                key=check["key"],
                label=str(requirement.label),
                kind=requirement.kind,
                minimum=minimum,
                value=value,
                met=check["met"],
                gap=gap,
            )
        )
    return statuses


def _float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _attainment(row: reports.ProgrammeFigures) -> list[Attainment]:
    revenue = _float(row.sourced_revenue_ytd)
    target_revenue = _float(row.target_revenue)
    return [
        Attainment(
            "accounts_covered",
            _("Accounts covered"),
            "count",
            float(row.covered_accounts),
            None if row.target_accounts_covered is None else float(row.target_accounts_covered),
            programme.attainment(row.covered_accounts, row.target_accounts_covered),
        ),
        Attainment(
            "conversions",
            _("Conversions this year"),
            "count",
            float(row.conversions_ytd),
            None if row.target_conversions is None else float(row.target_conversions),
            programme.attainment(row.conversions_ytd, row.target_conversions),
        ),
        Attainment(
            "revenue",
            _("Sourced revenue this year"),
            "money",
            revenue,
            target_revenue,
            programme.attainment(revenue, target_revenue),
            row.revenue_target_source,
        ),
    ]


def scorecard_for(partner_id: int, *, until_week: str | None = None) -> Scorecard | None:
    """The partner's scorecard as of its latest programme snapshot (the latest up to
    `until_week` when given), with the trend of up to 12 weeks ending there; None before its
    first snapshot."""
    rows = reports.partner_programme(partner_id, last=TREND_WEEKS, until_week=until_week)
    if not rows:
        return None
    latest = rows[-1]
    tiers = list(Tier.objects.order_by("rank"))
    by_code = {tier.code: tier for tier in tiers}
    held = by_code.get(latest.tier)
    higher = [t for t in tiers if held is None or t.rank > held.rank]
    following = higher[0] if higher else None
    figures = latest.requirement_figures()
    return Scorecard(
        partner_id=partner_id,
        week=latest.week,
        as_of=latest.as_of,
        final=latest.final,
        tier=latest.tier,
        tier_name=held.display_name if held else latest.tier,
        qualified_tier=latest.qualified_tier,
        weeks_below=latest.weeks_below,
        grace_weeks=programme_settings().downgrade_grace_weeks,
        covered_accounts=latest.covered_accounts,
        converted_accounts=latest.converted_accounts,
        conversions=latest.conversions,
        conversions_ytd=latest.conversions_ytd,
        registrations_submitted=latest.registrations_submitted,
        registrations_won=latest.registrations_won,
        registrations_lost=latest.registrations_lost,
        win_rate=latest.win_rate,
        satisfaction=latest.satisfaction,
        nps=latest.nps,
        feedback_count=latest.feedback_count,
        certifications=latest.certifications,
        sourced_revenue=_float(latest.sourced_revenue),
        sourced_revenue_ytd=_float(latest.sourced_revenue_ytd),
        current=_statuses(figures, held),
        next_tier=following.code if following else "",
        next_tier_name=following.display_name if following else "",
        distance=_statuses(figures, following),
        attainment=_attainment(latest),
        trend=[
            TrendWeek(
                row.week,
                row.covered_accounts,
                row.conversions,
                row.registrations_won,
                row.satisfaction,
                row.nps,
                by_code[row.tier].display_name if row.tier in by_code else row.tier,
                _float(row.sourced_revenue),
            )
            for row in rows
        ],
    )


def scorecard_payload(card: Scorecard) -> dict[str, Any]:
    """The scorecard as JSON-ready data (the API's and the tests' view of it)."""
    data = asdict(card)
    data["as_of"] = card.as_of.isoformat()
    data["below_tier"] = card.below_tier
    return data
