"""Input parsing and output rendering for the guardians API."""

from rest_framework import serializers

from guardians.models import Guardian, GuardianDecision, GuardianVersion, Outcome


class GuardianVersionSerializer(serializers.ModelSerializer):
    published_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = GuardianVersion
        fields = ["number", "kind", "config", "on_error", "checksum", "published_at",
                  "published_by", "spec"]  # fmt: skip
        read_only_fields = fields


class GuardianSerializer(serializers.ModelSerializer):
    current_version = GuardianVersionSerializer(read_only=True, allow_null=True)

    class Meta:
        model = Guardian
        fields = ["slug", "current_version", "created_at", "updated_at"]
        read_only_fields = fields


class EvaluateInput(serializers.Serializer):
    payload = serializers.DictField(
        help_text="A sample context: inputs, state, ctx, steps ({id: {status, output}}), "
        "run ({cost_usd, age_s, ...})."
    )


class VerdictSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=Outcome.choices)
    reason = serializers.CharField()
    evidence = serializers.DictField(help_text="The values its rules read.")
    route = serializers.ListField(child=serializers.CharField(), help_text="A route's steps.")
    error = serializers.CharField(help_text="What it raised, when on_error decided.")


class GuardianDecisionSerializer(serializers.ModelSerializer):
    guardian = serializers.CharField(source="guardian_version.guardian.slug", read_only=True)
    guardian_version = serializers.IntegerField(source="guardian_version.number", read_only=True)
    kind = serializers.CharField(source="guardian_version.kind", read_only=True)

    class Meta:
        model = GuardianDecision
        fields = ["id", "step_id", "guardian", "guardian_version", "kind", "outcome", "reason",
                  "evidence", "route", "error", "at"]  # fmt: skip
        read_only_fields = fields
