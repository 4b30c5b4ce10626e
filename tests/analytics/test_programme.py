"""The programme's pure functions (docs/metrics.md rules 20-23): requirements, qualifying
tiers, the weekly evaluation with its grace period, attainment, and the satisfaction regression
against generated data with known coefficients and against the normal equations."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from analytics import programme
from partners.programme_models import REQUIREMENT_KEYS

TIERS = [
    programme.TierRule("registered", 0, {}),
    programme.TierRule("silver", 1, {"covered_accounts": 10, "satisfaction": 3.0}),
    programme.TierRule("gold", 2, {"covered_accounts": 50, "conversions": 5, "certifications": 2}),
]


def figures(*rows: dict[str, float | None]) -> pd.DataFrame:
    return pd.DataFrame(
        [{key: row.get(key) for key in REQUIREMENT_KEYS} for row in rows], dtype="float64"
    )


class TestWindows:
    def test_the_52_weeks_end_on_the_day_and_the_year_starts_in_january(self) -> None:
        assert programme.window_start(date(2026, 11, 15)) == date(2025, 11, 17)
        assert programme.year_start(date(2026, 11, 15)) == date(2026, 1, 1)


class TestRequirements:
    def test_a_figure_at_the_minimum_meets_it_and_a_missing_one_never_does(self) -> None:
        checks = programme.requirement_checks(
            {"covered_accounts": 10.0, "satisfaction": None}, TIERS[1]
        )
        assert [(c["key"], c["met"]) for c in checks] == [
            ("covered_accounts", True),
            ("satisfaction", False),
        ]
        assert checks[1]["value"] is None

    def test_the_highest_tier_whose_every_requirement_is_met_is_the_qualifying_one(
        self,
    ) -> None:
        frame = figures(
            {"covered_accounts": 60, "conversions": 5, "certifications": 2, "satisfaction": 2.0},
            {"covered_accounts": 60, "conversions": 4, "certifications": 2, "satisfaction": 3.5},
            {"covered_accounts": 9, "satisfaction": 5.0},
            {"covered_accounts": 10},  # no feedback: satisfaction missing, silver not met
        )
        assert programme.qualified_tiers(frame, TIERS).tolist() == [
            "gold",
            "silver",
            "registered",
            "registered",
        ]

    def test_a_tier_without_requirements_is_given_by_a_manager_only(self) -> None:
        tiers = [*TIERS, programme.TierRule("partner-of-choice", 3, {})]
        gold = figures({"covered_accounts": 60, "conversions": 5, "certifications": 2})
        assert programme.qualified_tiers(gold, tiers).tolist() == ["gold"]
        # Its holder, meeting nothing, keeps it whatever the grace.
        outcome = programme.tier_decisions(
            figures=figures({"covered_accounts": 1}),
            tiers=tiers,
            held_before=["partner-of-choice"],
            weeks_below_before=[5],
            grace_weeks=0,
            final=True,
        )
        assert (outcome.held.tolist(), outcome.weeks_below.tolist()) == (["partner-of-choice"], [0])

    def test_without_tiers_nobody_qualifies(self) -> None:
        assert programme.qualified_tiers(figures({}), []).tolist() == [""]


class TestEvaluation:
    def decide(
        self,
        held: list[str],
        below: list[int],
        frame: pd.DataFrame,
        *,
        grace: int = 2,
        final: bool = True,
    ) -> programme.TierOutcome:
        return programme.tier_decisions(
            figures=frame,
            tiers=TIERS,
            held_before=held,
            weeks_below_before=below,
            grace_weeks=grace,
            final=final,
        )

    def test_a_partner_moves_up_the_week_it_qualifies(self) -> None:
        gold = {"covered_accounts": 60, "conversions": 5, "certifications": 2}
        outcome = self.decide(["registered"], [0], figures(gold))
        assert outcome.held.tolist() == ["gold"]
        assert outcome.weeks_below.tolist() == [0]

    def test_a_partner_keeps_its_tier_through_the_grace_weeks_then_moves_down(self) -> None:
        silver_only = figures({"covered_accounts": 20, "satisfaction": 4.0})
        held, below = "gold", 0
        history = []
        for _week in range(4):
            outcome = self.decide([held], [below], silver_only, grace=2)
            held, below = outcome.held[0], int(outcome.weeks_below[0])
            history.append((held, below))
        # Below for two closed weeks it keeps gold; in the third it moves down to silver.
        assert history == [("gold", 1), ("gold", 2), ("silver", 0), ("silver", 0)]

    def test_no_grace_moves_down_at_once(self) -> None:
        outcome = self.decide(["gold"], [0], figures({"covered_accounts": 1}), grace=0)
        assert outcome.held.tolist() == ["registered"]

    def test_meeting_the_tier_again_starts_the_count_over(self) -> None:
        gold = figures({"covered_accounts": 60, "conversions": 5, "certifications": 2})
        outcome = self.decide(["gold"], [1], gold)
        assert (outcome.held.tolist(), outcome.weeks_below.tolist()) == (["gold"], [0])

    def test_a_provisional_week_changes_no_tier_and_counts_no_week(self) -> None:
        gold = {"covered_accounts": 60, "conversions": 5, "certifications": 2}
        outcome = self.decide(
            ["registered", "gold"], [0, 1], figures(gold, {"covered_accounts": 1}), final=False
        )
        assert outcome.qualified.tolist() == ["gold", "registered"]
        assert outcome.held.tolist() == ["registered", "gold"]
        assert outcome.weeks_below.tolist() == [0, 1]

    def test_a_tier_the_programme_does_not_define_moves_to_the_qualifying_tier(self) -> None:
        silver = figures({"covered_accounts": 20, "satisfaction": 4})
        outcome = self.decide(["diamond"], [0], silver)
        assert outcome.held.tolist() == ["silver"]


class TestAttainment:
    @pytest.mark.parametrize(
        ("actual", "target", "share"),
        [
            (50, 100, 0.5),
            (120, 100, 1.2),
            (0, 10, 0.0),
            (5, None, None),
            (5, 0, None),
            (None, 9, None),
        ],
    )
    def test_it_divides_the_figure_by_its_target(
        self, actual: float | None, target: float | None, share: float | None
    ) -> None:
        assert programme.attainment(actual, target) == share


def generated(
    rng: np.random.Generator, n: int, beta: dict[str, float], noise: float
) -> tuple[pd.DataFrame, pd.Series]:
    """A design of every driver variable drawn at random and an outcome built from `beta`
    (and the constant 3.0) with normal noise."""
    design = pd.DataFrame({variable: rng.normal(size=n) for variable in programme.DRIVER_VARIABLES})
    outcome = 3.0 + sum(design[v] * b for v, b in beta.items()) + rng.normal(scale=noise, size=n)
    return design, pd.Series(outcome)


class TestRegression:
    def test_it_recovers_known_coefficients_within_their_intervals(self) -> None:
        rng = np.random.default_rng(20261205)
        beta = {v: round(0.4 - 0.1 * i, 2) for i, v in enumerate(programme.DRIVER_VARIABLES)}
        design, outcome = generated(rng, 1500, beta, noise=0.5)
        fit = programme.fit_ols(design, outcome)
        assert fit.status == "fitted"
        assert (fit.observations, fit.parameters) == (1500, len(beta) + 1)
        rows = fit.coefficients.set_index("variable")
        for variable, true in beta.items():
            low, high = rows.loc[variable, "ci_low"], rows.loc[variable, "ci_high"]
            assert low <= true <= high, (variable, low, true, high)
            assert abs(rows.loc[variable, "coefficient"] - true) < 0.05
        assert fit.r_squared is not None and fit.r_squared > 0.8

    def test_its_95_percent_intervals_hold_the_truth_about_95_times_in_100(self) -> None:
        rng = np.random.default_rng(7)
        beta = {"tier_rank": 0.3, "response_days": -0.05, "distributor": -0.4}
        inside = total = 0
        for _draw in range(200):
            design, outcome = generated(rng, 40, beta, noise=0.6)
            rows = programme.fit_ols(design[list(beta)], outcome).coefficients
            for row in rows.itertuples():
                inside += row.ci_low <= beta[row.variable] <= row.ci_high
                total += 1
        assert 0.91 <= inside / total <= 0.99

    def test_it_equals_the_normal_equations_on_a_small_case(self) -> None:
        design = pd.DataFrame(
            {
                "tier_rank": [0, 1, 2, 1, 0, 3, 2, 1, 0, 2, 3, 1, 2, 0],
                "response_days": [5, 2, 1, 8, 12, 1, 3, 4, 20, 2, 0.5, 6, 2, 15],
            },
            dtype="float64",
        )
        outcome = pd.Series([2.5, 3.4, 4.1, 3.0, 2.2, 4.8, 3.9, 3.3, 1.8, 4.0, 4.6, 3.1, 3.7, 2.0])
        fit = programme.fit_ols(design, outcome)
        x = np.column_stack([np.ones(len(design)), design.to_numpy()])
        y = outcome.to_numpy()
        beta = np.linalg.inv(x.T @ x) @ x.T @ y
        rows = fit.coefficients.set_index("variable")
        assert rows.loc["tier_rank", "coefficient"] == pytest.approx(beta[1], rel=1e-9)
        assert rows.loc["response_days", "coefficient"] == pytest.approx(beta[2], rel=1e-9)
        residuals = y - x @ beta
        r_squared = 1 - residuals @ residuals / ((y - y.mean()) @ (y - y.mean()))
        assert fit.r_squared == pytest.approx(r_squared, rel=1e-9)
        # The interval: beta +/- t(0.975, n - k) x its standard error from sigma^2 (X'X)^-1.
        sigma2 = residuals @ residuals / (len(y) - 3)
        std_error = np.sqrt(np.diag(sigma2 * np.linalg.inv(x.T @ x)))
        assert rows.loc["tier_rank", "std_error"] == pytest.approx(std_error[1], rel=1e-9)
        half = rows.loc["tier_rank", "ci_high"] - rows.loc["tier_rank", "coefficient"]
        assert half == pytest.approx(2.2009851600916384 * std_error[1], rel=1e-6)

    def test_it_gives_the_hand_computed_solution_of_the_normal_equations(self) -> None:
        # y = 1 + 2x + e, x = 0..11, e = (1, -1, -1, 1) repeated: e sums to 0 and to 0 against
        # x, so beta = (X'X)^-1 X'Y = (1, 2) exactly. X'X = [[12, 66], [66, 506]], det 1716,
        # so (X'X)^-1 has 12/1716 = 1/143 for the slope; SSR = 12, sigma^2 = 12/(12 - 2) = 1.2;
        # SST = 4 x 143 + 12 = 584, R^2 = 1 - 12/584 = 143/146.
        x = pd.DataFrame({"tier_rank": [float(v) for v in range(12)]})
        e = [1.0, -1.0, -1.0, 1.0] * 3
        y = pd.Series([1 + 2 * v + r for v, r in zip(range(12), e, strict=True)])
        fit = programme.fit_ols(x, y)
        row = fit.coefficients.set_index("variable").loc["tier_rank"]
        assert row["coefficient"] == pytest.approx(2.0, abs=1e-12)
        assert row["std_error"] == pytest.approx((1.2 / 143) ** 0.5, rel=1e-12)
        assert fit.r_squared == pytest.approx(143 / 146, rel=1e-12)
        assert fit.observations == 12

    def test_it_ranks_drivers_by_the_size_of_their_effect(self) -> None:
        rng = np.random.default_rng(3)
        design = pd.DataFrame(
            {"tier_rank": rng.normal(size=300), "response_days": rng.normal(scale=10, size=300)}
        )
        outcome = 3 + 0.5 * design["tier_rank"] - 0.2 * design["response_days"]
        outcome = outcome + rng.normal(scale=0.3, size=300)
        rows = programme.fit_ols(design, outcome).coefficients
        # Per unit tier matters more; per standard deviation, response time (sd 10) does.
        assert rows["variable"].tolist() == ["response_days", "tier_rank"]
        first = rows.iloc[0]
        assert first["effect"] == pytest.approx(first["coefficient"] * first["std_dev"])

    def test_too_few_partners_is_said_plainly(self) -> None:
        rng = np.random.default_rng(1)
        design, outcome = generated(rng, 20, {"tier_rank": 1.0}, noise=0.5)
        fit = programme.fit_ols(design, outcome)
        assert fit.status == "too_little_data"
        assert fit.coefficients.empty and fit.r_squared is None
        assert (fit.observations, fit.parameters) == (20, len(programme.DRIVER_VARIABLES) + 1)

    def test_a_variable_without_variation_or_repeating_another_is_left_out(self) -> None:
        rng = np.random.default_rng(2)
        design = pd.DataFrame({"tier_rank": rng.normal(size=50), "distributor": np.zeros(50)})
        design["tenure_years"] = 2 * design["tier_rank"] + 1
        fit = programme.fit_ols(design, 3 + design["tier_rank"] + rng.normal(size=50))
        assert fit.dropped == ["distributor", "tenure_years"]
        assert fit.coefficients["variable"].tolist() == ["tier_rank"]

    def test_the_design_reads_shares_against_product_and_fills_a_missing_response_time(
        self,
    ) -> None:
        inputs = pd.DataFrame(
            {
                "partner_id": [1, 2, 3],
                "satisfaction": [4.0, 3.0, None],
                "tier_rank": [2, 0, 1],
                "channel_kind": ["partner", "distribution", "partner"],
                "tenure_years": [1.5, 0.0, 3.0],
                "covered_accounts": [3, 0, 7],
                "response_days": [2.0, None, 1.0],
                **{column: [0, 0, 0] for column in programme.FEEDBACK_COUNT_COLUMNS.values()},
                "feedback_product": [1, 0, 0],
                "feedback_pricing": [3, 0, 0],
                "feedback_support": [0, 2, 0],
            }
        )
        design, outcome = programme.driver_design(inputs)
        assert outcome.tolist() == [4.0, 3.0]  # no satisfaction: not observed
        assert design["share_pricing"].tolist() == [0.75, 0.0]
        assert design["share_support"].tolist() == [0.0, 1.0]
        assert design["coverage_log2"].tolist() == [2.0, 0.0]
        assert design["distributor"].tolist() == [0.0, 1.0]
        assert design["response_days"].tolist() == [2.0, 2.0]
        assert list(design.columns) == list(programme.DRIVER_VARIABLES)
