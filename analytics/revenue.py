"""The revenue figures of docs/metrics.md rules 10-17 as pure functions: arrays in, frames out.

Nothing here touches the ORM: `analytics.revenue_selectors` reads, these functions compute, the
weekly run (`analytics.services`) writes. The date rules (in the pipeline, in the forecast, won
in the 52 weeks, a running subscription, coverage running, agreement in force) are stated once
in the apps' `rules.py` and applied here with `rule.mask` and `rule.span`; the rates with
`crm.currencies.RateTable` (rule 10).

Money is exact. Amounts arrive as whole cents (int64), rates as `Decimal`s of at most ten
places, win probabilities as hundredths of a per cent; every sum is taken over whole numbers in
units of 10^-16 of the reporting currency (Python integers, never floats) and rounded to cents
once, half up, when a figure is stored (`to_cents`). The per-deal sums are grouped first: the
opportunities sharing a key, a rate period and a probability add their cents in numpy, and those
few sums are multiplied by their factors in int64 pieces small enough never to overflow, joined
once per key as Python integers (`_money`); rollups add such pieces too (`_limbs`).

One as-of day `d` is `PreparedRevenue.figures(d, segment_counts)`. What does not depend on `d`
is prepared once: the rate period of each deal's close and, for a backfill, which channels and
partners influenced each won deal (rule 16; a single week finds it for its won deals alone). A
backfill prepares the whole table once and asks for each day, each deal's days in rules 12-14
found once as spans (`many_days`); a single week prepares only the deals that can count on its
day and tests the rules on that day. Both go through the same code past that, and the rules'
spans and masks are the same rules, so they agree.

Input frames (dates `datetime64`, missing ones NaT):

- opportunities: `opportunity_id, account_id, region, vertical, size_band, channel, partner_id,
  stage, recurring, amount_cents, currency, probability_bp, opened_on, expected_close_on,
  closed_on, ends_on` (`partner_id` 0 for direct and online; `probability_bp` the sub-stage's
  probability in hundredths of a per cent, 0 to 10,000), and optionally `rep_id` (a direct
  deal's rep, for `PreparedRevenue.sourced`)
- coverage: `account_id, kind, partner_id, start_date, end_date` (the accounts of won deals;
  `kind` as text or as its position in `KINDS`)
- agreements: `metrics.AGREEMENT_COLUMNS` and `annual_target_cents, currency` (both null
  when none); agreement_regions / agreement_verticals: `agreement_id, region` /
  `agreement_id, vertical`, in the same codes as the opportunities' segments
- partners: `partner_id, external_id, name, channel_kind`
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext
from itertools import combinations

import numpy as np
import pandas as pd

from analytics.metrics import KINDS, PARTNER_KINDS, SEGMENT_KEYS
from analytics.programme import year_start
from analytics.running import Moving, RunningDistinct, RunningSums
from channels.rules import (
    COVERAGE_RUNNING,
    FORECAST_DAYS,
    IN_FORECAST,
    IN_PIPELINE,
    SUBSCRIBED,
    WON_IN_52_WEEKS,
)
from crm.currencies import NO_DAY, MissingRate, RateTable, day_numbers
from crm.rules import DateRule
from partners.rules import AGREEMENT_IN_FORCE

# Rule 16: influence counts coverage on any of the 91 days before the close.
INFLUENCE_DAYS = 91
FORECAST_WEEKS = FORECAST_DAYS // 7
# Exact money: one unit is 10^-16 of the reporting currency; a cent is 10^14 units. A rate of
# at most ten decimals times 10^10, and a probability in hundredths of a per cent (of at most
# 10^4), make whole numbers of units from whole cents.
RATE_SCALE = 10**10
PROBABILITY_SCALE = 10**4
_CENT_DIGITS = 14
UNITS_PER_CENT: int = 10**_CENT_DIGITS
# Precision of the few figures that divide (D, white-space value, I): far beyond a cent.
_PRECISE = Context(prec=60)
_ONE = Decimal(1)

COUNT_COLUMNS: list[str] = [
    "pipeline_count",
    "won_count",
    "won_accounts",
    "subscribers",
    "influenced_count",
    "forecast_count",
]
AMOUNT_COLUMNS: list[str] = [
    "pipeline_amount",
    "weighted_pipeline",
    "won_amount",
    "mrr",
    "influenced_amount",
    "forecast_amount",
]
# Per segment over all channels only (rule 15): none without a won account.
VALUE_COLUMNS: list[str] = ["white_space_value", "sales_revenue"]
FIGURE_COLUMNS: list[str] = [*COUNT_COLUMNS, *AMOUNT_COLUMNS, *VALUE_COLUMNS]
# The channel of a row: a sourcing channel kind, or "" for all channels together.
ROW_KEYS: list[str] = [*SEGMENT_KEYS, "channel"]
PARTNER_COLUMNS: list[str] = [
    "partner_id",
    "external_id",
    "name",
    "channel_kind",
    "pipeline_count",
    "pipeline_amount",
    "weighted_pipeline",
    "won_count",
    "won_amount",
    "mrr",
    "subscribers",
    "influenced_count",
    "influenced_amount",
    "forecast_count",
    "forecast_amount",
    "target_amount",
]
PARTNER_ROLLUP_COLUMNS: list[str] = [
    "channel_kind",
    "partners",
    "pipeline_count",
    "pipeline_amount",
    "weighted_pipeline",
    "won_count",
    "won_amount",
    "mrr",
    "forecast_count",
    "forecast_amount",
    "target_amount",
]
FORECAST_COLUMNS: list[str] = ["channel", "weeks_ahead", "forecast_count", "forecast_amount"]
# The money columns of each table, in units until `to_cents`.
PARTNER_AMOUNTS: list[str] = [
    "pipeline_amount",
    "weighted_pipeline",
    "won_amount",
    "mrr",
    "influenced_amount",
    "forecast_amount",
    "target_amount",
]
STAGES: tuple[str, ...] = ("open", "won", "lost")
OPPORTUNITY_COLUMNS: list[str] = [
    "opportunity_id",
    "account_id",
    *SEGMENT_KEYS,
    "channel",
    "partner_id",
    "stage",
    "recurring",
    "amount_cents",
    "currency",
    "probability_bp",
    "opened_on",
    "expected_close_on",
    "closed_on",
    "ends_on",
]
COVERAGE_COLUMNS: list[str] = ["account_id", "kind", "partner_id", "start_date", "end_date"]
DATE_FIELDS = ("opened_on", "expected_close_on", "closed_on", "ends_on")
# Channels as positions in `KINDS`: those a partner owns, and the one a rep owns.
PARTNER_CHANNELS: list[int] = [KINDS.index(kind) for kind in PARTNER_KINDS]
DIRECT_CHANNEL = KINDS.index("direct")


def to_cents(units: int) -> int:
    """A sum in units (10^-16 of the reporting currency) in whole cents: rounded once, half up
    (rule 10)."""
    return (int(units) + UNITS_PER_CENT // 2) // UNITS_PER_CENT


def value_to_cents(value: Decimal | None) -> int | None:
    """A derived figure (rule 15, units as a Decimal) in whole cents, half up; None stays
    None."""
    # A missing value may arrive as None or as pandas' NaN.
    if value is None or value != value:
        return None
    # A shift of the exponent at the values' own precision: exact, as a division would be.
    return int(value.scaleb(-_CENT_DIGITS, _PRECISE).quantize(_ONE, ROUND_HALF_UP))


def rate_units(rate: Decimal) -> int:
    """A rate (at most ten decimals) as a whole number of 10^-10."""
    scaled = rate.scaleb(10)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"a rate has at most ten decimals: {rate}")
    return int(scaled)


def _exact_sum_parts(
    keys: np.ndarray, cents: np.ndarray, size: int
) -> list[tuple[np.ndarray, int]]:
    """Per key in `range(size)`, the exact sum of the non-negative int64 `cents` of its rows, as
    parts (int64 sums below 2^53, and the bits each is shifted by) whose shifted sum it is.
    When no sum can reach 2^53 a float64 holds every partial sum exactly: one part; otherwise
    each value is split in two parts of 24 bits and less, whose sums a float64 holds exactly
    for up to hundreds of millions of rows."""
    if int(cents.max(initial=0)) * len(cents) < 1 << 53:
        # Every sum below 2^53: exact in one float64 pass.
        whole = np.bincount(keys, weights=cents.astype("float64"), minlength=size)
        return [(whole.astype("int64"), 0)]
    low = (cents & 0xFFFFFF).astype("float64")
    high = (cents >> 24).astype("float64")
    return [
        (np.bincount(keys, weights=low, minlength=size).astype("int64"), 0),
        (np.bincount(keys, weights=high, minlength=size).astype("int64"), 24),
    ]


def _exact_sums(keys: np.ndarray, cents: np.ndarray, size: int) -> np.ndarray:
    """Per key in `range(size)`, the exact sum of the non-negative int64 `cents` of its rows,
    as Python integers (an object array)."""
    sums = np.zeros(size, dtype="int64").astype(object)
    for part, shift in _exact_sum_parts(keys, cents, size):
        sums = sums + part.astype(object) * (1 << shift)
    return sums


def _dense(values: np.ndarray) -> bool:
    """Whether the non-negative int64 `values` are few enough distinct numbers, small enough,
    for tables indexed by value (no larger than a few times their count)."""
    return int(values.max(initial=0)) < 4 * len(values) + (1 << 16)


def _codes_of(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of the non-negative int64 `values`, sorted, and each value's
    position among them (as `np.unique(..., return_inverse=True)`, without sorting the rows
    when the values are small)."""
    if not _dense(values):
        distinct, which = np.unique(values, return_inverse=True)
        return distinct, which.astype("int64").reshape(-1)
    present = np.zeros(int(values.max(initial=0)) + 1, dtype=bool)
    present[values] = True
    position = np.cumsum(present, dtype="int64") - 1
    return np.flatnonzero(present), position[values]


def _positions_in(ids: pd.Index, values: np.ndarray) -> np.ndarray:
    """Each of the int64 `values`' position in the distinct `ids`, -1 when absent (as
    `ids.get_indexer(values)`): through a table indexed by id when the ids are non-negative
    and small, a lookup per value with no hashing."""
    known = ids.to_numpy(dtype="int64")
    values = np.asarray(values, dtype="int64")
    if not len(known) or int(known.min()) < 0 or not _dense(known):
        return np.asarray(ids.get_indexer(pd.Index(values)), dtype="int64")
    table = np.full(int(known.max()) + 2, -1, dtype="int64")
    table[known] = np.arange(len(known), dtype="int64")
    if len(values) and (int(values.min()) < 0 or int(values.max()) >= len(table)):
        # Values outside the table (negative, or above every id) look at its last entry: -1.
        outside = (values < 0) | (values >= len(table))
        values = np.where(outside, len(table) - 1, values)
    positions: np.ndarray = table[values]
    return positions


# Products of whole numbers below 2^27 and 2^26 are below 2^53, and fewer than 2^10 of them add
# up below 2^63: `_money` multiplies its sums by its factors in int64 in such pieces.
_SUM_LIMB_BITS = 27
_FACTOR_LIMB_BITS = 26
_MOST_FACTORS = 1 << 10


