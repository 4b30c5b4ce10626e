"""The coverage and penetration metrics of DESIGN.md, as pure functions over pandas frames.

Nothing here touches the ORM: selectors load frames (or let the database evaluate one date),
these functions compute, services write. Every function takes the as-of date `d` explicitly.

Frames and their columns (dates are `datetime64` or `date` objects; missing dates are null):

- accounts: `account_id, region, vertical, size_band, entered_on, archived_on, converted_on,
  converted_via` (`converted_via` is "" when not converted; region and vertical are codes)
- coverage: `account_id, kind, partner_id, start_date, end_date` (`partner_id` null for
  direct and online)
- agreements: `agreement_id, partner_id, signed_on, start_date, end_date, terminated_on`
- agreement_regions / agreement_verticals: `agreement_id, region` / `agreement_id, vertical`
  (an agreement with no rows grants all)
- feedback: `partner_id, created_on, satisfaction, nps` (`nps` may be null)
- partners: `partner_id, external_id, name, channel_kind`

The hinge between account-level data and counts is the *mask groups* frame: one row per
(`region, vertical, size_band, in_market, mask, converted_via`) with `n` accounts, where `mask`
is the bit set of channel kinds actively covering the account. `AccountStates` produces it
from one date's account states and active assignments (the single-week path), `mask_groups`
from the account-level frames, and `segment_counts` turns it into the segment counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

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
# The frame of `partner_coverage_counts` (and of `AccountStates.aggregates`' second part).
PARTNER_COVERAGE_COLUMNS: list[str] = ["partner_id", "covered_accounts", "converted_accounts"]
FEEDBACK_WINDOW_DAYS = 90


def _day(d: date) -> pd.Timestamp:
    return pd.Timestamp(d)


def _dates(column: pd.Series) -> pd.Series:
    return pd.to_datetime(column)


def iso_week_as_of(week: str) -> date:
    """The as-of date of an ISO week such as "2026-W46": the Sunday that closes it.

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


def in_market(accounts: pd.DataFrame, d: date) -> pd.DataFrame:
    """Rule 1: the accounts with `entered_on <= d` and (`archived_on` null or `archived_on > d`).

    Input: an accounts frame. Output: the subset of its rows, columns unchanged.
    """
    day = _day(d)
    archived = _dates(accounts["archived_on"])
    keep = (_dates(accounts["entered_on"]) <= day) & (archived.isna() | (archived > day))
    return accounts[keep]


def agreements_in_force(agreements: pd.DataFrame, d: date) -> pd.DataFrame:
    """Rule 2: agreements signed by `d`, with `start_date <= d <= end_date`, not terminated before.

    An agreement terminated on `d` is still in force on `d`; one without `signed_on` (a draft)
    never is. Input: an agreements frame. Output: the subset of its rows.
    """
    day = _day(d)
    signed = _dates(agreements["signed_on"])
    terminated = _dates(agreements["terminated_on"])
    keep = (
        signed.notna()
        & (signed <= day)
        & (_dates(agreements["start_date"]) <= day)
        & (day <= _dates(agreements["end_date"]))
        & (terminated.isna() | (day <= terminated))
    )
    return agreements[keep]


def _granting(
    pairs: pd.DataFrame, agreement_regions: pd.DataFrame, agreement_verticals: pd.DataFrame
) -> pd.DataFrame:
    """The rows of `pairs` (each an `agreement_id` with a `region` and a `vertical`) whose
    agreement grants both: its regions include the region or are empty, and likewise for
    verticals (rule 3)."""
    for scope, column in ((agreement_regions, "region"), (agreement_verticals, "vertical")):
        scoped = set(scope["agreement_id"])
        grants = scope[["agreement_id", column]].drop_duplicates().assign(granted=True)
        pairs = pairs.merge(grants, on=["agreement_id", column], how="left")
        ok = pairs["granted"].eq(True) | ~pairs["agreement_id"].isin(scoped)
        pairs = pairs[ok].drop(columns="granted")
    return pairs


