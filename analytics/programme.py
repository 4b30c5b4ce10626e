"""The partner programme's weekly figures as pure functions: frames in, frames out.

- `programme_figures`: each partner's figures for its tier requirements (docs/metrics.md rule
  20) from the week's partner snapshot (rule 6) and the programme's own counts;
- `tier_decisions`: the tier each partner qualifies for and the tier it holds after the
  week's evaluation, with the downgrade grace period (rule 21);
- `attainment`: an actual figure against its target (rule 22);
- `satisfaction_drivers`: the week's ordinary least-squares regression of partner
  satisfaction on its explanatory variables (rule 23), fitted with statsmodels.

Nothing here touches the ORM: `analytics.programme_selectors` reads, these compute,
`analytics.programme_services` writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import cache
from typing import TypedDict

import numpy as np
import pandas as pd
import statsmodels.api as sm
from threadpoolctl import ThreadpoolController

from partners.models import FeedbackCategory
from partners.programme_models import REQUIREMENT_KEYS

# Rule 20: the windows of the programme's counts.
WINDOW_DAYS = 364
# Rule 23: answered or not, no feedback counts more than this many days of waiting.
RESPONSE_DAYS_CAP = 30.0
# Rule 23: the regression is fitted only with at least this many observations beyond its
# parameters; with fewer it says "too little data" and shows no coefficient.
MIN_RESIDUAL_DF = 10
CONFIDENCE = 0.95


def window_start(d: date) -> date:
    """The first day of the 52 weeks ending on `d` (rule 20): d - 363."""
    return date.fromordinal(d.toordinal() - WINDOW_DAYS + 1)


def year_start(d: date) -> date:
    """1 January of `d`'s year: the first day a yearly target counts (rule 22)."""
    return date(d.year, 1, 1)


@dataclass(frozen=True)
class TierRule:
    """A tier as the evaluation reads it: code, rank and the minimum of each requirement it
    sets (`REQUIREMENT_KEYS`; absent = not required)."""

    code: str
    rank: int
    minimums: Mapping[str, float] = field(default_factory=dict)


class RequirementCheck(TypedDict):
    """One requirement of a tier against a partner's figure (`requirement_checks`)."""

    key: str
    minimum: float
    value: float | None
    met: bool


def requirement_checks(
    figures: Mapping[str, float | int | Decimal | None], tier: TierRule
) -> list[RequirementCheck]:
    """Each requirement `tier` sets, with the partner's figure and whether it is met: a figure
    at or above the minimum; a missing figure (no feedback for satisfaction or NPS, no revenue
    recorded) never meets one. In `REQUIREMENT_KEYS` order."""
    checks: list[RequirementCheck] = []
    for key in REQUIREMENT_KEYS:
        if key not in tier.minimums:
            continue
        raw = figures.get(key)
        value = None if raw is None or (isinstance(raw, float) and np.isnan(raw)) else float(raw)
        checks.append(
            {
                "key": key,
                "minimum": float(tier.minimums[key]),
                "value": value,
                "met": value is not None and value >= float(tier.minimums[key]),
            }
        )
    return checks


def _meets(figures: pd.DataFrame, tier: TierRule) -> np.ndarray:
    met = np.ones(len(figures), dtype=bool)
    for key, minimum in tier.minimums.items():
        values = figures[key].to_numpy(dtype="float64")
        # NaN compares false: a missing figure never meets a minimum.
        met &= values >= float(minimum)
    return met


def qualified_tiers(figures: pd.DataFrame, tiers: Sequence[TierRule]) -> np.ndarray:
    """Rule 21: per row of `figures` (columns `REQUIREMENT_KEYS`, NaN where missing), the code
    of the highest-ranked tier whose every requirement it meets; the entry tier (lowest rank)
    when it meets none. A tier above the entry tier that sets no requirement is given by a
    manager only: nobody qualifies for it. Empty strings when there are no tiers."""
    result = np.full(len(figures), "", dtype=object)
    if not tiers:
        return result
    ordered = sorted(tiers, key=lambda t: t.rank)
    result[:] = ordered[0].code
    for tier in ordered[1:]:
        if tier.minimums:
            result[_meets(figures, tier)] = tier.code
    return result


@dataclass(frozen=True)
class TierOutcome:
    """The week's evaluation (rule 21), one entry per row of the figures: the tier qualified
    for, the tier held after the evaluation, and the closed weeks in a row spent below the
    tier held (0 once it is met again or the partner moves down)."""

    qualified: np.ndarray
    held: np.ndarray
    weeks_below: np.ndarray