def _money(
    keys: np.ndarray,
    cents: np.ndarray,
    factors: np.ndarray,
    values: Callable[[np.ndarray], np.ndarray],
    size: int,
) -> np.ndarray:
    """Per key in `range(size)`: the sum over its rows of cents x factor, exactly, in units.
    `factors` are small non-negative integer codes, one per row, of the few distinct factors
    (a rate period times a probability) whose whole-number values `values(codes)` gives: the
    cents are summed per key and factor code in numpy, then multiplied by the factors, as
    int64 pieces (`_SUM_LIMB_BITS`, `_FACTOR_LIMB_BITS`) joined once per key in Python."""
    if not len(keys):
        return np.array([0] * size, dtype=object)
    distinct, which = _codes_of(np.asarray(factors, dtype="int64"))
    parts = _exact_sum_parts(which * size + keys, cents, len(distinct) * size)
    return _factored(parts, [int(value) for value in values(distinct)], size)


def _factored(
    parts: Sequence[tuple[np.ndarray, int]], factor_values: Sequence[int], size: int
) -> np.ndarray:
    """Per key in `range(size)`: the sum over the factors `factor_values` of factor x sum,
    exactly (Python integers, an object array); the sums per factor and key in `parts`, each
    table `len(factor_values) x size` flat, non-negative and below 2^54, whose shifted sum
    (`values << shift`) they are."""
    if not factor_values:
        return np.array([0] * size, dtype=object)
    count = len(factor_values)
    if count >= _MOST_FACTORS or min(factor_values) < 0:
        sums = np.zeros(count * size, dtype="int64").astype(object)
        for part, shift in parts:
            sums = sums + part.astype(object) * (1 << shift)
        table = sums.reshape(count, size) * np.array(factor_values, dtype=object).reshape(-1, 1)
        total: np.ndarray = table.sum(axis=0)
        return total
    widest = max(max(factor_values).bit_length(), 1)
    factor_limbs = [
        np.array(
            [(value >> shift) & ((1 << _FACTOR_LIMB_BITS) - 1) for value in factor_values],
            dtype="int64",
        )
        for shift in range(0, widest, _FACTOR_LIMB_BITS)
    ]
    pieces = []
    sum_mask = (1 << _SUM_LIMB_BITS) - 1
    for part, shift in parts:
        table = part.reshape(count, size)
        for low_bits, sum_limb in (
            (0, table & sum_mask),
            (_SUM_LIMB_BITS, table >> _SUM_LIMB_BITS),
        ):
            for number, factor_limb in enumerate(factor_limbs):
                products = factor_limb @ sum_limb  # below 2^63: see `_MOST_FACTORS`
                if products.any():
                    pieces.append((products, shift + low_bits + number * _FACTOR_LIMB_BITS))
    return _shifted_sum(pieces, size)


# `_shifted_sum` adds in words of 30 bits: a word gathers fewer than 2^32 of them in an int64.
_WORD_BITS = 30


def _shifted_sum(pieces: Sequence[tuple[np.ndarray, int]], size: int) -> np.ndarray:
    """The sum of `values << shift` over `pieces` (non-negative int64 arrays of `size`
    entries), exactly, as Python integers (an object array). The pieces are cut into words of
    `_WORD_BITS` bits, added per word in int64, the carries passed on, and two words at a time
    made Python integers: few operations on Python integers, however many the pieces."""
    mask = (1 << _WORD_BITS) - 1
    words: list[np.ndarray] = []

    def add(at: int, values: np.ndarray) -> None:
        while len(words) <= at:
            words.append(np.zeros(size, dtype="int64"))
        words[at] += values

    for values, shift in pieces:
        at, within = divmod(shift, _WORD_BITS)
        add(at, (values & (mask >> within)) << within)
        rest = values >> (_WORD_BITS - within)
        while rest.any():
            at += 1
            add(at, rest & mask)
            rest >>= _WORD_BITS
    at = 0
    while at < len(words):
        carry = words[at] >> _WORD_BITS
        if carry.any():
            words[at] &= mask
            add(at + 1, carry)
        at += 1
    total = np.zeros(size, dtype="int64").astype(object)
    for at in range(0, len(words), 2):
        pair = words[at] + (words[at + 1] << _WORD_BITS if at + 1 < len(words) else 0)
        if pair.any():
            total = total + (pair.astype(object) << (at * _WORD_BITS))
    return total