def active_coverage(
    coverage: pd.DataFrame,
    accounts: pd.DataFrame,
    agreements: pd.DataFrame,
    agreement_regions: pd.DataFrame,
    agreement_verticals: pd.DataFrame,
    d: date,
) -> pd.DataFrame:
    """Rule 3: the assignments active on `d`, with the agreement condition for partner kinds.

    An assignment is active when `start_date <= d` and (`end_date` null or `d <= end_date`).
    A `distribution` or `partner` assignment counts only when its partner has an agreement in
    force on `d` whose regions include the account's region (or are empty) and whose verticals
    include the account's vertical (or are empty); the same agreement must satisfy both.
    Assignments of accounts missing from `accounts` are dropped.

    Output: `account_id, kind, partner_id`, one row per counting assignment (duplicates kept).
    """
    day = _day(d)
    end = _dates(coverage["end_date"])
    running = coverage[(_dates(coverage["start_date"]) <= day) & (end.isna() | (day <= end))]
    running = running[["account_id", "kind", "partner_id"]].merge(
        accounts[["account_id", "region", "vertical"]], on="account_id", how="inner"
    )
    own = running[~running["kind"].isin(PARTNER_KINDS)]
    via_partner = running[running["kind"].isin(PARTNER_KINDS)].reset_index(drop=True)
    via_partner = via_partner.assign(assignment=np.arange(len(via_partner)))

    in_force = agreements_in_force(agreements, d)[["agreement_id", "partner_id"]]
    pairs = via_partner.merge(in_force, on="partner_id", how="inner")
    pairs = _granting(pairs, agreement_regions, agreement_verticals)
    allowed = via_partner[via_partner["assignment"].isin(pairs["assignment"])]

    columns = ["account_id", "kind", "partner_id"]
    return pd.concat([own[columns], allowed[columns]], ignore_index=True)


def kinds_mask(active: pd.DataFrame) -> pd.Series:
    """The bit set of kinds (`KIND_BITS`) actively covering each account.

    Input: `active_coverage` output. Output: an int Series indexed by `account_id`; accounts
    with no active coverage are absent. Two owners of the same kind set the bit once.
    """
    kinds = active[["account_id", "kind"]].drop_duplicates()
    bits = kinds["kind"].map(KIND_BITS).astype("int64")
    return bits.groupby(kinds["account_id"]).sum().rename("mask")


def mask_groups(accounts: pd.DataFrame, masks: pd.Series, d: date) -> pd.DataFrame:
    """Count accounts per (segment, in market on `d`, kinds mask, winning kind by `d`).

    Every account in `accounts` is counted once, in market or not, so a segment whose accounts
    are all out of the market still appears (with zero in-market accounts). Out-of-market rows
    carry mask 0 and no conversion. Output: `MASK_GROUP_COLUMNS`.
    """
    day = _day(d)
    live = pd.Series(False, index=accounts.index)
    live.loc[in_market(accounts, d).index] = True
    mask = accounts["account_id"].map(masks).fillna(0).astype("int64").where(live, 0)
    converted = (_dates(accounts["converted_on"]) <= day) & live
    frame = pd.DataFrame(
        {
            "region": accounts["region"],
            "vertical": accounts["vertical"],
            "size_band": accounts["size_band"],
            "in_market": live,
            "mask": mask,
            "converted_via": accounts["converted_via"].where(converted, ""),
        }
    )
    # Categorical keys group a million rows several times faster than Python strings.
    for column in (*SEGMENT_KEYS, "converted_via"):
        frame[column] = frame[column].astype("category")
    grouped = frame.groupby(
        [*SEGMENT_KEYS, "in_market", "mask", "converted_via"], sort=False, observed=True
    ).size()
    groups = grouped.rename("n").reset_index()[MASK_GROUP_COLUMNS]
    return groups.astype({column: object for column in (*SEGMENT_KEYS, "converted_via")})


def segment_counts(groups: pd.DataFrame) -> pd.DataFrame:
    """Rule 4: the per-segment counts from a mask groups frame, without ratios.

    Output: one row per segment present in `groups`, sorted by segment, with `SEGMENT_KEYS`
    then `COUNT_COLUMNS` as int64. Only in-market rows add to the counts.
    """
    n = np.where(groups["in_market"].to_numpy(dtype=bool), groups["n"].to_numpy(dtype="int64"), 0)
    mask = groups["mask"].to_numpy(dtype="int64")
    via = groups["converted_via"].fillna("").to_numpy(dtype=object)
    popcount = sum(((mask & bit) > 0).astype("int64") for bit in KIND_BITS.values())
    columns: dict[str, np.ndarray] = {"accounts": n}
    for kind, bit in KIND_BITS.items():
        columns[f"covered_{kind}"] = np.where((mask & bit) > 0, n, 0)
    columns["covered_any"] = np.where(mask > 0, n, 0)
    columns["overlap"] = np.where(popcount >= 2, n, 0)
    columns["converted"] = np.where(via != "", n, 0)
    for kind in KINDS:
        columns[f"converted_{kind}"] = np.where(via == kind, n, 0)
    expanded = pd.DataFrame(columns)
    for key in SEGMENT_KEYS:
        expanded[key] = groups[key].to_numpy()
    counts = expanded.groupby(SEGMENT_KEYS, sort=True)[COUNT_COLUMNS[:-1]].sum().reset_index()
    counts["white_space"] = counts["accounts"] - counts["covered_any"]
    return counts[[*SEGMENT_KEYS, *COUNT_COLUMNS]].astype({c: "int64" for c in COUNT_COLUMNS})


