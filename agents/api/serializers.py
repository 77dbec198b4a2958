"""Input parsing and output rendering for the providers, agents and LLM calls API."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from agents.models import Agent, AgentVersion, LLMCall, Provider


class BreakerSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=["closed", "open", "half-open"])
    failures = serializers.IntegerField(help_text="Failures counted in the current window.")
    opened_at = serializers.DateTimeField(allow_null=True, help_text="When it opened.")


class ProviderSerializer(serializers.ModelSerializer):
    breaker = serializers.SerializerMethodField()

    class Meta:
        model = Provider
        fields = ["slug", "kind", "spec", "breaker", "created_at", "updated_at"]
        read_only_fields = fields

    @extend_schema_field(BreakerSerializer)
    def get_breaker(self, provider) -> dict:
        return BreakerSerializer(provider.breaker).data


class AgentVersionSerializer(serializers.ModelSerializer):
    published_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = AgentVersion
        fields = ["number", "checksum", "published_at", "published_by", "spec"]
        read_only_fields = fields


class AgentUpdateInput(serializers.Serializer):
    enabled = serializers.BooleanField()


class AgentSerializer(serializers.ModelSerializer):
    current_version = AgentVersionSerializer(read_only=True, allow_null=True)

    class Meta:
        model = Agent
        fields = ["slug", "enabled", "capabilities", "current_version", "created_at"]
        read_only_fields = fields


class LLMCallSerializer(serializers.ModelSerializer):
    agent = serializers.CharField(source="agent_version.agent.slug", read_only=True)
    agent_version = serializers.IntegerField(source="agent_version.number", read_only=True)
    cost_usd = serializers.DecimalField(max_digits=12, decimal_places=6, coerce_to_string=False)

    class Meta:
        model = LLMCall
        fields = [
            "id", "step_id", "step_run_id", "provider", "model", "agent", "agent_version",
            "attempt", "outcome", "latency_ms", "input_tokens", "output_tokens", "cost_usd",
            "priced", "simulated", "error", "error_code", "at",
        ]  # fmt: skip
        read_only_fields = fields
