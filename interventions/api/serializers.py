"""Input parsing and output rendering for the interventions API."""

from rest_framework import serializers

from interventions.models import (
    Intervention,
    InterventionComment,
    InterventionType,
    OnExpiry,
    Status,
)


class CommentSerializer(serializers.ModelSerializer):
    author = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = InterventionComment
        fields = ["id", "author", "text", "at"]
        read_only_fields = fields


def _name(field: str) -> serializers.SlugRelatedField:
    return serializers.SlugRelatedField(slug_field=field, read_only=True, allow_null=True)


class InterventionSerializer(serializers.ModelSerializer):
    priority = serializers.CharField(source="get_priority_display", read_only=True)
    assignee = _name("username")
    group = _name("name")
    claimed_by = _name("username")
    resolved_by = _name("username")
    # Declared: a read-only model field loses its allow_blank, and "" (no expiry) is one.
    on_expiry = serializers.ChoiceField(choices=OnExpiry.choices, allow_blank=True, read_only=True)

    class Meta:
        model = Intervention
        fields = [
            "id", "run_id", "step_id", "step_run_id", "iteration", "workflow", "type", "source",
            "priority", "status", "assignee", "group", "prompt", "context", "form", "due_at",
            "on_expiry", "approvals_required", "approvals", "resolution", "resolved_by",
            "resolved_at", "claimed_by", "claimed_at", "created_at",
        ]  # fmt: skip
        read_only_fields = fields


class InterventionDetailSerializer(InterventionSerializer):
    comments = CommentSerializer(many=True, read_only=True)

    class Meta(InterventionSerializer.Meta):
        fields = [*InterventionSerializer.Meta.fields, "comments"]
        read_only_fields = fields


class QueueQuery(serializers.Serializer):
    status = serializers.ChoiceField(choices=Status.choices, required=False)
    type = serializers.ChoiceField(choices=InterventionType.choices, required=False)
    assignee = serializers.ChoiceField(choices=["me"], required=False)
    group = serializers.CharField(required=False, max_length=150)


class ResolveInput(serializers.Serializer):
    decision = serializers.CharField(required=False, max_length=32)
    data = serializers.JSONField(required=False, allow_null=True)
    output = serializers.JSONField(required=False, allow_null=True)
    comment = serializers.CharField(required=False, allow_blank=True, max_length=10_000)


class DelegateInput(serializers.Serializer):
    to = serializers.CharField(max_length=150, help_text="The username of the new assignee.")


class CommentInput(serializers.Serializer):
    text = serializers.CharField(max_length=10_000)
