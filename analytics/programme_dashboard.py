"""The partner programme on the leadership dashboard: what drives satisfaction (the week's
regression, ranked by effect with 95 % intervals, or a plain statement that there is too little
data), target attainment of partners and reps, and partners per tier. Everything from the
snapshots, through `analytics.reports`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import NotRequired, TypedDict

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_stubs_ext import StrOrPromise

from analytics import metrics, programme, reports
from partners.models import FeedbackCategory
from partners.programme_selectors import tier_choices

VARIABLE_LABELS: dict[str, StrOrPromise] = {
    "tier_rank": gettext_lazy("Tier (one tier higher)"),
    "distributor": gettext_lazy("A distributor rather than a partner"),
    "tenure_years": gettext_lazy("Years since the first agreement"),
    "coverage_log2": gettext_lazy("Accounts covered (each doubling)"),
    "response_days": gettext_lazy("Days until our first reply"),
}


def variable_label(variable: str) -> str:
    """A regression variable in the reader's words."""
    if variable.startswith("share_"):
        categories = dict(FeedbackCategory.choices)
        category = variable.removeprefix("share_")
        return _("Share of feedback: %(topic)s") % {
            "topic": str(categories.get(category, category)).lower()
        }
    return str(VARIABLE_LABELS.get(variable, variable))


class DriverRow(TypedDict):
    variable: str
    label: str
    effect: float
    effect_low: float
    effect_high: float
    coefficient: float
    ci_low: float
    ci_high: float
    p_value: float
    clear: bool
    direction: str


class DriversChart(TypedDict):
    labels: list[str]
    intervals: list[list[float]]
    effects: list[float]
    clear: list[bool]
    interval_label: str
    effect_label: str


class DriversSection(TypedDict):
    """The week's drivers of satisfaction as the dashboard, its export and the API show them;
    without a regression that week only `status` ("none"), `week`, `rows` and `chart`."""

    status: str
    week: str
    rows: list[DriverRow]
    chart: DriversChart | None
    observations: NotRequired[int]
    parameters: NotRequired[int]
    needed: NotRequired[int]
    r_squared: NotRequired[float | None]
    adjusted_r_squared: NotRequired[float | None]
    dropped: NotRequired[list[str]]
    baseline: NotRequired[str]


class AttainmentFigure(TypedDict):
    label: str
    kind: str  # "count" or "money"
    actual: float | int | None
    target: float | int | None
    share: float | None
    reached: int
    targeted: int


class AttainmentGroup(TypedDict):
    key: str  # "partners" or "reps"
    label: str
    owners: int
    figures: list[AttainmentFigure]


class AttainmentSection(TypedDict):
    week: str
    sections: list[AttainmentGroup]


class TierLine(TypedDict):
    code: str
    name: str
    partners: int
    change: int | None


@dataclass(frozen=True)
class ProgrammeFigures:
    """What the dashboard reads for a week, before it is put in the reader's words (and so
    cached once for every language)."""

    week: str
    drivers: reports.DriversReport | None
    attainment: dict[str, reports.AttainmentTotals]
    tier_counts: dict[str, dict[str, int]]


def programme_figures(week: str) -> ProgrammeFigures:
    before = metrics.iso_week_of(metrics.iso_week_as_of(week) - timedelta(days=7))
    return ProgrammeFigures(
        week,
        reports.satisfaction_drivers(week),
        reports.attainment_totals(week),
        reports.tier_counts([week, before]),
    )


def drivers_section(week: str, fit: reports.DriversReport | None) -> DriversSection:
    """The drivers of satisfaction for the dashboard's week: a row per variable ranked by the
    size of its effect (one standard deviation's worth, with its 95 % interval), the fit's n
    and R², and `status` "fitted", "too_little_data" or "none" (no regression that week)."""
    if fit is None:
        return {"status": "none", "week": week, "rows": [], "chart": None}
    rows: list[DriverRow] = [
        {
            "variable": driver.variable,
            "label": variable_label(driver.variable),
            "effect": driver.effect,
            "effect_low": driver.effect_low,
            "effect_high": driver.effect_high,
            "coefficient": driver.coefficient,
            "ci_low": driver.ci_low,
            "ci_high": driver.ci_high,
            "p_value": driver.p_value,
            # An interval that leaves out 0: the data say which way it goes.
            "clear": driver.ci_low > 0 or driver.ci_high < 0,
            "direction": "up" if driver.effect > 0 else "down",
        }
        for driver in fit.drivers
    ]
    needed = fit.parameters + programme.MIN_RESIDUAL_DF
    return {
        "status": fit.status,
        "week": fit.week,
        "observations": fit.observations,
        "parameters": fit.parameters,
        "needed": needed,
        "r_squared": fit.r_squared,
        "adjusted_r_squared": fit.adjusted_r_squared,
        "dropped": [variable_label(v) for v in fit.dropped],
        "baseline": str(dict(FeedbackCategory.choices)[programme.BASELINE_CATEGORY]).lower(),
        "rows": rows,
        "chart": {
            "labels": [row["label"] for row in rows],
            "intervals": [
                [round(float(r["effect_low"]), 3), round(float(r["effect_high"]), 3)] for r in rows
            ],
            "effects": [round(float(r["effect"]), 3) for r in rows],
            "clear": [r["clear"] for r in rows],
            # xgettext:no-python-format
            "interval_label": _("95 % interval"),
            "effect_label": _("Effect of one standard deviation"),
        }
        if rows
        else None,
    }


