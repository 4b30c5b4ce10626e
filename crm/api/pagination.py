"""Pagination for every API list: page numbers for short lists, cursors for the long ones."""

from __future__ import annotations

from typing import Any, cast

from django.core.exceptions import FieldDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Field, QuerySet
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import Cursor, CursorPagination, PageNumberPagination
from rest_framework.request import Request

from crm.forms import object_id


class PagePagination(PageNumberPagination):
    """Lists of at most a few thousand rows (partners, agreements, feedback)."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class ReportPagination(PagePagination):
    """Metric rows: one week holds about two thousand segments, which fit one page."""

    max_page_size = 5000


class IdCursorPagination(CursorPagination):
    """Accounts and coverage run to millions of rows: a cursor over the primary key never
    counts the table nor skips through an offset."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
    ordering = "id"
    invalid_cursor_message = "This cursor was not made by this list; start over."

    def paginate_queryset(
        self, queryset: QuerySet[Any], request: Request, view: Any = None
    ) -> list[Any] | None:
        self.model = queryset.model
        return super().paginate_queryset(queryset, request, view)

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
            if cursor is None or self._position_valid(cast(str | None, cursor.position)):
                return cursor
        raise ValidationError({self.cursor_query_param: [self.invalid_cursor_message]})

    def _position_valid(self, position: str | None) -> bool:
        if position is None:
            return True
        if "\x00" in position:
            return False
        try:
            field: Field[Any, Any] = self.model._meta.get_field(self.ordering[0].lstrip("-"))
        except (AttributeError, FieldDoesNotExist):
            return False
        if field.get_internal_type() in {"AutoField", "BigAutoField", "BigIntegerField"}:
            return object_id(position) is not None
        try:
            field.to_python(position)
        except DjangoValidationError:
            return False
        return len(position) <= (field.max_length or 255)
