"""The metrics of docs/metrics.md as pure functions: arrays and frames in, frames out.

Nothing here touches the ORM: selectors read, these functions compute, services write. Every
function takes the as-of day `d` explicitly. The date rules themselves (rules 1, 2, 3a and the
conversion test of rule 4) are stated once in the apps' `rules.py`; here they are applied to
arrays with `rule.mask(columns, d)`.

One day's computation, the same for a single week read from the database and for a backfill's
market held in memory:

1. `Accounts`: the accounts indexed once: each account's row, its segment as codes, and a
   lookup from id to row.
2. `DayStates`: per account, whether it is in the market on `d` (rule 1) and which kind won it
   by `d` (rule 4); `Assignments`: the coverage rows as account rows, kind codes and partner
   codes; `agreements_in_force` (rule 2) and `grant_table` (rule 3b).
3. `Accounts.count`: the mask groups (rule 4's counts before summing) and each partner's covered
   and converted accounts (rule 6), in a few vectorised passes.
4. `week_figures`: the segment counts and ratios (rule 4), the partner figures (rule 6) and the
   rollups (rules 5, 7, 8) that a week's snapshot stores.

The hinge between accounts and counts is the *mask groups* frame: one row per (`region,
vertical, size_band, in_market, mask, converted_via`) with `n` accounts, where `mask` is the bit
set of the kinds actively covering the account. Region splits of a week add such frames up.

Frames and their columns (dates are `datetime64` or `date` objects, missing ones null):

- accounts: `account_id, region, vertical, size_band, entered_on, archived_on, converted_on,
  converted_via` (`converted_via` is "" when not converted)
- coverage: `account_id, kind, partner_id, start_date, end_date` (`partner_id` null for direct
  and online), optionally `rep_id` (0 or null when none) for the partner programme's counts
- agreements: `agreement_id, partner_id, status, signed_on, start_date, end_date,
  terminated_on`
- agreement_regions / agreement_verticals: `agreement_id, region` / `agreement_id, vertical`
  (an agreement with no rows grants all)
- feedback: `partner_id, channel_kind, created_on, category, satisfaction, nps` (`nps` may be
  null)
- partners: `partner_id, external_id, name, channel_kind`

Regions and verticals may be ids or codes, as long as accounts and agreement scopes agree.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from itertools import combinations
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from analytics.programme import window_start, year_start
from channels.rules import COVERAGE_RUNNING
from crm.rules import CONVERTED, IN_MARKET, DateRule
from partners.rules import AGREEMENT_IN_FORCE

KINDS: tuple[str, ...] = ("direct", "distribution", "partner", "online")
PARTNER_KINDS: tuple[str, ...] = ("distribution", "partner")
KIND_BITS: dict[str, int] = {kind: 1 << position for position, kind in enumerate(KINDS)}
SEGMENT_KEYS: list[str] = ["region", "vertical", "size_band"]
MASK_GROUP_COLUMNS: list[str] = [*SEGMENT_KEYS, "in_market", "mask", "converted_via", "n"]

COUNT_COLUMNS: list[str] = [
    "accounts",
    *(f"covered_{kind}" for kind in KINDS),
    "covered_any",
    "overlap",
    "converted",
    *(f"converted_{kind}" for kind in KINDS),
    "white_space",
]
RATIO_COLUMNS: list[str] = ["coverage", *(f"coverage_{kind}" for kind in KINDS), "penetration"]
# The count each ratio divides by `accounts` (rule 4).
RATIO_COUNTS: dict[str, str] = {
    "coverage": "covered_any",
    **{f"coverage_{kind}": f"covered_{kind}" for kind in KINDS},
    "penetration": "converted",
}
ROLLUP_DIMENSIONS: dict[str, list[str]] = {
    "segment": SEGMENT_KEYS,
    "region": ["region"],
    "vertical": ["vertical"],
    "size_band": ["size_band"],
    "total": [],
}
CHANNEL_COLUMNS: list[str] = [
    "channel",
    "accounts",
    "covered",
    "converted",
    "coverage",
    "penetration",
]
# Per partner and in the partner rollups: the feedback of the 90-day window with an NPS score,
# and of those the promoters (9-10) and the detractors (0-6).
NPS_COUNT_COLUMNS: list[str] = ["nps_responses", "nps_promoters", "nps_detractors"]
PARTNER_COLUMNS: list[str] = [
    "partner_id",
    "external_id",
    "name",
    "channel_kind",
    "covered_accounts",
    "converted_accounts",
    "agreements_in_force",
    "feedback_count",
    "satisfaction_mean",
    "nps",
    *NPS_COUNT_COLUMNS,
]
# Per partner: in-market accounts it actively covers, and of those the converted ones (rule 6).
PARTNER_COVERAGE_COLUMNS: list[str] = ["partner_id", "covered_accounts", "converted_accounts"]
AGREEMENT_COLUMNS: list[str] = ["agreement_id", "partner_id", *AGREEMENT_IN_FORCE.fields]
FEEDBACK_WINDOW_DAYS = 90


def _day(d: date) -> pd.Timestamp:
    return pd.Timestamp(d)


def _dates(column: pd.Series) -> pd.Series:
    return pd.to_datetime(column)


def _rule_columns(rule: DateRule, frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The columns `rule.mask` reads from `frame`: dates as `datetime64[D]` (NaT when missing),
    the rest as they are."""
    return {
        field: (
            frame[field].to_numpy(dtype=object)
            if field in rule.value_fields
            else pd.to_datetime(frame[field]).to_numpy(dtype="datetime64[D]")
        )
        for field in rule.fields
    }


def iso_week_as_of(week: str) -> date:
    """The as-of date of an ISO week such as "2026-W46": the Sunday that closes it (rule 0).

    Raises ValueError when `week` is not of the form YYYY-Www or names no such week.
    """
    try:
        year_text, week_text = week.split("-W")
        if len(year_text) != 4 or len(week_text) != 2:
            raise ValueError
        return date.fromisocalendar(int(year_text), int(week_text), 7)
    except ValueError:
        raise ValueError(f"{week!r} is not an ISO week like 2026-W46") from None


def iso_week_of(d: date) -> str:
    """The ISO week ("2026-W46") that contains `d`."""
    year, week, _ = d.isocalendar()
    return f"{year:04d}-W{week:02d}"


def iso_weeks_between(first: str, last: str) -> list[str]:
    """Every ISO week from `first` to `last` inclusive, in order; empty when `last` < `first`.

    Raises ValueError on a malformed week.
    """
    day, end = iso_week_as_of(first), iso_week_as_of(last)
    weeks = []
    while day <= end:
        weeks.append(iso_week_of(day))
        day += timedelta(days=7)
    return weeks


def ratio(count: float, accounts: float) -> float | None:
    """Rules 4 and 5: a count (or a sum) divided by the number it is taken over, or None, no
    value, when that number is 0 (never 0, never an error)."""
    return count / accounts if accounts else None


def with_ratios(counts: pd.DataFrame) -> pd.DataFrame:
    """Rule 4's ratios: `RATIO_COLUMNS` added to a frame of counts, each its count divided by
    `accounts` (`ratio`; NaN where there are no accounts). Output: a copy of `counts` with the
    ratios appended."""
    frame = counts.copy()
    if len(frame) and frame[["accounts", *RATIO_COUNTS.values()]].abs().max().max() >= 2**53:
        accounts_list = frame["accounts"].to_numpy().tolist()
        for column, count in RATIO_COUNTS.items():
            values = zip(frame[count].to_numpy().tolist(), accounts_list, strict=True)
            frame[column] = np.array([ratio(n, total) for n, total in values], dtype="float64")
        return frame
    accounts = frame["accounts"].to_numpy(dtype="float64")
    for column, count in RATIO_COUNTS.items():
        # What `ratio` gives, for every row at once: below 2**53 both counts are exact as
        # float64, and one division of them rounds the quotient as Python's does.
        with np.errstate(divide="ignore", invalid="ignore"):
            quotient = frame[count].to_numpy(dtype="float64") / accounts
        frame[column] = np.where(accounts != 0, quotient, np.nan).astype("float64")
    return frame


def channel_columns(kind: str) -> tuple[str, str, str]:
    """Rule 5 by channel: the counts (`COUNT_COLUMNS`) of a selection that a channel kind's row
    takes: every in-market account, the accounts the kind covers, and those it won. Its ratios
    are `ratio(covered, accounts)` and `ratio(converted, accounts)`."""
    return "accounts", f"covered_{kind}", f"converted_{kind}"


