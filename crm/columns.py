"""The account's columns, listed once. The market file (`accounts.csv`) reads and writes them in
this order, the market export and the account list's CSV/XLSX export follow it, and the API
names the same fields; region and vertical are their codes in files and the API, and their
names (in the reader's language) in the list's export for people."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from django_stubs_ext import StrOrPromise

ACCOUNT_COLUMNS: tuple[str, ...] = (
    "external_id",
    "name",
    "region",
    "vertical",
    "size_band",
    "entered_on",
    "archived_on",
    "converted_on",
    "converted_via",
)

# Columns that name another row: the ORM lookup of the code each one is written as.
ACCOUNT_CODES = {"region": "region__code", "vertical": "vertical__code"}

# The headers of the exports for people, one per column.
ACCOUNT_HEADERS: dict[str, StrOrPromise] = {
    "external_id": _("External id"),
    "name": _("Name"),
    "region": _("Region"),
    "vertical": _("Vertical"),
    "size_band": _("Size band"),
    "entered_on": _("Entered the market"),
    "archived_on": _("Archived"),
    "converted_on": _("Customer since"),
    "converted_via": _("Won by"),
}


def account_code_lookups() -> tuple[str, ...]:
    """`ACCOUNT_COLUMNS` as `values_list` names: region and vertical by code."""
    return tuple(ACCOUNT_CODES.get(column, column) for column in ACCOUNT_COLUMNS)
