"""The audit log over the API: for admins (who hold accounts.view_auditentry); nobody else
knows it is there (404)."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers

from accounts.models import AuditEntry
from config.errors import NotFound
from config.pagination import NewestFirst
from config.serializers import api_errors

FILTERS = ("action", "object_type", "object_id", "actor_name")


class AuditEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEntry
        fields = ["id", "at", "actor_name", "action", "object_type", "object_id", "object_repr",
                  "before", "after", "ip"]  # fmt: skip
        read_only_fields = fields


class AuditNewestFirst(NewestFirst):
    ordering = ("-at", "-id")


class AuditView(generics.ListAPIView):
    queryset = AuditEntry.objects.none()
    serializer_class = AuditEntrySerializer
    pagination_class = AuditNewestFirst

    def get_queryset(self):
        if not self.request.user.has_perm("accounts.view_auditentry"):
            raise NotFound("Not found.")
        entries = AuditEntry.objects.all()
        for name in FILTERS:
            value = self.request.query_params.get(name)
            if value:
                entries = entries.filter(**{name: value[:200]})
        return entries

    @extend_schema(
        summary="The audit log, newest first (admins)",
        parameters=[
            OpenApiParameter(name, str, description=f"Only entries with this {name}.")
            for name in FILTERS
        ],  # fmt: skip
        responses={200: AuditEntrySerializer(many=True), **api_errors(404)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)
