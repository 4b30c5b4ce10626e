"""Counts and exact sums over the rows that count on a day, kept as the day moves forward.

A backfill asks for one day after another. Each row counts on the days of one span (first to
last day, day numbers; never when first > last), so from one day to the next only the rows
whose span starts or ends between them change what counts. `Moving` finds those rows (two
binary searches into the rows sorted by first and by last day); `RunningSums` and
`RunningDistinct` add and remove them alone, and answer for a day what a pass over every row
would. Asked for an earlier day than the last, they start again from every row. Several of
them may follow one `Moving`, each over some of its rows (`cell` -1 leaves a row out).

Sums are of non-negative int64 amounts and stay exact: each amount is cut into limbs of
`LIMB_BITS` bits (as many as the largest amount needs, at most three), summed per cell in
int64 (`np.add.at`, only the cells the changed rows name); `parts()` hands them over as
`(sums, shift)` pairs, the sum being the shifted sum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LIMB_BITS = 21
_LIMB_MASK = (1 << LIMB_BITS) - 1
_LIMBS = 3  # 63 bits: any non-negative int64


# Day numbers, positions and cells kept as int32 when they fit (days: 5.8 million years
# either side of 1970).
_INT32 = np.iinfo("int32")


def _narrow(values: np.ndarray, below: int) -> np.ndarray:
    """Whole numbers from -1 up to `below` as int32 when `below` fits (half the memory)."""
    return values.astype("int32") if below < _INT32.max else values


@dataclass(frozen=True)
class Change:
    """What moving to a day changes: the rows that start counting and those that stop
    (positions among `Moving.rows`); with `again`, every row counting on the day is in
    `starting` and whatever was counted before is forgotten."""

    again: bool
    starting: np.ndarray
    stopping: np.ndarray


class Moving:
    """Rows under their spans (`first`, `last`: day numbers, one per row), and which of them
    start or stop counting from one day asked to the next."""

    def __init__(self, first: np.ndarray, last: np.ndarray) -> None:
        first = np.asarray(first, dtype="int64")
        last = np.asarray(last, dtype="int64")
        # Rows that never count are left out for good.
        self.rows = _narrow(np.flatnonzero(first <= last), len(first))
        # Days as int32: an open side (far beyond any date) still beyond every day asked.
        self.first = np.clip(first[self.rows], _INT32.min, _INT32.max).astype("int32")
        self.last = np.clip(last[self.rows], _INT32.min, _INT32.max).astype("int32")
        self.by_first = _narrow(np.argsort(self.first), len(self.rows))
        self.firsts = self.first[self.by_first]
        self.by_last = _narrow(np.argsort(self.last), len(self.rows))
        self.lasts = self.last[self.by_last]
        self.day: int | None = None

    def to(self, day: int) -> Change:
        """Move to `day`."""
        day = min(max(day, int(_INT32.min)), int(_INT32.max))
        previous, self.day = self.day, day
        if previous is None or day < previous:
            counting = np.flatnonzero((self.first <= day) & (day <= self.last))
            return Change(True, counting, counting[:0])
        # Starting: first in (previous, day], still counting on day.
        starting = self.by_first[
            np.searchsorted(self.firsts, previous, side="right") : np.searchsorted(
                self.firsts, day, side="right"
            )
        ]
        starting = starting[self.last[starting] >= day]
        # Stopping: last in [previous, day), counting on previous.
        stopping = self.by_last[
            np.searchsorted(self.lasts, previous, side="left") : np.searchsorted(
                self.lasts, day, side="left"
            )
        ]
        stopping = stopping[self.first[stopping] <= previous]
        return Change(False, starting, stopping)


class RunningSums:
    """Per cell (`cells` of them, e.g. a group times a key), how many of the `moving` rows
    count on a day and, with `amounts`, the exact sum of their amounts (non-negative int64).
    `cell` and `amounts` have one entry per row the `moving` was made of; cell -1 leaves a
    row out."""

    def __init__(
        self,
        moving: Moving,
        cell: np.ndarray,
        cells: int,
        amounts: np.ndarray | None = None,
    ) -> None:
        kept = moving.rows
        self.cell = _narrow(np.asarray(cell, dtype="int64")[kept], cells)
        self.cells = cells
        self.amounts = None if amounts is None else np.asarray(amounts, dtype="int64")[kept]
        if self.amounts is None:
            limbs = 0
        else:
            counted = self.amounts[self.cell >= 0]
            if len(counted) and int(counted.min()) < 0:
                raise ValueError("running sums add non-negative amounts")
            widest = int(counted.max(initial=0)).bit_length()
            limbs = min(max(-(-widest // LIMB_BITS), 1), _LIMBS)
        self.count = np.zeros(cells, dtype="int64")
        self.sums = [np.zeros(cells, dtype="int64") for _ in range(limbs)]

    def apply(self, change: Change) -> None:
        """Follow the `moving`'s move to a day: `count` and `parts()` are then the day's."""
        if change.again:
            self.count[:] = 0
            for sums in self.sums:
                sums[:] = 0
        for rows, sign in ((change.starting, 1), (change.stopping, -1)):
            cell = self.cell[rows]
            counted = cell >= 0
            if not counted.all():
                rows, cell = rows[counted], cell[counted]
            if not len(rows):
                continue
            np.add.at(self.count, cell, sign)
            if self.amounts is None:
                continue
            amounts = self.amounts[rows]
            for n, sums in enumerate(self.sums):
                limb = (amounts >> (LIMB_BITS * n)) & _LIMB_MASK
                np.add.at(sums, cell, limb if sign > 0 else -limb)

    def parts(self) -> list[tuple[np.ndarray, int]]:
        """The day's sums per cell as `(sums, shift)` pairs: each cell's exact sum is that of
        its `sums << shift`; every entry non-negative and below 2^54."""
        return [(sums, LIMB_BITS * n) for n, sums in enumerate(self.sums)]


class RunningDistinct:
    """Per key (`keys` of them), how many distinct values (e.g. accounts) the `moving` rows
    counting on a day name: each row names one (key, value) pair, `pair` a code of it in
    `range(len(pair_key))` (-1 leaves a row out), whose key is `pair_key[code]`."""

    def __init__(self, moving: Moving, pair: np.ndarray, pair_key: np.ndarray, keys: int) -> None:
        self.pair = _narrow(np.asarray(pair, dtype="int64")[moving.rows], len(pair_key))
        self.pair_key = np.asarray(pair_key)
        self.keys = keys
        self.rows_of = np.zeros(len(self.pair_key), dtype="int32")
        self.count = np.zeros(keys, dtype="int64")

    def apply(self, change: Change) -> None:
        """Follow the `moving`'s move to a day: `count` is then the day's."""
        if change.again:
            self.rows_of[:] = 0
            self.count[:] = 0
        for rows, sign in ((change.starting, 1), (change.stopping, -1)):
            pair = self.pair[rows]
            pair = pair[pair >= 0]
            if not len(pair):
                continue
            pairs, times = np.unique(pair, return_counts=True)
            before = self.rows_of[pairs]
            after = before + sign * times
            self.rows_of[pairs] = after
            named = pairs[(before == 0) & (after > 0)]
            unnamed = pairs[(before > 0) & (after == 0)]
            self.count += np.bincount(self.pair_key[named], minlength=self.keys)
            self.count -= np.bincount(self.pair_key[unnamed], minlength=self.keys)