def agreements_in_force(agreements: pd.DataFrame, d: date) -> pd.DataFrame:
    """Rule 2: the rows of an agreements frame (`AGREEMENT_COLUMNS`) in force on `d`."""
    if agreements.empty:
        return agreements
    return agreements[AGREEMENT_IN_FORCE.mask(_rule_columns(AGREEMENT_IN_FORCE, agreements), d)]


def _grants(
    agreement_ids: np.ndarray, scope: pd.DataFrame, column: str, values: pd.Index
) -> np.ndarray:
    """Per agreement (rows, as `agreement_ids`) and value (columns, as `values`): whether the
    agreement grants the value: it lists it, or it lists none (rule 3b)."""
    granted = np.zeros((len(agreement_ids), len(values)), dtype=bool)
    row = pd.Index(agreement_ids).get_indexer(pd.Index(scope["agreement_id"]))
    value = values.get_indexer(pd.Index(scope[column]))
    listed = row >= 0
    known = listed & (value >= 0)
    granted[row[known], value[known]] = True
    lists_none = np.ones(len(agreement_ids), dtype=bool)
    lists_none[row[listed]] = False
    granted[lists_none] = True
    return granted


def grant_table(
    *,
    in_force: pd.DataFrame,
    agreement_regions: pd.DataFrame,
    agreement_verticals: pd.DataFrame,
    partners: pd.Index,
    regions: pd.Index,
    verticals: pd.Index,
) -> np.ndarray:
    """Rule 3b as a table: `granted[p, r, v]` is true when partner `partners[p]` has an
    agreement in force (`in_force`, rows of `agreements_in_force`) that grants both region
    `regions[r]` and vertical `verticals[v]`; an agreement listing no regions grants every
    region, likewise verticals, and one agreement must grant both.

    Output: a boolean array of shape (len(partners), len(regions), len(verticals)).
    """
    table = np.zeros((len(partners), len(regions), len(verticals)), dtype=bool)
    partner = partners.get_indexer(pd.Index(in_force["partner_id"]))
    agreement_ids = in_force["agreement_id"].to_numpy()[partner >= 0]
    partner = partner[partner >= 0]
    if len(agreement_ids) and table.size:
        by_region = _grants(agreement_ids, agreement_regions, "region", regions)
        by_vertical = _grants(agreement_ids, agreement_verticals, "vertical", verticals)
        _grant_cells(table, partner, by_region, by_vertical)
    return table


