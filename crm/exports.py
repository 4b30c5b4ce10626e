"""Lists exported as CSV or XLSX: the same rows the page shows, streamed, never all in memory.

Exports are for people, like the pages: headers in the reader's language, names and labels
instead of codes, yes/no for flags; dates stay ISO (yyyy-mm-dd), which every spreadsheet reads
as a date. The market files for re-import are `manage.py export_csv`'s, with codes."""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Iterable, Sequence
from datetime import date, datetime

from django.http import FileResponse, HttpResponse, StreamingHttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from openpyxl import Workbook

EXPORT_FORMATS = ("csv", "xlsx")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Excel's sheet limit, less the header row.
XLSX_MAX_ROWS = 1_048_575


class _Echo:
    def write(self, value: str) -> str:
        return value


def _cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return timezone.localtime(value).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _safe_text(value: object) -> object:
    # A cell starting with = + - @ is run as a formula by spreadsheet programs, and so is one
    # whose formula hides behind a leading tab or carriage return.
    if isinstance(value, str) and value[:1] in FORMULA_STARTS and not _is_number(value):
        return "'" + value
    return value


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def export_response(
    *, fmt: str, filename: str, header: Sequence[str], rows: Iterable[Sequence[object]]
) -> HttpResponse | StreamingHttpResponse | FileResponse:
    """A download of `rows` under `header` as CSV (streamed) or XLSX (written to a temp file)."""
    stamp = timezone.localdate().isoformat()
    if fmt == "xlsx":
        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet(title=filename[:31])
        sheet.append(list(header))
        for count, row in enumerate(rows):
            if count >= XLSX_MAX_ROWS:
                break
            sheet.append([_safe_text(_cell(value)) for value in row])
        handle = tempfile.TemporaryFile()
        workbook.save(handle)
        handle.seek(0)
        return FileResponse(
            handle,
            as_attachment=True,
            filename=f"{filename}-{stamp}.xlsx",
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
    writer = csv.writer(_Echo())

    def lines() -> Iterable[str]:
        yield writer.writerow(header)
        for row in rows:
            yield writer.writerow([_safe_text(_cell(value)) for value in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}-{stamp}.csv"'
    return response


def yes_no(value: bool | None) -> str:
    """A flag as the reader's word for it."""
    if value is None:
        return ""
    return _("yes") if value else _("no")


def labelled(choices: Iterable[tuple[str, object]]) -> dict[str, str]:
    """Codes to their labels in the reader's language, for one set of choices."""
    return {code: str(label) for code, label in choices}
