"""Providers (edited in place), versioned agents, and every LLM call attempt (DESIGN §4).

An LLMCall names its run and step run by id, not by foreign key: runs are the engine's rows, and
this app reaches them only through the engine's door (workflows.engine.api).
"""

from django.conf import settings
from django.db import models


class _Definition(models.Model):
    slug = models.SlugField(max_length=100, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
        ordering = ["slug"]

    def __str__(self):
        return self.slug


class Provider(_Definition):
    kind = models.CharField(max_length=16)
    spec = models.JSONField(help_text="The validated spec (agents.specs.ProviderSpec).")


class Agent(_Definition):
    current_version = models.ForeignKey(
        "AgentVersion", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    enabled = models.BooleanField(default=True)
    capabilities = models.JSONField(default=list, help_text="The current version's, for routing.")


class AgentVersion(models.Model):
    """Immutable: a new spec makes the next version."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    spec = models.JSONField()
    checksum = models.CharField(max_length=64)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    published_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["agent", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["agent", "number"], name="unique_agent_version")
        ]

    def __str__(self):
        return f"{self.agent.slug} v{self.number}"


class CallOutcome(models.TextChoices):
    OK = "ok"
    ERROR = "error"  # the vendor answered with an error, or an answer that could not be used
    SKIPPED = "skipped"  # not sent: breaker open, no budget left, no key
    CACHED = "cached"


class LLMCall(models.Model):
    """One attempt at one provider/model (or a cache hit): what it cost and how it ended."""

    run_id = models.UUIDField(db_index=True)
    step_run_id = models.BigIntegerField()
    step_id = models.CharField(max_length=100)
    workflow = models.SlugField(max_length=100, help_text="The run's workflow, for cost reports.")
    agent_version = models.ForeignKey(AgentVersion, on_delete=models.PROTECT, related_name="calls")
    provider = models.CharField(max_length=100)
    model = models.CharField(max_length=200)
    attempt = models.PositiveSmallIntegerField()
    outcome = models.CharField(max_length=16, choices=CallOutcome.choices)
    latency_ms = models.PositiveIntegerField(default=0)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    priced = models.BooleanField(default=True, help_text="False: the model had no price (cost 0).")
    simulated = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    error_code = models.CharField(max_length=32, blank=True)
    at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["run_id", "at", "pk"]
        verbose_name = "LLM call"

    def __str__(self):
        return f"{self.provider}/{self.model} #{self.attempt} {self.outcome}"