def with_ratios(counts: pd.DataFrame) -> pd.DataFrame:
    """Add `coverage`, `coverage_<kind>` and `penetration` to a frame of counts.

    Each ratio is its count divided by `accounts`; null (NaN) where `accounts` is 0.
    Output: a copy of `counts` with `RATIO_COLUMNS` appended.
    """
    frame = counts.copy()
    accounts = frame["accounts"].astype("float64").where(frame["accounts"] > 0)
    frame["coverage"] = frame["covered_any"] / accounts
    for kind in KINDS:
        frame[f"coverage_{kind}"] = frame[f"covered_{kind}"] / accounts
    frame["penetration"] = frame["converted"] / accounts
    return frame


def rollup(counts: pd.DataFrame, by: str) -> pd.DataFrame:
    """Rule 5: sum segment counts over `by` (segment, region, vertical, size_band or total),
    then compute the ratios from the sums (ratios are never averaged).

    Output: the dimension columns of `by` (none for total), `COUNT_COLUMNS`, `RATIO_COLUMNS`;
    "total" gives exactly one row, even when `counts` is empty. Raises ValueError on an unknown
    `by`.
    """
    if by not in ROLLUP_DIMENSIONS:
        raise ValueError(f"unknown rollup {by!r}; choose from {', '.join(ROLLUP_DIMENSIONS)}")
    keys = ROLLUP_DIMENSIONS[by]
    if keys:
        summed = counts.groupby(keys, sort=True)[COUNT_COLUMNS].sum().reset_index()
    else:
        summed = counts[COUNT_COLUMNS].sum().to_frame().T.reset_index(drop=True)
    summed = summed.astype({c: "int64" for c in COUNT_COLUMNS})
    return with_ratios(summed[[*keys, *COUNT_COLUMNS]])


def segment_rollups(counts: pd.DataFrame) -> pd.DataFrame:
    """Rule 5 for every filter at once: the counts summed over the segments matching each
    combination of region, vertical and size band that occurs, "" standing for any.

    Input: segment counts (`SEGMENT_KEYS` + `COUNT_COLUMNS`). Output: the same columns, one row
    per combination (the segments themselves included), none at all when `counts` is empty.
    """
    if counts.empty:
        return pd.DataFrame(columns=[*SEGMENT_KEYS, *COUNT_COLUMNS])
    frames = []
    for size in range(len(SEGMENT_KEYS) + 1):
        for keys in combinations(SEGMENT_KEYS, size):
            if keys:
                summed = counts.groupby(list(keys), sort=True)[COUNT_COLUMNS].sum().reset_index()
            else:
                summed = counts[COUNT_COLUMNS].sum().to_frame().T
            for key in SEGMENT_KEYS:
                if key not in keys:
                    summed[key] = ""
            frames.append(summed[[*SEGMENT_KEYS, *COUNT_COLUMNS]])
    rollups = pd.concat(frames, ignore_index=True)
    return rollups.astype({column: "int64" for column in COUNT_COLUMNS})


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
    """The per-partner figures summed per channel kind and over all partners ("" kind).

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
    """A week's feedback by category: the entries created from `first` to `d` (both included),
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