def attainment_section(week: str, totals: dict[str, reports.AttainmentTotals]) -> AttainmentSection:
    """Target attainment summed over partners and over reps for the dashboard's week."""
    sections: list[AttainmentGroup] = []
    for key, label in (("partners", _("Partners")), ("reps", _("Reps"))):
        total = totals[key]
        revenue_actual = None if total.revenue_actual is None else float(total.revenue_actual)
        revenue_target = None if total.revenue_target is None else float(total.revenue_target)
        sections.append(
            {
                "key": key,
                "label": label,
                "owners": total.owners,
                "figures": [
                    {
                        "label": _("Accounts covered"),
                        "kind": "count",
                        "actual": total.accounts_actual,
                        "target": total.accounts_target if total.accounts_targeted else None,
                        "share": programme.attainment(total.accounts_actual, total.accounts_target),
                        "reached": total.accounts_reached,
                        "targeted": total.accounts_targeted,
                    },
                    {
                        "label": _("Conversions this year"),
                        "kind": "count",
                        "actual": total.conversions_actual,
                        "target": total.conversions_target if total.conversions_targeted else None,
                        "share": programme.attainment(
                            total.conversions_actual, total.conversions_target
                        ),
                        "reached": total.conversions_reached,
                        "targeted": total.conversions_targeted,
                    },
                    {
                        "label": _("Sourced revenue this year"),
                        "kind": "money",
                        "actual": revenue_actual,
                        "target": revenue_target,
                        "share": programme.attainment(revenue_actual, revenue_target),
                        "reached": total.revenue_reached,
                        "targeted": total.revenue_targeted,
                    },
                ],
            }
        )
    return {"week": week, "sections": sections}


def tiers_section(week: str, counts: dict[str, dict[str, int]]) -> list[TierLine]:
    """Partners per tier after the week's evaluation, beside the week before."""
    before = metrics.iso_week_of(metrics.iso_week_as_of(week) - timedelta(days=7))
    rows: list[TierLine] = []
    for code, name in reversed(tier_choices()):
        now = counts.get(week, {}).get(code, 0)
        earlier = counts.get(before, {}).get(code)
        rows.append(
            {
                "code": code,
                "name": name,
                "partners": now,
                "change": None if earlier is None else now - earlier,
            }
        )
    return rows


def export_rows(table: str, week: str) -> tuple[list[str], list[list[object]]]:
    """The dashboard's programme tables as CSV rows ("drivers" or "attainment")."""
    figures = programme_figures(week)
    if table == "drivers":
        section = drivers_section(week, figures.drivers)
        header = [
            _("Week"),
            _("Driver"),
            _("Effect of one standard deviation"),
            # xgettext:no-python-format
            _("Effect, 95 % interval from"),
            _("to"),
            _("Coefficient per unit"),
            # xgettext:no-python-format
            _("Coefficient, 95 % interval from"),
            _("to"),
            _("p-value"),
            _("Partners observed"),
            _("R²"),
        ]
        return [str(h) for h in header], [
            [
                section["week"],
                row["label"],
                row["effect"],
                row["effect_low"],
                row["effect_high"],
                row["coefficient"],
                row["ci_low"],
                row["ci_high"],
                row["p_value"],
                section["observations"],
                section["r_squared"],
            ]
            for row in section["rows"]
        ]
    attainment = attainment_section(week, figures.attainment)
    header = [
        _("Week"),
        _("Who"),
        _("Figure"),
        _("To date"),
        _("Target"),
        _("Attainment"),
        _("Reached the target"),
        _("With a target"),
    ]
    return [str(h) for h in header], [
        [
            week,
            section["label"],
            figure["label"],
            figure["actual"],
            figure["target"],
            figure["share"],
            figure["reached"],
            figure["targeted"],
        ]
        for section in attainment["sections"]
        for figure in section["figures"]
    ]
