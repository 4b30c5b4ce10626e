"""Rule 18, a week's deal registrations, on small hand-built frames: each count's boundary days,
the median over a filter's own registrations, and the share with a conflict on arrival."""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from analytics.registration_metrics import (
    REGISTRATION_FRAME_COLUMNS,
    REGISTRATION_ROLLUP_COLUMNS,
    registration_rollups,
    registration_week,
)

MONDAY, SUNDAY = date(2026, 11, 9), date(2026, 11, 15)  # 2026-W46


def registration(**values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "region": "EAST",
        "vertical": "FIN",
        "size_band": "smb",
        "channel_kind": "partner",
        "submitted_on": None,
        "decided_on": None,
        "decision_hours": np.nan,
        "approved": False,
        "rejected": False,
        "auto_approved": False,
        "won_on": None,
        "arrival_conflicts": None,
    }
    row.update(values)
    return row


def frame(*rows: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=REGISTRATION_FRAME_COLUMNS)


def all_of(rollups: pd.DataFrame, **keys: str) -> dict[str, Any]:
    wanted = {"region": "", "vertical": "", "size_band": "", "channel_kind": "", **keys}
    match = rollups
    for key, value in wanted.items():
        match = match[match[key] == value]
    assert len(match) == 1, wanted
    row = match.iloc[0].to_dict()
    median = row["decision_hours_median"]
    row["decision_hours_median"] = None if pd.isna(median) else median
    return row


def test_it_counts_a_submission_by_its_day_from_the_monday_to_the_as_of_day() -> None:
    rows = frame(
        registration(submitted_on=date(2026, 11, 8), arrival_conflicts=""),  # the Sunday before
        registration(submitted_on=MONDAY, arrival_conflicts=""),
        registration(submitted_on=SUNDAY, arrival_conflicts=" covered_by_other_channel "),
        registration(submitted_on=date(2026, 11, 16), arrival_conflicts=""),  # the next Monday
    )
    week = all_of(registration_rollups(rows, MONDAY, SUNDAY))
    assert (week["submitted"], week["checked"], week["with_conflicts"]) == (2, 2, 1)
    # A provisional run on the Wednesday counts only what happened by then.
    provisional = all_of(registration_rollups(rows, MONDAY, date(2026, 11, 11)))
    assert provisional["submitted"] == 1


def test_approvals_and_rejections_count_in_the_week_they_were_decided() -> None:
    rows = frame(
        # Submitted the week before, approved on the Monday, won since: an approval of this week.
        registration(
            submitted_on=date(2026, 11, 6),
            decided_on=MONDAY,
            decision_hours=72.0,
            approved=True,
            won_on=date(2026, 11, 20),
        ),
        registration(submitted_on=MONDAY, decided_on=SUNDAY, decision_hours=140.0, rejected=True),
        # Approved the week before: not this week's, though protected and won in it.
        registration(
            submitted_on=date(2026, 11, 2),
            decided_on=date(2026, 11, 3),
            decision_hours=20.0,
            approved=True,
            won_on=date(2026, 11, 12),
        ),
        # Withdrawn before any decision: no decision day.
        registration(submitted_on=date(2026, 11, 2)),
    )
    week = all_of(registration_rollups(rows, MONDAY, SUNDAY))
    assert (week["approved"], week["rejected"], week["won"]) == (1, 1, 1)
    assert (week["decisions_timed"], week["decision_hours_median"]) == (2, 106.0)


def test_automatic_approvals_count_as_approved_but_not_in_the_time_to_decision() -> None:
    rows = frame(
        registration(
            submitted_on=MONDAY,
            decided_on=MONDAY,
            decision_hours=0.0,
            approved=True,
            auto_approved=True,
            arrival_conflicts="",
        ),
        registration(
            submitted_on=MONDAY,
            decided_on=date(2026, 11, 10),
            decision_hours=30.0,
            approved=True,
            arrival_conflicts="",
        ),
    )
    week = all_of(registration_rollups(rows, MONDAY, SUNDAY))
    assert (week["approved"], week["decisions_timed"], week["decision_hours_median"]) == (
        2,
        1,
        30.0,
    )


def test_only_registrations_checked_on_arrival_count_in_the_conflict_share() -> None:
    rows = frame(
        registration(submitted_on=MONDAY, arrival_conflicts=" outside_agreement "),
        registration(submitted_on=MONDAY, arrival_conflicts=""),
        registration(submitted_on=MONDAY, arrival_conflicts=None),  # imported already decided
    )
    week = all_of(registration_rollups(rows, MONDAY, SUNDAY))
    assert (week["submitted"], week["checked"], week["with_conflicts"]) == (3, 2, 1)


