"""Hand-computed checks of every rule in docs/metrics.md, on small frames."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

from analytics import metrics

D = date(2026, 11, 15)  # the Sunday that closes 2026-W46
BEFORE, AFTER = D - timedelta(days=1), D + timedelta(days=1)


def account(account_id: int, **fields: Any) -> dict[str, Any]:
    row = {
        "account_id": account_id,
        "region": "R1",
        "vertical": "V1",
        "size_band": "smb",
        "entered_on": date(2025, 1, 1),
        "archived_on": None,
        "converted_on": None,
        "converted_via": "",
    }
    row.update(fields)
    return row


def assignment(account_id: int, kind: str, **fields: Any) -> dict[str, Any]:
    row = {
        "account_id": account_id,
        "kind": kind,
        "partner_id": None,
        "start_date": date(2025, 1, 1),
        "end_date": None,
    }
    row.update(fields)
    return row


def agreement(agreement_id: int, partner_id: int, **fields: Any) -> dict[str, Any]:
    row = {
        "agreement_id": agreement_id,
        "partner_id": partner_id,
        "status": "active",
        "signed_on": date(2025, 1, 1),
        "start_date": date(2025, 1, 1),
        "end_date": date(2027, 1, 1),
        "terminated_on": None,
    }
    row.update(fields)
    return row


def frame(rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns)


ACCOUNT_COLUMNS = list(account(0))
COVERAGE_COLUMNS = list(assignment(0, "direct"))
AGREEMENT_COLUMNS = list(agreement(0, 0))


FEEDBACK_COLUMNS = ["partner_id", "channel_kind", "created_on", "category", "satisfaction", "nps"]
PARTNER_COLUMNS = ["partner_id", "external_id", "name", "channel_kind"]


def market(
    accounts: list[dict[str, Any]],
    coverage: list[dict[str, Any]] = (),  # type: ignore[assignment]
    agreements: list[dict[str, Any]] = (),  # type: ignore[assignment]
    regions: list[tuple[int, str]] = (),  # type: ignore[assignment]
    verticals: list[tuple[int, str]] = (),  # type: ignore[assignment]
    feedback: list[dict[str, Any]] = (),  # type: ignore[assignment]
    partners: list[dict[str, Any]] = (),  # type: ignore[assignment]
) -> metrics.PreparedMarket:
    return metrics.PreparedMarket(
        accounts=frame(list(accounts), ACCOUNT_COLUMNS),
        coverage=frame(list(coverage), COVERAGE_COLUMNS),
        agreements=frame(list(agreements), AGREEMENT_COLUMNS),
        agreement_regions=frame(
            [{"agreement_id": a, "region": r} for a, r in regions], ["agreement_id", "region"]
        ),
        agreement_verticals=frame(
            [{"agreement_id": a, "vertical": v} for a, v in verticals],
            ["agreement_id", "vertical"],
        ),
        feedback=frame(list(feedback), FEEDBACK_COLUMNS),
        partners=frame(list(partners), PARTNER_COLUMNS),
    )


def segments_on(d: date, *args: Any, **kwargs: Any) -> pd.DataFrame:
    """The segment counts and ratios on `d` of a market (the arguments of `market`)."""
    return market(*args, **kwargs).week_figures(d).segments


def only(segments: pd.DataFrame) -> dict[str, Any]:
    assert len(segments) == 1
    return segments.iloc[0].to_dict()


def test_it_finds_the_sunday_that_closes_an_iso_week() -> None:
    assert metrics.iso_week_as_of("2026-W46") == date(2026, 11, 15)
    assert metrics.iso_week_as_of("2026-W01") == date(2026, 1, 4)
    assert metrics.iso_week_of(date(2026, 11, 15)) == "2026-W46"
    assert metrics.iso_week_of(date(2026, 11, 16)) == "2026-W47"
    assert metrics.iso_weeks_between("2025-W52", "2026-W02") == ["2025-W52", "2026-W01", "2026-W02"]


@pytest.mark.parametrize("week", ["2026-46", "2026-W60", "26-W01", "2026-W1", ""])
def test_it_rejects_malformed_weeks(week: str) -> None:
    with pytest.raises(ValueError):
        metrics.iso_week_as_of(week)


def test_it_counts_accounts_in_market_on_the_entry_day_and_not_on_the_archive_day() -> None:
    accounts = [
        account(1, entered_on=D),  # entered on d: in
        account(2, entered_on=AFTER),  # enters after d: out
        account(3, archived_on=D),  # archived on d: out
        account(4, archived_on=AFTER),  # archived after d: in
        account(5),
    ]
    assert market(accounts).day_states(D).in_market.tolist() == [True, False, False, True, True]
    assert only(segments_on(D, accounts))["accounts"] == 3


def test_it_keeps_agreements_in_force_through_their_last_and_termination_days() -> None:
    agreements = frame(
        [
            agreement(1, 1, end_date=D),  # ends on d: in force
            agreement(2, 1, end_date=BEFORE),  # ended the day before: not
            agreement(3, 1, terminated_on=D),  # terminated on d: in force
            agreement(4, 1, terminated_on=BEFORE),  # terminated the day before: not
            agreement(5, 1, signed_on=D, start_date=D),  # signed and starting on d: in force
            agreement(6, 1, signed_on=AFTER),  # signed after d: not
            agreement(7, 1, status="draft", signed_on=None),  # a draft: never
            agreement(8, 1, start_date=AFTER),  # starts after d: not
            agreement(9, 1, status="draft"),  # a draft carrying a signed date: never either
            agreement(10, 1, status="terminated", terminated_on=AFTER),  # until its last day
        ],
        AGREEMENT_COLUMNS,
    )
    assert metrics.agreements_in_force(agreements, D)["agreement_id"].tolist() == [1, 3, 5, 10]


def test_it_counts_partner_coverage_under_a_signed_draft_as_not_granted() -> None:
    coverage = [assignment(1, "partner", partner_id=7)]
    draft = [agreement(1, 7, status="draft")]
    assert only(segments_on(D, [account(1)], coverage, draft))["covered_partner"] == 0


@pytest.mark.parametrize(
    ("start", "end", "active"),
    [
        (D, None, True),  # starts on d
        (AFTER, None, False),  # starts after d
        (date(2025, 1, 1), D, True),  # ends on d
        (date(2025, 1, 1), BEFORE, False),  # ended the day before
    ],
)
def test_it_counts_coverage_from_its_start_day_through_its_end_day(
    start: date, end: date | None, active: bool
) -> None:
    row = only(
        segments_on(D, [account(1)], [assignment(1, "direct", start_date=start, end_date=end)])
    )
    assert row["covered_direct"] == int(active)
    assert row["covered_any"] == int(active)
    assert row["white_space"] == 1 - int(active)


def test_it_needs_no_agreement_for_direct_and_online() -> None:
    row = only(
        segments_on(D, [account(1), account(2)], [assignment(1, "direct"), assignment(2, "online")])
    )
    assert (row["covered_direct"], row["covered_online"], row["covered_any"]) == (1, 1, 2)


@pytest.mark.parametrize("kind", ["distribution", "partner"])
def test_it_counts_partner_coverage_only_with_an_agreement_in_force(kind: str) -> None:
    coverage = [assignment(1, kind, partner_id=7)]
    assert only(segments_on(D, [account(1)], coverage))[f"covered_{kind}"] == 0
    in_force = [agreement(1, 7)]
    assert only(segments_on(D, [account(1)], coverage, in_force))[f"covered_{kind}"] == 1
    ended = [agreement(1, 7, end_date=BEFORE)]
    assert only(segments_on(D, [account(1)], coverage, ended))[f"covered_{kind}"] == 0
    of_another_partner = [agreement(1, 8)]
    assert only(segments_on(D, [account(1)], coverage, of_another_partner))[f"covered_{kind}"] == 0


def test_it_honours_agreement_region_and_vertical_scope_with_empty_meaning_all() -> None:
    accounts = [account(1, region="R1", vertical="V1")]
    coverage = [assignment(1, "partner", partner_id=7)]

    def covered(regions: list[str], verticals: list[str]) -> int:
        row = only(
            segments_on(
                D,
                accounts,
                coverage,
                [agreement(1, 7)],
                [(1, r) for r in regions],
                [(1, v) for v in verticals],
            )
        )
        return row["covered_partner"]

    assert covered([], []) == 1
    assert covered(["R1"], []) == 1
    assert covered(["R2"], []) == 0
    assert covered([], ["V1"]) == 1
    assert covered([], ["V2"]) == 0
    assert covered(["R1", "R2"], ["V2", "V1"]) == 1
    assert covered(["R1"], ["V2"]) == 0


def test_it_requires_one_agreement_to_grant_both_region_and_vertical() -> None:
    # Agreement 1 grants the region only, agreement 2 the vertical only: neither grants both.
    row = only(
        segments_on(
            D,
            [account(1, region="R1", vertical="V1")],
            [assignment(1, "partner", partner_id=7)],
            [agreement(1, 7), agreement(2, 7)],
            regions=[(1, "R1"), (2, "R2")],
            verticals=[(1, "V2"), (2, "V1")],
        )
    )
    assert row["covered_partner"] == 0


def test_it_counts_two_owners_of_one_kind_once_and_overlap_only_across_kinds() -> None:
    accounts = [account(1), account(2), account(3)]
    coverage = [
        assignment(1, "direct"),
        assignment(1, "direct"),  # a second rep: still one covered account, no overlap
        assignment(2, "direct"),
        assignment(2, "online"),  # two kinds: overlap
        assignment(3, "partner", partner_id=7),
        assignment(3, "partner", partner_id=8),
    ]
    row = only(segments_on(D, accounts, coverage, [agreement(1, 7), agreement(2, 8)]))
    assert row["covered_direct"] == 2
    assert row["covered_partner"] == 1
    assert row["covered_any"] == 3
    assert row["overlap"] == 1


def test_it_counts_conversions_by_d_and_by_winning_kind() -> None:
    accounts = [
        account(1, converted_on=D, converted_via="direct"),
        account(2, converted_on=AFTER, converted_via="direct"),
        account(3, converted_on=BEFORE, converted_via="partner"),
        account(4, converted_on=BEFORE, converted_via="online", archived_on=D),  # out of market
    ]
    row = only(segments_on(D, accounts))
    assert row["accounts"] == 3
    assert row["converted"] == 2
    assert (row["converted_direct"], row["converted_partner"], row["converted_online"]) == (1, 1, 0)
    assert row["penetration"] == pytest.approx(2 / 3)


def test_it_gives_null_ratios_for_an_empty_segment() -> None:
    # The segment exists (it holds an account) but nothing in it is in the market on d.
    row = only(segments_on(D, [account(1, entered_on=AFTER)], [assignment(1, "direct")]))
    assert row["accounts"] == 0
    assert row["covered_direct"] == 0
    for column in metrics.RATIO_COLUMNS:
        assert pd.isna(row[column])


def test_it_computes_the_ratios_from_the_counts() -> None:
    accounts = [account(i) for i in range(1, 5)]
    coverage = [assignment(1, "direct"), assignment(2, "direct"), assignment(2, "online")]
    row = only(segments_on(D, accounts, coverage, [], []))
    assert row["coverage"] == pytest.approx(0.5)
    assert row["coverage_direct"] == pytest.approx(0.5)
    assert row["coverage_online"] == pytest.approx(0.25)
    assert row["coverage_partner"] == 0
    assert row["penetration"] == 0
    assert row["white_space"] == 2


def rollup_of(figures: metrics.WeekFigures, **keys: str) -> dict[str, Any]:
    """The week's rollup row of the given region, vertical and size band ("" = any), with its
    ratios."""
    rollups = metrics.with_ratios(figures.segment_rollups)
    wanted = {key: keys.get(key, "") for key in metrics.SEGMENT_KEYS}
    rows = rollups[(rollups[list(wanted)] == pd.Series(wanted)).all(axis=1)]
    return only(rows)


def test_it_rolls_up_by_summing_counts_then_dividing() -> None:
    accounts = [account(1, region="R1")] + [account(i, region="R2") for i in range(2, 5)]
    accounts += [account(9, region="R2", vertical="V2", size_band="enterprise", entered_on=AFTER)]
    coverage = [assignment(1, "direct")]
    figures = market(accounts, coverage).week_figures(D)
    assert len(figures.segments) == 3

    total = rollup_of(figures)
    assert total["accounts"] == 4
    assert total["covered_direct"] == 1
    # Summing then dividing gives 1/4; averaging the segment ratios would give (1 + 0) / 2.
    assert total["coverage"] == pytest.approx(0.25)

    assert rollup_of(figures, region="R1")["accounts"] == 1
    assert rollup_of(figures, region="R2")["accounts"] == 3
    assert rollup_of(figures, region="R2")["coverage"] == 0
    enterprise = rollup_of(figures, size_band="enterprise")
    assert enterprise["accounts"] == 0
    assert pd.isna(enterprise["coverage"])
    assert rollup_of(figures, region="R2", vertical="V1", size_band="smb")["accounts"] == 3
    # One row per combination that occurs: 1 total, 2 + 2 + 2 single keys, 3 + 2 + 3 pairs, 3.
    assert len(figures.segment_rollups) == 1 + 6 + 8 + 3


def test_it_rolls_up_by_channel() -> None:
    accounts = [account(1, converted_on=BEFORE, converted_via="online"), account(2)]
    figures = market(accounts, [assignment(1, "online"), assignment(2, "direct")]).week_figures(D)
    total = rollup_of(figures)

    def channel(kind: str) -> tuple[int, ...]:
        return tuple(total[column] for column in metrics.channel_columns(kind))

    assert channel("online") == (2, 1, 1)  # accounts, covered, won by online
    assert metrics.ratio(channel("online")[2], channel("online")[0]) == pytest.approx(0.5)
    assert channel("partner") == (2, 0, 0)


def test_it_gives_no_ratio_without_accounts_and_no_rollups_without_segments() -> None:
    assert metrics.ratio(0, 0) is None
    assert metrics.ratio(3, 4) == 0.75
    empty = pd.DataFrame(columns=[*metrics.SEGMENT_KEYS, *metrics.COUNT_COLUMNS])
    assert metrics.segment_rollups(empty).empty


def test_it_computes_partner_figures_over_the_trailing_90_days() -> None:
    accounts = [
        account(1, converted_on=BEFORE, converted_via="partner"),
        account(2),
        account(3, archived_on=D),  # out of market: not counted for the partner
    ]
    coverage = [
        assignment(1, "partner", partner_id=7),
        assignment(2, "partner", partner_id=7),
        assignment(2, "partner", partner_id=7, start_date=date(2025, 6, 1)),
        assignment(3, "partner", partner_id=7),
        assignment(1, "partner", partner_id=8),  # partner 8 has no agreement in force
    ]
    agreements = [agreement(1, 7), agreement(2, 7, end_date=D), agreement(3, 8, end_date=BEFORE)]

    def entry(created_on: date, satisfaction: int, nps: int | None) -> dict[str, Any]:
        return {
            "partner_id": 7,
            "channel_kind": "partner",
            "created_on": created_on,
            "category": "product",
            "satisfaction": satisfaction,
            "nps": nps,
        }

    feedback = [
        entry(D, 5, 10),
        entry(D - timedelta(days=89), 2, 3),
        entry(D - timedelta(days=45), 5, 8),
        entry(D - timedelta(days=10), 4, None),
        entry(D - timedelta(days=90), 1, 0),
        entry(AFTER, 1, 0),
    ]
    partners = [
        {"partner_id": 8, "external_id": "P-B", "name": "B", "channel_kind": "partner"},
        {"partner_id": 7, "external_id": "P-A", "name": "A", "channel_kind": "partner"},
    ]
    figures = (
        market(accounts, coverage, agreements, [], [], feedback, partners).week_figures(D).partners
    )
    assert figures["external_id"].tolist() == ["P-A", "P-B"]
    a, b = figures.iloc[0].to_dict(), figures.iloc[1].to_dict()
    assert (a["covered_accounts"], a["converted_accounts"], a["agreements_in_force"]) == (2, 1, 2)
    assert a["feedback_count"] == 4
    assert a["satisfaction_mean"] == pytest.approx(4.0)
    # Three scores in the window: one promoter (10), one passive (8), one detractor (3).
    assert a["nps"] == pytest.approx(0.0)
    assert [a[column] for column in metrics.NPS_COUNT_COLUMNS] == [3, 1, 1]
    assert (b["covered_accounts"], b["agreements_in_force"], b["feedback_count"]) == (0, 0, 0)
    assert [b[column] for column in metrics.NPS_COUNT_COLUMNS] == [0, 0, 0]
    assert pd.isna(b["satisfaction_mean"]) and pd.isna(b["nps"])


def test_it_scores_nps_as_promoters_minus_detractors() -> None:
    feedback = frame(
        [{"partner_id": 1, "created_on": D, "satisfaction": 3, "nps": s} for s in (9, 10, 9, 6)],
        ["partner_id", "created_on", "satisfaction", "nps"],
    )
    partners = frame(
        [{"partner_id": 1, "external_id": "P", "name": "P", "channel_kind": "partner"}],
        ["partner_id", "external_id", "name", "channel_kind"],
    )
    coverage_counts = pd.DataFrame(columns=["partner_id", "covered_accounts", "converted_accounts"])
    figures = metrics.partner_figures(
        partners, coverage_counts, frame([], AGREEMENT_COLUMNS), feedback, D
    )
    assert figures.loc[0, "agreements_in_force"] == 0
    assert figures.loc[0, "nps"] == pytest.approx(50.0)
    assert metrics.nps_from_counts(
        *(figures.loc[0, column] for column in metrics.NPS_COUNT_COLUMNS)
    ) == pytest.approx(50.0)


def test_feedback_rollups_count_the_days_of_the_week_by_category_and_kind() -> None:
    monday = D - timedelta(days=6)

    def entry(created_on: date, kind: str, category: str, satisfaction: int) -> dict[str, Any]:
        return {
            "partner_id": 1 if kind == "partner" else 2,
            "channel_kind": kind,
            "created_on": created_on,
            "category": category,
            "satisfaction": satisfaction,
            "nps": None,
        }

    feedback = frame(
        [
            entry(monday, "partner", "product", 5),  # the first day: in
            entry(D, "partner", "product", 2),  # the last day: in
            entry(D, "distribution", "product", 4),
            entry(BEFORE, "distribution", "support", 3),
            entry(monday - timedelta(days=1), "partner", "product", 1),  # the week before: out
            entry(AFTER, "partner", "support", 1),  # after the as-of date: out
        ],
        ["partner_id", "channel_kind", "created_on", "category", "satisfaction", "nps"],
    )
    rollups = metrics.feedback_rollups(feedback, monday, D)
    assert list(rollups.itertuples(index=False, name=None)) == [
        ("", "product", 3, 11),
        ("", "support", 1, 3),
        ("distribution", "product", 1, 4),
        ("distribution", "support", 1, 3),
        ("partner", "product", 2, 7),
    ]
    assert list(rollups.columns) == metrics.FEEDBACK_ROLLUP_COLUMNS
    assert metrics.feedback_rollups(feedback, AFTER + timedelta(days=1), AFTER).empty


@pytest.mark.parametrize("ids", [[5, 3, 4, 6], [10**9, 7, 5 * 10**6, 12]])
def test_accounts_find_each_row_by_id_with_dense_or_sparse_ids(ids: list[int]) -> None:
    accounts = metrics.Accounts(
        account_id=ids, region=["R1"] * 4, vertical=["V1"] * 4, size_band=["smb"] * 4
    )
    found = accounts.positions(pd.Series([ids[2], 999, ids[0], -4, ids[3]]))
    assert found.tolist() == [2, -1, 0, -1, 3]


@pytest.mark.parametrize("space", [8, 10**9])
def test_keys_are_counted_alike_in_bins_or_by_hashing(space: int) -> None:
    present, counts = metrics._counted(np.array([7, 3, 7, 0, 3, 7]), space)
    assert dict(zip(present.tolist(), counts.tolist(), strict=True)) == {0: 1, 3: 2, 7: 3}