def channel_rollup(counts: pd.DataFrame) -> pd.DataFrame:
    """Rule 5 by channel: one row per kind with `channel` (the kind), `accounts` (all in-market
    accounts), `covered` (`covered_<kind>`), `converted` (`converted_<kind>`: won by that kind),
    `coverage = covered / accounts` and `penetration = converted / accounts` (null when no
    accounts). Output: `CHANNEL_COLUMNS`, in `KINDS` order.
    """
    accounts = int(counts["accounts"].sum())
    rows = [
        {
            "channel": kind,
            "accounts": accounts,
            "covered": int(counts[f"covered_{kind}"].sum()),
            "converted": int(counts[f"converted_{kind}"].sum()),
        }
        for kind in KINDS
    ]
    frame = pd.DataFrame(rows, columns=CHANNEL_COLUMNS[:4])
    denominator = frame["accounts"].astype("float64").where(frame["accounts"] > 0)
    frame["coverage"] = frame["covered"] / denominator
    frame["penetration"] = frame["converted"] / denominator
    return frame[CHANNEL_COLUMNS]


def partner_coverage_counts(active: pd.DataFrame, accounts: pd.DataFrame, d: date) -> pd.DataFrame:
    """Per partner: in-market accounts it actively covers on `d`, and how many of those were
    converted by `d` (by any channel).

    Inputs: `active_coverage` output and the accounts frame. Output: `partner_id,
    covered_accounts, converted_accounts`, one row per partner with at least one such account.
    """
    live = in_market(accounts, d)
    converted = set(live.loc[_dates(live["converted_on"]) <= _day(d), "account_id"])
    covered = active[active["partner_id"].notna() & active["account_id"].isin(live["account_id"])]
    covered = covered[["partner_id", "account_id"]].drop_duplicates()
    covered = covered.assign(converted=covered["account_id"].isin(converted).astype("int64"))
    grouped = covered.groupby("partner_id").agg(
        covered_accounts=("account_id", "size"), converted_accounts=("converted", "sum")
    )
    return grouped.reset_index().astype(
        {"covered_accounts": "int64", "converted_accounts": "int64"}
    )


def _factorized(values: pd.Series) -> tuple[np.ndarray, Any]:
    codes, uniques = pd.factorize(values)
    return codes.astype("int32"), uniques


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


