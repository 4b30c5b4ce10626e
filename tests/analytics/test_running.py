"""Sums and distinct counts kept from one day to the next equal a pass over the rows of each
day, whatever the order the days are asked in."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.running import Moving, RunningDistinct, RunningSums


def _exact(parts: list[tuple[np.ndarray, int]]) -> list[int]:
    return [
        sum(int(sums[cell]) << shift for sums, shift in parts) for cell in range(len(parts[0][0]))
    ]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kept_sums_and_distinct_counts_equal_each_days_pass(seed: int) -> None:
    generator = np.random.default_rng(seed)
    rows, cells = 3_000, 12
    first = generator.integers(0, 300, size=rows)
    last = first + generator.integers(-20, 120, size=rows)  # some never count
    # Some open sides, far beyond any day (as a rule's span has them).
    first[generator.random(rows) < 0.05] = -(2**62)
    last[generator.random(rows) < 0.05] = 2**62
    cell = generator.integers(-1, cells, size=rows)  # -1: left out
    # Amounts of every width up to 2^63: sums no int64 or float holds.
    amounts = generator.integers(0, 2**62, size=rows) >> generator.integers(0, 62, size=rows)
    value = generator.integers(0, 40, size=rows)
    pair_values = np.where(cell >= 0, cell * 40 + value, -1)
    pairs = np.unique(pair_values[pair_values >= 0])
    pair = np.where(pair_values >= 0, np.searchsorted(pairs, pair_values), -1)

    moving = Moving(first, last)
    sums = RunningSums(moving, cell, cells, amounts)
    counts = RunningSums(moving, cell, cells)
    distinct = RunningDistinct(moving, pair, pairs // 40, cells)
    days = [*range(-5, 450, 7), 200, 200, 30, *range(31, 200, 3), 500, -10]
    for day in days:
        change = moving.to(day)
        for running in (sums, counts, distinct):
            running.apply(change)
        counting = (first <= day) & (day <= last) & (cell >= 0)
        expected_counts = np.bincount(cell[counting], minlength=cells)
        assert sums.count.tolist() == expected_counts.tolist()
        assert counts.count.tolist() == expected_counts.tolist()
        assert _exact(sums.parts()) == [
            sum(int(amount) for amount in amounts[counting & (cell == each)])
            for each in range(cells)
        ]
        assert all((part >= 0).all() and (part < 2**54).all() for part, _ in sums.parts())
        assert distinct.count.tolist() == [
            len(set(value[counting & (cell == each)].tolist())) for each in range(cells)
        ]


def test_running_sums_refuse_negative_amounts() -> None:
    moving = Moving(np.array([0, 0]), np.array([5, 5]))
    with pytest.raises(ValueError, match="non-negative"):
        RunningSums(moving, np.array([0, 1]), 2, np.array([3, -1]))
    # A negative amount of a row left out is never summed.
    RunningSums(moving, np.array([0, -1]), 2, np.array([3, -1]))
