"""What the checks of every market file share (`RowChecks`): problems worded `file:line:
column: problem`, reading a file's rows as written, the checks of one cell, and the codes and
external ids later files may refer to.

`market_csv.validate` builds the checks of the core files on it and calls the checks of the
registration and revenue files (`market_csv.registrations`, `market_csv.revenue`), which take
it as it is: every one of these modules depends on this one, and this one on none of them.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime
from operator import itemgetter
from pathlib import Path

from django.core.validators import EmailValidator
from django.db.models import Field, Model
from django.utils import timezone
from django.utils.translation import gettext as _

from channels.models import SalesRep
from crm.models import Account, Region, Vertical
from partners.market_csv.files import ACCOUNTS, LIST_SEPARATOR, MarketFile
from partners.market_csv.store import Staging
from partners.models import Partner

__all__ = [
    "Anything",
    "RowChecks",
    "is_date",
    "longer_than",
    "max_length",
    "not_a_currency",
    "one_of",
    "other_kind",
]


def is_date(value: str) -> bool:
    """A real calendar date written yyyy-mm-dd (fromisoformat alone also takes other forms)."""
    if len(value) != 10 or value[4] != "-" or value[7] != "-":
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


class Anything(set[str]):
    """Stands in for the codes of an unreadable file: every code counts as known."""

    def __contains__(self, item: object) -> bool:
        return True


def max_length(model: type[Model], field_name: str) -> int:
    field = model._meta.get_field(field_name)
    assert isinstance(field, Field) and field.max_length is not None
    return field.max_length


def one_of(values: list[str]) -> str:
    return ", ".join(values)


# The problems several files' checks word alike, in the active language.


def longer_than(limit: int) -> str:
    return _("longer than %(limit)d characters") % {"limit": limit}


def not_a_currency(value: str) -> str:
    return _("not an ISO 4217 currency code: %(value)r") % {"value": value}


def other_kind(owner: str, owner_kind: str, kind: str) -> str:
    """A partner named as the owner of a row of another channel kind than its own."""
    return _("partner %(owner)r has channel kind %(owner_kind)s, not %(kind)s") % {
        "owner": owner,
        "owner_kind": owner_kind,
        "kind": kind,
    }


class RowChecks:
    """What every file's checks share: the problems found, reading a file's rows, the checks of
    one cell, and what later files may refer to (the codes and external ids stored or read so
    far). `MarketValidator` builds the checks of each file on it; the revenue and registration
    files' checks (`market_csv.revenue`, `market_csv.registrations`) take it as it is.
    """

    def __init__(
        self,
        *,
        staging: Staging,
        today: date,
        now: datetime | None = None,
        accounts_uncovered: bool = False,
    ) -> None:
        self.staging = staging
        self.today = today
        # The run's time, stamped on the rows written while their file is checked.
        self.now = now or timezone.now()
        # The run writes no coverage: an account it creates is stored with `NO_COVERAGE`.
        self.accounts_uncovered = accounts_uncovered
        self.problems: list[str] = []
        self.rows: dict[str, int] = {}
        # What later files may refer to: existing rows plus the rows of earlier files.
        self.region_codes = set(Region.objects.values_list("code", flat=True))
        self.vertical_codes = set(Vertical.objects.values_list("code", flat=True))
        self.rep_ids = set(SalesRep.objects.values_list("external_id", flat=True))
        self.partner_kinds = dict(Partner.objects.values_list("external_id", "channel_kind"))
        # The external ids of accounts.csv.
        self.account_ids: set[str] = set()
        # Each currency's earliest rate day in fx_rates.csv, and the registrations of
        # registrations.csv, for opportunities.csv.
        self.rate_starts: dict[str, str] = {}
        self.registration_lines: dict[str, int] = {}
        self._existing_account_ids: set[str] | None = None
        self._email = EmailValidator()
        # Files whose header lacks a column: their rows cannot be read, so references to them
        # go unchecked rather than repeating that one problem in every later file.
        self.unreadable: set[str] = set()

    def problem(self, file_name: str, line: int, column: str, text: str) -> None:
        """Record a problem: `text` in the active language (an import started in the browser
        runs in its uploader's), after the file, line and column as written."""
        if not self.problems:
            self.staging.discard()
        self.problems.append(f"{file_name}:{line}: {column}: {text}")

    def _rows(self, path: Path, market_file: MarketFile) -> Iterator[tuple[int, Sequence[str]]]:
        """Yield (first physical line, cells in the file's column order) per data row.

        Cells are taken as written: trimming every cell would cost a fifth of the run, and a
        stray space shows up in the problem text (`unknown region code 'DACH '`).
        """
        name = market_file.name
        try:
            handle = open(path, encoding="utf-8-sig", newline="")
        except OSError as error:
            self.problem(
                name, 1, "file", _("cannot be read: %(error)s") % {"error": error.strerror}
            )
            return
        with handle:
            reader = csv.reader(handle)
            line = 1
            try:
                header = next(reader, None)
                if header is None:
                    self.problem(name, 1, "file", _("is empty; a header row is required"))
                    return
                header = [cell.strip() for cell in header]
                positions: list[int] = []
                for column in market_file.columns:
                    if column in header:
                        positions.append(header.index(column))
                    else:
                        self.problem(name, 1, column, _("missing column"))
                known = (*market_file.columns, *market_file.optional)
                for position, column in enumerate(header):
                    if column not in known:
                        where = column or _("column %(number)d") % {"number": position + 1}
                        self.problem(name, 1, where, _("unknown column"))
                    elif header.index(column) != position:
                        self.problem(name, 1, column, _("column appears more than once"))
                if len(positions) < len(market_file.columns):
                    self.unreadable.add(name)
                    return
                # Optional columns follow the required ones in the cells; an absent one reads
                # as None, and the store leaves what it sets unchanged.
                present = [c for c in market_file.optional if c in header]
                self.staging.optional_present[name] = set(present)
                width = len(header)
                pick: Callable[[Sequence[str]], Sequence[str]] | None
                if len(present) < len(market_file.optional):
                    # An absent column reads the None appended after the row's cells.
                    getter = itemgetter(
                        *positions,
                        *(header.index(c) if c in header else width for c in market_file.optional),
                    )

                    # The absent optional cells are None (not str), read only by the store,
                    # where None means "leave unchanged"; the checks read the required cells.
                    def pad(row: Sequence[str]) -> Sequence[str]:
                        return getter([*row, None])  # type: ignore[no-any-return]

                    pick = pad
                else:
                    picked = [*positions, *(header.index(c) for c in market_file.optional)]
                    in_order = picked == list(range(len(picked))) and width == len(picked)
                    pick = None if in_order else itemgetter(*picked)
                line = reader.line_num
                rows = 0
                try:
                    for row in reader:
                        start, line = line + 1, reader.line_num
                        if not row:
                            continue
                        rows += 1
                        if len(row) != width:
                            self.problem(
                                name,
                                start,
                                "row",
                                _("has %(fields)d fields, expected %(width)d")
                                % {"fields": len(row), "width": width},
                            )
                            continue
                        yield start, pick(row) if pick is not None else row
                finally:
                    self.rows[name] += rows
            except UnicodeDecodeError:
                self.problem(name, line + 1, "file", _("is not UTF-8 text"))
            except csv.Error as error:
                self.problem(
                    name, line + 1, "row", _("is not valid CSV (%(error)s)") % {"error": error}
                )

    def _text(
        self, file_name: str, line: int, column: str, value: str, max_length: int
    ) -> str | None:
        if not value:
            self.problem(file_name, line, column, _("required"))
            return None
        if len(value) > max_length:
            self.problem(
                file_name,
                line,
                column,
                longer_than(max_length),
            )
            return None
        return value

    def _key(
        self,
        file_name: str,
        line: int,
        column: str,
        value: str,
        max_length: int,
        seen: dict[str, int],
        what: str,
    ) -> str | None:
        """The key `value`, or None with its problem worded: required, too long, or a duplicate
        of an earlier line's key in `seen`. The per-row loops check a key inline and call this
        only for one they refused, to word the problem (their inline check has already put a
        valid key in `seen`, so the key is found there as the earlier line's). `what` names
        the key in English, marked for translation (`gettext_noop`), as every check's `what`
        does; the problem names it in the active language."""
        if self._text(file_name, line, column, value, max_length) is None:
            return None
        first = seen.setdefault(value, line)
        if first != line:
            self.problem(
                file_name,
                line,
                column,
                _("duplicate %(what)s %(value)r (first on line %(first)d)")
                % {"what": _(what), "value": value, "first": first},
            )
            return None
        return value

    def _date(
        self, file_name: str, line: int, column: str, value: str, *, required: bool
    ) -> str | None:
        if not value:
            if required:
                self.problem(file_name, line, column, _("required"))
            return None
        if is_date(value):
            return value
        self.problem(
            file_name,
            line,
            column,
            _("not a date (expected yyyy-mm-dd): %(value)r") % {"value": value},
        )
        return None

    def _choice(
        self, file_name: str, line: int, column: str, value: str, choices: list[str]
    ) -> str | None:
        if value in choices:
            return value
        if not value:
            self.problem(
                file_name,
                line,
                column,
                _("required (one of %(choices)s)") % {"choices": one_of(choices)},
            )
        else:
            self.problem(
                file_name,
                line,
                column,
                _("must be one of %(choices)s, not %(value)r")
                % {"choices": one_of(choices), "value": value},
            )
        return None

    def _codes(
        self, file_name: str, line: int, column: str, value: str, known: set[str], what: str
    ) -> list[str]:
        """The codes listed in `value`, each unknown one (not in `known`) a problem; `what` names
        a code ("region code")."""
        codes: list[str] = []
        for code in value.split(LIST_SEPARATOR):
            code = code.strip()
            if not code or code in codes:
                continue
            if code not in known:
                self.problem(
                    file_name,
                    line,
                    column,
                    _("unknown %(what)s %(value)r") % {"what": _(what), "value": code},
                )
            codes.append(code)
        return codes

    def _not_before(
        self,
        file_name: str,
        line: int,
        column: str,
        later: str | None,
        other: str,
        earlier: str | None,
    ) -> None:
        # ISO dates compare correctly as strings.
        if later and earlier and later < earlier:
            self.problem(
                file_name,
                line,
                column,
                _("%(later)s is before %(other)s %(earlier)s")
                % {"later": later, "other": other, "earlier": earlier},
            )

    def _unknown(self, file_name: str, line: int, column: str, value: str, what: str) -> None:
        if not value:
            self.problem(file_name, line, column, _("required"))
        else:
            self.problem(
                file_name,
                line,
                column,
                _("unknown %(what)s %(value)r") % {"what": _(what), "value": value},
            )

    def _account_known(self, external_id: str) -> bool:
        if external_id in self.account_ids or ACCOUNTS.name in self.unreadable:
            return True
        if not external_id:
            return False
        return external_id in self.stored_account_ids()

    def stored_account_ids(self) -> set[str]:
        """The external ids of the stored accounts, read once."""
        if self._existing_account_ids is None:
            self._existing_account_ids = set(
                Account.objects.values_list("external_id", flat=True).iterator(chunk_size=20_000)
            )
        return self._existing_account_ids
