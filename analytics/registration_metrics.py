"""Rule 18 (docs/metrics.md): a week's deal registrations, as pure functions over frames.

Input: one row per registration that was submitted, decided or won in or around the week
(`REGISTRATION_FRAME_COLUMNS`, from `analytics.registration_selectors`). Output: the week's
rollup rows (`REGISTRATION_ROLLUP_COLUMNS`), one for every region/vertical/size-band/channel-kind
filter, "" matching any, that has registrations in the week, and always the row of all.
"""

from __future__ import annotations

from datetime import date
from itertools import product

import numpy as np
import pandas as pd

REGISTRATION_KEYS: list[str] = ["region", "vertical", "size_band", "channel_kind"]
REGISTRATION_FRAME_COLUMNS: list[str] = [
    *REGISTRATION_KEYS,
    "submitted_on",
    "decided_on",
    "decision_hours",
    "approved",
    "rejected",
    "auto_approved",
    "won_on",
    "arrival_conflicts",
]
REGISTRATION_COUNT_COLUMNS: list[str] = [
    "submitted",
    "checked",
    "with_conflicts",
    "approved",
    "rejected",
    "won",
    "decisions_timed",
]
REGISTRATION_ROLLUP_COLUMNS: list[str] = [
    *REGISTRATION_KEYS,
    *REGISTRATION_COUNT_COLUMNS,
    "decision_hours_median",
]


def _within(days: pd.Series, first: date, last: date) -> np.ndarray:
    """Whether each day (a date or None) falls from `first` to `last`, both included."""
    stamps = pd.to_datetime(days, errors="coerce")
    inside = (stamps >= pd.Timestamp(first)) & (stamps <= pd.Timestamp(last))
    return np.asarray(inside.fillna(False), dtype=bool)


def registration_week(registrations: pd.DataFrame, first: date, d: date) -> pd.DataFrame:
    """Rule 18 for each registration: what it counts for in the week from `first` (its Monday)
    to `d` (its as-of day), as 0/1 columns `REGISTRATION_COUNT_COLUMNS` beside its keys, and
    its hours to a manager's decision when it was decided in the week (else NaN)."""
    submitted = _within(registrations["submitted_on"], first, d)
    decided = _within(registrations["decided_on"], first, d)
    approved = np.asarray(registrations["approved"], dtype=bool)
    rejected = np.asarray(registrations["rejected"], dtype=bool)
    automatic = np.asarray(registrations["auto_approved"], dtype=bool)
    arrival = registrations["arrival_conflicts"]
    checked = submitted & np.asarray(arrival.notna(), dtype=bool)
    conflicting = checked & np.asarray(arrival.fillna("").astype(str).str.strip() != "")
    timed = decided & (approved | rejected) & ~automatic
    hours = np.where(timed, registrations["decision_hours"].astype("float64"), np.nan)
    return pd.DataFrame(
        {
            **{key: registrations[key].astype(object).fillna("") for key in REGISTRATION_KEYS},
            "submitted": submitted,
            "checked": checked,
            "with_conflicts": conflicting,
            "approved": decided & approved,
            "rejected": decided & rejected & ~approved,
            "won": _within(registrations["won_on"], first, d),
            "decisions_timed": timed,
            "decision_hours": hours,
        }
    ).astype(dict.fromkeys(REGISTRATION_COUNT_COLUMNS, "int64"))


def registration_rollups(registrations: pd.DataFrame, first: date, d: date) -> pd.DataFrame:
    """Rule 18's rollups of the week from `first` to `d`: per filter of region, vertical, size
    band and channel kind ("" for any), the counts summed and the median hours to a manager's
    decision over that filter's registrations (NaN without any). Rows whose counts are all 0
    are left out, except the row of all registrations, which is always there. Sorted by keys.

    Each registration is repeated once per filter shape (each key kept or blanked), so one
    grouping gives every filter's sums and medians."""
    if registrations.empty:  # no registration at all (a market without them): skip the grouping
        return _sorted_rollups(_row_of_all())
    week = registration_week(registrations, first, d)
    counts_something = week[REGISTRATION_COUNT_COLUMNS].to_numpy().any(axis=1)
    counted = week.loc[pd.Series(counts_something, index=week.index, dtype=bool)]
    shapes = list(product((False, True), repeat=len(REGISTRATION_KEYS)))
    blank = np.full(len(counted), "", dtype=object)
    expanded = pd.DataFrame(
        {
            **{
                key: np.concatenate(
                    [counted[key].to_numpy(dtype=object) if shape[i] else blank for shape in shapes]
                )
                for i, key in enumerate(REGISTRATION_KEYS)
            },
            **{
                column: np.tile(counted[column].to_numpy(dtype="int64"), len(shapes))
                for column in REGISTRATION_COUNT_COLUMNS
            },
            "decision_hours": np.tile(
                counted["decision_hours"].to_numpy(dtype="float64"), len(shapes)
            ),
        }
    )
    grouped = expanded.groupby(REGISTRATION_KEYS, sort=True)
    rollups = grouped[REGISTRATION_COUNT_COLUMNS].sum()
    rollups["decision_hours_median"] = grouped["decision_hours"].median()
    rollups = rollups.reset_index()
    if rollups.empty:  # no registration this week
        rollups = _row_of_all()
    return _sorted_rollups(rollups)


def _row_of_all() -> pd.DataFrame:
    """The rollups of a week without registrations: the row of all, with zeros."""
    rollups = pd.DataFrame(
        [
            {
                **dict.fromkeys(REGISTRATION_KEYS, ""),
                **dict.fromkeys(REGISTRATION_COUNT_COLUMNS, 0),
            }
        ]
    )
    rollups["decision_hours_median"] = np.nan
    return rollups


def _sorted_rollups(rollups: pd.DataFrame) -> pd.DataFrame:
    return (
        rollups[REGISTRATION_ROLLUP_COLUMNS]
        .astype(
            {
                **dict.fromkeys(REGISTRATION_KEYS, object),
                **dict.fromkeys(REGISTRATION_COUNT_COLUMNS, "int64"),
                "decision_hours_median": "float64",
            }
        )
        .sort_values(REGISTRATION_KEYS, ignore_index=True)
    )
