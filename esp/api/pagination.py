from __future__ import annotations

from rest_framework.pagination import CursorPagination


class IdCursorPagination(CursorPagination):
    """Keyset pagination on the primary key, newest first: stable under inserts and as fast on
    the last page as on the first, at any table size."""

    ordering = "-id"
    page_size_query_param = "limit"
    max_page_size = 1000
