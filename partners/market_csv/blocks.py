"""A market file read a block of rows at a time, column by column.

The row-by-row reading of `RowChecks._rows` costs a Python loop turn per row; a file with a
million rows reads faster as columns: each block of lines is split on commas at once and its
columns checked with set and map operations (`MarketValidator._accounts_blocks`). This road
takes only what it reads exactly as the csv reader does: a header naming the file's columns in
their order, rows of one line each (a quoted cell is taken apart by the csv reader, a line at a
time), no blank lines and no carriage return but the one of a line break. Anything else raises
`NotPlain`, and the file is read again row by row, which also words every problem.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path

__all__ = ["Block", "NotPlain", "plain_blocks"]


class NotPlain(Exception):
    """The file needs the row-by-row reading: a row the blocks do not read as the csv reader
    does, or a check that failed and whose problem the row-by-row checks word."""


@dataclass(frozen=True)
class Block:
    """Rows of a file as columns. `first_line` is the first row's line number; `escaped`
    says whether a cell holds a backslash or a tab (written as `COPY` text only escaped)."""

    first_line: int
    columns: list[list[str]]
    escaped: bool

    @property
    def rows(self) -> int:
        return len(self.columns[0])


def _lines(path: Path, columns: tuple[str, ...]) -> list[str]:
    """The data lines of `path`, after a header that names exactly `columns` in their order."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError):
        raise NotPlain from None
    if "\r" in text:
        text = text.replace("\r\n", "\n")
        if "\r" in text:
            raise NotPlain
    lines = text.split("\n")
    del text
    if lines and lines[-1] == "":
        lines.pop()
    if not lines or next(csv.reader(lines[:1])) != list(columns):
        raise NotPlain
    del lines[0]
    return lines


def _split(lines: list[str], width: int) -> tuple[list[list[str]], bool]:
    """The cells of `lines` as `width` columns, and whether a cell holds a backslash or a tab."""
    joined = "\n".join(lines)
    escaped = "\\" in joined or "\t" in joined
    if '"' not in joined:
        if set(map(str.count, lines, repeat(","))) != {width - 1}:
            raise NotPlain  # a blank line, or a row with too few or too many cells
        cells = joined.replace("\n", ",").split(",")
        return [cells[k::width] for k in range(width)], escaped
    rows = []
    for line in lines:
        if '"' not in line:
            rows.append(line.split(","))
            continue
        try:
            # Strict: a quoted cell left open at the line's end goes on to the next line.
            rows.append(next(csv.reader([line], strict=True)))
        except csv.Error:
            raise NotPlain from None
    if any(len(row) != width for row in rows):
        raise NotPlain
    return [list(column) for column in zip(*rows, strict=True)], escaped


def plain_blocks(path: Path, columns: tuple[str, ...], *, rows: int) -> Iterator[Block]:
    """Blocks of up to `rows` rows of `path`, whose header is `columns`. Raises `NotPlain`
    (before the first block, or between blocks) where the file needs the row-by-row reading."""
    lines = _lines(path, columns)
    width = len(columns)
    for start in range(0, len(lines), rows):
        part = lines[start : start + rows]
        split, escaped = _split(part, width)
        yield Block(first_line=start + 2, columns=split, escaped=escaped)
