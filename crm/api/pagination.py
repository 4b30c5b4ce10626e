"""Pagination for every API list: page numbers for short lists, cursors for the long ones."""

from __future__ import annotations

from rest_framework.pagination import CursorPagination, PageNumberPagination


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