def _distinct_counts(keys: np.ndarray, accounts: np.ndarray, size: int) -> np.ndarray:
    """Per key in `range(size)`, how many distinct accounts its rows name."""
    if not len(keys):
        return np.zeros(size, dtype="int64")
    pairs = pd.unique(keys.astype("int64") * (int(accounts.max()) + 1) + accounts)
    return np.bincount(pairs // (int(accounts.max()) + 1), minlength=size).astype("int64")


def _rule_columns(rule: DateRule, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {field: columns[field] for field in rule.fields}


def _days(values: pd.Series) -> np.ndarray:
    return pd.to_datetime(pd.Series(values)).to_numpy(dtype="datetime64[D]")


@dataclass(frozen=True)
class Influence:
    """Rule 16 for the won deals: per deal, the bit set of the channel kinds other than its own
    (`1 << KINDS.index(kind)`) that covered its account on some day of the 13 weeks before its
    close; and the (deal row, partner id) pairs of the partners other than its own that did."""

    kinds: np.ndarray
    partner_rows: np.ndarray
    partner_ids: np.ndarray


def _pairs(left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (i, j) with `left[i] == right[j]` (int64 keys): positions into `left` and into
    `right`, grouped by i in order. One sort of `right` and a binary search per `left` key, so
    a few hundred thousand keys pair up without a hash join; non-negative keys no larger
    than a few times their count (account ids) are counted per key instead of searched."""
    order = np.argsort(right, kind="stable")
    small = len(left) and len(right) and min(left.min(), right.min()) >= 0
    if small and max(left.max(), right.max()) < 4 * (len(left) + len(right)) + (1 << 16):
        per_key = np.bincount(right, minlength=int(left.max()) + 1)
        starts = np.cumsum(per_key) - per_key
        first, counts = starts[left], per_key[left]
    else:
        ordered = right[order]
        first = np.searchsorted(ordered, left, side="left")
        counts = np.searchsorted(ordered, left, side="right") - first
    left_rows = np.repeat(np.arange(len(left), dtype="int64"), counts)
    # The position of each pair within its i's run of matches.
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    within = np.arange(len(left_rows), dtype="int64") - starts
    return left_rows, order[np.repeat(first, counts) + within].astype("int64")


def _grants(
    asked_agreement: np.ndarray,
    asked_value: np.ndarray,
    agreement_ids: pd.Index,
    scope: pd.DataFrame,
    column: str,
) -> np.ndarray:
    """Whether each agreement (a position in `agreement_ids`) grants the value asked beside it:
    it lists the value in `scope` (`agreement_id, column`), or lists none (rule 3b)."""
    listed_agreement = agreement_ids.get_indexer(pd.Index(scope["agreement_id"].to_numpy()))
    known = listed_agreement >= 0
    listed_agreement = listed_agreement[known].astype("int64")
    listed_value = scope[column].to_numpy()[known]
    lists_any = np.zeros(len(agreement_ids), dtype=bool)
    lists_any[listed_agreement] = True
    # The values as one set of codes, whatever their type (ids or codes); ids hashed as
    # integers, not as Python objects.
    asked_value = np.asarray(asked_value)
    listed_value = np.asarray(listed_value)
    if asked_value.dtype.kind in "iu" and listed_value.dtype.kind in "iu":
        every_value = np.concatenate([asked_value, listed_value]).astype("int64")
    else:
        every_value = np.concatenate([asked_value.astype(object), listed_value.astype(object)])
    codes, values = pd.factorize(every_value)
    width = len(values) + 1
    asked = asked_agreement * width + codes[: len(asked_value)]
    listed = listed_agreement * width + codes[len(asked_value) :]
    return np.asarray(~lists_any[asked_agreement] | np.isin(asked, listed), dtype=bool)


def _kind_positions(kinds: pd.Series) -> np.ndarray:
    """Channel kinds, as text or already as positions in `KINDS`, as positions."""
    if kinds.dtype.kind in "iu":
        return kinds.to_numpy(dtype="int64")
    return pd.Index(KINDS).get_indexer(pd.Index(kinds.to_numpy(dtype=object))).astype("int64")


def influence(
    won: pd.DataFrame,
    coverage: pd.DataFrame,
    agreements: pd.DataFrame,
    agreement_regions: pd.DataFrame,
    agreement_verticals: pd.DataFrame,
) -> Influence:
    """Rule 16: who influenced each won deal of `won` (`account_id, region, vertical, channel,
    partner_id, closed_on`; one row per deal, in order). A channel (and a coverage row's
    `kind`) is a kind's text or its position in `KINDS`.

    A coverage row of another channel kind, or of another partner, influenced the deal when it
    actively covered the account (rule 3: running, and for the partner kinds under an
    agreement in force granting the account's region and vertical, on the same day) on some
    day from `closed_on - 91` to `closed_on - 1`. Every test is on integers: the deals and
    coverage rows of an account paired by a sorted search, the days as day numbers.
    """
    count = len(won)
    none = Influence(np.zeros(count, dtype="int8"), np.zeros(0, "int64"), np.zeros(0, "int64"))
    if not count or coverage.empty:
        return none
    partner_kinds = np.isin(KINDS, PARTNER_KINDS)
    close = day_numbers(won["closed_on"].to_numpy(dtype="datetime64[D]"))
    source = _kind_positions(won["channel"])
    source_partner = won["partner_id"].fillna(0).to_numpy(dtype="int64")
    first, last = COVERAGE_RUNNING.span(
        {
            "start_date": _days(coverage["start_date"]),
            "end_date": _days(coverage["end_date"]),
        }
    )
    kind = _kind_positions(coverage["kind"])
    partner = coverage["partner_id"].fillna(0).to_numpy(dtype="int64")

    deal, row = _pairs(
        won["account_id"].to_numpy(dtype="int64"), coverage["account_id"].to_numpy(dtype="int64")
    )
    # The days of the 13 weeks before the close on which the row runs.
    low = np.maximum(close[deal] - INFLUENCE_DAYS, first[row])
    high = np.minimum(close[deal] - 1, last[row])
    pair_kind, pair_partner = kind[row], partner[row]
    other_kind = pair_kind != source[deal]
    other_partner = partner_kinds[pair_kind] & (pair_partner != source_partner[deal])
    keep = np.flatnonzero((low <= high) & (other_kind | other_partner))
    deal, low, high = deal[keep], low[keep], high[keep]
    pair_kind, pair_partner = pair_kind[keep], pair_partner[keep]
    other_kind, other_partner = other_kind[keep], other_partner[keep]
    valid = ~partner_kinds[pair_kind]

    owned = np.flatnonzero(~valid)
    if len(owned) and not agreements.empty:
        in_force_first, in_force_last = AGREEMENT_IN_FORCE.span(
            {
                field: (
                    agreements[field].to_numpy(dtype=object)
                    if field in AGREEMENT_IN_FORCE.value_fields
                    else _days(agreements[field])
                )
                for field in AGREEMENT_IN_FORCE.fields
            }
        )
        ever = np.flatnonzero(in_force_first <= in_force_last)
        agreement_ids = pd.Index(agreements["agreement_id"].to_numpy()[ever])
        pair, term = _pairs(
            pair_partner[owned], agreements["partner_id"].to_numpy(dtype="int64")[ever]
        )
        pair_rows = owned[pair]
        # In force on a day the row covers the account, within the 13 weeks.
        meets = np.maximum(low[pair_rows], in_force_first[ever][term]) <= np.minimum(
            high[pair_rows], in_force_last[ever][term]
        )
        pair_rows, term = pair_rows[meets], term[meets]
        deals_of = deal[pair_rows]
        granted = _grants(
            term,
            won["region"].to_numpy()[deals_of],
            agreement_ids,
            agreement_regions,
            "region",
        ) & _grants(
            term,
            won["vertical"].to_numpy()[deals_of],
            agreement_ids,
            agreement_verticals,
            "vertical",
        )
        valid[pair_rows[granted]] = True

    kinds = np.zeros(count, dtype="int8")
    influencing = valid & other_kind
    for position in range(len(KINDS)):
        kinds[deal[influencing & (pair_kind == position)]] |= np.int8(1 << position)
    chosen = valid & other_partner
    width = int(pair_partner[chosen].max(initial=0)) + 1
    # Each (deal, partner) once, by deal then partner.
    distinct = np.unique(deal[chosen] * width + pair_partner[chosen])
    return Influence(kinds, distinct // width, distinct % width)


@dataclass(frozen=True)
class WeekRevenue:
    """What a week's snapshot stores of revenue, money in units (`to_cents` when stored):
    per segment and channel (`ROW_KEYS` + `FIGURE_COLUMNS`, channel "" for all channels), the
    rollups of those (region, vertical, size band "" for any), per partner
    (`PARTNER_COLUMNS`), per partner channel kind (`PARTNER_ROLLUP_COLUMNS`), and the forecast
    by week ahead (`FORECAST_COLUMNS`)."""

    segments: pd.DataFrame
    rollups: pd.DataFrame
    partners: pd.DataFrame
    partner_rollups: pd.DataFrame
    forecast: pd.DataFrame


@dataclass(frozen=True)
class _SegmentDay:
    """A day's figures per segment and channel but rule 16's (`PreparedRevenue._uninfluenced`),
    and of its won deals (in the order found) the amounts, segments and factor codes that
    rule 16's figures sum; the distinct won accounts and subscribers per segment over all
    channels."""

    figures: dict[str, np.ndarray]
    won_cents: np.ndarray
    won_segments: np.ndarray
    won_value: np.ndarray
    won_accounts_overall: np.ndarray
    subscribers_overall: np.ndarray


@dataclass(frozen=True)
class Sourced:
    """Won revenue sourced per partner (`partners`) and per rep (`reps`), in cents of the
    reporting currency; an owner that sourced nothing is absent."""

    partners: dict[int, int]
    reps: dict[int, int]


@dataclass(frozen=True)
class Deals:
    """The opportunities as `PreparedRevenue` indexes them, one entry per deal in every array:
    ids, the segment (`segment` codes into `segment_index`, whose levels are `SEGMENT_KEYS` in
    the codes the rows are stored with), the region and vertical in the values the agreements'
    grants use (rule 3b), the channel's position in `KINDS`, the partner id (0 for direct and
    online), the stage (`STAGES`' text), recurring, the amount in cents, the currency's code in
    the rate table (-1 when it has no rate) and its name, the sub-stage probability in
    hundredths of a per cent, and the dates (`DATE_FIELDS`) as `datetime64[D]`, NaT when
    missing. No ids for deals read for one day's figures alone
    (`revenue_selectors.read_revenue(for_the_day=True)`)."""

    opportunity_id: np.ndarray | None
    account_id: np.ndarray
    segment: np.ndarray
    segment_index: pd.MultiIndex
    region: np.ndarray
    vertical: np.ndarray
    channel: np.ndarray
    partner_id: np.ndarray
    rep_id: np.ndarray
    stage: np.ndarray
    recurring: np.ndarray
    cents: np.ndarray
    currency: np.ndarray
    currency_names: np.ndarray
    probability_bp: np.ndarray
    dates: dict[str, np.ndarray]


def segments_of(keys: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Rows' segments from their key values (one array per `SEGMENT_KEYS`, any values): a code
    per row, and per key the value of each code. Keys that are all small non-negative integers
    (ids, or codes of another table) are combined arithmetically, codes in the order of their
    values; others are factorized, codes in the order segments first appear."""
    size = len(keys[0]) if keys else 0
    widths = [_integer_width(values) for values in keys]
    if size and all(widths) and np.prod(np.array(widths, dtype=float)) < 2**62:
        combined = np.zeros(size, dtype="int64")
        for values, width in zip(keys, widths, strict=True):
            combined = combined * width + np.asarray(values, dtype="int64")
        distinct, segment_codes = _codes_of(combined)
        per_value = []
        for width in reversed(widths):
            distinct, value = np.divmod(distinct, width)
            per_value.append(value)
        return segment_codes, per_value[::-1]
    # Each key factorized alone, then their codes combined as one integer: a million rows
    # factorize in a fraction of the time a MultiIndex of strings takes.
    combined = np.zeros(size, dtype="int64")
    per_key = []
    for values in keys:
        key_codes, key_values = pd.factorize(values)
        combined = combined * (len(key_values) + 1) + key_codes
        per_key.append((key_codes, np.asarray(key_values)))
    segment_codes, distinct = pd.factorize(combined)
    # The first row of each segment, segments in the order they first appear.
    first_rows = np.zeros(len(distinct), dtype="int64")
    first_rows[segment_codes[::-1]] = np.arange(size)[::-1]
    return np.asarray(segment_codes, dtype="int64"), [
        values[key_codes[first_rows]] for key_codes, values in per_key
    ]


def _integer_width(values: np.ndarray) -> int:
    """One more than the largest of `values` when they are non-negative integers no larger
    than a few times their count; else 0."""
    values = np.asarray(values)
    if values.dtype.kind not in "iu" or not len(values) or int(values.min()) < 0:
        return 0
    largest = int(values.max())
    return largest + 1 if largest < 4 * len(values) + (1 << 16) else 0


def deals_from_frame(frame: pd.DataFrame, rates: RateTable) -> Deals:
    """`Deals` from an opportunities frame (`OPPORTUNITY_COLUMNS`, region and vertical codes;
    and `rep_id`, the direct deals' reps, when the frame has it)."""
    segment, levels = segments_of([frame[key].to_numpy(dtype=object) for key in SEGMENT_KEYS])
    return Deals(
        opportunity_id=frame["opportunity_id"].to_numpy(dtype="int64"),
        account_id=frame["account_id"].to_numpy(dtype="int64"),
        segment=segment,
        segment_index=pd.MultiIndex.from_arrays([values.astype(object) for values in levels]),
        region=frame["region"].to_numpy(dtype=object),
        vertical=frame["vertical"].to_numpy(dtype=object),
        channel=pd.Index(KINDS)
        .get_indexer(pd.Index(frame["channel"].astype(object)))
        .astype("int64"),
        partner_id=frame["partner_id"].fillna(0).to_numpy(dtype="int64"),
        rep_id=(
            frame["rep_id"].fillna(0).to_numpy(dtype="int64")
            if "rep_id" in frame
            else np.zeros(len(frame), dtype="int64")
        ),
        stage=frame["stage"].to_numpy(dtype="U4"),
        recurring=frame["recurring"].to_numpy(dtype=bool),
        cents=frame["amount_cents"].to_numpy(dtype="int64"),
        currency=rates.currency_codes(frame["currency"].to_numpy(dtype=object)),
        currency_names=frame["currency"].to_numpy(dtype=object),
        probability_bp=frame["probability_bp"].to_numpy(dtype="int64"),
        dates={field: _days(frame[field]) for field in DATE_FIELDS},
    )


class PreparedRevenue:
    """The opportunities (and what they need) indexed once; `figures(d, ...)` gives one day.
    `many_days`: prepared to be asked for many days (a backfill), each then cheaper.

    Raises MissingRate (from `figures`) when a deal that counts on the day, or an agreement's
    target, is in a currency without a rate valid on the day that figure is about (rule 10).
    """

    def __init__(
        self,
        *,
        opportunities: pd.DataFrame | None = None,
        deals: Deals | None = None,
        coverage: pd.DataFrame,
        agreements: pd.DataFrame,
        agreement_regions: pd.DataFrame,
        agreement_verticals: pd.DataFrame,
        partners: pd.DataFrame,
        rates: RateTable,
        many_days: bool = False,
    ) -> None:
        if deals is None:
            if opportunities is None:
                raise TypeError("PreparedRevenue needs opportunities or deals")
            deals = deals_from_frame(opportunities, rates)
        self.rates = rates
        self.partners = partners
        self.agreements = agreements
        self.size = len(deals.account_id)
        self.opportunity_id = deals.opportunity_id
        self.account_id = deals.account_id
        self.segment_index = deals.segment_index
        self.segment = deals.segment
        self.segment_count = len(self.segment_index)
        self.channel = deals.channel
        self.key = self.segment * len(KINDS) + self.channel
        self.partner_id = deals.partner_id
        self.rep_id = deals.rep_id
        partner_ids = pd.Index(partners["partner_id"].to_numpy(dtype="int64"))
        # The partners' columns as stored, and each partner's place in the order of external ids.
        self.partner_columns = {
            name: partners[name].to_numpy()
            for name in ("partner_id", "external_id", "name", "channel_kind")
        }
        self.partner_rank = np.empty(len(partners), dtype="int64")
        self.partner_rank[
            np.argsort(partners["external_id"].to_numpy(dtype=object), kind="stable")
        ] = np.arange(len(partners))
        self.partner = _positions_in(partner_ids, self.partner_id)
        self.partner_ids = partner_ids
        recurring = deals.recurring
        self.recurring = recurring
        self.cents = deals.cents
        # Rule 11: a recurring deal counts 12 monthly fees in the pipeline and when won.
        self.year_cents = np.where(recurring, 12 * self.cents, self.cents)
        self.currency = deals.currency
        self.currency_names = deals.currency_names
        self.probability = deals.probability_bp
        self.columns: dict[str, np.ndarray] = {
            "stage": deals.stage,
            "recurring": recurring,
            **deals.dates,
        }
        self.expected = day_numbers(self.columns["expected_close_on"])
        # Each deal's account as a position, and each account's segment when every deal of an
        # account is in its segment (as read from the database), for `_distinct_accounts`.
        if _dense(self.account_id):
            # Ids small enough to index a table by (a market's): each is its own position.
            self.account = self.account_id
            self.account_count = int(self.account_id.max(initial=-1)) + 1
        else:
            accounts, self.account = _codes_of(self.account_id)
            self.account_count = len(accounts)
        account_segment = np.zeros(self.account_count, dtype="int64")
        account_segment[self.account] = self.segment
        self.account_segment: np.ndarray | None = (
            account_segment if bool((account_segment[self.account] == self.segment).all()) else None
        )
        won = np.flatnonzero(self.columns["stage"] == "won")
        self.won_rows = won
        self.won_close = day_numbers(self.columns["closed_on"][won])
        # Rule 13: a won deal counts at the rate of its close, whatever the day asked (the
        # won deals' periods; -1 for the others, which never count at it).
        self.close_period = np.full(self.size, -1, dtype="int64")
        self.close_period[won] = rates.periods(self.currency[won], self.won_close)
        # Rule 16's inputs. A backfill finds who influenced every won deal once; a single day
        # only its won deals of the 52 weeks, when asked (`_influence_on`): a deal's influence
        # is its own, whichever others are asked with it.
        self.deal_region = deals.region
        self.deal_vertical = deals.vertical
        self.coverage = coverage
        self.agreement_regions = agreement_regions
        self.agreement_verticals = agreement_verticals
        self.influence: Influence | None = self._influence_of(won) if many_days else None
        # With it, the bit set of each deal's influencing kinds (0 for the deals not won).
        self.influenced_kinds = np.zeros(self.size if many_days else 0, dtype="int8")
        if self.influence is not None:
            self.influenced_kinds[won] = self.influence.kinds
        self.rate_factor = np.array([rate_units(rate) for rate in rates.rates], dtype=object)
        # With `many_days` (a backfill), rules 12-14 as the days each deal counts on, first and
        # last (day numbers): the deals of each day are then two comparisons of integers.
        # Finding them costs more than testing the rules once, so a single day does that.
        self.spans: dict[DateRule, tuple[np.ndarray, np.ndarray]] = (
            {
                rule: rule.span(_rule_columns(rule, self.columns))
                for rule in (IN_PIPELINE, IN_FORECAST, WON_IN_52_WEEKS, SUBSCRIBED)
            }
            if many_days
            else {}
        )
        self.sweep: _Sweep | None = None
        # Whether the days asked are read from sums kept from day to day (`sweep_ready`).
        self.keeps_sums = many_days

    def _influence_of(self, won: np.ndarray) -> Influence:
        """Rule 16 for the won deals `won` (rows, in order), `Influence`'s deal rows being
        positions into `won`."""
        return influence(
            pd.DataFrame(
                {
                    "account_id": self.account_id[won],
                    "region": self.deal_region[won],
                    "vertical": self.deal_vertical[won],
                    "channel": self.channel[won],
                    "partner_id": self.partner_id[won],
                    "closed_on": self.columns["closed_on"][won],
                }
            ),
            self.coverage,
            self.agreements,
            self.agreement_regions,
            self.agreement_verticals,
        )

    def _influence_on(self, won: np.ndarray) -> Influence:
        """Rule 16 for the won deals `won` (rows, in order: those won in the 52 weeks of a
        day), `Influence`'s deal rows being rows of the deals: from what was found for every
        won deal (`many_days`), or found now for these alone."""
        if self.influence is None:
            found = self._influence_of(won)
            return Influence(found.kinds, won[found.partner_rows], found.partner_ids)
        in_day = np.zeros(self.size, dtype=bool)
        in_day[won] = True
        rows = self.won_rows[self.influence.partner_rows]
        counted = in_day[rows]
        return Influence(
            self.influenced_kinds[won], rows[counted], self.influence.partner_ids[counted]
        )

    def _distinct_accounts(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """How many distinct accounts `rows` name per segment and channel (`self.key`), and per
        segment over all channels. An account is in one segment, so each (channel, account) is
        marked once in a table of them, then counted by its account's segment: no sort and no
        hash; an account marked in any channel counts once over all of them."""
        width = len(KINDS)
        if self.account_segment is None:
            accounts = self.account_id[rows]
            return (
                _distinct_counts(self.key[rows], accounts, self.segment_count * width),
                _distinct_counts(self.segment[rows], accounts, self.segment_count),
            )
        # One flat table, an account's channels side by side: its marks come out by account.
        seen = np.zeros(self.account_count * width, dtype=bool)
        seen[self.account[rows] * width + self.channel[rows]] = True
        account, channel = np.divmod(np.flatnonzero(seen), width)
        by_channel = np.bincount(
            self.account_segment[account] * width + channel, minlength=self.segment_count * width
        )
        first = (
            np.flatnonzero(np.r_[True, account[1:] != account[:-1]]) if len(account) else account
        )
        overall = np.bincount(self.account_segment[account[first]], minlength=self.segment_count)
        return by_channel.astype("int64"), overall.astype("int64")

    def _rows_on(self, rule: DateRule, d: date) -> np.ndarray:
        """The deals `rule` holds for on `d` (one of rules 12-14), in order."""
        if rule not in self.spans:
            return np.flatnonzero(rule.mask(_rule_columns(rule, self.columns), d))
        first, last = self.spans[rule]
        day = day_numbers([d])[0]
        return np.flatnonzero((first <= day) & (day <= last))

    # -- rates ----------------------------------------------------------------------------

    def _periods_on(self, rows: np.ndarray, d: date) -> np.ndarray:
        """The rate period of each of `rows` on `d`; raises MissingRate for the first without."""
        codes = np.arange(len(self.rates.currencies))
        by_currency = self.rates.periods(codes, np.full(len(codes), day_numbers([d])[0]))
        # A currency without any rate (code -1) takes the last entry: no period.
        periods: np.ndarray = np.append(by_currency, -1)[self.currency[rows]]
        missing = np.flatnonzero(periods < 0)
        if len(missing):
            row = rows[missing[0]]
            raise MissingRate(str(self.currency_names[row]), d, self._named(row))
        return periods

    def _close_periods(self, rows: np.ndarray) -> np.ndarray:
        periods = self.close_period[rows]
        missing = np.flatnonzero(periods < 0)
        if len(missing):
            row = rows[missing[0]]
            closed = pd.Timestamp(self.columns["closed_on"][row]).date()
            raise MissingRate(str(self.currency_names[row]), closed, self._named(row))
        return np.asarray(periods)

    def _named(self, row: int) -> str:
        if self.opportunity_id is None:
            return "an opportunity"
        return f"opportunity {self.opportunity_id[row]}"

    def _factors(self, periods: np.ndarray, probability: np.ndarray | None = None) -> np.ndarray:
        """Per row, the code of its factor rate x probability (`_factor_values` gives the
        whole number, units per cent): a rate period and a probability, as one int64, so that
        the few distinct factors are found among a million rows without a Python object
        per row."""
        weight = PROBABILITY_SCALE if probability is None else probability.astype("int64")
        codes: np.ndarray = periods.astype("int64") * (PROBABILITY_SCALE + 1) + weight
        return codes

    def _factor_values(self, codes: np.ndarray) -> np.ndarray:
        periods, weights = np.divmod(codes.astype("int64"), PROBABILITY_SCALE + 1)
        values: np.ndarray = self.rate_factor[periods] * weights.astype(object)
        return values

    def _money(
        self, keys: np.ndarray, cents: np.ndarray, factors: np.ndarray, size: int
    ) -> np.ndarray:
        return _money(keys, cents, factors, self._factor_values, size)

    # -- the programme's revenue ----------------------------------------------------------

    def sourced(self, start: date, d: date) -> Sourced:
        """Rule 22's revenue: the deals won from `start` to `d` (by the day closed), per
        partner that sourced them (a distributor or partner) and per rep (direct), each at the
        rate of its own close (rule 13), a recurring deal as 12 monthly fees (rule 11); summed
        exactly and rounded to the cent once (rule 10). Only the deals prepared here count:
        the caller hands this over when they hold every deal won in those days. Raises
        MissingRate for a deal whose currency had no rate on the day it closed."""
        sweep = self._swept() if start == year_start(d) else None
        if sweep is not None:
            # A backfill asks for the year so far: kept from the day before.
            kept = sweep.sourced(d)
            if kept is not None:
                return kept
        first, last = day_numbers([start, d])
        rows = self.won_rows[(self.won_close >= first) & (self.won_close <= last)]
        values = self._factors(self._close_periods(rows))
        channel = self.channel[rows]
        by_partner = np.isin(channel, PARTNER_CHANNELS)
        by_rep = channel == DIRECT_CHANNEL
        return Sourced(
            *(
                self._owner_cents(owners[rows][chosen], rows[chosen], values[chosen])
                for owners, chosen in ((self.partner_id, by_partner), (self.rep_id, by_rep))
            )
        )

    def _owner_cents(
        self, owners: np.ndarray, rows: np.ndarray, factors: np.ndarray
    ) -> dict[int, int]:
        """Per owner id among `owners` (one per row of `rows`): the sum of the rows' values
        at their `factors`, in cents."""
        ids, keys = _codes_of(owners)
        units = self._money(keys, self.year_cents[rows], factors, len(ids))
        # `to_cents` over the whole column at once: Python integers, added and divided exactly.
        cents = (units + UNITS_PER_CENT // 2) // UNITS_PER_CENT
        return dict(zip(ids.tolist(), cents.tolist(), strict=True))

    # -- one day --------------------------------------------------------------------------

    def figures(self, d: date, segment_counts: pd.DataFrame) -> WeekRevenue:
        """Everything a week's snapshot stores of revenue, as of `d`.

        `segment_counts`: the day's coverage counts per segment (`SEGMENT_KEYS`, `accounts`,
        `covered_any`, `converted`, `white_space`), for rule 15. Raises MissingRate.
        """
        return WeekRevenue(**dict(self.figures_as_ready(d, segment_counts)))

    def figures_as_ready(
        self, d: date, segment_counts: pd.DataFrame | Callable[[], pd.DataFrame]
    ) -> Iterator[tuple[str, pd.DataFrame]]:
        """`figures(d, segment_counts)` one `WeekRevenue` field at a time, by name, each as
        soon as it is computed (the partners, their rollups, the segments, theirs, the
        forecast): a caller can store one while the next is computed. Raises MissingRate
        before the first. `segment_counts` may be what answers them when called, which
        happens only once the partners' tables are computed."""
        sweep = self._swept()
        if sweep is not None:
            # A backfill: the day's sums kept from the day before, when every deal that
            # counts has its rate (else the pass below names the first that does not).
            swept = sweep.on(d)
            if swept is not None:
                yield from self._swept_figures(d, swept, segment_counts)
                return
        pipeline = self._rows_on(IN_PIPELINE, d)
        forecast = self._rows_on(IN_FORECAST, d)
        won = self._rows_on(WON_IN_52_WEEKS, d)
        subscribed = self._rows_on(SUBSCRIBED, d)
        size = self.segment_count * len(KINDS)

        pipeline_periods = self._periods_on(pipeline, d)
        forecast_periods = self._periods_on(forecast, d)
        subscribed_periods = self._periods_on(subscribed, d)
        won_periods = self._close_periods(won)

        day_rows = {
            "pipeline": (pipeline, pipeline_periods),
            "forecast": (forecast, forecast_periods),
            "won": (won, won_periods),
            "subscribed": (subscribed, subscribed_periods),
        }
        # Rule 16 for the won deals, which both the partners and the segments count, found on
        # this thread while the figures that do not need it are computed on a thread of their
        # own (most of the work of either is numpy's, which lets the other run); the partners,
        # who need nothing else, follow at once and are handed over while those go on.
        with ThreadPoolExecutor(max_workers=1) as pool:
            computing = pool.submit(self._uninfluenced, **day_rows)
            influenced_by = self._influence_on(won)
            # The partners first: their table takes the longest to store.
            partner_rows = self._partner_rows(d, day_rows, influenced_by)
            yield "partners", partner_rows
            yield "partner_rollups", partner_rollups(partner_rows)
            day = computing.result()
        figures = day.figures
        won_cents, won_segments, won_value = day.won_cents, day.won_segments, day.won_value

        def counted(keys: np.ndarray) -> np.ndarray:
            return np.bincount(keys, minlength=size).astype("int64")

        # Rule 16: the won revenue each channel influenced, keyed by the influencing channel.
        # A deal influenced by several channels counts once for each: its rows repeated.
        kinds = influenced_by.kinds
        by = [np.flatnonzero(kinds & (1 << position)) for position in range(len(KINDS))]
        influenced = np.concatenate(by)
        keys = won_segments[influenced] * len(KINDS) + np.repeat(
            np.arange(len(KINDS)), [len(rows) for rows in by]
        )
        figures["influenced_count"] = counted(keys)
        figures["influenced_amount"] = self._money(
            keys, won_cents[influenced], won_value[influenced], size
        )

        any_influence = np.flatnonzero(kinds > 0)
        yield from self._segment_tables(
            figures,
            {
                "won_accounts": day.won_accounts_overall,
                "subscribers": day.subscribers_overall,
                "influenced_count": np.bincount(
                    won_segments[any_influence], minlength=self.segment_count
                ).astype("int64"),
                "influenced_amount": self._money(
                    won_segments[any_influence],
                    won_cents[any_influence],
                    won_value[any_influence],
                    self.segment_count,
                ),
            },
            segment_counts,
        )
        yield "forecast", self._forecast_rows(d, forecast, forecast_periods)

    def _segment_tables(
        self,
        figures: dict[str, np.ndarray],
        distinct: dict[str, np.ndarray],
        segment_counts: pd.DataFrame | Callable[[], pd.DataFrame],
    ) -> Iterator[tuple[str, pd.DataFrame]]:
        """The segments' rows and their rollups from the `figures` per segment and channel
        (`self.key`). All channels together ("" rows) are their sums, except `distinct` per
        segment: the distinct accounts and the deals influenced by any other channel (each
        once)."""
        overall: dict[str, np.ndarray] = {
            name: values.reshape(self.segment_count, len(KINDS)).sum(axis=1)
            for name, values in figures.items()
        }
        overall.update(distinct)
        counts = segment_counts() if callable(segment_counts) else segment_counts
        segment_rows = self._segment_rows(figures, overall, counts)
        yield "segments", segment_rows
        yield "rollups", revenue_rollups(segment_rows)

    def sweep_ready(self, days: int) -> None:
        """Set up the sums a backfill keeps from day to day (`_Sweep`; with `many_days`), as
        the first day would, for `days` days to be asked; for fewer than `SWEEP_FROM_DAYS`
        each day is computed from its deals (setting the sums up costs more than they save)."""
        if days < SWEEP_FROM_DAYS:
            self.keeps_sums = False
        self._swept()

    def _swept(self) -> _Sweep | None:
        """The sums a backfill keeps from day to day; none without (`keeps_sums`), or when
        their tables would be too large (`_SWEEP_MOST_CELLS`: many rate periods, say daily
        rates over years), and each day is then computed from its deals."""
        if self.sweep is None and self.keeps_sums and self._sweep_cells() <= _SWEEP_MOST_CELLS:
            self.sweep = _Sweep(self)
        return self.sweep

    def _sweep_cells(self) -> int:
        """About how many cells the tables of `_Sweep` have (each a few int64)."""
        keys = self.segment_count * len(KINDS)
        partners = len(self.partner_ids)
        currencies = len(self.rates.currencies) + 1
        periods = len(self.rates.rates) + 1
        priced = currencies * len(pd.unique(self.probability))
        if max(priced, periods) >= _MOST_FACTORS:
            return _SWEEP_MOST_CELLS + 1
        owners = len(pd.unique(self.partner_id)) + len(pd.unique(self.rep_id))
        known = self.expected[self.expected != NO_DAY]
        close_weeks = (int(known.max()) - int(known.min())) // 7 + 2 if len(known) else 1
        return (
            priced * (2 * keys + 2 * partners + len(KINDS) * close_weeks)
            + currencies * (keys + partners)
            + periods * (2 * keys + self.segment_count + 2 * partners + owners)
        )

    def _swept_figures(
        self,
        d: date,
        day: _SweptDay,
        segment_counts: pd.DataFrame | Callable[[], pd.DataFrame],
    ) -> Iterator[tuple[str, pd.DataFrame]]:
        """`figures_as_ready(d, ...)` from the sums a backfill's sweep kept (`_Sweep`): the
        same figures, summed per group of deals sharing a factor instead of per deal."""
        sweep = day.sweep
        if len(self.partner_ids):
            partners = self._partner_frame(
                d,
                {
                    "pipeline_count": sweep.partner_pipeline.count_per_key(),
                    "won_count": sweep.partner_won.count_per_key(),
                    "subscribers": sweep.partner_subscribers.count.copy(),
                    "influenced_count": sweep.partner_influenced.count_per_key(),
                    "forecast_count": sweep.partner_forecast.count_per_key(),
                },
                day.partner_amounts,
            )
        else:
            partners = pd.DataFrame(columns=PARTNER_COLUMNS)
        yield "partners", partners
        yield "partner_rollups", partner_rollups(partners)
        figures: dict[str, np.ndarray] = {
            "pipeline_count": sweep.pipeline.count_per_key(),
            "won_count": sweep.won.count_per_key(),
            "won_accounts": sweep.won_accounts.count.copy(),
            "subscribers": sweep.subscribers.count.copy(),
            "forecast_count": sweep.forecast.count_per_key(),
            "pipeline_amount": day.priced(sweep.pipeline, weighted=False),
            "weighted_pipeline": day.priced(sweep.pipeline, weighted=True),
            "won_amount": day.closed(sweep.won),
            "mrr": day.subscribed(sweep.subscribed),
            "forecast_amount": day.priced(sweep.forecast, weighted=True),
            "influenced_count": sweep.influenced.count_per_key(),
            "influenced_amount": day.closed(sweep.influenced),
        }
        yield from self._segment_tables(
            figures,
            {
                "won_accounts": sweep.won_accounts_overall.count.copy(),
                "subscribers": sweep.subscribers_overall.count.copy(),
                "influenced_count": sweep.influenced_any.count_per_key(),
                "influenced_amount": day.closed(sweep.influenced_any),
            },
            segment_counts,
        )
        forecast = day.forecast(d)
        if forecast is None:
            rows = self._rows_on(IN_FORECAST, d)
            forecast = self._forecast_rows(d, rows, self._periods_on(rows, d))
        yield "forecast", forecast

    def _uninfluenced(
        self,
        *,
        pipeline: tuple[np.ndarray, np.ndarray],
        forecast: tuple[np.ndarray, np.ndarray],
        won: tuple[np.ndarray, np.ndarray],
        subscribed: tuple[np.ndarray, np.ndarray],
    ) -> _SegmentDay:
        """The figures per segment and channel (`self.key`) but rule 16's, from the deals of
        each of rules 12-14 on a day, each with its rate period (`figures_as_ready`)."""
        size = self.segment_count * len(KINDS)
        (pipeline_rows, pipeline_periods), (forecast_rows, forecast_periods) = pipeline, forecast
        (won_rows, won_periods), (subscribed_rows, subscribed_periods) = won, subscribed
        # Each rule's deals' keys and amounts gathered once, for every figure that sums them.
        pipeline_keys, pipeline_cents = self.key[pipeline_rows], self.year_cents[pipeline_rows]
        forecast_keys, forecast_cents = self.key[forecast_rows], self.year_cents[forecast_rows]
        won_keys, won_cents = self.key[won_rows], self.year_cents[won_rows]
        subscribed_keys = self.key[subscribed_rows]
        won_value = self._factors(won_periods)
        won_accounts, won_accounts_overall = self._distinct_accounts(won_rows)
        subscribers, subscribers_overall = self._distinct_accounts(subscribed_rows)

        def counted(keys: np.ndarray) -> np.ndarray:
            return np.bincount(keys, minlength=size).astype("int64")

        figures: dict[str, np.ndarray] = {
            "pipeline_count": counted(pipeline_keys),
            "won_count": counted(won_keys),
            "won_accounts": won_accounts,
            "subscribers": subscribers,
            "forecast_count": counted(forecast_keys),
            "pipeline_amount": self._money(
                pipeline_keys, pipeline_cents, self._factors(pipeline_periods), size
            ),
            "weighted_pipeline": self._money(
                pipeline_keys,
                pipeline_cents,
                self._factors(pipeline_periods, self.probability[pipeline_rows]),
                size,
            ),
            "won_amount": self._money(won_keys, won_cents, won_value, size),
            "mrr": self._money(
                subscribed_keys,
                self.cents[subscribed_rows],
                self._factors(subscribed_periods),
                size,
            ),
            "forecast_amount": self._money(
                forecast_keys,
                forecast_cents,
                self._factors(forecast_periods, self.probability[forecast_rows]),
                size,
            ),
        }
        return _SegmentDay(
            figures,
            won_cents,
            self.segment[won_rows],
            won_value,
            won_accounts_overall,
            subscribers_overall,
        )

    def _segment_rows(
        self,
        figures: dict[str, np.ndarray],
        overall: dict[str, np.ndarray],
        segment_counts: pd.DataFrame,
    ) -> pd.DataFrame:
        """One row per (segment, channel) and (segment, "") with any deal counted."""
        segments = self.segment_count
        keys = self.segment_index.to_frame(index=False)
        keys.columns = pd.Index(SEGMENT_KEYS)
        by_channel = pd.DataFrame(
            {
                name: list(values) if values.dtype == object else values
                for name, values in figures.items()
            }
        )
        by_channel[SEGMENT_KEYS] = keys.loc[np.repeat(np.arange(segments), len(KINDS))].to_numpy()
        by_channel["channel"] = np.tile(np.array(KINDS, dtype=object), segments)
        for column in VALUE_COLUMNS:
            by_channel[column] = None
        everything = pd.DataFrame(
            {
                name: list(values) if values.dtype == object else values
                for name, values in overall.items()
            }
        )
        everything[SEGMENT_KEYS] = keys.to_numpy()
        everything["channel"] = ""
        everything = _with_values(everything, segment_counts)
        rows = pd.concat([everything, by_channel], ignore_index=True)
        active = rows[["pipeline_count", "won_count", "subscribers", "influenced_count"]].to_numpy()
        rows = rows[(active > 0).any(axis=1) | (rows["forecast_count"] > 0).to_numpy()]
        rows = rows.sort_values(ROW_KEYS, kind="stable").reset_index(drop=True)
        return rows[[*ROW_KEYS, *FIGURE_COLUMNS]]

    def _partner_rows(
        self, d: date, day: dict[str, tuple[np.ndarray, np.ndarray]], influenced_by: Influence
    ) -> pd.DataFrame:
        """Rules 16 and 17 per partner: the deals it sourced, the won deals it influenced, and
        its target for the 13 weeks after `d`. `day`: the deals of each of rules 12-14 on `d`
        (`pipeline`, `forecast`, `won`, `subscribed`), each with its rate period (a won
        deal's, that of its close), as `figures` found them; `influenced_by`: rule 16 for the
        won deals (`_influence_on`)."""
        size = len(self.partner_ids)
        if not size:
            return pd.DataFrame(columns=PARTNER_COLUMNS)
        partner = self.partner
        # Per rule, the deals a partner sourced: their rows, partners (positions) and periods.
        owned: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for name, (rows, periods) in day.items():
            sourcing = partner[rows]
            by_partner = np.flatnonzero(sourcing >= 0)
            owned[name] = (rows[by_partner], sourcing[by_partner], periods[by_partner])

        # Influence: the won deals of the window some other partner's coverage influenced.
        deal_rows = influenced_by.partner_rows
        influencer = _positions_in(self.partner_ids, influenced_by.partner_ids)
        known = influencer >= 0
        deal_rows, influencer = deal_rows[known], influencer[known].astype("int64")
        subscribed_rows, subscribed_partners, _ = owned["subscribed"]
        counts = {
            "pipeline_count": np.bincount(owned["pipeline"][1], minlength=size),
            "won_count": np.bincount(owned["won"][1], minlength=size),
            "subscribers": _distinct_counts(
                subscribed_partners, self.account_id[subscribed_rows], size
            ),
            "influenced_count": np.bincount(influencer, minlength=size),
            "forecast_count": np.bincount(owned["forecast"][1], minlength=size),
        }

        def amounts(chosen: np.ndarray) -> dict[str, np.ndarray]:
            """The money of the `chosen` partners (every partner that sourced a deal counted
            is: it has a count, a forecast deal being in the pipeline), in their order."""
            mine = np.zeros(size, dtype=bool)
            mine[chosen] = True
            at = np.cumsum(mine) - 1

            def money(name: str, cents: np.ndarray, *, weighted: bool = False) -> np.ndarray:
                rows, sourcing, periods = owned[name]
                factors = self._factors(periods, self.probability[rows] if weighted else None)
                return self._money(at[sourcing], cents[rows], factors, len(chosen))

            influenced = mine[influencer]
            return {
                "pipeline_amount": money("pipeline", self.year_cents),
                "weighted_pipeline": money("pipeline", self.year_cents, weighted=True),
                "won_amount": money("won", self.year_cents),
                "mrr": money("subscribed", self.cents),
                "influenced_amount": self._money(
                    at[influencer[influenced]],
                    self.year_cents[deal_rows[influenced]],
                    self._factors(self._close_periods(deal_rows[influenced])),
                    len(chosen),
                ),
                "forecast_amount": money("forecast", self.year_cents, weighted=True),
            }

        return self._partner_frame(d, counts, amounts)

    def _partner_frame(
        self,
        d: date,
        counts: dict[str, np.ndarray],
        amounts: Callable[[np.ndarray], dict[str, np.ndarray]],
    ) -> pd.DataFrame:
        """The partners' rows (`_partner_rows`) from their counts (`COUNT_COLUMNS` of
        `PARTNER_COLUMNS` and `forecast_count`, per partner) and the money of those chosen:
        the partners with a deal counted or a target, in the order of their external ids."""
        size = len(self.partner_ids)
        targets = self._targets(d, size)
        active = np.column_stack(
            [values for name, values in counts.items() if name != "forecast_count"]
        ).any(axis=1) | np.array([units > 0 for units in targets], dtype=bool)
        # Only the partners with a deal or a target are rows: their money alone is summed.
        chosen = np.flatnonzero(active)
        # The rows in the order of the partners' external ids.
        by_external_id = np.argsort(self.partner_rank[chosen], kind="stable")
        order = chosen[by_external_id]
        columns: dict[str, list[int] | np.ndarray] = {
            name: self.partner_columns[name][order]
            for name in ("partner_id", "external_id", "name", "channel_kind")
        }
        columns.update({name: values[order].astype("int64") for name, values in counts.items()})

        def placed_in_order(amounts: np.ndarray) -> list[int] | np.ndarray:
            # Whole numbers: int64 when every one fits, as a column of them would be.
            if not len(chosen):
                return np.zeros(0, dtype="int64")
            return list(np.asarray(amounts, dtype=object)[by_external_id])

        money = amounts(chosen)
        money["target_amount"] = targets[chosen]
        columns.update({name: placed_in_order(values) for name, values in money.items()})
        return pd.DataFrame({name: columns[name] for name in PARTNER_COLUMNS})

    def _targets(self, d: date, size: int) -> np.ndarray:
        """Rule 17: per partner, a quarter of the annual targets of its agreements in force on
        `d`, at the rates valid on `d`."""
        agreements = self.agreements
        if agreements.empty or size == 0:
            return np.array([0] * size, dtype=object)
        columns = {
            field: (
                agreements[field].to_numpy(dtype=object)
                if field in AGREEMENT_IN_FORCE.value_fields
                else _days(agreements[field])
            )
            for field in AGREEMENT_IN_FORCE.fields
        }
        in_force = agreements[
            AGREEMENT_IN_FORCE.mask(columns, d)
            & agreements["annual_target_cents"].notna().to_numpy()
        ]
        partner = self.partner_ids.get_indexer(in_force["partner_id"].to_numpy(dtype="int64"))
        in_force = in_force[partner >= 0]
        partner = partner[partner >= 0].astype("int64")
        codes = self.rates.currency_codes(in_force["currency"].to_numpy(dtype=object))
        periods = self.rates.periods(codes, np.full(len(codes), day_numbers([d])[0]))
        missing = np.flatnonzero(periods < 0)
        if len(missing):
            first = in_force.iloc[int(missing[0])]
            raise MissingRate(str(first["currency"]), d, f"agreement {first['agreement_id']}")
        # A quarter of the year: the 13 weeks of the forecast.
        factors = self._factors(periods, np.full(len(periods), PROBABILITY_SCALE // 4))
        return self._money(
            partner,
            in_force["annual_target_cents"].to_numpy(dtype="int64"),
            factors,
            size,
        )

    def _forecast_rows(self, d: date, forecast: np.ndarray, periods: np.ndarray) -> pd.DataFrame:
        """Rule 12's forecast by the week the deals are expected to close: week 1 the seven
        days after `d` (and the deals already overdue), to week 13; per channel and over all
        channels ("")."""
        today = int(day_numbers([d])[0])
        ahead = np.clip((self.expected[forecast] - today + 6) // 7, 1, FORECAST_WEEKS)
        factors = self._factors(periods, self.probability[forecast])
        # Per channel and week ahead in one pass; all channels ("") are their sums (exact).
        width = len(KINDS) * FORECAST_WEEKS
        keys = self.channel[forecast] * FORECAST_WEEKS + ahead - 1
        counts = np.bincount(keys, minlength=width).reshape(len(KINDS), FORECAST_WEEKS)
        amounts = self._money(keys, self.year_cents[forecast], factors, width).reshape(
            len(KINDS), FORECAST_WEEKS
        )
        return _forecast_frame(counts, amounts)


def _forecast_frame(counts: np.ndarray, amounts: np.ndarray) -> pd.DataFrame:
    """The forecast's rows from its deals counted and summed per channel (`KINDS`) and week
    ahead (1 to 13): those weeks per channel and over all channels (""), where a deal counts."""
    frames = [
        pd.DataFrame(
            {
                "channel": name,
                "weeks_ahead": np.arange(1, FORECAST_WEEKS + 1),
                "forecast_count": channel_counts.astype("int64"),
                "forecast_amount": list(channel_amounts),
            }
        )
        for name, channel_counts, channel_amounts in (
            ("", counts.sum(axis=0), amounts.sum(axis=0)),
            *zip(KINDS, counts, amounts, strict=True),
        )
    ]
    rows = pd.concat(frames, ignore_index=True)
    return rows[rows["forecast_count"] > 0].reset_index(drop=True)[FORECAST_COLUMNS]


# A backfill of fewer days computes each from its deals: the kept sums cost about 2 s to set up
# at 2,000,000 deals and save about 0.2 s a day.
SWEEP_FROM_DAYS = 13
# At most this many cells in a backfill's kept sums (`_Sweep`), a few int64 each: about 1 GB.
_SWEEP_MOST_CELLS = 30_000_000
# A Sunday (1970-01-04) as a day number: the backfill's forecast counts weeks from Sundays.
_FORECAST_ANCHOR = 3


class _Sums(RunningSums):
    """`RunningSums` over cells `group * keys + key` (key -1: a row left out): the counts and
    sums per key by group."""

    def __init__(
        self,
        moving: Moving,
        group: np.ndarray,
        groups: int,
        key: np.ndarray,
        keys: int,
        amounts: np.ndarray,
    ) -> None:
        super().__init__(moving, np.where(key >= 0, group * keys + key, -1), groups * keys, amounts)
        self.groups, self.keys = groups, keys

    def count_per_key(self) -> np.ndarray:
        counts: np.ndarray = self.count.reshape(self.groups, self.keys).sum(axis=0)
        return counts

    def counted_groups(self) -> np.ndarray:
        """Whether any row of each group counts."""
        return np.asarray(self.count.reshape(self.groups, self.keys).any(axis=1))

    def money(self, factor_values: Sequence[int], keys: np.ndarray | None = None) -> np.ndarray:
        """Per key (of `keys` when given, in their order), the sum over groups of its amounts x
        the group's factor (units)."""
        if keys is None:
            return _factored(self.parts(), factor_values, self.keys)
        parts = [
            (sums.reshape(self.groups, self.keys)[:, keys].ravel(), shift)
            for sums, shift in self.parts()
        ]
        return _factored(parts, factor_values, len(keys))


class _Sweep:
    """A backfill's revenue sums kept from one day to the next (`analytics.running`): the deals
    of rules 12-14 under their spans, summed per key (segment and channel, or partner) and per
    group of deals that share a factor on any day: a currency and a probability in the
    pipeline and the forecast (the rate is the day's), a currency for the subscriptions, the
    rate period of the close for the won deals (rule 13)."""

    def __init__(self, prepared: PreparedRevenue) -> None:
        p = prepared
        self.prepared = p
        size = p.segment_count * len(KINDS)
        partners = len(p.partner_ids)
        self.currencies = len(p.rates.currencies) + 1
        # Groups: a currency as its code + 1 (0 for one without any rate); a probability as
        # its position among the distinct ones; a close's rate period + 1 (0 for none).
        currency = p.currency + 1
        probabilities, probability = _codes_of(p.probability.astype("int64"))
        self.probabilities = [int(value) for value in probabilities]
        priced = currency * len(probabilities) + probability
        priced_groups = self.currencies * len(probabilities)
        closed = p.close_period + 1
        self.periods = len(p.rates.rates) + 1
        # A deal's sourcing partner (position), -1 for none: out of the partners' sums.
        partner = p.partner
        year_cents = p.year_cents

        pipeline, forecast = Moving(*p.spans[IN_PIPELINE]), Moving(*p.spans[IN_FORECAST])
        won_span = p.spans[WON_IN_52_WEEKS]
        won, subscribed = Moving(*won_span), Moving(*p.spans[SUBSCRIBED])
        self.pipeline = _Sums(pipeline, priced, priced_groups, p.key, size, year_cents)
        self.forecast = _Sums(forecast, priced, priced_groups, p.key, size, year_cents)
        self.won = _Sums(won, closed, self.periods, p.key, size, year_cents)
        self.subscribed = _Sums(subscribed, currency, self.currencies, p.key, size, p.cents)
        self.partner_pipeline = _Sums(
            pipeline, priced, priced_groups, partner, partners, year_cents
        )
        self.partner_forecast = _Sums(
            forecast, priced, priced_groups, partner, partners, year_cents
        )
        self.partner_won = _Sums(won, closed, self.periods, partner, partners, year_cents)
        self.partner_subscribed = _Sums(
            subscribed, currency, self.currencies, partner, partners, p.cents
        )
        # Distinct accounts: of the won deals and of the subscriptions, per segment and
        # channel, per segment, and (subscriptions) per partner.
        self.channel_pairs: tuple[np.ndarray, np.ndarray] | None = None
        self.won_accounts = self._accounts_by_key(won)
        self.won_accounts_overall = self._accounts_by_segment(won)
        self.subscribers = self._accounts_by_key(subscribed)
        self.subscribers_overall = self._accounts_by_segment(subscribed)
        self.partner_subscribers = self._distinct(subscribed, partner, partners)
        # Rule 16 (`PreparedRevenue.influence`, found for every won deal): a won deal once per
        # channel kind that influenced it, keyed by its segment and that kind; once if any
        # did, by its segment; once per influencing partner.
        kinds = p.influenced_kinds
        by_kind = [np.flatnonzero(kinds & (1 << position)) for position in range(len(KINDS))]
        rows = np.concatenate(by_kind)
        kind = np.repeat(np.arange(len(KINDS)), [len(each) for each in by_kind])
        influenced = Moving(won_span[0][rows], won_span[1][rows])
        self.influenced = _Sums(
            influenced,
            closed[rows],
            self.periods,
            p.segment[rows] * len(KINDS) + kind,
            size,
            year_cents[rows],
        )
        rows = np.flatnonzero(kinds > 0)
        influenced_any = Moving(won_span[0][rows], won_span[1][rows])
        self.influenced_any = _Sums(
            influenced_any,
            closed[rows],
            self.periods,
            p.segment[rows],
            p.segment_count,
            year_cents[rows],
        )
        influence = p.influence
        assert influence is not None  # found with the spans (`many_days`)
        rows = p.won_rows[influence.partner_rows]
        influencer = _positions_in(p.partner_ids, influence.partner_ids)
        rows, influencer = rows[influencer >= 0], influencer[influencer >= 0]
        partner_influenced = Moving(won_span[0][rows], won_span[1][rows])
        self.partner_influenced = _Sums(
            partner_influenced,
            closed[rows],
            self.periods,
            influencer,
            partners,
            year_cents[rows],
        )
        # Rule 12's forecast by week ahead: per group, channel and the week (from a Sunday,
        # `_FORECAST_ANCHOR`) of the expected close, so that on any Sunday each such week is
        # some week ahead.
        expected = p.expected
        known = expected != NO_DAY
        anchor_week = np.where(known, (np.where(known, expected, 0) - _FORECAST_ANCHOR + 6) // 7, 0)
        self.first_close_week = int(anchor_week[known].min(initial=0))
        self.close_weeks = int(anchor_week[known].max(initial=0)) - self.first_close_week + 1
        self.forecast_weeks = _Sums(
            forecast,
            priced,
            priced_groups,
            np.where(known, p.channel * self.close_weeks + anchor_week - self.first_close_week, -1),
            len(KINDS) * self.close_weeks,
            year_cents,
        )
        # Rule 22's revenue since 1 January: a won deal from its close to the end of its year,
        # per partner that sourced it (a distributor or partner) and per rep (direct).
        won_rows = p.won_rows
        closed_on = p.columns["closed_on"][won_rows].astype("datetime64[D]")
        year_end = day_numbers((closed_on.astype("datetime64[Y]") + 1).astype("datetime64[D]") - 1)
        this_year = Moving(p.won_close, year_end)
        channel = p.channel[won_rows]
        self.sourcing: list[tuple[np.ndarray, _Sums]] = []
        for owners, chosen in (
            (p.partner_id, np.isin(channel, PARTNER_CHANNELS)),
            (p.rep_id, channel == DIRECT_CHANNEL),
        ):
            rows = np.flatnonzero(chosen)
            ids, owner = _codes_of(owners[won_rows][rows].astype("int64"))
            key = np.full(len(won_rows), -1, dtype="int64")
            key[rows] = owner
            sums = _Sums(
                this_year, closed[won_rows], self.periods, key, len(ids), year_cents[won_rows]
            )
            self.sourcing.append((ids, sums))
        # The won deals of any channel without a rate on their close (none can be summed).
        self.unpriced_this_year = RunningSums(this_year, np.where(closed[won_rows] == 0, 0, -1), 1)
        self.close_rate = [0, *(int(value) * PROBABILITY_SCALE for value in p.rate_factor)]
        # Each moving with what follows it.
        self.following: list[tuple[Moving, list[RunningSums | RunningDistinct]]] = [
            (this_year, [self.unpriced_this_year, *(sums for _, sums in self.sourcing)]),
            (pipeline, [self.pipeline, self.partner_pipeline]),
            (forecast, [self.forecast, self.partner_forecast, self.forecast_weeks]),
            (
                won,
                [self.won, self.partner_won, self.won_accounts, self.won_accounts_overall],
            ),
            (
                subscribed,
                [
                    self.subscribed,
                    self.partner_subscribed,
                    self.subscribers,
                    self.subscribers_overall,
                    self.partner_subscribers,
                ],
            ),
            (influenced, [self.influenced]),
            (influenced_any, [self.influenced_any]),
            (partner_influenced, [self.partner_influenced]),
        ]

    def _distinct(self, moving: Moving, key: np.ndarray, keys: int) -> RunningDistinct:
        """The distinct accounts per key (-1: a deal left out) of the `moving` deals."""
        p = self.prepared
        rows = moving.rows[key[moving.rows] >= 0]
        pair = np.full(len(key), -1, dtype="int64")
        pairs, pair[rows] = _codes_of(key[rows].astype("int64") * p.account_count + p.account[rows])
        return RunningDistinct(moving, pair, pairs // p.account_count, keys)

    def _accounts_by_key(self, moving: Moving) -> RunningDistinct:
        """The distinct accounts per segment and channel of the `moving` deals."""
        p = self.prepared
        if p.account_segment is None:
            return self._distinct(moving, p.key, p.segment_count * len(KINDS))
        # Every deal of an account in its segment: an (account, channel) is a pair, whose key
        # is its account's segment and that channel.
        width = len(KINDS)
        if self.channel_pairs is None:
            self.channel_pairs = (
                p.account * width + p.channel,
                (p.account_segment.reshape(-1, 1) * width + np.arange(width))
                .ravel()
                .astype("int32" if p.segment_count * width < 2**31 else "int64"),
            )
        pair, pair_key = self.channel_pairs
        return RunningDistinct(moving, pair, pair_key, p.segment_count * width)

    def _accounts_by_segment(self, moving: Moving) -> RunningDistinct:
        """The distinct accounts per segment of the `moving` deals."""
        p = self.prepared
        if p.account_segment is None:
            return self._distinct(moving, p.segment, p.segment_count)
        return RunningDistinct(moving, p.account, p.account_segment, p.segment_count)

    def _move(self, day: int) -> None:
        for moving, following in self.following:
            if moving.day != day:
                change = moving.to(day)
                for running in following:
                    running.apply(change)

    def sourced(self, d: date) -> Sourced | None:
        """`PreparedRevenue.sourced` from 1 January of `d`'s year to `d`; None when a deal
        that counts has no rate on the day it closed."""
        self._move(int(day_numbers([d])[0]))
        if self.unpriced_this_year.count[0]:
            return None
        owners: list[dict[int, int]] = []
        for ids, sums in self.sourcing:
            counted = np.flatnonzero(sums.count_per_key() > 0)
            units = sums.money(self.close_rate, counted)
            cents = (units + UNITS_PER_CENT // 2) // UNITS_PER_CENT
            owners.append(dict(zip(ids[counted].tolist(), list(cents), strict=True)))
        return Sourced(*owners)

    def on(self, d: date) -> _SweptDay | None:
        """Every sum moved to `d`; None when a deal that counts on `d` has no rate for the day
        its amount is taken at (rule 10)."""
        day = int(day_numbers([d])[0])
        self._move(day)
        rates = self.prepared.rates
        codes = np.arange(len(rates.currencies))
        # Each currency group's rate period on `d` (-1: none).
        periods = np.append(-1, rates.periods(codes, np.full(len(codes), day)))
        unpriced = periods < 0
        # Per currency, whether a deal of it is in the pipeline (the forecast's are among them).
        in_pipeline = np.asarray(
            self.pipeline.counted_groups().reshape(self.currencies, -1).any(axis=1)
        )
        if (
            in_pipeline[unpriced].any()
            or self.subscribed.counted_groups()[unpriced].any()
            or self.won.counted_groups()[0]
        ):
            return None
        return _SweptDay(self, periods)


class _SweptDay:
    """The factors of a day's groups (`_Sweep`), and the money they give."""

    def __init__(self, sweep: _Sweep, periods: np.ndarray) -> None:
        self.sweep = sweep
        rate = sweep.prepared.rate_factor
        # Units per cent of each currency group on the day, 0 where it has no rate (no deal of
        # it counts then).
        self.day_rate = [int(rate[period]) if period >= 0 else 0 for period in periods]

    def priced(self, sums: _Sums, *, weighted: bool, keys: np.ndarray | None = None) -> np.ndarray:
        """Per key, the pipeline's (or the forecast's) amounts at the day's rates, times the
        win probability when `weighted` (rules 10-12)."""
        return sums.money(
            [
                rate * (probability if weighted else PROBABILITY_SCALE)
                for rate in self.day_rate
                for probability in self.sweep.probabilities
            ],
            keys,
        )

    def subscribed(self, sums: _Sums, keys: np.ndarray | None = None) -> np.ndarray:
        """Per key, the monthly fees at the day's rates (rule 14)."""
        return sums.money([rate * PROBABILITY_SCALE for rate in self.day_rate], keys)

    def closed(self, sums: _Sums, keys: np.ndarray | None = None) -> np.ndarray:
        """Per key, the won amounts at the rates of their closes (rule 13)."""
        return sums.money(self.sweep.close_rate, keys)

    def forecast(self, d: date) -> pd.DataFrame | None:
        """`PreparedRevenue._forecast_rows` on `d`, a Sunday (None on another day): the weeks
        of the expected closes, each some week ahead of `d` (the overdue and this week's in
        week 1, those past week 13 in it)."""
        sweep = self.sweep
        today = int(day_numbers([d])[0])
        if (today - _FORECAST_ANCHOR) % 7:
            return None
        sums = sweep.forecast_weeks
        # Each close week's week ahead (0 to 12 here), per channel.
        ahead = (
            np.clip(
                np.arange(sweep.close_weeks)
                + sweep.first_close_week
                - (today - _FORECAST_ANCHOR) // 7,
                1,
                FORECAST_WEEKS,
            )
            - 1
        )
        width = len(KINDS) * FORECAST_WEEKS
        within = (np.arange(len(KINDS)).reshape(-1, 1) * FORECAST_WEEKS + ahead).ravel()
        # Per group, the close weeks added into the weeks ahead: exact int64 sums of rows.
        to = (np.arange(sums.groups).reshape(-1, 1) * width + within).ravel()

        def gathered(values: np.ndarray) -> np.ndarray:
            total = np.zeros(sums.groups * width, dtype="int64")
            np.add.at(total, to, values)
            return total

        counts = gathered(sums.count).reshape(sums.groups, width).sum(axis=0)
        parts = [(gathered(part), shift) for part, shift in sums.parts()]
        amounts = _factored(
            parts,
            [rate * probability for rate in self.day_rate for probability in sweep.probabilities],
            width,
        )
        return _forecast_frame(
            counts.reshape(len(KINDS), FORECAST_WEEKS),
            amounts.reshape(len(KINDS), FORECAST_WEEKS),
        )

    def partner_amounts(self, chosen: np.ndarray) -> dict[str, np.ndarray]:
        """The `chosen` partners' money (positions), as `PreparedRevenue._partner_rows` sums
        it."""
        sweep = self.sweep
        return {
            "pipeline_amount": self.priced(sweep.partner_pipeline, weighted=False, keys=chosen),
            "weighted_pipeline": self.priced(sweep.partner_pipeline, weighted=True, keys=chosen),
            "won_amount": self.closed(sweep.partner_won, chosen),
            "mrr": self.subscribed(sweep.partner_subscribed, chosen),
            "influenced_amount": self.closed(sweep.partner_influenced, chosen),
            "forecast_amount": self.priced(sweep.partner_forecast, weighted=True, keys=chosen),
        }


def _with_values(everything: pd.DataFrame, segment_counts: pd.DataFrame) -> pd.DataFrame:
    """Rule 15 on the all-channel rows: D = won amount / won accounts; white-space value =
    white space x D x converted / covered; I = M x (converted / M) x D. None where a divisor is
    0 or there is no coverage count for the segment."""
    if everything.empty or segment_counts.empty:
        # Nothing to value (a market without deals, or without accounts): the empty frames
        # may not even agree on their key columns' types.
        everything = everything.copy()
        everything["white_space_value"] = None
        everything["sales_revenue"] = None
        return everything
    counts = segment_counts[[*SEGMENT_KEYS, "accounts", "covered_any", "converted", "white_space"]]
    merged = everything.merge(counts, on=SEGMENT_KEYS, how="left")
    white_space_values: list[Decimal | None] = []
    sales_revenues: list[Decimal | None] = []
    rows = zip(
        merged["won_amount"],
        merged["won_accounts"],
        merged["accounts"],
        merged["covered_any"],
        merged["converted"],
        merged["white_space"],
        strict=True,
    )
    for won_amount, won_accounts, accounts, covered, converted, white_space in rows:
        if not won_accounts or pd.isna(accounts):
            white_space_values.append(None)
            sales_revenues.append(None)
            continue
        won, per = Decimal(int(won_amount)), Decimal(int(won_accounts))
        # Multiplied first and divided once, so a value that has an exact decimal is exact
        # (the products at `_PRECISE`: the default 28 digits would round a large one).
        with localcontext(_PRECISE):
            white_space_values.append(
                (Decimal(int(white_space)) * won * Decimal(int(converted)))
                / (per * Decimal(int(covered)))
                if covered
                else None
            )
            # I = M x eta x D = M x (converted / M) x (won / won accounts).
            sales_revenues.append(
                (Decimal(int(accounts)) * Decimal(int(converted)) * won)
                / (Decimal(int(accounts)) * per)
                if accounts
                else None
            )
    everything = everything.copy()
    everything["white_space_value"] = pd.Series(
        white_space_values, index=everything.index, dtype=object
    )
    everything["sales_revenue"] = pd.Series(sales_revenues, index=everything.index, dtype=object)
    return everything


# Sums of money in units as int64: each value split into whole numbers of at most 46 bits
# ("limbs", value = sum of limb i x 2^(46 i)), which numpy and pandas add exactly for fewer than
# 2^17 values, and the few sums joined back as Python integers.
_LIMB_BITS = 46
_MOST_LIMB_ROWS = 1 << 16


def _limbs(values: Sequence[int]) -> list[np.ndarray]:
    """Integers as int64 limbs: all but the last in `range(2^46)`, the last with the sign."""
    whole = np.empty(len(values), dtype=object)
    whole[:] = [int(value) for value in values]
    widest = max(int(abs(whole).max(initial=0)).bit_length(), 1)
    mask = (1 << _LIMB_BITS) - 1
    limbs = []
    while widest > _LIMB_BITS:
        limbs.append((whole & mask).astype("int64"))
        whole = whole >> _LIMB_BITS
        widest -= _LIMB_BITS
    limbs.append(whole.astype("int64"))
    return limbs


def _joined(limbs: Sequence[np.ndarray]) -> np.ndarray:
    """`_limbs` (or sums of them) as Python integers, an object array."""
    total: np.ndarray = np.asarray(limbs[0], dtype="int64").astype(object)
    for i, limb in enumerate(limbs[1:], start=1):
        total = total + np.asarray(limb, dtype="int64").astype(object) * (1 << (i * _LIMB_BITS))
    return total


def revenue_rollups(rows: pd.DataFrame) -> pd.DataFrame:
    """Rule 17: the segment rows summed for every combination of region, vertical and size band
    ("" for any), keeping the channel; the segments themselves are not repeated. Counts and
    money add exactly (a segment's distinct accounts are its own: no account is in two
    segments); rule 15's values add where present.

    Each combination's groups, in the order of their keys, are runs of the rows sorted by
    their codes: the counts and the money's int64 limbs are added per run in numpy (exact:
    fewer than 2^17 rows; else the Python integers one by one), rule 15's values in row order
    as Decimals."""
    if rows.empty:
        return pd.DataFrame(columns=[*ROW_KEYS, *FIGURE_COLUMNS])
    count = len(rows)
    # Each key's values as codes in the order of the values ("" first): groups sorted by
    # their codes are sorted by their keys.
    codes: dict[str, np.ndarray] = {}
    labels: dict[str, np.ndarray] = {}
    for key in ROW_KEYS:
        key_codes, values = pd.factorize(rows[key].to_numpy(dtype=object), sort=True)
        codes[key], labels[key] = key_codes.astype("int64"), np.asarray(values, dtype=object)
    counts = {column: rows[column].to_numpy(dtype="int64") for column in COUNT_COLUMNS}
    limbed = count < _MOST_LIMB_ROWS
    amounts: dict[str, list[np.ndarray]] = {
        column: (
            _limbs(rows[column].tolist())
            if limbed
            else [np.asarray(rows[column].to_numpy(), dtype=object)]
        )
        for column in AMOUNT_COLUMNS
    }
    values_of = {column: rows[column].to_numpy(dtype=object) for column in VALUE_COLUMNS}
    parts: list[dict[str, np.ndarray]] = []
    for size in range(len(SEGMENT_KEYS)):
        for keys in combinations(SEGMENT_KEYS, size):
            grouped = [*keys, "channel"]
            combined = np.zeros(count, dtype="int64")
            for key in grouped:
                combined = combined * len(labels[key]) + codes[key]
            order = np.argsort(combined, kind="stable")
            ordered = combined[order]
            starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
            first = order[starts]
            part: dict[str, np.ndarray] = {
                key: labels[key][codes[key][first]]
                if key in grouped
                else np.full(len(starts), "", dtype=object)
                for key in ROW_KEYS
            }
            for column, column_counts in counts.items():
                part[column] = np.add.reduceat(column_counts[order], starts)
            for column, limbs in amounts.items():
                sums = [np.add.reduceat(limb[order], starts) for limb in limbs]
                part[column] = _joined(sums) if limbed else sums[0]
            group = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, count]))
            for column, column_values in values_of.items():
                part[column] = _value_sums(column_values[order], group, len(starts))
            parts.append(part)
    return pd.DataFrame(
        {
            column: np.concatenate([part[column] for part in parts])
            for column in [*ROW_KEYS, *FIGURE_COLUMNS]
        }
    )


def _value_sums(values: np.ndarray, group: np.ndarray, size: int) -> np.ndarray:
    """Per group in `range(size)`, the sum of its rule 15 values (Decimals, None when
    missing) in row order, at the precision of the values; None for a group without any."""
    sums = np.full(size, None, dtype=object)
    present = np.flatnonzero(pd.notna(values))
    with localcontext(_PRECISE):
        for at, value in zip(group[present].tolist(), values[present].tolist(), strict=True):
            sums[at] = value if sums[at] is None else sums[at] + value
    return sums


def partner_rollups(partners: pd.DataFrame) -> pd.DataFrame:
    """Rule 17 per partner channel kind ("" for every partner): the partners' sourced figures,
    forecasts and targets summed (influence is not: a deal may be influenced by several)."""
    if partners.empty:
        return pd.DataFrame(columns=PARTNER_ROLLUP_COLUMNS)
    frame = partners.assign(partners=1)
    counts = ["partners", "pipeline_count", "won_count", "forecast_count"]
    money = [
        "pipeline_amount",
        "weighted_pipeline",
        "won_amount",
        "mrr",
        "forecast_amount",
        "target_amount",
    ]
    parts = []
    for kind, group in [("", frame), *frame.groupby("channel_kind", sort=True)]:
        row: dict[str, str | int | Decimal] = {"channel_kind": kind}
        row.update({column: int(group[column].sum()) for column in counts})
        # Whole units, Python integers: exact, and quick over ten thousand partners.
        row.update({column: sum(group[column].tolist()) for column in money})
        parts.append(row)
    return pd.DataFrame(parts, columns=PARTNER_ROLLUP_COLUMNS)


def in_cents(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with its money columns (units: any of `AMOUNT_COLUMNS`, `VALUE_COLUMNS`,
    `PARTNER_AMOUNTS`) in whole cents, each rounded once; a missing rule 15 value stays None."""
    cents = frame.copy()
    for column in [*AMOUNT_COLUMNS, "target_amount"]:
        if column in cents:
            # `to_cents` over the whole column: Python integers, added and divided exactly.
            units = np.asarray(cents[column].to_numpy(), dtype=object)
            cents[column] = ((units + UNITS_PER_CENT // 2) // UNITS_PER_CENT).astype("int64")
    for column in VALUE_COLUMNS:
        if column in cents:
            # Most rows (a channel's) have no value: only the values are converted.
            values = cents[column].to_numpy(dtype=object)
            converted = np.full(len(values), None, dtype=object)
            present = np.flatnonzero(pd.notna(values))
            converted[present] = [value_to_cents(value) for value in values[present]]
            cents[column] = pd.Series(converted, index=cents.index, dtype=object)
    return cents