def tier_decisions(
    *,
    figures: pd.DataFrame,
    tiers: Sequence[TierRule],
    held_before: Sequence[str],
    weeks_below_before: Sequence[int],
    grace_weeks: int,
    final: bool,
) -> TierOutcome:
    """Rule 21 for one week. Per row of `figures`: `held_before` is the partner's tier when
    the evaluation starts, `weeks_below_before` its count of weeks below that tier as of the
    previous week (0 when that week has no row).

    A partner that qualifies for a higher tier than it holds moves up. One that qualifies
    only for a lower tier keeps its tier for `grace_weeks` closed weeks in a row below it, and
    moves down, to the tier it qualifies for, in the next such week. A tier the programme does
    not define counts below every tier (its holder moves to the tier it qualifies for). A
    provisional week (`final` false) changes no tier and counts no week below.
    """
    rank = {tier.code: tier.rank for tier in tiers}
    qualified = qualified_tiers(figures, tiers)
    before = np.asarray(list(held_before), dtype=object)
    below_before = np.asarray(list(weeks_below_before), dtype="int64")
    held = before.copy()
    weeks_below = np.zeros(len(figures), dtype="int64")
    if not tiers:
        return TierOutcome(qualified, held, weeks_below)
    held_rank = np.array([rank.get(code, -1) for code in before], dtype="int64")
    qualified_rank = np.array([rank[code] for code in qualified], dtype="int64")
    # A tier that sets no requirement has nothing to fall below: its holder keeps it.
    unconditional = {tier.code for tier in tiers if not tier.minimums}
    kept = np.array([code in unconditional for code in before], dtype=bool)
    below = (qualified_rank < held_rank) & ~kept
    if not final:
        weeks_below[below] = below_before[below]
        return TierOutcome(qualified, held, weeks_below)
    up = (qualified_rank > held_rank) | (held_rank < 0)
    weeks_below[below] = below_before[below] + 1
    down = below & (weeks_below > grace_weeks)
    moves = up | down
    held[moves] = qualified[moves]
    weeks_below[down] = 0
    return TierOutcome(qualified, held, weeks_below)


def attainment(actual: float | None, target: float | None) -> float | None:
    """Rule 22: the share of a target reached, `actual / target`; none without a target (or a
    target of 0) or without an actual figure."""
    if actual is None or target is None or not target:
        return None
    return float(actual) / float(target)


# Rule 23 ---------------------------------------------------------------------------------------

# The categories whose share of a partner's feedback enter the regression, against product
# (the baseline: the shares of every category add up to 1, so one of them must stay out).
BASELINE_CATEGORY = FeedbackCategory.PRODUCT.value
SHARE_CATEGORIES: tuple[str, ...] = tuple(
    c for c in FeedbackCategory.values if c != BASELINE_CATEGORY
)
DRIVER_VARIABLES: tuple[str, ...] = (
    "tier_rank",
    "distributor",
    "tenure_years",
    "coverage_log2",
    "response_days",
    *(f"share_{category}" for category in SHARE_CATEGORIES),
)
# A partner's entries of each category in the 90 days, one column per category.
FEEDBACK_COUNT_COLUMNS: dict[str, str] = {
    category: f"feedback_{category}" for category in FeedbackCategory.values
}
# What the regression reads per partner (one row each, with satisfaction observed).
DRIVER_INPUT_COLUMNS: list[str] = [
    "partner_id",
    "satisfaction",
    "tier_rank",
    "channel_kind",
    "tenure_years",
    "covered_accounts",
    "response_days",
    *FEEDBACK_COUNT_COLUMNS.values(),
]


