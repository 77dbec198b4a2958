"""Keyset (cursor) pagination: stable pages under inserts and cheap at any depth."""

from django.conf import settings
from rest_framework.pagination import CursorPagination


class _Cursor(CursorPagination):
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_size(self, request):
        return super().get_page_size(request) or settings.API_PAGE_SIZE


class NewestFirst(_Cursor):
    ordering = "-created_at"


class ByStart(_Cursor):
    ordering = ("started_at", "id")


class BySlug(_Cursor):
    ordering = "slug"


class NewestVersionFirst(_Cursor):
    ordering = "-number"


class OldestFirst(_Cursor):
    ordering = ("at", "id")


class QueueOrder(_Cursor):
    ordering = "queue_key"  # interventions: priority, due time, age (one unique key)