class AccountStates:
    """One as-of date's account states, indexed once, to which that date's active assignments
    are then joined and counted (the single-week path: the database answers the date tests
    row by row, and this does the joins and the counting in a few vectorised passes).

    `accounts`: `account_id, region, vertical, size_band, in_market, converted_via`, one row per
    account (ids unique); `in_market` is rule 1 on the date, `converted_via` the winning kind
    when the account is in market and was converted by the date, else "".
    """

    def __init__(self, accounts: pd.DataFrame) -> None:
        self.count = len(accounts)
        self.live = accounts["in_market"].to_numpy(dtype=bool)
        via = pd.Categorical(accounts["converted_via"], categories=["", *KINDS]).codes
        self.via = np.where(self.live & (via > 0), via, 0).astype("int8")
        ids = accounts["account_id"].to_numpy(dtype="int64")
        self.first_id = int(ids.min()) if self.count else 0
        span = int(ids.max()) - self.first_id + 1 if self.count else 0
        self.lookup: np.ndarray | None = None
        if span <= DENSE_SPAN_FACTOR * self.count:
            # Ids nearly dense (the usual case): one array indexed by id answers each lookup.
            self.lookup = np.full(span, -1, dtype="int32" if self.count < 2**31 else "int64")
            self.lookup[ids - self.first_id] = np.arange(self.count)
        else:
            self.order = np.argsort(ids, kind="stable")
            self.ordered_ids = ids[self.order]
        # Codes of the segment keys (int32 to halve the memory of a million rows).
        self.region, self.regions = _factorized(accounts["region"])
        self.vertical, self.verticals = _factorized(accounts["vertical"])
        self.size_band, self.size_bands = _factorized(accounts["size_band"])

    def positions(self, account_ids: pd.Series) -> np.ndarray:
        """Each id's row in `accounts`, or -1 when absent."""
        wanted = account_ids.to_numpy(dtype="int64")
        if not self.count:
            return np.full(len(wanted), -1)
        if self.lookup is not None:
            offset = wanted - self.first_id
            inside = (offset >= 0) & (offset < len(self.lookup))
            return np.where(inside, self.lookup[np.where(inside, offset, 0)], -1)
        found = np.minimum(np.searchsorted(self.ordered_ids, wanted), self.count - 1)
        return np.where(self.ordered_ids[found] == wanted, self.order[found], -1)

    def _granted(
        self,
        partner_rows: np.ndarray,
        position: np.ndarray,
        active: pd.DataFrame,
        granted: pd.DataFrame,
    ) -> tuple[np.ndarray, pd.Index, np.ndarray]:
        """Rule 3's agreement test for the partner-kind `partner_rows` of `active`: whether the
        row's (partner, region, vertical) cell is among the `granted` ones, packed into one
        integer over the factorised keys. Returns (allowed, partners, each row's partner)."""
        partner, partners = pd.factorize(active["partner_id"].to_numpy()[partner_rows])
        allowed = np.zeros(len(partner_rows), dtype=bool)
        if len(partner_rows):
            shape = (len(partners), len(self.regions), len(self.verticals))
            account = position[partner_rows]
            cells = np.ravel_multi_index(
                (partner, self.region[account], self.vertical[account]), shape
            )
            keys = [
                # pandas takes any array of labels here; its type stubs ask for an Index.
                pd.Index(values).get_indexer(granted[column].to_numpy())  # type: ignore[arg-type]
                for values, column in (
                    (partners, "partner_id"),
                    (self.regions, "region"),
                    (self.verticals, "vertical"),
                )
            ]
            known = np.logical_and.reduce([key >= 0 for key in keys])
            granted_cells = np.ravel_multi_index(tuple(key[known] for key in keys), shape)
            allowed = np.isin(cells, granted_cells)
        return allowed, pd.Index(partners), partner

    def aggregates(
        self, active: pd.DataFrame, granted: pd.DataFrame
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The mask groups and the partner coverage counts of the date.

        - active: `account_id, kind, partner_id` of the assignments whose dates include the
          date, before the agreement test; rows of unknown accounts are ignored.
        - granted: `partner_id, region, vertical`, the cells granted by agreements in force on
          the date, expanded (an agreement without regions lists every region; likewise
          verticals).

        Output: (`MASK_GROUP_COLUMNS`, `partner_coverage_counts` columns), equal to
        `mask_groups` and `partner_coverage_counts` over the same market (tests hold them
        equal).
        """
        if not self.count:
            empty = pd.DataFrame(columns=PARTNER_COVERAGE_COLUMNS).astype("int64")
            return pd.DataFrame(columns=MASK_GROUP_COLUMNS), empty
        position = self.positions(active["account_id"])
        kind = pd.Categorical(active["kind"], categories=list(KINDS)).codes.astype("int64")
        rows = np.flatnonzero(position >= 0)
        rows = rows[self.live[position[rows]]]

        via_partner = np.array([k in PARTNER_KINDS for k in KINDS])[kind[rows]]
        partner_rows = rows[via_partner]
        allowed, partners, partner = self._granted(partner_rows, position, active, granted)
        covering = partner_rows[allowed]
        rows = np.concatenate([rows[~via_partner], covering])

        mask = np.zeros(self.count, dtype="int8")
        for code, bit in enumerate(KIND_BITS.values()):
            mask[position[rows[kind[rows] == code]]] |= bit
        return self._groups(mask), self._partner_coverage(
            partners, partner[allowed], position[covering]
        )

    def _groups(self, mask: np.ndarray) -> pd.DataFrame:
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
            (self.region, self.vertical, self.size_band, self.live, mask, self.via), shape
        )
        present, counts = _counted(keys, int(np.prod(shape)))
        region, vertical, size_band, live, mask_value, via = np.unravel_index(present, shape)
        return pd.DataFrame(
            {
                "region": np.asarray(self.regions, dtype=object)[region],
                "vertical": np.asarray(self.verticals, dtype=object)[vertical],
                "size_band": np.asarray(self.size_bands, dtype=object)[size_band],
                "in_market": live.astype(bool),
                "mask": mask_value.astype("int64"),
                "converted_via": np.array(["", *KINDS], dtype=object)[via],
                "n": counts,
            }
        )

    def _partner_coverage(
        self, partners: pd.Index, partner: np.ndarray, account: np.ndarray
    ) -> pd.DataFrame:
        """Per partner: distinct in-market accounts among its granted active rows (rule 6)."""
        pairs = pd.unique(partner.astype("int64") * self.count + account)
        pair_partner, pair_account = np.divmod(pairs, self.count)
        covered = np.bincount(pair_partner, minlength=len(partners))
        converted = np.bincount(
            pair_partner, weights=self.via[pair_account] > 0, minlength=len(partners)
        )
        present = np.flatnonzero(covered)
        return pd.DataFrame(
            {
                "partner_id": partners.to_numpy()[present].astype("int64"),
                "covered_accounts": covered[present].astype("int64"),
                "converted_accounts": converted[present].astype("int64"),
            }
        )


def summed_partner_coverage(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Partner coverage counts (`partner_coverage_counts` columns) of parts holding disjoint
    accounts, added up per partner."""
    coverage = pd.concat(parts, ignore_index=True)
    return coverage.groupby("partner_id", as_index=False, sort=True).sum().astype("int64")


def partner_figures(
    partners: pd.DataFrame,
    coverage_counts: pd.DataFrame,
    agreements: pd.DataFrame,
    feedback: pd.DataFrame,
    d: date,
) -> pd.DataFrame:
    """Rule 6: one row per partner in `partners` with its figures on `d`.

    - `covered_accounts`, `converted_accounts`: from `coverage_counts` (0 when absent)
    - `agreements_in_force`: its agreements in force on `d` (rule 2)
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

    in_force = agreements_in_force(agreements, d).groupby("partner_id").size()
    frame["agreements_in_force"] = frame["partner_id"].map(in_force)

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
    # `nps_from_counts`, per row: null where nothing was scored.
    responses = frame["nps_responses"].where(frame["nps_responses"] > 0).astype("float64")
    frame["nps"] = 100.0 * (frame["nps_promoters"] - frame["nps_detractors"]) / responses
    return frame.sort_values("external_id", kind="stable").reset_index(drop=True)[PARTNER_COLUMNS]


def week_metrics(
    *,
    accounts: pd.DataFrame,
    coverage: pd.DataFrame,
    agreements: pd.DataFrame,
    agreement_regions: pd.DataFrame,
    agreement_verticals: pd.DataFrame,
    feedback: pd.DataFrame,
    partners: pd.DataFrame,
    d: date,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All metrics on `d` from account-level frames, evaluated in memory.

    Output: (segment counts with ratios, per-partner figures). Loading the frames once and
    calling this for several dates is how a backfill avoids reloading the market each week.
    """
    active = active_coverage(
        coverage, accounts, agreements, agreement_regions, agreement_verticals, d
    )
    segments = with_ratios(segment_counts(mask_groups(accounts, kinds_mask(active), d)))
    figures = partner_figures(
        partners, partner_coverage_counts(active, accounts, d), agreements, feedback, d
    )
    return segments, figures


_NEVER = np.iinfo(np.int64).max


def _day_numbers(column: pd.Series, missing: int) -> np.ndarray:
    """Dates as days since 1970 (int64), `missing` where null."""
    days = pd.to_datetime(column).to_numpy(dtype="datetime64[D]")
    numbers = days.astype("int64")
    return np.where(np.isnat(days), missing, numbers)


class PreparedMarket:
    """The account-level frames turned once into integer arrays, so that many as-of dates are
    evaluated at the cost of a few vectorised passes each (a backfill's "smarter pass").

    `week_metrics(d)` returns exactly what `week_metrics(d=d, **frames)` returns; the module's
    functions above remain the readable statement of the rules, and tests hold the two equal.
    """

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
        self.feedback = feedback
        self.partners = partners

        accounts = accounts.sort_values("account_id", kind="stable").reset_index(drop=True)
        account_ids = accounts["account_id"].to_numpy(dtype="int64")
        segment_index = pd.MultiIndex.from_frame(accounts[SEGMENT_KEYS].astype(object))
        self.segment, segments = segment_index.factorize()
        self.segments = pd.DataFrame(list(segments), columns=SEGMENT_KEYS, dtype=object)
        self.segment_count = len(self.segments)
        self.entered = _day_numbers(accounts["entered_on"], _NEVER)
        self.archived = _day_numbers(accounts["archived_on"], _NEVER)
        self.converted_on = _day_numbers(accounts["converted_on"], _NEVER)
        self.via = (
            accounts["converted_via"]
            .fillna("")
            .map({"": 0, **{kind: position + 1 for position, kind in enumerate(KINDS)}})
            .to_numpy(dtype="int64")
        )
        self.account_count = len(accounts)

        # Assignments of accounts outside `accounts` never count (as in `active_coverage`).
        position = np.searchsorted(account_ids, coverage["account_id"].to_numpy(dtype="int64"))
        position = np.minimum(position, max(0, len(account_ids) - 1))
        known = (
            account_ids[position] == coverage["account_id"].to_numpy(dtype="int64")
            if len(account_ids)
            else np.zeros(len(coverage), dtype=bool)
        )
        coverage = coverage[known]
        self.row_account = position[known]
        self.row_bit = coverage["kind"].map(KIND_BITS).to_numpy(dtype="int64")
        self.row_start = _day_numbers(coverage["start_date"], _NEVER)
        self.row_end = _day_numbers(coverage["end_date"], _NEVER)
        via_partner = coverage["kind"].isin(PARTNER_KINDS).to_numpy()
        self.partner_rows = np.flatnonzero(via_partner)
        partner_ids = coverage["partner_id"].to_numpy()[self.partner_rows].astype("int64")
        # Each partner-kind row's cell: its partner and its account's region and vertical.
        cells = pd.DataFrame(
            {
                "partner_id": partner_ids,
                "region": accounts["region"].to_numpy(dtype=object)[
                    self.row_account[self.partner_rows]
                ],
                "vertical": accounts["vertical"].to_numpy(dtype=object)[
                    self.row_account[self.partner_rows]
                ],
            }
        )
        cell_index = pd.MultiIndex.from_frame(cells)
        self.row_cell, unique_cells = cell_index.factorize()
        self.cells = pd.DataFrame(
            list(unique_cells), columns=["partner_id", "region", "vertical"]
        ).astype({"partner_id": "int64"})
        self.cells["cell"] = np.arange(len(self.cells))
        self.partner_row_partner = partner_ids

    def _granted_cells(self, d: date) -> np.ndarray:
        """Per cell: whether an agreement of its partner in force on `d` grants its region and
        vertical (rule 3; no regions or no verticals on the agreement mean all)."""
        granted = np.zeros(len(self.cells), dtype=bool)
        in_force = agreements_in_force(self.agreements, d)[["agreement_id", "partner_id"]]
        if in_force.empty or self.cells.empty:
            return granted
        pairs = self.cells.merge(in_force, on="partner_id", how="inner")
        pairs = _granting(pairs, self.agreement_regions, self.agreement_verticals)
        granted[pairs["cell"].to_numpy(dtype="int64")] = True
        return granted

    def week_metrics(self, d: date) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(segment counts with ratios, per-partner figures) on `d`, as `week_metrics`."""
        day = np.datetime64(d, "D").astype("int64")
        counting = (self.row_start <= day) & (day <= self.row_end)
        counting[self.partner_rows] &= self._granted_cells(d)[self.row_cell]

        live = (self.entered <= day) & (day < self.archived)
        mask = np.zeros(self.account_count, dtype="int64")
        for bit in KIND_BITS.values():
            rows = counting & (self.row_bit == bit)
            hit = np.bincount(self.row_account[rows], minlength=self.account_count) > 0
            mask |= np.where(hit, bit, 0)
        mask = np.where(live, mask, 0)
        converted = live & (self.converted_on <= day)
        via = np.where(converted, self.via, 0)

        # One bin per (segment, in market, mask, winning kind).
        shape = (self.segment_count, 2, 16, len(KINDS) + 1)
        key = np.ravel_multi_index((self.segment, live.astype("int64"), mask, via), shape)
        counts = np.bincount(key, minlength=int(np.prod(shape)))
        bins = np.flatnonzero(counts)
        segment, in_market_flag, mask_value, via_value = np.unravel_index(bins, shape)
        groups = self.segments.iloc[segment].reset_index(drop=True)
        groups["in_market"] = in_market_flag.astype(bool)
        groups["mask"] = mask_value.astype("int64")
        groups["converted_via"] = np.array(["", *KINDS], dtype=object)[via_value]
        groups["n"] = counts[bins].astype("int64")
        segments = with_ratios(segment_counts(groups[MASK_GROUP_COLUMNS]))

        # Per partner: distinct in-market accounts among its counting assignments.
        partner_counting = counting[self.partner_rows]
        accounts_of_rows = self.row_account[self.partner_rows]
        keep = partner_counting & live[accounts_of_rows]
        pairs = pd.DataFrame(
            {"partner_id": self.partner_row_partner[keep], "account": accounts_of_rows[keep]}
        ).drop_duplicates()
        pairs["converted"] = converted[pairs["account"].to_numpy()].astype("int64")
        coverage_counts = (
            pairs.groupby("partner_id")
            .agg(covered_accounts=("account", "size"), converted_accounts=("converted", "sum"))
            .reset_index()
            .astype("int64")
        )
        figures = partner_figures(self.partners, coverage_counts, self.agreements, self.feedback, d)
        return segments, figures