def _grant_cells(
    table: np.ndarray, partner: np.ndarray, by_region: np.ndarray, by_vertical: np.ndarray
) -> None:
    """Set `grant_table`'s `table` from its agreements: each agreement's partner (an index into
    the partners) and the regions and verticals it grants. Each partner's agreements are put
    together and their cells or-ed eight at a time: a cell is a byte holding 0 or 1, so or-ing
    them as 64-bit words ors each (2 ms at 10,000 partners, against 40-60 ms for
    `logical_or.at` over the cells)."""
    cells = (by_region[:, :, None] & by_vertical[:, None, :]).reshape(len(partner), -1)
    order = np.argsort(partner, kind="stable")
    partner = partner[order]
    starts = np.flatnonzero(np.r_[True, partner[1:] != partner[:-1]])
    words = np.zeros((len(partner), -(-cells.shape[1] // 8) * 8), dtype=bool)
    words[:, : cells.shape[1]] = cells[order]
    merged = np.bitwise_or.reduceat(words.view(np.uint64), starts, axis=0).view(bool)
    table[partner[starts]] = merged[:, : cells.shape[1]].reshape(-1, *table.shape[1:])


def segment_counts(groups: pd.DataFrame) -> pd.DataFrame:
    """Rule 4: the per-segment counts from a mask groups frame, without ratios.

    Output: one row per segment present in `groups`, sorted by segment, with `SEGMENT_KEYS`
    then `COUNT_COLUMNS` as int64. Only in-market rows add to the counts.
    """
    n = np.where(groups["in_market"].to_numpy(dtype=bool), groups["n"].to_numpy(dtype="int64"), 0)
    mask = groups["mask"].to_numpy(dtype="int64")
    won = pd.Index(["", *KINDS]).get_indexer(pd.Index(groups["converted_via"].fillna("")))
    if (won < 0).any():
        raise ValueError("a mask group names a winning kind that is not a channel kind")
    factorized = [pd.factorize(groups[key].to_numpy(), sort=True) for key in SEGMENT_KEYS]
    shape = tuple(len(unique) for _, unique in factorized)
    segment = np.ravel_multi_index([codes for codes, _ in factorized], shape)
    present, segment = np.unique(segment, return_inverse=True)
    cells = np.zeros((len(present), 16, len(KINDS) + 1), dtype="int64")
    np.add.at(cells, (segment.reshape(-1), mask, won), n)
    positions = np.unravel_index(present, shape)
    counts = pd.DataFrame(
        {
            key: np.asarray(unique)[at]
            for key, (_, unique), at in zip(SEGMENT_KEYS, factorized, positions, strict=True)
        }
    )
    matrix = _count_matrix(cells)
    for position, column in enumerate(COUNT_COLUMNS):
        counts[column] = matrix[:, position]
    return counts[[*SEGMENT_KEYS, *COUNT_COLUMNS]]


def _group_sums(
    keys: Sequence[np.ndarray], values: np.ndarray
) -> tuple[list[np.ndarray], np.ndarray]:
    """The rows of `values` (two-dimensional) summed per distinct combination of `keys` (one
    array per key, a value per row), as a grouping sorted by the keys would give them: the
    combinations in sorted order, one array per key, and their sums (int64)."""
    if not keys:
        return [], values.astype("int64").sum(axis=0, keepdims=True)
    factorized = [pd.factorize(key, sort=True) for key in keys]
    uniques = [np.asarray(unique) for _, unique in factorized]
    shape = tuple(len(unique) for unique in uniques)
    if not len(values):
        return [unique[:0] for unique in uniques], np.zeros((0, values.shape[1]), dtype="int64")
    group = np.ravel_multi_index([codes for codes, _ in factorized], shape)
    present = np.flatnonzero(np.bincount(group, minlength=int(np.prod(shape))))
    # Sorted by group, each group's rows are one run that reduceat adds up exactly (int64).
    order = np.argsort(group, kind="stable")
    starts = np.searchsorted(group[order], present)
    sums = np.add.reduceat(values.astype("int64")[order], starts, axis=0)
    positions = np.unravel_index(present, shape)
    return [unique[at] for unique, at in zip(uniques, positions, strict=True)], sums


def segment_rollups(counts: pd.DataFrame) -> pd.DataFrame:
    """Rule 5 for every filter at once: the counts summed over the segments matching each
    combination of region, vertical and size band that occurs, "" standing for any.

    Input: segment counts (`SEGMENT_KEYS` + `COUNT_COLUMNS`). Output: the same columns, one row
    per combination (the segments themselves included), none at all when `counts` is empty.
    """
    if counts.empty:
        return pd.DataFrame(columns=[*SEGMENT_KEYS, *COUNT_COLUMNS])
    values = counts[COUNT_COLUMNS].to_numpy(dtype="int64")
    key_values = {key: counts[key].to_numpy() for key in SEGMENT_KEYS}
    parts: dict[str, list[np.ndarray]] = {column: [] for column in [*SEGMENT_KEYS, *COUNT_COLUMNS]}
    for size in range(len(SEGMENT_KEYS) + 1):
        for keys in combinations(SEGMENT_KEYS, size):
            uniques, sums = _group_sums([key_values[key] for key in keys], values)
            chosen = dict(zip(keys, uniques, strict=True))
            for key in SEGMENT_KEYS:
                parts[key].append(chosen.get(key, np.full(len(sums), "", dtype=object)))
            for position, column in enumerate(COUNT_COLUMNS):
                parts[column].append(sums[:, position])
    return pd.DataFrame(
        {
            column: np.concatenate(pieces).astype(object if column in SEGMENT_KEYS else "int64")
            for column, pieces in parts.items()
        }
    )


PARTNER_ROLLUP_COLUMNS: list[str] = [
    "channel_kind",
    "partners",
    "active_partners",
    "agreements_in_force",
    "feedback_count",
    *NPS_COUNT_COLUMNS,
    "satisfaction_weighted",
]


def _summed_per_kind_and_in_all(frame: pd.DataFrame, by: Sequence[str] = ()) -> pd.DataFrame:
    """`frame`'s other columns summed per `channel_kind` and `by`, after the sums per `by` over
    every kind (channel_kind ""), sorted within each part."""
    keys = list(by)
    by_kind = frame.groupby(["channel_kind", *keys], sort=True).sum().reset_index()
    rest = frame.drop(columns="channel_kind")
    everyone = (
        rest.groupby(keys, sort=True).sum().reset_index() if keys else rest.sum().to_frame().T
    )
    return pd.concat([everyone.assign(channel_kind=""), by_kind], ignore_index=True)


def nps_from_counts(responses: int, promoters: int, detractors: int) -> float | None:
    """Rule 6's NPS from counts: % promoters minus % detractors among the feedback with a score;
    None without any score."""
    if not responses:
        return None
    return 100.0 * (promoters - detractors) / responses


def partner_rollups(figures: pd.DataFrame) -> pd.DataFrame:
    """Rule 7: the per-partner figures summed per channel kind and over all partners ("" kind).

    Input: `PARTNER_COLUMNS` (at least channel_kind, agreements_in_force, feedback_count,
    satisfaction_mean and the three NPS counts). Output: `PARTNER_ROLLUP_COLUMNS`, one row per
    kind present plus the "" row; none when `figures` is empty. `active_partners` counts
    partners with an agreement in force; `satisfaction_weighted` sums satisfaction_mean x
    feedback_count where there is a mean. The NPS of a rollup is exact from its summed counts
    (`nps_from_counts`), which a mean of the partners' NPS would not be.
    """
    if figures.empty:
        return pd.DataFrame(columns=PARTNER_ROLLUP_COLUMNS)
    frame = pd.DataFrame(
        {
            "channel_kind": figures["channel_kind"].astype(object),
            "partners": 1,
            "active_partners": (figures["agreements_in_force"] > 0).astype("int64"),
            "agreements_in_force": figures["agreements_in_force"].astype("int64"),
            "feedback_count": figures["feedback_count"].astype("int64"),
            **{column: figures[column].astype("int64") for column in NPS_COUNT_COLUMNS},
            "satisfaction_weighted": (
                figures["satisfaction_mean"].astype("float64") * figures["feedback_count"]
            ).fillna(0.0),
        }
    )
    rollups = _summed_per_kind_and_in_all(frame)[PARTNER_ROLLUP_COLUMNS]
    counts = PARTNER_ROLLUP_COLUMNS[1:-1]
    return rollups.astype({**dict.fromkeys(counts, "int64"), "satisfaction_weighted": "float64"})


FEEDBACK_ROLLUP_COLUMNS: list[str] = [
    "channel_kind",
    "category",
    "feedback_count",
    "satisfaction_sum",
]


def feedback_rollups(feedback: pd.DataFrame, first: date, d: date) -> pd.DataFrame:
    """Rule 8, a week's feedback by category: the entries created from `first` to `d` (both
    included),
    counted and their satisfaction summed per category and channel kind of their partner, and
    per category over every partner ("" kind). The mean satisfaction of a cell is
    `satisfaction_sum / feedback_count`, and of several cells their sums divided (rule 5).

    Input: feedback (`partner_id, channel_kind, created_on, category, satisfaction`). Output:
    `FEEDBACK_ROLLUP_COLUMNS`, sorted; none when nothing was created in the days.
    """
    created = _dates(feedback["created_on"])
    days = feedback[(created >= _day(first)) & (created <= _day(d))]
    if days.empty:
        return pd.DataFrame(columns=FEEDBACK_ROLLUP_COLUMNS)
    frame = pd.DataFrame(
        {
            "channel_kind": days["channel_kind"].astype(object),
            "category": days["category"].astype(object),
            "feedback_count": 1,
            "satisfaction_sum": days["satisfaction"].astype("int64"),
        }
    )
    rollups = _summed_per_kind_and_in_all(frame, by=["category"])[FEEDBACK_ROLLUP_COLUMNS]
    return rollups.astype({"feedback_count": "int64", "satisfaction_sum": "int64"})


def summed_partner_coverage(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Partner coverage counts (`PARTNER_COVERAGE_COLUMNS`) of parts holding disjoint accounts,
    added up per partner (a week split by region)."""
    coverage = pd.concat(parts, ignore_index=True)
    return coverage.groupby("partner_id", as_index=False, sort=True).sum().astype("int64")


def partner_figures(
    partners: pd.DataFrame,
    coverage_counts: pd.DataFrame,
    in_force: pd.DataFrame,
    feedback: pd.DataFrame,
    d: date,
) -> pd.DataFrame:
    """Rule 6: one row per partner in `partners` with its figures on `d`.

    - `covered_accounts`, `converted_accounts`: from `coverage_counts` (0 when absent)
    - `agreements_in_force`: its rows of `in_force` (the agreements in force on `d`, rule 2)
    - `feedback_count`, `satisfaction_mean`: feedback whose created date lies in the trailing
      90 days, i.e. `d - 89 <= created_on <= d`; the mean is null without feedback
    - `nps`: over the same window and the feedback that has an NPS score, the percentage of
      promoters (9-10) minus the percentage of detractors (0-6), from -100 to 100; null when no
      feedback in the window has a score
    - `nps_responses`, `nps_promoters`, `nps_detractors`: the counts `nps` is computed from

    Output: `PARTNER_COLUMNS`, sorted by `external_id`.
    """
    day = _day(d)
    frame = partners[["partner_id", "external_id", "name", "channel_kind"]].copy()
    frame = frame.merge(coverage_counts, on="partner_id", how="left")

    frame["agreements_in_force"] = frame["partner_id"].map(in_force.groupby("partner_id").size())

    created = _dates(feedback["created_on"])
    window = feedback[
        (created >= day - pd.Timedelta(days=FEEDBACK_WINDOW_DAYS - 1)) & (created <= day)
    ]
    by_partner = window.groupby("partner_id")
    frame["feedback_count"] = frame["partner_id"].map(by_partner.size())
    frame["satisfaction_mean"] = frame["partner_id"].map(
        by_partner["satisfaction"].mean().astype("float64")
    )
    scored = window[window["nps"].notna()]
    score = scored["nps"].astype("float64")
    by_scorer = scored["partner_id"]
    frame["nps_responses"] = frame["partner_id"].map(by_scorer.value_counts())
    frame["nps_promoters"] = frame["partner_id"].map(by_scorer[score >= 9].value_counts())
    frame["nps_detractors"] = frame["partner_id"].map(by_scorer[score <= 6].value_counts())

    for column in (
        "covered_accounts",
        "converted_accounts",
        "agreements_in_force",
        "feedback_count",
        *NPS_COUNT_COLUMNS,
    ):
        frame[column] = frame[column].fillna(0).astype("int64")
    frame["satisfaction_mean"] = frame["satisfaction_mean"].astype("float64")
    scores = frame[NPS_COUNT_COLUMNS].itertuples(index=False, name=None)
    frame["nps"] = np.array([nps_from_counts(*counts) for counts in scores], dtype="float64")
    return frame.sort_values("external_id", kind="stable").reset_index(drop=True)[PARTNER_COLUMNS]


# An id lookup array is used while the ids span at most this many times their number, and a
# bin per key while the key space is at most this many times the keys counted.
DENSE_SPAN_FACTOR = 4


def _counted(keys: np.ndarray, space: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct `keys` (each in `range(space)`) and how often each occurs."""
    if space <= max(DENSE_SPAN_FACTOR * len(keys), 1 << 16):
        counts = np.bincount(keys, minlength=space)
        present = np.flatnonzero(counts)
        return present, counts[present].astype("int64")
    counted = pd.Series(keys).value_counts(sort=False)
    return counted.index.to_numpy(dtype="int64"), counted.to_numpy(dtype="int64")


@dataclass(frozen=True)
class ProgrammeCounts:
    """The partner programme's counts of a day that the week's pass finds on its way
    (`Accounts.programme_counts`): `partners` (`partner_id, conversions, conversions_ytd`) and
    `reps` (`rep_id, covered_accounts, conversions_ytd`); and `feedback`, the feedback frame of
    the 90 days ending on the day as the pass read it (`selectors.feedback_frame`), when it
    did."""

    partners: pd.DataFrame
    reps: pd.DataFrame
    feedback: pd.DataFrame | None = None


@dataclass(frozen=True)
class DayStates:
    """Each account's state on one day, one value per row of an `Accounts`: `in_market` (rule
    1) and `won`, 0 unless the account is in the market and converted by the day (rule 4), else
    1 + the winning kind's index in `KINDS`."""

    in_market: np.ndarray
    won: np.ndarray

    @classmethod
    def from_codes(cls, state: np.ndarray) -> DayStates:
        """From one code per account: 0 out of the market, 1 in it and not converted, 2 + the
        winning kind's index when converted."""
        state = np.asarray(state, dtype="int8")
        return cls(in_market=state > 0, won=np.maximum(state - 1, 0).astype("int8"))


@dataclass(frozen=True)
class Assignments:
    """Coverage assignments, one entry per row: `account`, its account's row in an `Accounts`
    (-1 when the account is not there); `kind`, an index into `KINDS`; `partner`, an index into
    `partners` (the partner ids), -1 for direct and online."""

    account: np.ndarray
    kind: np.ndarray
    partner: np.ndarray
    partners: pd.Index


@dataclass(frozen=True)
class Covering:
    """The coverage rows that count on one day (`Accounts.covering`): `rows`, the assignments
    running on an in-market account; `via_partner`, which of `rows` are of a partner kind;
    `partner_rows`, those partner rows whose cell is granted; and the distinct (partner,
    account) pairs of `partner_rows` (`pair_partner`, an index into the partners;
    `pair_account`, a row of the accounts)."""

    rows: np.ndarray
    via_partner: np.ndarray
    partner_rows: np.ndarray
    pair_partner: np.ndarray
    pair_account: np.ndarray


_VIA_PARTNER = np.array([kind in PARTNER_KINDS for kind in KINDS])


def _factorized(values: Any) -> tuple[np.ndarray, pd.Index]:
    codes, uniques = pd.factorize(values if hasattr(values, "dtype") else np.asarray(values))
    return codes.astype("int32"), pd.Index(uniques)


def kind_codes(kinds: npt.ArrayLike) -> np.ndarray:
    """Each kind's index in `KINDS` (int8)."""
    if isinstance(kinds, pd.Categorical) and list(kinds.categories) == list(KINDS):
        return kinds.codes.astype("int8")
    return pd.Index(KINDS).get_indexer(pd.Index(np.asarray(kinds, dtype=object))).astype("int8")


class Accounts:
    """The accounts of a market (or of some of its regions), indexed once: each account's row,
    its segment as codes, and a lookup from account id to row. Ids must be unique."""

    def __init__(
        self,
        *,
        account_id: npt.ArrayLike,
        region: npt.ArrayLike,
        vertical: npt.ArrayLike,
        size_band: npt.ArrayLike,
    ) -> None:
        ids = np.asarray(account_id, dtype="int64")
        self.size = len(ids)
        self.first_id = int(ids.min()) if self.size else 0
        span = int(ids.max()) - self.first_id + 1 if self.size else 0
        self.lookup: np.ndarray | None = None
        if span <= DENSE_SPAN_FACTOR * self.size:
            # Ids nearly dense (the usual case): one array indexed by id answers each lookup.
            self.lookup = np.full(span, -1, dtype="int32" if self.size < 2**31 else "int64")
            self.lookup[ids - self.first_id] = np.arange(self.size)
        else:
            self.order = np.argsort(ids, kind="stable")
            self.ordered_ids = ids[self.order]
        # Codes of the segment keys (int32 to halve the memory of a million rows).
        self.region, self.regions = _factorized(region)
        self.vertical, self.verticals = _factorized(vertical)
        self.size_band, self.size_bands = _factorized(size_band)

    def positions(self, account_ids: npt.ArrayLike) -> np.ndarray:
        """Each id's row, or -1 when absent."""
        wanted = np.asarray(account_ids, dtype="int64")
        if not self.size:
            return np.full(len(wanted), -1)
        if self.lookup is not None:
            offset = wanted - self.first_id
            inside = (offset >= 0) & (offset < len(self.lookup))
            return np.where(inside, self.lookup[np.where(inside, offset, 0)], -1)
        found = np.minimum(np.searchsorted(self.ordered_ids, wanted), self.size - 1)
        return np.where(self.ordered_ids[found] == wanted, self.order[found], -1)

    def assignments(
        self, *, account_id: npt.ArrayLike, kind: npt.ArrayLike, partner_id: npt.ArrayLike
    ) -> Assignments:
        """Coverage rows (`partner_id` null or 0 for direct and online) as `Assignments`."""
        kinds = kind_codes(kind)
        partner = np.full(len(kinds), -1, dtype="int64")
        via_partner = _VIA_PARTNER[kinds] if len(kinds) else np.zeros(0, dtype=bool)
        ids = pd.Series(partner_id).fillna(0).to_numpy(dtype="int64")
        codes, partners = pd.factorize(ids[via_partner])
        partner[via_partner] = codes
        return Assignments(
            account=self.positions(account_id),
            kind=kinds,
            partner=partner,
            partners=pd.Index(partners),
        )

    def covering(
        self,
        day: DayStates,
        assignments: Assignments,
        granted: np.ndarray,
        *,
        running: np.ndarray | None = None,
    ) -> Covering:
        """The rows of `assignments` that cover their account on the day (rules 3, 3a and 3b),
        found once for `count` and `programme_counts` alike (see their arguments)."""
        rows, via_partner, covering = self._covering(day, assignments, granted, running)
        pairs = pd.unique(
            assignments.partner[covering].astype("int64") * max(self.size, 1)
            + assignments.account[covering]
        )
        pair_partner, pair_account = np.divmod(pairs, max(self.size, 1))
        return Covering(rows, via_partner, covering, pair_partner, pair_account)

    def count(
        self,
        day: DayStates,
        assignments: Assignments,
        granted: np.ndarray,
        *,
        running: np.ndarray | None = None,
        covered: Covering | None = None,
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The mask groups (rule 4) and the partner coverage counts (rule 6) of one day.

        - day: the accounts' states on the day.
        - assignments: the coverage rows; `running` (one bool each) marks those whose dates
          include the day (rule 3a), all of them when None.
        - granted: `grant_table` over `assignments.partners`, `self.regions`, `self.verticals`.
        - covered: `covering` of the same arguments, when already found.

        A direct or online row covers its account; a partner-kind row only when its cell is
        granted (rule 3b). Only in-market accounts are covered. Output: (`MASK_GROUP_COLUMNS`,
        `PARTNER_COVERAGE_COLUMNS`).
        """
        if not self.size:
            empty = pd.DataFrame(columns=PARTNER_COVERAGE_COLUMNS).astype("int64")
            return pd.DataFrame(columns=MASK_GROUP_COLUMNS), empty
        if covered is None:
            covered = self.covering(day, assignments, granted, running=running)
        counted = np.concatenate([covered.rows[~covered.via_partner], covered.partner_rows])

        mask = np.zeros(self.size, dtype="int8")
        kind = assignments.kind[counted]
        for code, bit in enumerate(KIND_BITS.values()):
            mask[assignments.account[counted[kind == code]]] |= bit
        return self._groups(day, mask), self._partner_coverage(
            assignments.partners, covered, day.won
        )

    def _covering(
        self,
        day: DayStates,
        assignments: Assignments,
        granted: np.ndarray,
        running: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The rows of `assignments` running on the day on an in-market account, which of them
        are of a partner kind, and those partner rows whose cell is granted (rules 3 and 3b)."""
        known = assignments.account >= 0
        rows = np.flatnonzero(known if running is None else known & running)
        rows = rows[day.in_market[assignments.account[rows]]]
        via_partner = _VIA_PARTNER[assignments.kind[rows]]
        partner_rows = rows[via_partner]
        account = assignments.account[partner_rows]
        allowed = granted[
            assignments.partner[partner_rows], self.region[account], self.vertical[account]
        ]
        return rows, via_partner, partner_rows[allowed]

    def programme_counts(
        self,
        day: DayStates,
        assignments: Assignments,
        granted: np.ndarray,
        *,
        rep_id: np.ndarray,
        in_window: np.ndarray,
        in_year: np.ndarray,
        covered: Covering | None = None,
    ) -> ProgrammeCounts:
        """The partner programme's counts of the day (docs/metrics.md rules 20 and 22) from the
        same covering rows as `count` (`covered`, when already found): per partner, the
        accounts it covers that converted in the 52 weeks (`in_window`, one bool per account)
        and since 1 January (`in_year`); per rep (`rep_id`, one per assignment, 0 when none),
        the accounts its direct coverage covers and those of them converted since 1 January.
        Every account counts once per partner or rep."""
        if covered is None:
            covered = self.covering(day, assignments, granted)
        rows = covered.rows
        partners = assignments.partners
        pair_partner, pair_account = covered.pair_partner, covered.pair_account
        covered_counts = np.bincount(pair_partner, minlength=len(partners))
        present = np.flatnonzero(covered_counts)
        window = np.bincount(pair_partner, weights=in_window[pair_account], minlength=len(partners))
        year = np.bincount(pair_partner, weights=in_year[pair_account], minlength=len(partners))
        partner_counts = pd.DataFrame(
            {
                "partner_id": np.asarray(partners)[present].astype("int64"),
                "conversions": window[present].astype("int64"),
                "conversions_ytd": year[present].astype("int64"),
            }
        )
        direct = rows[assignments.kind[rows] == KINDS.index("direct")]
        direct = direct[rep_id[direct] > 0]
        size = max(self.size, 1)
        rep_pairs = pd.unique(rep_id[direct].astype("int64") * size + assignments.account[direct])
        pair_rep, pair_rep_account = np.divmod(rep_pairs, size)
        reps, rep_codes = np.unique(pair_rep, return_inverse=True)
        rep_counts = pd.DataFrame(
            {
                "rep_id": reps.astype("int64"),
                "covered_accounts": np.bincount(rep_codes, minlength=len(reps)).astype("int64"),
                "conversions_ytd": np.bincount(
                    rep_codes, weights=in_year[pair_rep_account], minlength=len(reps)
                ).astype("int64"),
            }
        )
        return ProgrammeCounts(partner_counts, rep_counts)

    def _groups(self, day: DayStates, mask: np.ndarray) -> pd.DataFrame:
        """One row per (segment, in market, mask, winning kind) with its number of accounts."""
        shape = (
            len(self.regions),
            len(self.verticals),
            len(self.size_bands),
            2,
            16,
            len(KINDS) + 1,
        )
        keys = np.ravel_multi_index(
            (self.region, self.vertical, self.size_band, day.in_market, mask, day.won), shape
        )
        present, counts = _counted(keys, int(np.prod(shape)))
        region, vertical, size_band, live, mask_value, won = np.unravel_index(present, shape)
        return pd.DataFrame(
            {
                "region": np.asarray(self.regions, dtype=object)[region],
                "vertical": np.asarray(self.verticals, dtype=object)[vertical],
                "size_band": np.asarray(self.size_bands, dtype=object)[size_band],
                "in_market": live.astype(bool),
                "mask": mask_value.astype("int64"),
                "converted_via": np.array(["", *KINDS], dtype=object)[won],
                "n": counts,
            }
        )

    def _partner_coverage(
        self, partners: pd.Index, covered: Covering, won: np.ndarray
    ) -> pd.DataFrame:
        """Per partner: the distinct accounts among its covering rows, and of those the
        converted ones."""
        pair_partner, pair_account = covered.pair_partner, covered.pair_account
        counts = np.bincount(pair_partner, minlength=len(partners))
        converted = np.bincount(
            pair_partner, weights=won[pair_account] > 0, minlength=len(partners)
        )
        present = np.flatnonzero(counts)
        return pd.DataFrame(
            {
                "partner_id": np.asarray(partners)[present].astype("int64"),
                "covered_accounts": counts[present].astype("int64"),
                "converted_accounts": converted[present].astype("int64"),
            }
        )


def day_counts(
    accounts: Accounts,
    day: DayStates,
    assignments: Assignments,
    *,
    agreements: pd.DataFrame,
    agreement_regions: pd.DataFrame,
    agreement_verticals: pd.DataFrame,
    d: date,
    running: np.ndarray | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`Accounts.count` on `d`, with the grant table of the agreements in force on `d`
    (rules 2 and 3b)."""
    granted = grant_table(
        in_force=agreements_in_force(agreements, d),
        agreement_regions=agreement_regions,
        agreement_verticals=agreement_verticals,
        partners=assignments.partners,
        regions=accounts.regions,
        verticals=accounts.verticals,
    )
    return accounts.count(day, assignments, granted, running=running)


@dataclass(frozen=True)
class WeekFigures:
    """What a week's snapshot stores: segment counts with ratios (`SEGMENT_KEYS`,
    `COUNT_COLUMNS`, `RATIO_COLUMNS`), partner figures (`PARTNER_COLUMNS`), and the rollups
    (`segment_rollups`, `partner_rollups`, `feedback_rollups`); and what a single week's pass
    hands to the steps after it: the programme's counts, and the accounts as indexed (their
    segments by id, for the revenue step) with the assignments the revenue step's rule 16
    reads, when the pass read them (`selectors.AssignmentRows.influencing`)."""

    segments: pd.DataFrame
    partners: pd.DataFrame
    segment_rollups: pd.DataFrame
    partner_rollups: pd.DataFrame
    feedback_rollups: pd.DataFrame
    programme: ProgrammeCounts | None = None
    accounts: Accounts | None = None
    influencing: dict[str, np.ndarray] | None = None


def week_rollups(
    segments: pd.DataFrame, partners: pd.DataFrame, feedback: pd.DataFrame, d: date
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The rollups of a week's segment counts and partner figures (rules 5 and 7), and of its
    feedback from the Monday of `d`'s week to `d` (rule 8)."""
    monday = d - timedelta(days=d.weekday())
    return (
        segment_rollups(segments[[*SEGMENT_KEYS, *COUNT_COLUMNS]]),
        partner_rollups(partners),
        feedback_rollups(feedback, monday, d),
    )


def week_figures(
    *,
    groups: pd.DataFrame,
    partner_coverage: pd.DataFrame,
    agreements: pd.DataFrame,
    partners: pd.DataFrame,
    feedback: pd.DataFrame,
    d: date,
) -> WeekFigures:
    """Everything a week's snapshot stores, from the day's mask groups and partner coverage
    counts (`Accounts.count`), the agreements (rule 2 is applied here), the partners and the
    feedback (at least that of the 90 days ending on `d`)."""
    segments = with_ratios(segment_counts(groups))
    figures = partner_figures(
        partners, partner_coverage, agreements_in_force(agreements, d), feedback, d
    )
    return WeekFigures(segments, figures, *week_rollups(segments, figures, feedback, d))


def _codes_of_converted(converted_via: pd.Series) -> np.ndarray:
    """1 + each winning kind's index in `KINDS`, 0 when none."""
    return pd.Index(["", *KINDS]).get_indexer(pd.Index(converted_via.fillna(""))).astype("int8")


class PreparedMarket:
    """The account-level frames (the module docstring's) indexed once, so that each further
    as-of day costs a few vectorised passes: the date rules over arrays of dates, then
    `Accounts.count` and `week_figures` as for a single week read from the database."""

    def __init__(
        self,
        *,
        accounts: pd.DataFrame,
        coverage: pd.DataFrame,
        agreements: pd.DataFrame,
        agreement_regions: pd.DataFrame,
        agreement_verticals: pd.DataFrame,
        feedback: pd.DataFrame,
        partners: pd.DataFrame,
    ) -> None:
        self.agreements = agreements
        self.agreement_regions = agreement_regions
        self.agreement_verticals = agreement_verticals
        # Creation days as datetime64 once, rather than converted again for every week.
        self.feedback = feedback.assign(created_on=_dates(feedback["created_on"]))
        self.partners = partners
        self.accounts = Accounts(
            account_id=accounts["account_id"],
            region=accounts["region"],
            vertical=accounts["vertical"],
            size_band=accounts["size_band"],
        )
        self.account_dates = {
            **_rule_columns(IN_MARKET, accounts),
            **_rule_columns(CONVERTED, accounts),
        }
        self.converted_via = _codes_of_converted(accounts["converted_via"])
        self.assignments = self.accounts.assignments(
            account_id=coverage["account_id"],
            kind=coverage["kind"],
            partner_id=coverage["partner_id"],
        )
        self.coverage_dates = _rule_columns(COVERAGE_RUNNING, coverage)
        # Each row's rep (0 when none), for the partner programme's counts; None when the
        # coverage frame does not say.
        self.rep_id = (
            coverage["rep_id"].fillna(0).to_numpy(dtype="int64") if "rep_id" in coverage else None
        )

    def day_states(self, d: date) -> DayStates:
        """Rule 1 and rule 4's conversion test on `d`, per account."""
        live = IN_MARKET.mask(self.account_dates, d)
        won = np.where(live & CONVERTED.mask(self.account_dates, d), self.converted_via, 0)
        return DayStates(in_market=live, won=won.astype("int8"))

    def week_figures(self, d: date) -> WeekFigures:
        """Everything a week's snapshot stores, as of `d`."""
        groups, coverage = day_counts(
            self.accounts,
            self.day_states(d),
            self.assignments,
            agreements=self.agreements,
            agreement_regions=self.agreement_regions,
            agreement_verticals=self.agreement_verticals,
            d=d,
            running=COVERAGE_RUNNING.mask(self.coverage_dates, d),
        )
        return week_figures(
            groups=groups,
            partner_coverage=coverage,
            agreements=self.agreements,
            partners=self.partners,
            feedback=self.feedback,
            d=d,
        )


# A sweep keeps one bit per as-of day in a 64-bit word, so it takes its days 64 at a time.
SWEEP_DAYS = 64
_ALL_DAYS = np.uint64(0xFFFF_FFFF_FFFF_FFFF)
_EPOCH_DAY = np.datetime64("1970-01-01", "D")


def _day_number(d: date) -> int:
    return int((np.datetime64(d, "D") - _EPOCH_DAY).astype("int64"))


def _words(first: np.ndarray, last: np.ndarray, days: np.ndarray) -> np.ndarray:
    """Per row, the days (bit i: `days[i]`, at most `SWEEP_DAYS` sorted day numbers) from
    `first` through `last` (day numbers, as `DateRule.span` gives them), as one uint64."""
    return _bits_between(
        np.searchsorted(days, first, side="left"), np.searchsorted(days, last, side="right")
    )


def _bits_between(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Per row, bits `low` up to (not including) `high` set, as one uint64 (none when
    `high <= low`)."""

    def below(count: np.ndarray) -> np.ndarray:
        count = np.clip(count, 0, 64).astype(np.uint64)
        ones = (np.uint64(1) << np.minimum(count, np.uint64(63))) - np.uint64(1)
        every: np.ndarray = np.where(count >= np.uint64(64), _ALL_DAYS, ones)
        return every

    between: np.ndarray = below(high) & ~below(low)
    return between.astype(np.uint64)


def _converted_within(converted_on: np.ndarray, days: np.ndarray, firsts: np.ndarray) -> np.ndarray:
    """Per account, the days `days[i]` (sorted day numbers) whose window from `firsts[i]`
    (sorted too) through `days[i]` holds its conversion day (`converted_on`, day numbers), as
    one uint64."""
    return _bits_between(
        np.searchsorted(days, converted_on, side="left"),
        np.searchsorted(firsts, converted_on, side="right"),
    )


def _bit_counts(words: np.ndarray, groups: np.ndarray, size: int, width: int) -> np.ndarray:
    """How many of `words` in each group (`groups`, one code in `range(size)` per word) have
    each of the first `width` bits set: an int64 array of shape (size, width).

    A word's set bits come in runs of consecutive days (a row holds from one day to another),
    so each group's counts are the running sum over the days of the runs starting (+1) and
    ending (-1) on each day: a few passes over the words' run edges rather than one per bit."""
    one = np.uint64(1)
    kept = words & _bits_between(np.zeros(1, "int64"), np.array([width]))[0]
    # Bit i of `edges`: a run starts on day i, or one ended on day i - 1.
    edges = kept ^ (kept << one)
    at = np.flatnonzero(edges)
    edges, key = edges[at], groups[at].astype("int64") * (width + 1)
    starts = np.zeros(size * (width + 1), dtype="int64")
    ends = np.zeros(size * (width + 1), dtype="int64")
    starting = True  # a word's edges alternate, from its lowest: start, end, start...
    while len(edges):
        lowest = edges & (~edges + one)
        # A power of two is exact as a float64, and so is its logarithm.
        day = key + np.log2(lowest.astype("float64")).astype("int64")
        (starts if starting else ends)[:] += np.bincount(day, minlength=len(starts))
        edges ^= lowest
        left = edges != 0
        edges, key = edges[left], key[left]
        starting = not starting
    counts: np.ndarray = np.cumsum((starts - ends).reshape(size, width + 1), axis=1)[:, :width]
    return np.ascontiguousarray(counts)


@dataclass(frozen=True)
class _SweptDays:
    """What `MarketSweep` found for up to `SWEEP_DAYS` days: per day, the `COUNT_COLUMNS` of
    each segment of `MarketSweep.segment_keys` (`counts[day, segment, column]`), and each
    partner's covered and converted accounts (`covered[partner, day]`,
    `converted[partner, day]`)."""

    days: list[date]
    counts: np.ndarray
    covered: np.ndarray
    converted: np.ndarray
    programme: list[ProgrammeCounts] | None
    partner_days: _PartnerDays | None = None


@dataclass(frozen=True)
class _PartnerDays:
    """Rule 6's figures of each partner of a market's partners frame on each of a sweep's
    days, the partners sorted by `external_id` as `partner_figures` gives them: `order`, their
    rows in the partners frame; `covered_at`, each one's row in the sweep's partner arrays (-1
    when it covers nothing); and per (partner, day) the agreements in force and the 90-day
    window's feedback (`feedback[column][partner, day]` for `feedback_count`,
    `satisfaction_sum`, `satisfaction_count` and `NPS_COUNT_COLUMNS`)."""

    order: np.ndarray
    covered_at: np.ndarray
    agreements: np.ndarray
    feedback: dict[str, np.ndarray]


class MarketSweep:
    """The figures of many as-of days of a `PreparedMarket` in one pass over its dated rows,
    instead of one pass per day (a backfill).

    Every dated row (an account in the market, its conversion, a running assignment, an
    agreement in force) holds on one range of days (`DateRule.span`). Each row's days among the
    as-of days become the bits of one word, so the coverage of an account by a kind on every
    day is the bitwise or of its rows' words, a partner row counts on the days its own word
    and a granting agreement's share, and each day's counts are bits summed per segment or
    partner. `week_figures(d)` then equals `PreparedMarket.week_figures(d)` for each of the
    days given (and falls back to it for any other day).
    """

    def __init__(self, market: PreparedMarket, days: Sequence[date]) -> None:
        self.market = market
        self.days = sorted(set(days))
        self._swept: _SweptDays | None = None
        accounts = market.accounts
        # One code per segment (region, vertical, size band), and the segments present.
        self.segment_shape = (
            len(accounts.regions),
            len(accounts.verticals),
            len(accounts.size_bands),
        )
        full = np.ravel_multi_index(
            (accounts.region, accounts.vertical, accounts.size_band), self.segment_shape
        )
        present, segment = np.unique(full, return_inverse=True)
        region, vertical, size_band = np.unravel_index(present, self.segment_shape)
        keys = pd.DataFrame(
            {
                "region": np.asarray(accounts.regions, dtype=object)[region],
                "vertical": np.asarray(accounts.verticals, dtype=object)[vertical],
                "size_band": np.asarray(accounts.size_bands, dtype=object)[size_band],
            }
        )
        # Segments numbered in the order `segment_counts` gives them.
        order = keys.sort_values(SEGMENT_KEYS, kind="stable").index.to_numpy()
        rank = np.empty(len(order), dtype="int64")
        rank[order] = np.arange(len(order))
        self.segment = rank[segment.reshape(-1)]
        self.segment_keys = keys.iloc[order].reset_index(drop=True)
        self._in_market = IN_MARKET.span(market.account_dates)
        self._converted = CONVERTED.span(market.account_dates)
        self._running = COVERAGE_RUNNING.span(market.coverage_dates)
        agreements = market.agreements
        if agreements.empty:
            self._in_force = (np.zeros(0, "int64"), np.zeros(0, "int64"))
        else:
            self._in_force = AGREEMENT_IN_FORCE.span(_rule_columns(AGREEMENT_IN_FORCE, agreements))

    def week_figures(self, d: date) -> WeekFigures:
        """Everything a week's snapshot stores, as of `d`: `PreparedMarket.week_figures(d)`."""
        swept = self._sweep(d)
        if swept is None:
            return self.market.week_figures(d)
        day = swept.days.index(d)
        market = self.market
        groups = self.segment_keys.copy()
        for position, column in enumerate(COUNT_COLUMNS):
            groups[column] = swept.counts[day, :, position]
        partners = market.assignments.partners
        present = np.flatnonzero(swept.covered[:, day])
        coverage = pd.DataFrame(
            {
                "partner_id": np.asarray(partners)[present].astype("int64"),
                "covered_accounts": swept.covered[present, day],
                "converted_accounts": swept.converted[present, day],
            }
        )
        segments = with_ratios(groups)
        if swept.partner_days is None:
            figures = partner_figures(
                market.partners,
                coverage,
                agreements_in_force(market.agreements, d),
                market.feedback,
                d,
            )
        else:
            figures = self._partner_figures(swept, day)
        programme = swept.programme[day] if swept.programme is not None else None
        if programme is not None and "created_us" in market.feedback:
            # The market's feedback with its moments: the programme counts the day's 90 days
            # of it rather than read them again.
            programme = replace(programme, feedback=market.feedback)
        return WeekFigures(
            segments,
            figures,
            *week_rollups(segments, figures, market.feedback, d),
            programme=programme,
        )

    def _sweep(self, d: date) -> _SweptDays | None:
        if self._swept is not None and d in self._swept.days:
            return self._swept
        if d not in self.days:
            return None
        start = self.days.index(d)
        self._swept = None  # let the previous days go before sweeping the next ones
        self._swept = self._sweep_days(self.days[start : start + SWEEP_DAYS])
        return self._swept

    def _sweep_days(self, days: list[date]) -> _SweptDays:
        market = self.market
        accounts = market.accounts
        numbers = np.array([_day_number(d) for d in days], dtype="int64")
        width = len(days)
        live = _words(*self._in_market, numbers)
        won = np.where(market.converted_via > 0, _words(*self._converted, numbers) & live, 0)
        won = won.astype(np.uint64)

        assignments = market.assignments
        known = assignments.account >= 0
        account = np.where(known, assignments.account, 0)
        running = np.where(known, _words(*self._running, numbers) & live[account], 0)
        running = running.astype(np.uint64)
        via_partner = _VIA_PARTNER[assignments.kind]
        covering = running.copy()
        covering[via_partner] = self._granted_days(
            np.flatnonzero(via_partner), running[via_partner], numbers
        )

        kinds = np.zeros((len(KINDS), accounts.size), dtype=np.uint64)
        for code in range(len(KINDS)):
            rows = np.flatnonzero(assignments.kind == code)
            np.bitwise_or.at(kinds[code], account[rows], covering[rows])

        counts = self._day_counts(live, won, kinds, width)

        # Per (partner, account): the days some granted row of the partner covers it.
        partner_rows = np.flatnonzero(via_partner & (covering != 0))
        size = max(accounts.size, 1)
        pair = assignments.partner[partner_rows].astype("int64") * size + account[partner_rows]
        pairs, at = np.unique(pair, return_inverse=True)
        pair_days = np.zeros(len(pairs), dtype=np.uint64)
        np.bitwise_or.at(pair_days, at.reshape(-1), covering[partner_rows])
        pair_partner, pair_account = np.divmod(pairs, size)
        count = len(assignments.partners)
        covered = _bit_counts(pair_days, pair_partner, count, width)
        programme = None
        if market.rep_id is not None:
            programme = self._programme_counts(
                days, covered, pair_partner, pair_account, pair_days, covering, account
            )
        return _SweptDays(
            days=days,
            counts=counts,
            covered=covered,
            converted=_bit_counts(pair_days & won[pair_account], pair_partner, count, width),
            programme=programme,
            partner_days=self._partner_days(days, numbers),
        )

    def _partner_days(self, days: list[date], numbers: np.ndarray) -> _PartnerDays | None:
        """`_PartnerDays` of `days` (`numbers`, their day numbers): the agreements in force
        (rule 2) counted per partner from their words, the feedback of each day's window
        (rule 6) counted and summed per partner. None when a partner id repeats or the
        feedback has no such columns (`partner_figures` then computes each day)."""
        market = self.market
        partners, feedback = market.partners, market.feedback
        ids = pd.Index(partners["partner_id"])
        if not ids.is_unique or not {"satisfaction", "nps", "created_on"} <= set(feedback):
            return None
        order = np.argsort(partners["external_id"].to_numpy(), kind="stable")
        ids = pd.Index(partners["partner_id"].to_numpy()[order])
        count, width = len(ids), len(days)
        covered_at = market.assignments.partners.get_indexer(ids)
        agreements = np.zeros((count, width), dtype="int64")
        if not market.agreements.empty:
            owner = ids.get_indexer(pd.Index(market.agreements["partner_id"]))
            known = owner >= 0
            words = _words(self._in_force[0][known], self._in_force[1][known], numbers)
            agreements = _bit_counts(words, owner[known], count, width)
        writer = ids.get_indexer(pd.Index(feedback["partner_id"]))
        created = feedback["created_on"].to_numpy(dtype="datetime64[D]")
        satisfaction = feedback["satisfaction"].to_numpy(dtype="float64")
        rated = ~np.isnan(satisfaction)
        score = feedback["nps"].to_numpy(dtype="float64")
        scored = ~np.isnan(score)
        columns = {
            "feedback_count": np.ones(len(created), dtype=bool),
            "satisfaction_count": rated,
            "nps_responses": scored,
            "nps_promoters": scored & (score >= 9),
            "nps_detractors": scored & (score <= 6),
        }
        sums = {name: np.zeros((count, width), dtype="int64") for name in columns}
        sums["satisfaction_sum"] = np.zeros((count, width), dtype="float64")
        known = writer >= 0
        for position, d in enumerate(days):
            day = np.datetime64(d, "D")
            rows = known & (created >= day - (FEEDBACK_WINDOW_DAYS - 1)) & (created <= day)
            who = writer[rows]
            for name, counted in columns.items():
                sums[name][:, position] = np.bincount(who[counted[rows]], minlength=count)
            sums["satisfaction_sum"][:, position] = np.bincount(
                who[rated[rows]], weights=satisfaction[rows & rated], minlength=count
            )
        return _PartnerDays(order, covered_at, agreements, sums)

    def _partner_figures(self, swept: _SweptDays, day: int) -> pd.DataFrame:
        """`partner_figures` of the sweep's `day`-th day, from its `_PartnerDays`."""
        partner_days = swept.partner_days
        assert partner_days is not None
        at = partner_days.covered_at
        known = at >= 0

        def of_covered(counts: np.ndarray) -> np.ndarray:
            values = np.zeros(len(at), dtype="int64")
            values[known] = counts[at[known], day]
            return values

        feedback = {name: values[:, day] for name, values in partner_days.feedback.items()}
        rated = feedback["satisfaction_count"]
        responses = feedback["nps_responses"]
        promoters, detractors = feedback["nps_promoters"], feedback["nps_detractors"]
        with np.errstate(divide="ignore", invalid="ignore"):
            # As `partner_figures`: the mean of the window's scores, and `nps_from_counts`.
            mean = np.where(rated > 0, feedback["satisfaction_sum"] / rated, np.nan)
            nps = np.where(
                responses > 0,
                100.0 * (promoters - detractors).astype("float64") / responses,
                np.nan,
            )
        frame = self.market.partners.iloc[partner_days.order][
            ["partner_id", "external_id", "name", "channel_kind"]
        ].reset_index(drop=True)
        columns = {
            "covered_accounts": of_covered(swept.covered),
            "converted_accounts": of_covered(swept.converted),
            "agreements_in_force": partner_days.agreements[:, day],
            "feedback_count": feedback["feedback_count"],
            "satisfaction_mean": mean.astype("float64"),
            "nps": nps.astype("float64"),
            "nps_responses": responses,
            "nps_promoters": promoters,
            "nps_detractors": detractors,
        }
        for name, values in columns.items():
            frame[name] = values
        return frame[PARTNER_COLUMNS]

    def _day_counts(
        self, live: np.ndarray, won: np.ndarray, kinds: np.ndarray, width: int
    ) -> np.ndarray:
        """`_SweptDays.counts` from the accounts' words: the first day's in-market accounts
        counted per cell (segment, mask of the kinds covering, winning kind), then each next
        day's counts from the previous day's, moving only the accounts one of whose words
        changes between the two days from their old cell to their new one (most accounts keep
        their cell from one week to the next)."""
        market = self.market
        segment = self.segment
        won_code = market.converted_via.astype("int64")
        wons = len(KINDS) + 1
        cells = len(self.segment_keys) * 16 * wons  # one more bin: accounts not in the market
        one = np.uint64(1)

        def cells_of(rows: np.ndarray | slice, day: int) -> np.ndarray:
            bit = np.uint64(day)
            mask = np.zeros(len(segment[rows]), dtype="int64")
            for code in range(len(KINDS)):
                mask |= (((kinds[code][rows] >> bit) & one) << np.uint64(code)).astype("int64")
            converted = ((won[rows] >> bit) & one).astype(bool)
            key = (segment[rows] * 16 + mask) * wons + np.where(converted, won_code[rows], 0)
            in_market = ((live[rows] >> bit) & one).astype(bool)
            cell: np.ndarray = np.where(in_market, key, cells)
            return cell

        counts = np.zeros((width, len(self.segment_keys), len(COUNT_COLUMNS)), "int64")
        if not width:
            return counts
        counted = np.bincount(cells_of(slice(None), 0), minlength=cells + 1)
        counts[0] = _count_matrix(counted[:cells].reshape(-1, 16, wons))
        # Bit `day - 1` of an account's word of changes: some word of it differs between
        # `day - 1` and `day`.
        changes = np.zeros(len(live), dtype=np.uint64)
        for words in (live, won, *kinds):
            changes |= words ^ (words >> one)
        changes &= _bits_between(np.zeros(1, "int64"), np.array([width - 1]))[0]
        changing = np.flatnonzero(changes)
        changes = changes[changing]
        for day in range(1, width):
            moved = changing[((changes >> np.uint64(day - 1)) & one).astype(bool)]
            if len(moved):
                counted += np.bincount(cells_of(moved, day), minlength=cells + 1)
                counted -= np.bincount(cells_of(moved, day - 1), minlength=cells + 1)
            counts[day] = _count_matrix(counted[:cells].reshape(-1, 16, wons))
        return counts

    def _programme_counts(
        self,
        days: list[date],
        covered: np.ndarray,
        pair_partner: np.ndarray,
        pair_account: np.ndarray,
        pair_days: np.ndarray,
        covering: np.ndarray,
        account: np.ndarray,
    ) -> list[ProgrammeCounts]:
        """`Accounts.programme_counts` of each day, from the sweep's covering words."""
        market = self.market
        assert market.rep_id is not None
        numbers = np.array([_day_number(d) for d in days], dtype="int64")
        converted_on = market.account_dates["converted_on"]
        missing = np.isnat(converted_on)
        conversion = np.where(
            missing, 0, (converted_on.astype("datetime64[D]") - _EPOCH_DAY).astype("int64")
        )

        def within(first: Callable[[date], date]) -> np.ndarray:
            firsts = np.array([_day_number(first(d)) for d in days], dtype="int64")
            words = _converted_within(conversion, numbers, firsts)
            return np.where(missing, np.uint64(0), words).astype(np.uint64)

        in_window, in_year = within(window_start), within(year_start)
        width, count = len(days), len(market.assignments.partners)
        window = _bit_counts(pair_days & in_window[pair_account], pair_partner, count, width)
        year = _bit_counts(pair_days & in_year[pair_account], pair_partner, count, width)

        # Direct rows (running on an in-market account) with a rep: per (rep, account).
        assignments = market.assignments
        direct = np.flatnonzero(
            (assignments.kind == KINDS.index("direct")) & (market.rep_id > 0) & (covering != 0)
        )
        size = max(market.accounts.size, 1)
        rep_pairs, at = np.unique(
            market.rep_id[direct] * size + account[direct], return_inverse=True
        )
        rep_days = np.zeros(len(rep_pairs), dtype=np.uint64)
        np.bitwise_or.at(rep_days, at.reshape(-1), covering[direct])
        pair_rep, rep_account = np.divmod(rep_pairs, size)
        reps, rep_code = np.unique(pair_rep, return_inverse=True)
        rep_code = rep_code.reshape(-1)
        rep_covered = _bit_counts(rep_days, rep_code, len(reps), width)
        rep_year = _bit_counts(rep_days & in_year[rep_account], rep_code, len(reps), width)

        partners = np.asarray(market.assignments.partners)
        counts = []
        for day in range(width):
            present = np.flatnonzero(covered[:, day])
            with_reps = np.flatnonzero(rep_covered[:, day])
            counts.append(
                ProgrammeCounts(
                    pd.DataFrame(
                        {
                            "partner_id": partners[present].astype("int64"),
                            "conversions": window[present, day],
                            "conversions_ytd": year[present, day],
                        }
                    ),
                    pd.DataFrame(
                        {
                            "rep_id": reps[with_reps].astype("int64"),
                            "covered_accounts": rep_covered[with_reps, day],
                            "conversions_ytd": rep_year[with_reps, day],
                        }
                    ),
                )
            )
        return counts

    def _granted_days(
        self, rows: np.ndarray, running: np.ndarray, numbers: np.ndarray
    ) -> np.ndarray:
        """Per partner row of the assignments (`rows`, running on the days `running`), the
        days on which one agreement of its partner is in force and grants its account's region
        and vertical (rules 2 and 3b)."""
        market = self.market
        assignments = market.assignments
        agreements = market.agreements
        granted = np.zeros(len(rows), dtype=np.uint64)
        if not len(rows) or agreements.empty:
            return granted
        partner_of = assignments.partners.get_indexer(pd.Index(agreements["partner_id"]))
        usable = np.flatnonzero(partner_of >= 0)
        in_force = _words(self._in_force[0][usable], self._in_force[1][usable], numbers)
        agreement_ids = agreements["agreement_id"].to_numpy()[usable]
        order = np.argsort(partner_of[usable], kind="stable")
        by_partner = partner_of[usable][order]
        partner = assignments.partner[rows]
        low = np.searchsorted(by_partner, partner, side="left")
        count = np.searchsorted(by_partner, partner, side="right") - low
        pair_row = np.repeat(np.arange(len(rows)), count)
        agreement = order[
            np.repeat(low, count)
            + np.arange(len(pair_row))
            - np.repeat(np.cumsum(count) - count, count)
        ]
        accounts = market.accounts
        account = assignments.account[rows[pair_row]]
        by_region = _grants(agreement_ids, market.agreement_regions, "region", accounts.regions)
        by_vertical = _grants(
            agreement_ids, market.agreement_verticals, "vertical", accounts.verticals
        )
        grants = (
            by_region[agreement, accounts.region[account]]
            & by_vertical[agreement, accounts.vertical[account]]
        )
        days = np.where(grants, running[pair_row] & in_force[agreement], 0).astype(np.uint64)
        np.bitwise_or.at(granted, pair_row, days)
        return granted


_MASKS = np.arange(16)
_POPCOUNT = sum(((_MASKS & bit) > 0).astype("int64") for bit in KIND_BITS.values())


def _count_matrix(cells: np.ndarray) -> np.ndarray:
    """Rule 4's `COUNT_COLUMNS` per segment from its in-market accounts counted per (mask of
    the kinds covering them, 1 + the winning kind's index or 0): `cells[segment, mask, won]`
    in, `[segment, column]` (int64) out. The one statement of the counts, for a single day's
    mask groups (`segment_counts`) and a sweep's days alike."""
    by_mask = cells.sum(axis=2)
    by_won = cells.sum(axis=1)
    columns = {"accounts": by_mask.sum(axis=1)}
    for kind, bit in KIND_BITS.items():
        columns[f"covered_{kind}"] = by_mask[:, (_MASKS & bit) > 0].sum(axis=1)
    columns["covered_any"] = by_mask[:, 1:].sum(axis=1)
    columns["overlap"] = by_mask[:, _POPCOUNT >= 2].sum(axis=1)
    columns["converted"] = by_won[:, 1:].sum(axis=1)
    for code, kind in enumerate(KINDS, start=1):
        columns[f"converted_{kind}"] = by_won[:, code]
    columns["white_space"] = columns["accounts"] - columns["covered_any"]
    return np.column_stack([columns[column] for column in COUNT_COLUMNS]).astype("int64")
