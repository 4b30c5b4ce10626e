"""Pagination for every API list: page numbers for short lists, cursors for the long ones."""

from __future__ import annotations

from base64 import b64decode, b64encode
from collections.abc import Iterator
from typing import Any, cast
from urllib import parse

from django.core.exceptions import FieldDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.paginator import Page, Paginator
from django.db.models import Field, Model, Q, QuerySet
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import Cursor, CursorPagination, PageNumberPagination
from rest_framework.request import Request
from rest_framework.utils.urls import replace_query_param

from crm.filters import SortFilter
from crm.forms import object_id


class PagePagination(PageNumberPagination):
    """Lists of at most a few thousand rows (partners, agreements, feedback)."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class _ListPage(Page[Any]):
    """A page of a list, iterated as its list slice rather than item by item through
    `Sequence.__getitem__` (1 ms of a page of 2,000 rows)."""

    def __iter__(self) -> Iterator[Any]:
        return iter(self.object_list)


class _ListPaginator(Paginator[Any]):
    def _get_page(self, *args: Any, **kwargs: Any) -> Page[Any]:
        return _ListPage(*args, **kwargs)


class ReportPagination(PagePagination):
    """Metric rows: one week holds about two thousand segments, which fit one page."""

    max_page_size = 5000
    django_paginator_class = _ListPaginator


class IdCursorPagination(CursorPagination):
    """Accounts and coverage run to millions of rows: a cursor over the primary key never
    counts the table nor skips through an offset.

    A list whose FilterSet has a `sort` (`crm.filters.SortFilter`) pages in the asked sort's
    order instead, with a cursor that holds the values of every column of that order for the
    row it starts after (or before): `(name, id) > ('Acme', 812)`. Every sort ends in a unique
    column, so the walk meets each row exactly once in both directions however many rows share
    a name or a date, and each page starts where an index on the sort's columns already is.
    (DRF's own cursor keeps only the first column and counts ties by offset, which it caps at
    1,000 and miscounts when walking back.) The sort's columns must not be null."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
    ordering = "id"
    invalid_cursor_message = "This cursor was not made by this list; start over."

    def get_ordering(self, request: Request, queryset: QuerySet[Any], view: Any) -> tuple[str, ...]:
        filterset_class = getattr(view, "filterset_class", None)
        sort = filterset_class.base_filters.get("sort") if filterset_class else None
        asked = request.query_params.get("sort")
        if isinstance(sort, SortFilter) and asked in sort.orders:
            return sort.orders[asked]
        return tuple(super().get_ordering(request, queryset, view))

    def paginate_queryset(
        self, queryset: QuerySet[Any], request: Request, view: Any = None
    ) -> list[Any] | None:
        self.model = queryset.model
        ordering = self.get_ordering(request, queryset, view)
        self.keyed = len(ordering) > 1
        if not self.keyed:
            return super().paginate_queryset(queryset, request, view)
        page_size = self.get_page_size(request)
        if not page_size:
            return None
        self.request = request
        self.page_size = page_size
        self.base_url = request.build_absolute_uri()
        self.columns = ordering
        self.reverse, self.keys = self._decode_keys(request)
        order = _reversed(ordering) if self.reverse else ordering
        rows = queryset.order_by(*order)
        if self.keys is not None:
            rows = rows.filter(_beyond(order, self.keys))
        found = list(rows[: page_size + 1])
        self.page = found[:page_size]
        more = len(found) > page_size
        if self.reverse:
            self.page.reverse()
        self.has_next = self.keys is not None if self.reverse else more
        self.has_previous = more if self.reverse else self.keys is not None
        if (self.has_previous or self.has_next) and self.template is not None:
            self.display_page_controls = True
        return self.page

    def get_next_link(self) -> str | None:
        if not getattr(self, "keyed", False):
            return super().get_next_link()
        if not self.has_next:
            return None
        return self._keys_link(self._keys_of(self.page[-1]) if self.page else self.keys, False)

    def get_previous_link(self) -> str | None:
        if not getattr(self, "keyed", False):
            return super().get_previous_link()
        if not self.has_previous:
            return None
        return self._keys_link(self._keys_of(self.page[0]) if self.page else self.keys, True)

    def _keys_of(self, row: Model) -> list[str]:
        return [str(getattr(row, column.lstrip("-"))) for column in self.columns]

    def _keys_link(self, keys: list[str] | None, reverse: bool) -> str:
        tokens: dict[str, str | list[str]] = {"k": keys or []}
        if reverse:
            tokens["r"] = "1"
        encoded = b64encode(parse.urlencode(tokens, doseq=True).encode()).decode("ascii")
        return replace_query_param(self.base_url or "", self.cursor_query_param, encoded)

    def _decode_keys(self, request: Request) -> tuple[bool, list[str] | None]:
        """(reverse, the keys to start beyond) of the cursor; no cursor starts at the top. A
        400 naming `cursor` for one that does not hold a valid value for each column."""
        encoded = request.query_params.get(self.cursor_query_param)
        if encoded is None:
            return False, None
        try:
            tokens = parse.parse_qs(
                b64decode(encoded.encode("ascii"), validate=True).decode(),
                keep_blank_values=True,
                strict_parsing=True,
            )
        except (ValueError, UnicodeError):
            tokens = {}
        keys = tokens.get("k", [])
        reverse = tokens.get("r", ["0"]) == ["1"]
        if len(keys) != len(self.columns) or not all(
            self._position_valid(key, column)
            for key, column in zip(keys, self.columns, strict=True)
        ):
            raise ValidationError({self.cursor_query_param: [self.invalid_cursor_message]})
        return reverse, keys

    def decode_cursor(self, request: Request) -> Cursor | None:
        """The cursor from the query string; a 400 naming `cursor` for one this list did not
        make (its position must be a value of the ordering column: a crafted one reached the
        database as `id > 'abc'`)."""
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            cursor = None
        else:
            # DRF's stubs declare the position an int; decode_cursor reads it from the query
            # string, so it is the text the client sent (or None).
            position = cast(str | None, cursor.position) if cursor else None
            if cursor is None or self._position_valid(position, self.ordering[0]):
                return cursor
        raise ValidationError({self.cursor_query_param: [self.invalid_cursor_message]})

    def _position_valid(self, position: str | None, column: str) -> bool:
        if position is None:
            return True
        if "\x00" in position:
            return False
        try:
            field: Field[Any, Any] = self.model._meta.get_field(column.lstrip("-"))
        except (AttributeError, FieldDoesNotExist):
            return False
        if field.get_internal_type() in {"AutoField", "BigAutoField", "BigIntegerField"}:
            return object_id(position) is not None
        try:
            field.to_python(position)
        except DjangoValidationError:
            return False
        return len(position) <= (field.max_length or 255)


def _reversed(ordering: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(column[1:] if column.startswith("-") else f"-{column}" for column in ordering)


def _beyond(ordering: tuple[str, ...], keys: list[str]) -> Q:
    """The rows after `keys` in `ordering`: (a, b) > (x, y) as `a >= x AND (a > x OR b > y)`,
    the first term a bound that an index on (a, b) starts from."""
    columns = [
        (column.lstrip("-"), "lt" if column.startswith("-") else "gt") for column in ordering
    ]
    after = Q()
    for index in range(len(columns) - 1, -1, -1):
        name, direction = columns[index]
        step = Q(**{f"{name}__{direction}": keys[index]})
        after = step if index == len(columns) - 1 else step | (Q(**{name: keys[index]}) & after)
    first, direction = columns[0]
    return Q(**{f"{first}__{direction}e": keys[0]}) & after