def test_a_filters_median_is_taken_over_its_own_registrations_not_from_other_medians() -> None:
    decided = {"submitted_on": MONDAY, "decided_on": date(2026, 11, 12), "approved": True}
    rows = frame(
        registration(region="EAST", decision_hours=10.0, **decided),
        registration(region="EAST", decision_hours=20.0, **decided),
        registration(region="EAST", decision_hours=30.0, **decided),
        registration(region="WEST", decision_hours=100.0, **decided),
    )
    rollups = registration_rollups(rows, MONDAY, SUNDAY)
    assert all_of(rollups, region="EAST")["decision_hours_median"] == 20.0
    assert all_of(rollups, region="WEST")["decision_hours_median"] == 100.0
    # Over all four: 25 hours, where the median of the two regions' medians would be 60.
    assert all_of(rollups)["decision_hours_median"] == 25.0
    assert all_of(rollups, region="EAST", channel_kind="partner")["approved"] == 3


def test_each_filter_sums_its_registrations_by_segment_and_channel_kind() -> None:
    rows = frame(
        registration(submitted_on=MONDAY, arrival_conflicts=""),
        registration(submitted_on=MONDAY, channel_kind="distribution", arrival_conflicts=""),
        registration(submitted_on=MONDAY, vertical="RET", size_band="enterprise"),
    )
    rollups = registration_rollups(rows, MONDAY, SUNDAY)
    assert list(rollups.columns) == REGISTRATION_ROLLUP_COLUMNS
    assert all_of(rollups)["submitted"] == 3
    assert all_of(rollups, channel_kind="partner")["submitted"] == 2
    assert all_of(rollups, channel_kind="distribution")["submitted"] == 1
    assert all_of(rollups, vertical="FIN")["submitted"] == 2
    assert all_of(rollups, vertical="FIN", channel_kind="partner")["submitted"] == 1
    assert all_of(rollups, region="EAST", vertical="RET", size_band="enterprise")["submitted"] == 1
    # Every combination of the four keys that has registrations, and nothing else.
    keys = rollups[["region", "vertical", "size_band", "channel_kind"]]
    assert not keys.duplicated().any()
    assert len(rollups) == len(
        {
            tuple(value if keep else "" for value, keep in zip(row, mask, strict=True))
            for row in [
                ("EAST", "FIN", "smb", "partner"),
                ("EAST", "FIN", "smb", "distribution"),
                ("EAST", "RET", "enterprise", "partner"),
            ]
            for mask in np.ndindex(2, 2, 2, 2)
        }
    )


def test_a_week_without_registrations_still_has_its_row_of_zeros() -> None:
    nothing = registration_rollups(frame(), MONDAY, SUNDAY)
    assert len(nothing) == 1
    week = all_of(nothing)
    assert [week[column] for column in REGISTRATION_ROLLUP_COLUMNS[4:-1]] == [0] * 7
    assert week["decision_hours_median"] is None
    # Registrations read around the week but counting in none of its figures add no row.
    elsewhere = frame(registration(submitted_on=date(2026, 11, 2), decided_on=date(2026, 11, 3)))
    assert len(registration_rollups(elsewhere, MONDAY, SUNDAY)) == 1


def test_each_registration_says_what_it_counts_for() -> None:
    counted = registration_week(
        frame(
            registration(
                submitted_on=MONDAY,
                decided_on=SUNDAY,
                decision_hours=12.5,
                rejected=True,
                arrival_conflicts=" possible_duplicate ",
            )
        ),
        MONDAY,
        SUNDAY,
    )
    row = counted.iloc[0]
    assert (row["submitted"], row["checked"], row["with_conflicts"], row["rejected"]) == (
        1,
        1,
        1,
        1,
    )
    assert (row["approved"], row["won"], row["decisions_timed"], row["decision_hours"]) == (
        0,
        0,
        1,
        12.5,
    )


def test_no_registrations_at_all_give_the_row_of_a_week_without_any() -> None:
    outside = frame(registration(submitted_on=date(2026, 11, 16), arrival_conflicts=""))
    none = registration_rollups(frame(), MONDAY, SUNDAY)
    pd.testing.assert_frame_equal(none, registration_rollups(outside, MONDAY, SUNDAY))
    assert list(none.columns) == REGISTRATION_ROLLUP_COLUMNS and len(none) == 1