def driver_design(inputs: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Rule 23's variables from the per-partner inputs (`DRIVER_INPUT_COLUMNS`; partners with
    no satisfaction are left out): the design matrix (`DRIVER_VARIABLES`, no constant) and the
    outcome. A partner without a message to answer takes the mean response time of the
    others."""
    satisfaction = inputs["satisfaction"].to_numpy(dtype="float64")
    observed = ~np.isnan(satisfaction)

    def column(name: str) -> np.ndarray:
        return np.asarray(inputs[name].to_numpy(dtype="float64")[observed])

    # Over arrays: a frame per step cost more than the regression itself.
    counts = {
        category: np.nan_to_num(column(name), nan=0.0)
        for category, name in FEEDBACK_COUNT_COLUMNS.items()
    }
    totals = np.sum(list(counts.values()), axis=0)
    response = column("response_days")
    # pandas' mean, skipping the partners without a message (none at all: 0).
    mean_response = pd.Series(response).mean()
    mean_response = 0.0 if np.isnan(mean_response) else mean_response
    with np.errstate(divide="ignore", invalid="ignore"):
        shares = {
            f"share_{category}": np.where(totals > 0, counts[category] / totals, 0.0)
            for category in SHARE_CATEGORIES
        }
    design = pd.DataFrame(
        {
            "tier_rank": column("tier_rank"),
            "distributor": (
                inputs["channel_kind"].to_numpy(dtype=object)[observed] == "distribution"
            ).astype("float64"),
            "tenure_years": column("tenure_years"),
            "coverage_log2": np.log2(1.0 + column("covered_accounts")),
            "response_days": np.where(np.isnan(response), mean_response, response),
            **shares,
        }
    )
    return design[list(DRIVER_VARIABLES)], pd.Series(satisfaction[observed])


@dataclass(frozen=True)
class DriverFit:
    """A fitted (or refused) regression: the status, n, the number of parameters (the
    constant included), R² and adjusted R², the variables left out, and one row per variable
    (`coefficients`: variable, coefficient, std_error, ci_low, ci_high, p_value, std_dev,
    effect, effect_low, effect_high), ranked by the size of the effect, largest first."""

    status: str
    observations: int
    parameters: int
    r_squared: float | None
    adjusted_r_squared: float | None
    dropped: list[str]
    coefficients: pd.DataFrame


DRIVER_COEFFICIENT_COLUMNS = [
    "variable",
    "coefficient",
    "std_error",
    "ci_low",
    "ci_high",
    "p_value",
    "std_dev",
    "effect",
    "effect_low",
    "effect_high",
]


def _independent_columns(design: pd.DataFrame) -> tuple[list[str], list[str]]:
    """The columns kept and dropped: a column without variation, or one that is a linear
    combination of the constant and the columns kept before it, carries nothing of its own."""
    kept: list[str] = []
    dropped: list[str] = []
    basis = np.ones((len(design), 1))
    for column in design.columns:
        values = design[column].to_numpy(dtype="float64")
        candidate = np.column_stack([basis, values])
        constant = not len(values) or np.ptp(values) == 0
        # The rank of X is the rank of the small XᵀX: a k x k decomposition instead of n x k.
        if constant or np.linalg.matrix_rank(candidate.T @ candidate) <= basis.shape[1]:
            dropped.append(column)
            continue
        kept.append(column)
        basis = candidate
    return kept, dropped


def fit_ols(design: pd.DataFrame, outcome: pd.Series) -> DriverFit:
    """Ordinary least squares of `outcome` on `design` plus a constant (statsmodels), with the
    95 % confidence intervals of every coefficient (rule 23). Refused ("too little data")
    when the observations do not exceed the parameters by `MIN_RESIDUAL_DF`."""
    kept, dropped = _independent_columns(design)
    n, parameters = len(design), len(kept) + 1
    if n - parameters < MIN_RESIDUAL_DF:
        return DriverFit(
            "too_little_data",
            n,
            parameters,
            None,
            None,
            dropped,
            pd.DataFrame(columns=DRIVER_COEFFICIENT_COLUMNS),
        )
    exog = sm.add_constant(design[kept].to_numpy(dtype="float64"), has_constant="add")
    fitted = sm.OLS(outcome.to_numpy(dtype="float64"), exog).fit()
    interval = fitted.conf_int(alpha=1 - CONFIDENCE)
    std_dev = design[kept].std(ddof=1).to_numpy(dtype="float64")
    coefficients = pd.DataFrame(
        {
            "variable": kept,
            "coefficient": fitted.params[1:],
            "std_error": fitted.bse[1:],
            "ci_low": interval[1:, 0],
            "ci_high": interval[1:, 1],
            "p_value": fitted.pvalues[1:],
            "std_dev": std_dev,
        }
    )
    coefficients["effect"] = coefficients["coefficient"] * std_dev
    coefficients["effect_low"] = coefficients["ci_low"] * std_dev
    coefficients["effect_high"] = coefficients["ci_high"] * std_dev
    order = coefficients["effect"].abs().sort_values(ascending=False, kind="stable").index
    return DriverFit(
        "fitted",
        n,
        parameters,
        float(fitted.rsquared),
        float(fitted.rsquared_adj),
        dropped,
        coefficients.loc[order, DRIVER_COEFFICIENT_COLUMNS].reset_index(drop=True),
    )


def satisfaction_drivers(inputs: pd.DataFrame) -> DriverFit:
    """Rule 23: the week's regression of partner satisfaction on its drivers, from the
    per-partner inputs (`DRIVER_INPUT_COLUMNS`)."""
    design, outcome = driver_design(inputs)
    # Thousands of rows by a dozen columns take a few milliseconds on one core; split over
    # the BLAS library's threads on a busy machine they waited 10 to 100 times longer
    # (measured: 25 ms against 30-470 ms at 10,000 partners; the same figures either way).
    with _blas().limit(limits=1, user_api="blas"):
        return fit_ols(design, outcome)


@cache
def _blas() -> ThreadpoolController:
    """The process's BLAS libraries, found once: `threadpool_limits` finds them again on
    every call (2-3 ms of each week's programme step)."""
    return ThreadpoolController()
